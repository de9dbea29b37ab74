//! What a plugin submit works out before it takes its export row and the person's lock: the body
//! HiBob would be sent, or why it cannot be sent. Both are keyed by the e-mail in that body, so it
//! must be known first (a form that left the e-mail blank has it filled from the mapping).

use crate::{
    exports::{plugin_attempt::PluginAttempt, queue::Status},
    hibob,
    mapping::EmployeeDraft,
    pinpoint::plugin_contract::{ActionResult, FileRef, PluginRequest},
    plugin::checks::valid_email,
    plugin::form::{Plan, F_EMAIL},
};

use super::request::BadRequest;

/// What a submit works out before it takes its row and the person's lock.
pub(super) struct Prepared {
    /// The form's texts as read against the mapping in force, when it got that far.
    pub read: Option<Read>,
    pub next: Result<Box<Ready>, Refusal>,
}

impl Prepared {
    pub fn refused(
        step: &'static str,
        text: String,
        answer: Result<ActionResult, BadRequest>,
    ) -> Self {
        Self {
            read: None,
            next: Err(Refusal {
                step,
                detail: text.clone(),
                error: text,
                answer,
            }),
        }
    }

    /// The e-mail the row and the lock are keyed by, lower-cased: the one HiBob is sent, else the
    /// one the form's texts carry, else the form's own.
    pub fn email(&self, req: &PluginRequest) -> Option<String> {
        let sent = self
            .next
            .as_ref()
            .ok()
            .map(|ready| ready.draft.email.clone());
        sent.or_else(|| self.read.as_ref().and_then(|r| r.email.clone()))
            .or_else(|| req.form_str(F_EMAIL))
            .map(|e| e.trim().to_lowercase())
            .filter(|e| valid_email(e))
    }
}

/// The mapping version and who the candidate is, by the texts a submit sends.
pub(super) struct Read {
    pub version: i64,
    pub name: Option<String>,
    pub email: Option<String>,
    pub start_date: Option<String>,
}

/// A submit stopped before anything reached HiBob: the step to record, the export's error and
/// Pinpoint's answer.
pub(super) struct Refusal {
    pub step: &'static str,
    pub detail: String,
    pub error: String,
    pub answer: Result<ActionResult, BadRequest>,
}

/// A submit ready to go to HiBob.
pub(super) struct Ready {
    pub client: hibob::Client,
    pub plan: Plan,
    pub draft: EmployeeDraft,
    pub cv: Option<FileRef>,
    /// What the timeline's "validate" step says.
    pub detail: String,
}

/// How a submit ended: the export's status and error, and what Pinpoint is answered.
pub(super) struct End {
    pub status: Status,
    pub error: Option<String>,
    pub employee_id: Option<String>,
    pub answer: Result<ActionResult, BadRequest>,
}

impl End {
    pub fn attention(error: impl Into<String>, answer: Result<ActionResult, BadRequest>) -> Self {
        Self {
            status: Status::NeedsAttention,
            error: Some(error.into()),
            employee_id: None,
            answer,
        }
    }

    /// A submit refused before anything reached HiBob leaves an earlier success standing: the
    /// employee is in HiBob whatever this resubmit got wrong.
    pub fn refused(
        attempt: &PluginAttempt,
        error: impl Into<String>,
        answer: Result<ActionResult, BadRequest>,
    ) -> Self {
        let exported = attempt.previous_status.as_deref() == Some(Status::Succeeded.as_str())
            && attempt.hibob_employee_id.is_some();
        if exported {
            Self {
                status: Status::Succeeded,
                error: None,
                employee_id: attempt.hibob_employee_id.clone(),
                answer,
            }
        } else {
            Self::attention(error, answer)
        }
    }
}
