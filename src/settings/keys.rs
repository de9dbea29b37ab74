//! The settings the console keeps, by name: what each is called in the database, the
//! environment and the console, what it is for, whether it is secret, and its default.

use std::fmt;

use serde::{Deserialize, Serialize};

pub const DEFAULT_HIBOB_API_BASE_URL: &str = "https://api.hibob.com/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKey {
    PinpointApiBaseUrl,
    PinpointApiKey,
    PinpointWebhookSecret,
    PluginToken,
    HibobApiBaseUrl,
    HibobServiceUserId,
    HibobServiceUserToken,
    HibobDefaultSite,
    DefaultStartDays,
    HibobWelcomeWizardId,
    AlertWebhookUrl,
    SmtpUrl,
    AlertEmailFrom,
    AlertEmailTo,
    AlertDigestMinutes,
    WatchAutoFields,
    WatchDaysAfterStart,
}

impl CredentialKey {
    pub const ALL: [CredentialKey; 17] = [
        CredentialKey::PinpointApiBaseUrl,
        CredentialKey::PinpointApiKey,
        CredentialKey::PinpointWebhookSecret,
        CredentialKey::PluginToken,
        CredentialKey::HibobApiBaseUrl,
        CredentialKey::HibobServiceUserId,
        CredentialKey::HibobServiceUserToken,
        CredentialKey::HibobDefaultSite,
        CredentialKey::DefaultStartDays,
        CredentialKey::HibobWelcomeWizardId,
        CredentialKey::AlertWebhookUrl,
        CredentialKey::SmtpUrl,
        CredentialKey::AlertEmailFrom,
        CredentialKey::AlertEmailTo,
        CredentialKey::AlertDigestMinutes,
        CredentialKey::WatchAutoFields,
        CredentialKey::WatchDaysAfterStart,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PinpointApiBaseUrl => "pinpoint_api_base_url",
            Self::PinpointApiKey => "pinpoint_api_key",
            Self::PinpointWebhookSecret => "pinpoint_webhook_secret",
            Self::PluginToken => "plugin_token",
            Self::HibobApiBaseUrl => "hibob_api_base_url",
            Self::HibobServiceUserId => "hibob_service_user_id",
            Self::HibobServiceUserToken => "hibob_service_user_token",
            Self::HibobDefaultSite => "hibob_default_site",
            Self::DefaultStartDays => "default_start_days",
            Self::HibobWelcomeWizardId => "hibob_welcome_wizard_id",
            Self::AlertWebhookUrl => "alert_webhook_url",
            Self::SmtpUrl => "smtp_url",
            Self::AlertEmailFrom => "alert_email_from",
            Self::AlertEmailTo => "alert_email_to",
            Self::AlertDigestMinutes => "alert_digest_minutes",
            Self::WatchAutoFields => "watch_auto_fields",
            Self::WatchDaysAfterStart => "watch_days_after_start",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    pub fn env_var(self) -> &'static str {
        match self {
            Self::PinpointApiBaseUrl => "PINPOINT_API_BASE_URL",
            Self::PinpointApiKey => "PINPOINT_API_KEY",
            Self::PinpointWebhookSecret => "PINPOINT_WEBHOOK_SECRET",
            Self::PluginToken => "PLUGIN_TOKEN",
            Self::HibobApiBaseUrl => "HIBOB_API_BASE_URL",
            Self::HibobServiceUserId => "HIBOB_SERVICE_USER_ID",
            Self::HibobServiceUserToken => "HIBOB_SERVICE_USER_TOKEN",
            Self::HibobDefaultSite => "HIBOB_DEFAULT_SITE",
            Self::DefaultStartDays => "DEFAULT_START_DAYS",
            Self::HibobWelcomeWizardId => "HIBOB_WELCOME_WIZARD_ID",
            Self::AlertWebhookUrl => "ALERT_WEBHOOK_URL",
            Self::SmtpUrl => "SMTP_URL",
            Self::AlertEmailFrom => "ALERT_EMAIL_FROM",
            Self::AlertEmailTo => "ALERT_EMAIL_TO",
            Self::AlertDigestMinutes => "ALERT_DIGEST_MINUTES",
            Self::WatchAutoFields => "WATCH_AUTO_FIELDS",
            Self::WatchDaysAfterStart => "WATCH_DAYS_AFTER_START",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::PinpointApiBaseUrl => "Pinpoint API base URL",
            Self::PinpointApiKey => "Pinpoint API key",
            Self::PinpointWebhookSecret => "Webhook signing secret",
            Self::PluginToken => "Plugin token",
            Self::HibobApiBaseUrl => "HiBob API base URL",
            Self::HibobServiceUserId => "HiBob service user ID",
            Self::HibobServiceUserToken => "HiBob service user token",
            Self::HibobDefaultSite => "Default HiBob site",
            Self::DefaultStartDays => "Default start (days after hire)",
            Self::HibobWelcomeWizardId => "HiBob welcome wizard (onboarding invitation)",
            Self::AlertWebhookUrl => "Alert webhook (Slack-compatible)",
            Self::SmtpUrl => "Alert mail server (SMTP URL)",
            Self::AlertEmailFrom => "Alert e-mail sender",
            Self::AlertEmailTo => "Alert e-mail recipients",
            Self::AlertDigestMinutes => "Alert digest (minutes)",
            Self::WatchAutoFields => "Changes sent to HiBob without review",
            Self::WatchDaysAfterStart => "Watch hires until (days after start)",
        }
    }

    pub fn help(self) -> &'static str {
        match self {
            Self::PinpointApiBaseUrl => "Your Pinpoint account's API root, e.g. https://acme.pinpointhq.com/api/v1",
            Self::PinpointApiKey => "Settings → API & Webhooks → API Keys in Pinpoint. Needs application read and comment write.",
            Self::PinpointWebhookSecret => "The Signing Secret of the application_hired webhook in Pinpoint (Company → Profile → Webhooks).",
            Self::PluginToken => "Shared secret Pinpoint sends as the X-Plugin-Token header. Enter the same value in the plugin's configuration in Pinpoint.",
            Self::HibobApiBaseUrl => "Leave as https://api.hibob.com/v1 unless HiBob gave you another host.",
            Self::HibobServiceUserId => "Bob → Settings → Integrations → Service users.",
            Self::HibobServiceUserToken => "Shown once when the service user is created in Bob.",
            Self::HibobDefaultSite => "The HiBob site (work.site, required by HiBob) given to every new employee, exactly as named in Bob.",
            Self::DefaultStartDays => "When the offer has no start date, the start date is the hire date plus this many days.",
            Self::HibobWelcomeWizardId => "Optional. The id of a Bob welcome wizard (Bob → Settings → Onboarding); when set, every new employee is invited to it once created. Leave empty to invite by hand.",
            Self::AlertWebhookUrl => "Optional. A Slack (or compatible) incoming webhook URL; stopped exports are posted there as {\"text\": …}.",
            Self::SmtpUrl => "Optional. e.g. smtps://user:password@smtp.example.com or smtp://relay.internal:25?tls=required; with a sender and recipients, stopped exports are e-mailed.",
            Self::AlertEmailFrom => "The From address of alert e-mails, e.g. HiBob export <alerts@example.com>.",
            Self::AlertEmailTo => "Who gets alert e-mails, comma-separated.",
            Self::AlertDigestMinutes => "Stopped exports whose hire starts in more than 7 days are sent together at most this often; urgent ones go at once.",
            Self::WatchAutoFields => "Optional. HiBob field ids, comma-separated (e.g. work.startDate). When Pinpoint changes one of them after the export, HiBob is updated at once, unless the value in HiBob was changed by hand there. Leave empty to review every change on the export's page.",
            Self::WatchDaysAfterStart => "Exported hires are re-read from Pinpoint and compared with HiBob until this many days after their start date (0 to 365).",
        }
    }

    /// Secret values are write-only in the console; the others (URLs, the service user id) are
    /// shown in full.
    pub fn is_secret(self) -> bool {
        matches!(
            self,
            Self::PinpointApiKey
                | Self::PinpointWebhookSecret
                | Self::PluginToken
                | Self::HibobServiceUserToken
                // a webhook URL is its own credential, and an SMTP URL may hold a password
                | Self::AlertWebhookUrl
                | Self::SmtpUrl
        )
    }

    pub(super) fn is_url(self) -> bool {
        matches!(
            self,
            Self::PinpointApiBaseUrl | Self::HibobApiBaseUrl | Self::AlertWebhookUrl
        )
    }

    /// The credentials that are sent to a base URL: a new destination must not inherit them.
    pub fn sent_to(self) -> &'static [CredentialKey] {
        match self {
            Self::HibobApiBaseUrl => &[Self::HibobServiceUserId, Self::HibobServiceUserToken],
            Self::PinpointApiBaseUrl => &[Self::PinpointApiKey],
            _ => &[],
        }
    }

    pub(super) fn default_value(self) -> Option<&'static str> {
        match self {
            Self::HibobApiBaseUrl => Some(DEFAULT_HIBOB_API_BASE_URL),
            Self::DefaultStartDays => Some("14"),
            Self::AlertDigestMinutes => Some("30"),
            Self::WatchDaysAfterStart => Some("14"),
            _ => None,
        }
    }
}

impl fmt::Display for CredentialKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}
