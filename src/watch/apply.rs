//! Acting on a watched hire's changes: sending them to HiBob as a recorded step, setting one
//! aside (HiBob's value stands), and deciding about a hire that fell through. Each is audited,
//! and an update is told to the Pinpoint application as a comment.

use std::time::Instant;

use serde_json::Value;

use super::{check::Watcher, store, Change, Route, Settled, WatchError};
use crate::{
    access::audit::Actor, exports::steps::Recorder, hibob::HibobError, live::Change as Notice,
    outbound::CallLog, pinpoint,
};

/// What an update did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    /// The fields now in step in HiBob.
    pub fields: Vec<String>,
    /// In words, for the person and the comment.
    pub summary: String,
    /// Chosen fields that are changed in HiBob by hand (see the module's decisions).
    pub by_hand: Vec<String>,
    /// Why the comment on the Pinpoint application could not be added, if it could not.
    pub comment_problem: Option<String>,
}

/// The decisions a person can record about a hire that fell through.
pub const DECISIONS: [(&str, &str); 2] = [
    (
        "handled_in_hibob",
        "dealt with in HiBob (withdrawn or terminated there)",
    ),
    (
        "going_ahead",
        "the hire goes ahead; Pinpoint will be corrected",
    ),
];

impl Watcher {
    /// Sends the chosen changes (all open ones when `fields` is empty) to HiBob. A change whose
    /// value someone edited in HiBob, or that HiBob does not let the console read, goes only with
    /// `overwrite`.
    pub async fn apply(
        &self,
        actor: &Actor,
        export_id: i64,
        fields: &[String],
        overwrite: bool,
    ) -> Result<Applied, WatchError> {
        // a person's click and the automatic policy take turns, and the second finds the change
        // settled instead of sending it again
        let employee = self.watch(export_id).await?.employee_id;
        let _turn = self
            .mappings
            .gateway()
            .employee_lock(&format!("hibob employee {employee}"))
            .await;
        let watch = self.watch(export_id).await?;
        let chosen: Vec<&Change> = watch
            .changes
            .iter()
            .filter(|c| fields.is_empty() || fields.iter().any(|f| f.trim() == c.field))
            .collect();
        if chosen.is_empty() {
            return Err(WatchError::Refused(
                "There is no open change of that field: it was settled meanwhile. Check again \
                 to see what differs now."
                    .into(),
            ));
        }
        let (by_hand, to_send): (Vec<&Change>, Vec<&Change>) =
            chosen.into_iter().partition(|c| c.route == Route::ByHand);
        if let Some(c) = to_send.iter().find(|c| !c.safe_to_apply()) {
            if !overwrite {
                let held = match &c.hibob {
                    Some(v) => format!(
                        "HiBob holds \"{v}\", not what the export sent (\"{}\"): someone changed \
                         it in HiBob",
                        c.sent
                    ),
                    None => "HiBob does not let the service user read it, so a change made \
                             there cannot be ruled out"
                        .to_owned(),
                };
                return Err(WatchError::Refused(format!(
                    "{}: {held}. Confirm that Pinpoint's value should replace it.",
                    label(c)
                )));
            }
        }
        if to_send.is_empty() {
            return Err(WatchError::Refused(format!(
                "{} is changed in HiBob by hand: {}.",
                by_hand
                    .iter()
                    .map(|c| label(c))
                    .collect::<Vec<_>>()
                    .join(", "),
                "the work e-mail and custom work-history columns are not changed by the console"
            )));
        }
        let export =
            self.db.queue().find(export_id).await?.ok_or_else(|| {
                WatchError::NotWatched(format!("There is no export {export_id}."))
            })?;
        let rec = Recorder {
            db: &self.db,
            export_id,
            attempt: export.attempts,
        };
        let hibob = self.hibob().await?;
        let reason = format!(
            "Changed in Pinpoint after the hire; sent by {}",
            actor.email
        );
        let mut sent_now: Vec<&Change> = Vec::new();
        let (dates, rest): (Vec<&Change>, Vec<&Change>) = to_send
            .into_iter()
            .partition(|c| c.route == Route::StartDate);
        let (work, others): (Vec<&Change>, Vec<&Change>) =
            rest.into_iter().partition(|c| c.route == Route::WorkEntry);
        for c in dates {
            let started = Instant::now();
            let mut log = CallLog::new();
            let result = hibob
                .set_start_date(&watch.employee_id, &c.pinpoint, &reason, &mut log)
                .await;
            self.settle_step(&rec, log, started, result, &[c], &sent_now)
                .await?;
            sent_now.push(c);
        }
        if !others.is_empty() {
            let started = Instant::now();
            let mut log = CallLog::new();
            let body = super::update_body(&others);
            let result = hibob
                .update_employee(&watch.employee_id, &body, &mut log)
                .await;
            self.settle_step(&rec, log, started, result, &others, &sent_now)
                .await?;
            sent_now.extend(others);
        }
        if !work.is_empty() {
            let started = Instant::now();
            let mut log = CallLog::new();
            let result = update_work(&hibob, &watch, &work, &reason, &mut log).await;
            self.settle_step(&rec, log, started, result, &work, &sent_now)
                .await?;
            sent_now.extend(work);
        }
        let summary = super::summary(&sent_now.iter().map(|c| (*c).clone()).collect::<Vec<_>>());
        self.record(
            export_id,
            &watch,
            &sent_now,
            actor,
            "export.hibob_updated",
            &format!("HiBob updated: {summary}"),
        )
        .await?;
        let comment_problem = self
            .comment(&rec, &watch.application_id, &summary, actor)
            .await;
        Ok(Applied {
            fields: sent_now.iter().map(|c| c.field.clone()).collect(),
            summary,
            by_hand: by_hand.iter().map(|c| c.field.clone()).collect(),
            comment_problem,
        })
    }

    /// Records one update call on the export's timeline; a refusal ends the update there, with
    /// what was already sent kept.
    async fn settle_step(
        &self,
        rec: &Recorder<'_>,
        log: CallLog,
        started: Instant,
        result: Result<(), HibobError>,
        these: &[&Change],
        before: &[&Change],
    ) -> Result<(), WatchError> {
        let what = super::summary(&these.iter().map(|c| (*c).clone()).collect::<Vec<_>>());
        match result {
            Ok(()) => {
                rec.record("update_hibob", "ok", &what, log, started)
                    .await?;
                Ok(())
            }
            Err(e) => {
                rec.record(
                    "update_hibob",
                    "failed",
                    &format!("{what}: {e}"),
                    log,
                    started,
                )
                .await?;
                let done = if before.is_empty() {
                    String::new()
                } else {
                    format!(
                        " ({} was sent before it and stays)",
                        before
                            .iter()
                            .map(|c| label(c))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                Err(WatchError::Unavailable(format!(
                    "HiBob did not take the change: {e}{done}"
                )))
            }
        }
    }

    /// Keeps the values now in HiBob for `changes`: the baseline and what counts as sent move
    /// to them, so the same change is not raised again.
    async fn record(
        &self,
        export_id: i64,
        watch: &store::Watch,
        settled: &[&Change],
        actor: &Actor,
        action: &str,
        detail: &str,
    ) -> Result<(), WatchError> {
        let mut baseline = watch.baseline.clone().unwrap_or(Value::Null);
        let mut sent = self
            .db
            .queue()
            .sent_body(export_id)
            .await?
            .unwrap_or(Value::Null);
        for c in settled {
            baseline = super::with_value(&baseline, &c.field, c.value.clone());
            if action == "export.hibob_updated" {
                sent = super::with_value(&sent, &c.field, c.value.clone());
            }
        }
        let left: Vec<Change> = watch
            .changes
            .iter()
            .filter(|c| !settled.iter().any(|s| s.field == c.field))
            .cloned()
            .collect();
        let moved_start = if action == "export.hibob_updated" {
            settled
                .iter()
                .find(|c| c.route == Route::StartDate)
                .map(|c| c.pinpoint.as_str())
        } else {
            None
        };
        self.db
            .watches()
            .settle(
                export_id,
                &Settled {
                    baseline: &baseline,
                    left: &left,
                    sent: &sent,
                    moved_start,
                    actor,
                    action,
                    detail,
                },
            )
            .await?;
        self.changes.publish(Notice::Watch { id: export_id });
        Ok(())
    }

    /// Tells the Pinpoint application what was changed in HiBob; a failure is said, not fatal.
    async fn comment(
        &self,
        rec: &Recorder<'_>,
        application_id: &str,
        summary: &str,
        actor: &Actor,
    ) -> Option<String> {
        let credentials = self.mappings.gateway().credentials();
        let client = match pinpoint::Client::from_credentials(credentials).await {
            Ok(Some(client)) => client,
            Ok(None) => return Some("Pinpoint is not configured".into()),
            Err(e) => return Some(e.to_string()),
        };
        let client = match self.timeout {
            Some(t) => match client.with_timeout(t) {
                Ok(c) => c,
                Err(e) => return Some(e.to_string()),
            },
            None => client,
        };
        let text = format!(
            "Updated in HiBob on {} ({}): {summary}",
            chrono::Utc::now().date_naive(),
            actor.email
        );
        let started = Instant::now();
        let mut log = CallLog::new();
        let posted = client.post_comment(application_id, &text, &mut log).await;
        let problem = posted.as_ref().err().map(|e| e.to_string());
        let _ = rec
            .step("comment_update", log, started, posted, |id| {
                format!("comment {id} added: {text}")
            })
            .await;
        problem
    }

    /// Sets a change aside: HiBob's value stands, and the same change is not raised again.
    pub async fn keep_hibob(
        &self,
        actor: &Actor,
        export_id: i64,
        field: &str,
    ) -> Result<(), WatchError> {
        let watch = self.watch(export_id).await?;
        let Some(change) = watch.changes.iter().find(|c| c.field == field.trim()) else {
            return Err(WatchError::Refused(
                "There is no open change of that field: it was settled meanwhile.".into(),
            ));
        };
        let detail = format!(
            "kept HiBob's {} (\"{}\") instead of Pinpoint's \"{}\"",
            label(change),
            change.hibob.as_deref().unwrap_or("not readable"),
            change.pinpoint
        );
        self.record(
            export_id,
            &watch,
            &[change],
            actor,
            "export.change_set_aside",
            &detail,
        )
        .await
    }

    /// Records what a person decided about a hire that is no longer hired in Pinpoint.
    pub async fn decide(
        &self,
        actor: &Actor,
        export_id: i64,
        decision: &str,
    ) -> Result<(), WatchError> {
        let Some((key, words)) = DECISIONS.iter().find(|(k, _)| *k == decision.trim()) else {
            return Err(WatchError::Refused(
                "Choose one of the decisions offered.".into(),
            ));
        };
        if !self
            .db
            .watches()
            .decide(export_id, key, actor, words)
            .await?
        {
            return Err(WatchError::Refused(
                "This hire is not flagged as fallen through (a later check may have found it \
                 hired again)."
                    .into(),
            ));
        }
        self.changes.publish(Notice::Watch { id: export_id });
        Ok(())
    }

    /// Asks for a check at the next turn.
    pub async fn check_soon(&self, export_id: i64) -> Result<bool, WatchError> {
        Ok(self.db.watches().check_soon(export_id).await?)
    }
}

/// Writes the work-history entry in force at the start back with `changes` in it.
async fn update_work(
    hibob: &crate::hibob::Client,
    watch: &store::Watch,
    changes: &[&Change],
    reason: &str,
    log: &mut CallLog,
) -> Result<(), HibobError> {
    let entries = hibob.work_entries(&watch.employee_id, log).await?;
    let entry = super::entry_in_force(&entries, watch.start_date.as_deref()).ok_or_else(|| {
        HibobError::Decode("HiBob lists no work-history entry for the employee".into())
    })?;
    let (id, body) = super::work_entry_body(entry, changes, reason).ok_or_else(|| {
        HibobError::Decode("the work-history entry has no id or effective date".into())
    })?;
    hibob
        .update_work_entry(&watch.employee_id, id, &body, log)
        .await
}

fn label(c: &Change) -> &str {
    if c.label.is_empty() {
        &c.field
    } else {
        &c.label
    }
}
