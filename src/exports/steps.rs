//! The steps of an export, shared by both ways in: the worker running a webhook's export and
//! the plugin's "Send to HiBob" submit. Each step records what it sent and received on the
//! export's timeline, keeps what it learnt (the employee id, the CV, the invitation) the moment
//! it is known, and is skipped when an earlier attempt already finished it, so neither a retry,
//! a resubmit nor a restart after a crash repeats one.

use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use serde_json::Value;

use crate::Db;
use crate::{
    exports::invitations::Standing,
    exports::queue::{self as export_queue, StepRecord},
    hibob::{self, DocFolder, HibobError},
    outbound::{CallLog, Exchange},
    pinpoint::{self, PinpointError},
    settings::credentials::{CredentialKey, Credentials},
};

/// A 429 asking for a wait this short is sat out inside the step: giving up would bring the
/// export (or the person clicking) back at about the same moment.
pub const SHORT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(2);

/// The longest an invitation waits for its turn before it is marked as asked; the call itself
/// waits (or gives up) by the client's own patience after that.
const MAX_TURN_WAIT: Duration = Duration::from_secs(65);

/// Why a step stopped.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("HiBob: {0}")]
    Hibob(#[from] HibobError),
    #[error("Pinpoint: {0}")]
    Pinpoint(#[from] PinpointError),
    #[error("database: {0}")]
    Store(#[from] sqlx::Error),
    #[error("{0}")]
    Settings(#[from] crate::settings::credentials::CredentialError),
    /// HiBob refuses the e-mail as taken, yet nobody with it is visible to the service user.
    #[error(
        "HiBob says the email is taken but no employee with it is visible to the service user"
    )]
    EmailInvisible,
}

/// Where one attempt's steps are written.
pub struct Recorder<'a> {
    pub db: &'a Db,
    pub export_id: i64,
    pub attempt: i64,
}

impl Recorder<'_> {
    pub async fn record(
        &self,
        step: &str,
        outcome: &str,
        detail: &str,
        log: CallLog,
        started: Instant,
    ) -> Result<(), sqlx::Error> {
        let exchanges: Vec<Exchange> = log.into_vec();
        let json = serde_json::to_string(&exchanges).unwrap_or_else(|_| "[]".to_owned());
        self.db
            .queue()
            .record_step(
                self.export_id,
                &StepRecord {
                    attempt: self.attempt,
                    step,
                    outcome,
                    detail,
                    exchanges_json: &json,
                    duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
                },
            )
            .await
    }

    pub async fn skipped(&self, step: &str, why: &str) -> Result<(), sqlx::Error> {
        self.record(step, "skipped", why, CallLog::new(), Instant::now())
            .await
    }

    /// Records the step's result either way and passes the value or the failure on.
    pub async fn step<T, E: Into<StepError> + std::fmt::Display>(
        &self,
        name: &str,
        log: CallLog,
        started: Instant,
        result: Result<T, E>,
        ok_detail: impl FnOnce(&T) -> String,
    ) -> Result<T, StepError> {
        match result {
            Ok(value) => {
                self.record(name, "ok", &ok_detail(&value), log, started)
                    .await?;
                Ok(value)
            }
            Err(e) => {
                self.record(name, "failed", &e.to_string(), log, started)
                    .await?;
                Err(e.into())
            }
        }
    }
}

/// `Some(wait)` when the call hit a short rate limit and has not been retried yet.
fn short_wait<T>(result: &Result<T, HibobError>, retried: &mut bool) -> Option<Duration> {
    match result {
        Err(HibobError::RateLimited { wait }) if !*retried && *wait <= SHORT_RATE_LIMIT_WAIT => {
            *retried = true;
            Some(*wait)
        }
        _ => None,
    }
}

/// Creates the employee, or finds the one HiBob already has with this e-mail, and keeps the id
/// the moment it is known; says whether this attempt created them.
///
/// HiBob refuses a second employee with the same e-mail, so creating first costs one call where
/// searching first costs two, and a search is made only when it can find someone: after HiBob
/// answers that the e-mail is taken, or when an earlier attempt sent the create and was cut off
/// before it saved the answer (it looks first, so as not to lean on the refusal alone).
///
/// An employee created here is kept as one of the console's own (see [`invitations`]), the only
/// ones [`invite`] invites. One found after our own create went unanswered counts as ours: HiBob
/// answers a create for a taken e-mail with a refusal, which clears the mark, so someone found
/// while the mark stands was, in all likelihood, created by that create.
pub async fn find_or_create(
    rec: &Recorder<'_>,
    hibob: &hibob::Client,
    body: &Value,
    email: &str,
) -> Result<(String, bool), StepError> {
    // what "value sent" means once the hire is watched; the first body stays, as HiBob keeps it
    rec.db.queue().keep_sent(rec.export_id, body).await?;
    if rec.db.queue().create_sent(rec.export_id).await? {
        if let Some(existing) = search(rec, hibob, email, true).await? {
            return Ok((existing, false));
        }
    }
    rec.db.queue().mark_create_sent(rec.export_id).await?;
    let started = Instant::now();
    let mut log = CallLog::new();
    let mut retried = false;
    let created = loop {
        let result = hibob.create_employee(body, &mut log).await;
        match short_wait(&result, &mut retried) {
            Some(wait) => tokio::time::sleep(wait).await,
            None => break result,
        }
    };
    match created {
        Ok(id) => {
            rec.db.invitations().created(rec.export_id, &id).await?;
            rec.record(
                "create_employee",
                "ok",
                &format!("employee {id} created"),
                log,
                started,
            )
            .await?;
            Ok((id, true))
        }
        Err(e) if e.is_email_taken() => {
            // an earlier attempt of ours whose answer was lost, or someone else; either way this
            // create made nobody, so whoever the search finds was not made by it
            rec.db.queue().clear_create_sent(rec.export_id).await?;
            rec.record("create_employee", "failed", &e.to_string(), log, started)
                .await?;
            let existing = search(rec, hibob, email, false)
                .await?
                .ok_or(StepError::EmailInvisible)?;
            Ok((existing, false))
        }
        Err(e) => {
            // a refusal means nobody was created; without an answer (or with a 5xx) HiBob may
            // have stored the employee, so the next attempt looks first
            let refused = matches!(
                e,
                HibobError::Rejected { .. }
                    | HibobError::Unauthorized { .. }
                    | HibobError::RateLimited { .. }
                    | HibobError::TooLarge { .. }
            );
            if refused {
                rec.db.queue().clear_create_sent(rec.export_id).await?;
            }
            rec.record("create_employee", "failed", &e.to_string(), log, started)
                .await?;
            Err(e.into())
        }
    }
}

/// Looks the e-mail up and keeps the id of the employee found, as one of the console's own when
/// `ours` (the one our own unanswered create made).
async fn search(
    rec: &Recorder<'_>,
    hibob: &hibob::Client,
    email: &str,
    ours: bool,
) -> Result<Option<String>, StepError> {
    let started = Instant::now();
    let mut log = CallLog::new();
    let mut retried = false;
    let found = loop {
        let result = hibob.search_by_email(email, &mut log).await;
        match short_wait(&result, &mut retried) {
            Some(wait) => tokio::time::sleep(wait).await,
            None => break result,
        }
    };
    let found = rec
        .step("search_employee", log, started, found, |f| match f {
            Some(e) => format!("employee {} already has this email", e.id),
            None => "no employee has this email yet".to_owned(),
        })
        .await?;
    match found {
        Some(existing) if ours => {
            rec.db
                .invitations()
                .created(rec.export_id, &existing.id)
                .await?;
            Ok(Some(existing.id))
        }
        Some(existing) => {
            rec.db
                .queue()
                .set_employee_id(rec.export_id, &existing.id)
                .await?;
            Ok(Some(existing.id))
        }
        None => Ok(None),
    }
}

/// A CV to attach: HiBob downloads it from the link itself; the console never fetches it.
pub struct Cv<'a> {
    pub name: &'a str,
    pub url: &'a str,
}

/// Attaches the CV to the employee's shared folder, once, and records that it did.
///
/// An earlier attempt may have uploaded it and died before recording that, and someone else's
/// employee may have it already, so the folder is listed first; one created a moment ago has no
/// documents. A service user that may not list them (403, or 404 when the module is missing)
/// skips the check; any other failure stops here, as uploading without knowing could add the CV
/// twice.
pub async fn upload_cv(
    rec: &Recorder<'_>,
    hibob: &hibob::Client,
    employee_id: &str,
    cv: &Cv<'_>,
    created_now: bool,
) -> Result<(), StepError> {
    let started = Instant::now();
    let mut log = CallLog::new();
    let listed = if created_now {
        Ok(Vec::new())
    } else {
        match hibob.document_names(employee_id, &mut log).await {
            Err(HibobError::Unauthorized { status: 403, .. }) => Ok(Vec::new()),
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            listed => listed,
        }
    };
    let existing = match listed {
        Ok(names) => names,
        Err(e) => {
            return rec
                .step("upload_cv", log, started, Err::<(), _>(e), |_| {
                    String::new()
                })
                .await;
        }
    };
    let already = existing.iter().any(|n| n == cv.name);
    let mut retried = false;
    let uploaded = loop {
        if already {
            break Ok(());
        }
        let result = hibob
            .upload_document_from_url(employee_id, DocFolder::Shared, cv.name, cv.url, &mut log)
            .await;
        match short_wait(&result, &mut retried) {
            Some(wait) => tokio::time::sleep(wait).await,
            None => break result,
        }
    };
    rec.step("upload_cv", log, started, uploaded, |_| {
        if already {
            format!("{} was already in the shared folder", cv.name)
        } else {
            format!("{} added to the shared folder", cv.name)
        }
    })
    .await?;
    rec.db.queue().mark_cv_uploaded(rec.export_id).await?;
    Ok(())
}

/// Records that there is no CV to attach, so a later attempt does not look again.
pub async fn no_cv(rec: &Recorder<'_>, why: &str) -> Result<(), StepError> {
    rec.skipped("upload_cv", why).await?;
    rec.db.queue().mark_cv_uploaded(rec.export_id).await?;
    Ok(())
}

/// Invites an employee this console created to the welcome wizard chosen in Settings, once per
/// employee whichever export or submit gets there first; one HiBob already had is not invited.
/// A 403 means the service user may not invite: the step is skipped with a note and the export
/// goes on. Callers hold the person's lock, so two exports of one hire do not race here; the
/// mark written before the call keeps it to one call even without the lock.
pub async fn invite(
    rec: &Recorder<'_>,
    credentials: &Credentials,
    hibob: &hibob::Client,
    employee_id: &str,
) -> Result<(), StepError> {
    let wizard = credentials
        .get(CredentialKey::HibobWelcomeWizardId)
        .await?
        .and_then(|w| w.expose_secret().trim().parse::<u64>().ok());
    let Some(wizard) = wizard else {
        return Ok(());
    };
    let started = Instant::now();
    let not_twice = "an earlier attempt asked HiBob to invite this employee and was cut off \
                     before the answer; it is not asked twice, so check the invitation in Bob";
    let skip = match rec.db.queue().invitation(rec.export_id).await? {
        export_queue::Invitation::Settled => return Ok(()),
        export_queue::Invitation::Interrupted => Some(not_twice.to_owned()),
        export_queue::Invitation::NotSent => {
            match rec.db.invitations().standing(employee_id).await? {
                Standing::NotCreatedHere => Some(format!(
                    "employee {employee_id} was found in HiBob, not created by the console, so it \
                 is not invited"
                )),
                Standing::Settled => Some(format!(
                    "employee {employee_id} was already invited (or settled) by another export of \
                 this hire"
                )),
                Standing::Interrupted => Some(not_twice.to_owned()),
                Standing::Owed => {
                    // the mark `start` writes stands for "HiBob may have been asked", so the wait
                    // for the call's turn in a spent rate-limit window comes first: an attempt
                    // cut off while it waits must not leave the employee marked as asked
                    let turn = hibob.turns().ready_in(hibob::endpoint::INVITE);
                    if !turn.is_zero() {
                        tokio::time::sleep(turn.min(MAX_TURN_WAIT)).await;
                    }
                    match rec
                        .db
                        .invitations()
                        .start(employee_id, rec.export_id)
                        .await?
                    {
                        true => None,
                        false => Some(not_twice.to_owned()),
                    }
                }
            }
        }
    };
    if let Some(why) = skip {
        rec.skipped("invite", &why).await?;
        rec.db.invitations().settle(employee_id).await?;
        rec.db.queue().mark_invited(rec.export_id).await?;
        return Ok(());
    }
    let mut log = CallLog::new();
    match hibob.invite(employee_id, wizard, &mut log).await {
        Ok(()) => {
            rec.record(
                "invite",
                "ok",
                &format!("invited to welcome wizard {wizard}"),
                log,
                started,
            )
            .await?;
        }
        Err(HibobError::Unauthorized { status: 403, .. }) => {
            rec.record(
                "invite",
                "skipped",
                "HiBob answered 403: the service user may not invite employees. Invite them \
                 by hand in Bob, or give the service user the permission",
                log,
                started,
            )
            .await?;
        }
        Err(e) => {
            // HiBob answered, so it did not invite: a later attempt may ask again. Without an
            // answer (a timeout, a dropped connection) it may have, so it is not asked twice.
            let answered = !matches!(
                e,
                HibobError::Timeout | HibobError::Transport(_) | HibobError::Decode(_)
            );
            if answered {
                rec.db.invitations().clear(employee_id).await?;
                rec.db.queue().clear_invite_started(rec.export_id).await?;
            }
            rec.step("invite", log, started, Err::<(), _>(e), |_| String::new())
                .await?;
        }
    }
    rec.db.invitations().settle(employee_id).await?;
    rec.db.queue().mark_invited(rec.export_id).await?;
    Ok(())
}

/// Tells the recruiters on the Pinpoint application where the hire went, once.
///
/// Pinpoint offers no way to look an application's comments up, so an attempt that finds an
/// earlier one's comment unanswered (a timeout, a dropped connection: it may have been posted)
/// posts again, a missing comment being worse than a repeated one, and says on the timeline that
/// the application may show it twice. An answered refusal posted nothing and clears the mark.
pub async fn comment(
    rec: &Recorder<'_>,
    pinpoint: &pinpoint::Client,
    application_id: &str,
    employee_id: &str,
) -> Result<(), StepError> {
    let started = Instant::now();
    let maybe_posted = rec.db.queue().start_comment(rec.export_id).await?;
    let mut log = CallLog::new();
    let text = format!("Exported to HiBob, employee ID {employee_id}");
    let posted = pinpoint.post_comment(application_id, &text, &mut log).await;
    if let Err(e) = &posted {
        let unanswered = matches!(
            e,
            PinpointError::Timeout | PinpointError::Transport(_) | PinpointError::Decode(_)
        );
        if !unanswered {
            rec.db.queue().clear_comment_started(rec.export_id).await?;
        }
    }
    rec.step("comment", log, started, posted, |id| match maybe_posted {
        false => format!("comment {id} added"),
        true => format!(
            "comment {id} added; an earlier attempt's comment got no answer from Pinpoint and \
             may have been posted too, so the application may show it twice"
        ),
    })
    .await?;
    rec.db.queue().mark_comment_posted(rec.export_id).await?;
    Ok(())
}
