//! The rules for what reaches HiBob, whichever way it comes in (a plugin submit or a webhook),
//! beyond what the encoder knows of a field's type: HiBob's character rules for names, an
//! e-mail's syntax, the date picker's format, and the CV links HiBob may be pointed at. The
//! encoder applies the name and e-mail rules to every body it builds (`body::BodyBuilder::add`).

use chrono::NaiveDate;

use crate::{
    hibob::schema::canonical_id,
    settings::credentials::{CredentialError, CredentialKey, Credentials},
};

/// HiBob's documented limit for `firstName` and `surname`.
pub const MAX_NAME_CHARS: usize = 50;

/// What is wrong with the text for HiBob field `target`, for the checks the encoder does not
/// make. Empty texts are the encoder's to judge (required or left out).
pub fn problem(target: &str, text: &str) -> Option<String> {
    if text.is_empty() {
        return None;
    }
    match canonical_id(target) {
        "firstName" => name_problem("first name", text),
        "surname" => name_problem("last name", text),
        "email" if !valid_email(text) => {
            Some("This is not a valid email address (for example jane.doe@example.com)".to_owned())
        }
        "work.startDate" if parse_date(text).is_none() => {
            Some("Enter the start date as YYYY-MM-DD (for example 2026-03-02)".to_owned())
        }
        _ => None,
    }
}

/// HiBob allows letters and a short list of punctuation in names. Spaces are not in its list but
/// are in real names ("Mary Ann"), so they are let through and left to HiBob to judge.
pub fn name_problem(what: &str, name: &str) -> Option<String> {
    if name.chars().count() > MAX_NAME_CHARS {
        return Some(format!(
            "HiBob accepts at most {MAX_NAME_CHARS} characters in the {what}"
        ));
    }
    if name.chars().any(char::is_control) {
        return Some(format!(
            "Remove line breaks and other control characters from the {what}"
        ));
    }
    let allowed = |c: char| {
        c.is_alphabetic()
            || c == ' '
            || "´`_-;,./'’\"()".contains(c)
            || ('\u{0300}'..='\u{036F}').contains(&c)
    };
    if let Some(bad) = name.chars().find(|c| !allowed(*c)) {
        return Some(format!(
            "HiBob does not accept \"{bad}\" in the {what}: use letters, spaces and ´ ` _ - ; , . / ' ’ \" ( ) only"
        ));
    }
    None
}

/// A practical syntax check (what HiBob calls "a syntactically valid address"), not RFC 5322:
/// it catches typos and pasted junk without refusing real addresses.
pub fn valid_email(email: &str) -> bool {
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.chars().count() >= 2 && tld.chars().all(char::is_alphabetic));
    local_ok && domain_ok
}

/// `YYYY-MM-DD`, or a timestamp starting with one (a mapped date may arrive with a time).
pub fn parse_date(text: &str) -> Option<String> {
    let text = text.trim();
    let day = match text.as_bytes().get(10) {
        Some(b'T' | b' ') => text.get(..10)?,
        Some(_) => return None,
        None => text,
    };
    let parsed = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    let formatted = parsed.format("%Y-%m-%d").to_string();
    (formatted == day).then_some(formatted)
}

/// A CV link with no context: it must be a public https file (see [`CvLinks`]).
pub fn cv_url_problem(raw: &str) -> Option<&'static str> {
    CvLinks::default().problem(raw)
}

/// Where a CV link may point. HiBob downloads the CV itself and the console never fetches the
/// URL, so a link is judged as written: names are not resolved (what they resolve to here says
/// nothing of what HiBob reaches), but a literal internal address or a local-only name is
/// refused, so HiBob is never pointed at an internal address.
#[derive(Debug, Clone, Default)]
pub struct CvLinks {
    /// The host (and port) of the configured Pinpoint API, where Pinpoint keeps attachments:
    /// a link there is accepted as Pinpoint itself is, over http or https (a local Pinpoint in
    /// tests and in the sandbox serves them over http).
    pub pinpoint: Option<(String, Option<u16>)>,
    /// The operator's `ALLOW_PRIVATE_DESTINATIONS`: other links may then be http and private.
    pub allow_private: bool,
}

impl CvLinks {
    /// The rules for an export whose Pinpoint API is at `pinpoint_base_url`.
    pub fn new(pinpoint_base_url: Option<&str>, allow_private: bool) -> Self {
        let pinpoint = pinpoint_base_url
            .and_then(|base| url::Url::parse(base.trim()).ok())
            .and_then(|url| {
                let host = url.host_str()?.to_ascii_lowercase();
                Some((host, url.port_or_known_default()))
            });
        Self {
            pinpoint,
            allow_private,
        }
    }

    /// The rules for the Pinpoint API configured in `credentials`, the same for a plugin
    /// submit and a webhook export.
    pub async fn configured(credentials: &Credentials) -> Result<Self, CredentialError> {
        use secrecy::ExposeSecret;
        let base = credentials.get(CredentialKey::PinpointApiBaseUrl).await?;
        Ok(Self::new(
            base.as_ref().map(|b| b.expose_secret()),
            credentials.allows_private_destinations(),
        ))
    }

    /// What is wrong with the CV link `raw`, if anything.
    pub fn problem(&self, raw: &str) -> Option<&'static str> {
        let Ok(url) = url::Url::parse(raw.trim()) else {
            return Some("The CV link is not a valid URL");
        };
        if !matches!(url.scheme(), "https" | "http") {
            return Some("The CV link must be an https:// URL");
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Some("The CV link must not contain a user name or password");
        }
        let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
            return Some("The CV link has no host");
        };
        let from_pinpoint = self
            .pinpoint
            .as_ref()
            .is_some_and(|(h, port)| *h == host && *port == url.port_or_known_default());
        if from_pinpoint || self.allow_private {
            return None;
        }
        if url.scheme() != "https" {
            return Some("The CV link must be an https:// URL");
        }
        let private = match url.host() {
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.');
                name == "localhost"
                    || name.ends_with(".localhost")
                    || name.ends_with(".internal")
                    || name.ends_with(".local")
            }
            Some(url::Host::Ipv4(ip)) => crate::destination::is_internal(ip.into()),
            Some(url::Host::Ipv6(ip)) => crate::destination::is_internal(ip.into()),
            None => true,
        };
        private.then_some("The CV link points to a private address HiBob cannot reach")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_hibobs_rules() {
        assert_eq!(name_problem("first name", "Zoë-Anne O'Brien"), None);
        assert_eq!(name_problem("first name", "José (Pepe)"), None);
        assert!(name_problem("first name", &"a".repeat(51))
            .unwrap()
            .contains("50"));
        assert_eq!(name_problem("first name", &"é".repeat(50)), None);
        assert!(name_problem("first name", "Jane\nDoe")
            .unwrap()
            .contains("control"));
        assert!(name_problem("first name", "R2D2")
            .unwrap()
            .contains("\"2\""));
        assert!(name_problem("last name", "<script>").is_some());
    }

    #[test]
    fn emails_are_checked_for_syntax() {
        for good in [
            "jane.doe@example.com",
            "j+tag@sub.example.co.uk",
            "o'neil@example.ie",
        ] {
            assert!(valid_email(good), "{good}");
        }
        for bad in [
            "",
            "jane",
            "jane@",
            "@example.com",
            "jane@example",
            "jane doe@example.com",
            "jane@@example.com",
            "jane@exa_mple.com",
            ".jane@example.com",
            "jane..d@example.com",
            "jane@-example.com",
            "jane@example.c0m",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn dates_must_be_iso_days() {
        assert_eq!(parse_date("2026-03-02").as_deref(), Some("2026-03-02"));
        assert_eq!(
            parse_date(" 2026-03-02T00:00:00Z ").as_deref(),
            Some("2026-03-02")
        );
        assert_eq!(parse_date("2026-02-30"), None);
        assert_eq!(parse_date("2026-3-2"), None);
        assert_eq!(parse_date("02/03/2026"), None);
        assert_eq!(parse_date("2026-03-02garbage"), None);
        assert_eq!(parse_date("é"), None);
    }

    #[test]
    fn cv_links_must_be_public_https() {
        assert_eq!(
            cv_url_problem("https://files.example.com/cv.pdf?sig=1"),
            None
        );
        for bad in [
            "http://files.example.com/cv.pdf",
            "file:///etc/passwd",
            "https://user:pw@files.example.com/cv.pdf",
            "https://127.0.0.1/cv.pdf",
            "https://10.1.2.3/cv.pdf",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/cv.pdf",
            "https://[::ffff:10.0.0.1]/cv.pdf",
            "https://localhost/cv.pdf",
            "https://100.64.0.1/cv.pdf",
            "not a url",
        ] {
            assert!(cv_url_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn cv_links_from_pinpoint_are_accepted_as_pinpoint_is() {
        let rules = CvLinks::new(Some("http://127.0.0.1:4010/api/v1"), false);
        assert_eq!(rules.problem("http://127.0.0.1:4010/files/cv.pdf"), None);
        for bad in [
            "http://127.0.0.1:4011/files/cv.pdf",
            "https://10.0.0.1/cv.pdf",
            "javascript:alert(document.cookie)",
            "data:application/pdf;base64,JVBERi0=",
            "http://files.example.com/cv.pdf",
            "https://u:p@127.0.0.1:4010/files/cv.pdf",
        ] {
            assert!(rules.problem(bad).is_some(), "{bad}");
        }
        let open = CvLinks::new(None, true);
        assert_eq!(open.problem("http://10.0.0.1/cv.pdf"), None);
        assert!(open.problem("javascript:alert(1)").is_some());
        assert!(open
            .problem("https://u:p@files.example.com/cv.pdf")
            .is_some());
    }
}
