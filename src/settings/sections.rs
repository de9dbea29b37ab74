//! The headings the Settings page groups the credentials under, each with a line on what it is
//! for: Pinpoint, HiBob, onboarding, keeping HiBob in step after the export, and alerts. (Backups and retention, set by environment only,
//! come last on the page under "Data".)

use serde::{Deserialize, Serialize};

use super::credentials::CredentialKey;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    Pinpoint,
    Hibob,
    Onboarding,
    AfterExport,
    Alerts,
}

impl Section {
    /// In page order.
    pub const ALL: [Section; 5] = [
        Section::Pinpoint,
        Section::Hibob,
        Section::Onboarding,
        Section::AfterExport,
        Section::Alerts,
    ];

    /// Where a credential is shown.
    pub fn of(key: CredentialKey) -> Self {
        use CredentialKey as K;
        match key {
            K::PinpointApiBaseUrl
            | K::PinpointApiKey
            | K::PinpointWebhookSecret
            | K::PluginToken => Section::Pinpoint,
            K::HibobApiBaseUrl
            | K::HibobServiceUserId
            | K::HibobServiceUserToken
            | K::HibobDefaultSite
            | K::DefaultStartDays => Section::Hibob,
            K::HibobWelcomeWizardId => Section::Onboarding,
            K::AlertWebhookUrl
            | K::SmtpUrl
            | K::AlertEmailFrom
            | K::AlertEmailTo
            | K::AlertDigestMinutes => Section::Alerts,
            K::WatchAutoFields | K::WatchDaysAfterStart => Section::AfterExport,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Section::Pinpoint => "Pinpoint",
            Section::Hibob => "HiBob",
            Section::Onboarding => "Onboarding",
            Section::AfterExport => "After the export",
            Section::Alerts => "Alerts",
        }
    }

    /// What the section's values are for, in one line.
    pub fn intro(self) -> &'static str {
        match self {
            Section::Pinpoint => "Reading hired applications, the application_hired webhook and the Send to HiBob plugin.",
            Section::Hibob => "The service user that creates employees, and what a new employee gets when Pinpoint does not say.",
            Section::Onboarding => "Inviting each new employee to a HiBob welcome wizard (optional).",
            Section::AfterExport => "Comparing exported hires with HiBob until after their start, and which changes Pinpoint makes reach HiBob without review.",
            Section::Alerts => "Who is told when an export stops, by Slack-compatible webhook or e-mail.",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_credential_has_one_section_and_every_section_some() {
        for section in Section::ALL {
            assert!(
                CredentialKey::ALL
                    .iter()
                    .any(|k| Section::of(*k) == section),
                "{section:?} is empty"
            );
        }
        assert_eq!(
            Section::of(CredentialKey::PinpointWebhookSecret),
            Section::Pinpoint
        );
        assert_eq!(
            Section::of(CredentialKey::HibobWelcomeWizardId),
            Section::Onboarding
        );
        assert_eq!(Section::of(CredentialKey::SmtpUrl), Section::Alerts);
        assert_eq!(Section::Hibob.title(), "HiBob");
    }
}
