//! What the person in Pinpoint is told when HiBob refuses or cannot be used: in one or two
//! sentences, with the field to fix when HiBob names one.

use super::{form::Plan, meta::EXPORT};
use crate::{
    hibob::HibobError,
    pinpoint::plugin_contract::{ActionResult, FieldError, Toast},
};

/// What a user or admin should do about a HiBob failure, in one or two sentences.
pub fn explain_hibob_error(e: &HibobError) -> String {
    match e {
        HibobError::Unauthorized { status: 401, .. } => "HiBob refused the console's service user (HTTP 401). Ask an admin to check the HiBob credentials (service user ID and token) under Settings in the console.".to_owned(),
        HibobError::Unauthorized { status, message } => format!("HiBob refused the request (HTTP {status}): {message}. Ask an admin to give the console's service user the needed permissions in Bob."),
        HibobError::RateLimited { wait } => format!("HiBob is rate limiting the console right now. Try again in {} seconds.", wait.as_secs().max(1)),
        HibobError::Server { status, .. } => format!("HiBob had a server error (HTTP {status}). Try again in a minute; submitting again will not create a second employee."),
        HibobError::Timeout => "HiBob did not answer in time. Try again in a minute; submitting again will not create a second employee.".to_owned(),
        HibobError::Transport(detail) => format!("HiBob could not be reached ({detail}). Try again later, or ask an admin to check the HiBob API base URL under Settings."),
        HibobError::Destination(detail) => format!("{detail}. Ask an admin to check the HiBob API base URL under Settings in the console."),
        HibobError::Decode(detail) => format!("HiBob's answer could not be read ({detail}). Ask an admin to look at this export in the console."),
        HibobError::TooLarge { limit } => format!("The file is larger than HiBob accepts ({} MB).", limit / (1024 * 1024)),
        HibobError::Rejected { message, .. } => format!("HiBob rejected the request: {message}"),
    }
}

pub(crate) fn failure_for(e: &HibobError, plan: &Plan) -> ActionResult {
    let errors = match e.field().and_then(|path| plan.key_for_path(path)) {
        Some(key) => match e {
            HibobError::Rejected { message, .. } => {
                vec![FieldError::new(key, format!("HiBob: {message}"))]
            }
            _ => Vec::new(),
        },
        None => Vec::new(),
    };
    let toast = if errors.is_empty() {
        explain_hibob_error(e)
    } else {
        "HiBob rejected the employee: correct the highlighted field and submit again.".to_owned()
    };
    ActionResult::failure(EXPORT, errors, Some(Toast::error(toast)))
}

/// Why the form or the submit cannot use HiBob right now, in words for the callout or toast.
pub(crate) struct Problem {
    pub(crate) title: &'static str,
    pub(crate) text: String,
    /// No HiBob credentials at all, as opposed to HiBob failing.
    pub(crate) unconfigured: bool,
}

impl Problem {
    pub(crate) fn not_configured() -> Self {
        Self {
            title: "HiBob is not configured",
            text: "The console has no HiBob service user yet. Ask an admin to enter the HiBob \
                   service user ID and token under Settings in the Pinpoint → HiBob console (or \
                   set HIBOB_SERVICE_USER_ID and HIBOB_SERVICE_USER_TOKEN), then open this form \
                   again."
                .to_owned(),
            unconfigured: true,
        }
    }

    pub(crate) fn from_hibob(e: &HibobError) -> Self {
        let title = match e {
            HibobError::Unauthorized { .. } => "HiBob refused the console",
            HibobError::Timeout | HibobError::Transport(_) => "HiBob cannot be reached",
            HibobError::RateLimited { .. } => "HiBob is busy",
            _ => "HiBob's lists cannot be read",
        };
        let text = match e {
            HibobError::Unauthorized { status: 403, .. } => "HiBob answered 403: the console's service user may not read company lists. Ask an admin to add it to a permission group in Bob that can read people's data and company lists.".to_owned(),
            HibobError::Timeout | HibobError::Transport(_) => format!("{} Use Test connection on the console's Settings page to check.", explain_hibob_error(e)),
            _ => explain_hibob_error(e),
        };
        Self {
            title,
            text,
            unconfigured: false,
        }
    }
}
