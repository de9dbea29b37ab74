use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

use crate::{
    auth::current_me,
    error::AppError,
    pages::{load_error, status_badge, when, FormResult},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub at: String,
    pub title: String,
    pub outcome: String,
    pub detail: String,
    pub duration_ms: Option<i64>,
    /// The calls the step made, pretty-printed JSON (bodies redacted, no headers).
    pub exchanges: Option<String>,
    /// The employee body the step built or sent, pretty-printed: (what it is, the JSON). What
    /// was sent is shown open; what was built (the same body, when it was sent) folded.
    pub body: Option<(String, String)>,
    pub body_sent: bool,
    /// Where the entry is told in full (a webhook delivery's page).
    pub link: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportView {
    pub id: i64,
    pub source: String,
    pub status: String,
    pub application_id: String,
    pub candidate: String,
    pub email: String,
    pub start_date: String,
    pub employee_id: String,
    pub attempts: i64,
    pub max_attempts: i64,
    /// "2 of 8", or after a retry "3 in all; 1 of 8 since the last retry".
    pub attempts_text: String,
    pub next_attempt_at: String,
    pub last_error: String,
    pub created_at: String,
    pub retryable: bool,
    pub timeline: Vec<TimelineEntry>,
    /// The mapping version its body was built with, if it got that far.
    pub mapping_version: Option<i64>,
    pub current_mapping: i64,
    /// When an admin erased the candidate's personal data, if they did.
    pub erased_at: Option<String>,
    /// Who resolved it, when, and why: (at, by, note).
    pub resolution: Option<(String, String, String)>,
    /// It stopped because the mapping could not build the employee: the fix is in Mappings.
    pub mapping_failed: bool,
}

/// A recorded answer whose body is JSON, shown as JSON rather than as one escaped string.
#[cfg(feature = "ssr")]
fn readable_exchanges(stored: &str) -> Option<String> {
    let mut calls = serde_json::from_str::<serde_json::Value>(stored).ok()?;
    let list = calls.as_array_mut().filter(|a| !a.is_empty())?;
    for call in list.iter_mut() {
        let Some(body) = call.get_mut("response_body") else {
            continue;
        };
        let parsed = body
            .as_str()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
            .filter(|v| v.is_object() || v.is_array());
        if let Some(parsed) = parsed {
            *body = parsed;
        }
    }
    serde_json::to_string_pretty(&calls).ok()
}

/// Audit actions shown on an export's timeline, in words.
#[cfg(feature = "ssr")]
fn audit_title(action: &str, actor: &str) -> Option<String> {
    Some(match action {
        "export.retried" => format!("Retried by {actor}"),
        "export.resolved" => format!("Resolved by {actor}"),
        "candidate.erased" => format!("Personal data erased by {actor}"),
        "export.hibob_updated" => format!("HiBob updated by {actor}"),
        "export.change_set_aside" => format!("HiBob's value kept by {actor}"),
        "export.fall_through_decided" => format!("Fall-through decided by {actor}"),
        _ => return None,
    })
}

/// A step of an attempt in words.
pub fn step_title(step: &str) -> String {
    match step {
        "fetch_application" => "Fetch the application from Pinpoint".into(),
        "map" => "Build the HiBob employee".into(),
        "search_employee" => "Look for the employee in HiBob".into(),
        "create_employee" => "Create the employee in HiBob".into(),
        "upload_cv" => "Upload the CV to HiBob".into(),
        "invite" => "Invite to the HiBob welcome wizard".into(),
        "comment" => "Comment on the Pinpoint application".into(),
        "update_hibob" => "Update the employee in HiBob (changed in Pinpoint)".into(),
        "comment_update" => "Tell the Pinpoint application about the update".into(),
        other => other.replace('_', " "),
    }
}

#[server(endpoint = "export", output = crate::codec::JsonText)]
pub async fn get_export(id: i64) -> Result<ExportView, AppError> {
    use crate::{error::fail, ssr};

    ssr::require(integration::access::users::Role::Viewer).await?;
    ssr::no_store();
    let db = ssr::state()?.db;
    let export = db
        .queue()
        .find(id)
        .await?
        .ok_or_else(|| fail(AppError::Invalid(format!("There is no export {id}."))))?;
    let steps = db.queue().steps(id).await?;
    let deliveries = db.webhooks().for_export(id).await?;
    let mut timeline: Vec<TimelineEntry> = deliveries
        .into_iter()
        .map(|d| TimelineEntry {
            at: d.received_at,
            title: format!(
                "Webhook {} received (delivery {})",
                d.event.unwrap_or_default(),
                d.id
            ),
            outcome: d.outcome,
            detail: d.reason,
            duration_ms: None,
            exchanges: None,
            body: None,
            body_sent: false,
            link: Some(format!("/webhooks/{}", d.id)),
        })
        .collect();
    let mapping_failed = export.status == "needs_attention"
        && steps
            .iter()
            .rev()
            .find(|s| s.outcome == "failed")
            .is_some_and(|s| s.step == "map");
    // numbered as they happened, across retries
    let numbers = crate::pages::export_timeline::attempt_numbers(
        &steps.iter().map(|s| s.attempt).collect::<Vec<_>>(),
    );
    timeline.extend(steps.into_iter().zip(numbers).map(|(s, number)| {
        let built = crate::pages::export_timeline::employee_body(
            &s.step,
            &s.outcome,
            &s.detail,
            &s.exchanges,
        );
        let body_sent = s.step == "create_employee";
        let (body, detail) = match built {
            Some((label, json, detail)) => (Some((label, json)), detail),
            None => (None, s.detail),
        };
        TimelineEntry {
            at: s.started_at,
            title: format!("Attempt {number}: {}", step_title(&s.step)),
            outcome: s.outcome,
            detail,
            duration_ms: Some(s.duration_ms),
            exchanges: readable_exchanges(&s.exchanges),
            body,
            body_sent,
            link: None,
        }
    }));
    let actions = db.audit().for_target(&format!("export {id}"), 200).await?;
    timeline.extend(actions.into_iter().filter_map(|a| {
        let actor = a.actor_email.unwrap_or_else(|| "someone".to_owned());
        Some(TimelineEntry {
            title: audit_title(&a.action, &actor)?,
            outcome: a.action.rsplit('.').next().unwrap_or_default().to_owned(),
            at: a.at,
            detail: a.detail,
            duration_ms: None,
            exchanges: None,
            body: None,
            body_sent: false,
            link: None,
        })
    }));
    // stable: entries of the same millisecond keep their order
    timeline.sort_by(|a, b| a.at.cmp(&b.at));
    let resolution = db
        .resolutions()
        .resolution(id)
        .await?
        .map(|r| (r.at, r.by, r.note));
    let current_mapping = db.mappings().current_id().await?;
    let erased_at = db.erasure().erased_at(id).await?;
    Ok(ExportView {
        // a plugin export is finished by the worker from its Pinpoint application, if it names one
        retryable: erased_at.is_none()
            && (export.source != "plugin" || !export.pinpoint_application_id.trim().is_empty())
            && matches!(
                export.status.as_str(),
                "needs_attention" | "dead" | "resolved"
            ),
        resolution,
        mapping_failed,
        erased_at,
        mapping_version: export.mapping_version,
        current_mapping,
        id: export.id,
        source: export.source,
        status: export.status,
        application_id: export.pinpoint_application_id,
        candidate: export.candidate_name.unwrap_or_default(),
        email: export.candidate_email.unwrap_or_default(),
        start_date: export.start_date.unwrap_or_default(),
        employee_id: export.hibob_employee_id.unwrap_or_default(),
        attempts_text: integration::exports::status::attempts_in_words(
            export.attempts,
            export.earlier_attempts,
            export.max_attempts,
        ),
        attempts: export.attempts,
        max_attempts: export.max_attempts,
        next_attempt_at: export.next_attempt_at,
        last_error: export.last_error.unwrap_or_default(),
        created_at: export.created_at,
        timeline,
    })
}

#[server(endpoint = "retry_export", output = crate::codec::JsonText)]
pub async fn retry_export(
    id: i64,
    /// "original" keeps the export's mapping version; anything else uses the current one.
    #[server(default)]
    mapping: String,
) -> Result<(), AppError> {
    use crate::{
        error::{fail, internal},
        ssr,
    };
    use integration::exports::queue::{MappingChoice, QueueError};
    let user = ssr::require(integration::access::users::Role::Operator).await?;
    let st = ssr::state()?;
    let actor = ssr::actor(&user).await;
    let choice = if mapping == "original" {
        MappingChoice::Original
    } else {
        MappingChoice::Current
    };
    match st.db.queue().retry_with(&actor, id, choice).await {
        Ok(export) => {
            st.wake_worker.wake();
            st.changes.publish(integration::live::Change::Export {
                id,
                status: export.status,
            });
            Ok(())
        }
        Err(e @ (QueueError::NotFound(_) | QueueError::NotRetryable { .. })) => {
            Err(fail(AppError::Invalid(format!("Cannot retry: {e}."))))
        }
        Err(e) => Err(fail(internal(e))),
    }
}

/// Marks a stopped export resolved with a note: it needs nothing more (fixed in HiBob by hand,
/// the hire was withdrawn). Operators and admins; audited.
#[server(endpoint = "resolve_export", output = crate::codec::JsonText)]
pub async fn resolve_export(id: i64, #[server(default)] note: String) -> Result<(), AppError> {
    use crate::{
        error::{fail, internal},
        ssr,
    };
    use integration::exports::resolution::ResolveError;
    let user = ssr::require(integration::access::users::Role::Operator).await?;
    let st = ssr::state()?;
    let actor = ssr::actor(&user).await;
    match st.db.resolutions().resolve(&actor, id, &note).await {
        Ok(export) => {
            st.changes.publish(integration::live::Change::Export {
                id,
                status: export.status,
            });
            Ok(())
        }
        Err(
            e @ (ResolveError::NotFound(_) | ResolveError::NotStopped { .. } | ResolveError::Note),
        ) => Err(fail(AppError::Invalid(format!("Not resolved: {e}.")))),
        Err(e) => Err(fail(internal(e))),
    }
}

/// Erases the candidate's personal data from the console (admins only); HiBob and Pinpoint are
/// not touched. `confirmation` must be the word ERASE.
#[server(endpoint = "erase_candidate", output = crate::codec::JsonText)]
pub async fn erase_candidate(
    id: i64,
    #[server(default)] confirmation: String,
) -> Result<String, AppError> {
    use crate::{
        error::{fail, internal},
        ssr,
    };
    use integration::erasure::EraseError;
    let user = ssr::require(integration::access::users::Role::Admin).await?;
    let st = ssr::state()?;
    let actor = ssr::actor(&user).await;
    match st
        .db
        .erasure()
        .erase_candidate(&actor, id, &confirmation)
        .await
    {
        Ok(done) => {
            // open pages showing these exports (lists, search results) drop the erased names
            st.changes.publish(integration::live::Change::Resync);
            Ok(format!(
                "Erased from {} export(s), {} step records and {} webhook deliveries. HiBob and \
                 Pinpoint were not changed.",
                done.exports.len(),
                done.steps,
                done.deliveries
            ))
        }
        Err(e @ EraseError::NotConfirmed) => {
            Err(fail(AppError::Invalid(format!("Not erased: {e}."))))
        }
        Err(
            e @ (EraseError::NotFound(_)
            | EraseError::InProgress { .. }
            | EraseError::AlreadyErased(_)),
        ) => Err(fail(AppError::Invalid(format!("Cannot erase: {e}.")))),
        Err(e) => Err(fail(internal(e))),
    }
}

#[component]
pub fn ExportDetailPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").and_then(|v| v.parse::<i64>().ok());
    let retry = ServerAction::<RetryExport>::new();
    let resolve = ServerAction::<ResolveExport>::new();
    let erase = ServerAction::<EraseCandidate>::new();
    // the id is read when a notice comes, as the router may reuse this page for another export
    let live = crate::live::use_live(move |n| {
        params
            .try_with_untracked(|p| p.get("id").and_then(|v| v.parse::<i64>().ok()))
            .flatten()
            .is_some_and(|id| n.touches_export(id))
    });
    let data = Resource::new(
        move || {
            (
                id(),
                retry.version().get(),
                erase.version().get(),
                resolve.version().get(),
                live.get(),
            )
        },
        |(id, _, _, _, _)| async move {
            match id {
                Some(id) => get_export(id).await,
                None => Err(AppError::Invalid("That is not an export number.".into())),
            }
        },
    );
    view! {
        <Title text="Export" />
        <p><a href="/exports">"← All exports"</a></p>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let me = current_me().await;
                let can_retry = me.as_ref().is_some_and(|m| m.can_operate());
                let is_admin = me.as_ref().is_some_and(|m| m.is_admin());
                match data.await {
                    Err(e) => load_error(e),
                    Ok(x) => {
                        let heading = if x.candidate.is_empty() {
                            format!("Export {}", x.id)
                        } else {
                            format!("Export {}: {}", x.id, x.candidate)
                        };
                        let retryable = x.retryable && can_retry;
                        let resolvable = can_retry && matches!(x.status.as_str(), "needs_attention" | "dead");
                        let in_flight = matches!(x.status.as_str(), "queued" | "running");
                        let erasable = is_admin
                            && x.erased_at.is_none()
                            && !matches!(x.status.as_str(), "queued" | "running");
                        view! {
                            <h1>{heading}</h1>
                            <section class="panel summary">
                                <dl>
                                    <dt>"Status"</dt>
                                    <dd>{status_badge(&x.status)}</dd>
                                    <dt>"Candidate"</dt>
                                    <dd>{x.candidate.clone()} " " <span class="muted">{x.email.clone()}</span></dd>
                                    <dt>"Pinpoint application"</dt>
                                    <dd><code>{x.application_id.clone()}</code></dd>
                                    <dt>"HiBob employee"</dt>
                                    <dd><code>{if x.employee_id.is_empty() { "—".to_owned() } else { x.employee_id.clone() }}</code></dd>
                                    <dt>"Start date"</dt>
                                    <dd>{if x.start_date.is_empty() { "not known yet".to_owned() } else { x.start_date.clone() }}</dd>
                                    <dt>"Attempts"</dt>
                                    <dd data-test="attempts">{x.attempts_text.clone()}</dd>
                                    <dt>"Source"</dt>
                                    <dd>{x.source.clone()} ", created " {when(&x.created_at)}</dd>
                                    <dt>"Mapping"</dt>
                                    <dd>{match x.mapping_version {
                                        Some(v) => view! {
                                            <a href=format!("/mappings/versions/{v}")>{format!("version {v}")}</a>
                                            {(v != x.current_mapping).then(|| format!(" (version {} is in force now)", x.current_mapping))}
                                        }.into_any(),
                                        None => view! { <span class="muted">"not built yet"</span> }.into_any(),
                                    }}</dd>
                                    {(x.status == "queued")
                                        .then(|| view! { <dt>"Next attempt"</dt><dd>{when(&x.next_attempt_at)}</dd> })}
                                </dl>
                                {(!x.last_error.is_empty() && x.status != "succeeded" && x.status != "resolved")
                                    .then(|| view! { <p class="notice error" role="status">{x.last_error.clone()}</p> })}
                                {x.mapping_failed.then(|| view! {
                                    <p class="fix-link">
                                        <a class="button primary" href=format!("/mappings?candidate=export:{}#preview", x.id)>
                                            "Fix in Mappings"
                                        </a>
                                        " "
                                        <span class="muted">"opens the mapping with this candidate in the preview; then retry here."</span>
                                    </p>
                                })}
                                {x.resolution.clone().map(|(at, by, note)| view! {
                                    <p class="notice ok" role="status">
                                        {format!("Resolved by {by} ")} {when(&at)} ": " {note}
                                    </p>
                                })}
                                {retryable
                                    .then(|| {
                                        view! {
                                            <ActionForm action=retry attr:class="retry-form">
                                                <input type="hidden" name="id" value=x.id.to_string() />
                                                {match x.mapping_version.filter(|v| *v != x.current_mapping) {
                                                    Some(v) => view! {
                                                        <fieldset class="choice">
                                                            <legend>"Build the employee with"</legend>
                                                            <label><input type="radio" name="mapping" value="current" checked=true />
                                                                {format!(" the current mapping (version {})", x.current_mapping)}</label>
                                                            <label><input type="radio" name="mapping" value="original" />
                                                                {format!(" its original mapping (version {v})")}</label>
                                                            <a href=format!("/mappings/versions/{v}")>{format!("What changed since version {v}")}</a>
                                                        </fieldset>
                                                    }.into_any(),
                                                    None => view! { <input type="hidden" name="mapping" value="current" /> }.into_any(),
                                                }}
                                                // with the mapping that stopped it still in force, a retry stops
                                                // again: the fix above is the primary action then
                                                <button type="submit" class=if x.mapping_failed && x.mapping_version == Some(x.current_mapping) { "secondary" } else { "primary" }>"Retry export"</button>
                                            </ActionForm>
                                        }
                                    })}
                                // the answer to a retry matters only until the attempt it queued has run
                                {in_flight.then(|| view! {
                                    <FormResult value=move || retry.value().get() ok="Queued for another attempt." />
                                })}
                                {(resolvable && x.source == "plugin").then(|| view! {
                                    <p class="muted">
                                        "It came from Pinpoint's Send to HiBob form: a successful "
                                        "submit for this application resolves it. Or mark it resolved below."
                                    </p>
                                })}
                                {resolvable.then(|| view! {
                                    <details class="resolve">
                                        <summary>"Mark resolved without exporting"</summary>
                                        <ActionForm action=resolve attr:class="resolve-form">
                                            <input type="hidden" name="id" value=x.id.to_string() />
                                            <label>
                                                "Why it needs nothing more "
                                                <input name="note" required=true maxlength="500"
                                                    placeholder="e.g. created in HiBob by hand" />
                                            </label>
                                            " "
                                            <button type="submit" class="secondary">"Mark resolved"</button>
                                        </ActionForm>
                                        <p class="muted">"It leaves the attention lists and the audit log records who resolved it and why. Nothing is sent to HiBob."</p>
                                    </details>
                                })}
                                <FormResult value=move || resolve.value().get() ok="Resolved." />
                                {x.erased_at.clone().map(|at| view! {
                                    <p class="notice" role="status">
                                        "This candidate's personal data was erased from the console " {when(&at)} "."
                                    </p>
                                })}
                            </section>
                            {erasable.then(|| view! {
                                <section class="panel erase">
                                    <h2>"Erase this candidate's personal data"</h2>
                                    <p>
                                        "Removes the name, e-mail and start date, every step's recorded requests and "
                                        "answers, and the bodies of the webhook deliveries from this console's "
                                        "database, for this export and any other of the same application or e-mail. "
                                        "The export stays, with its status and ids. "
                                        <strong>"HiBob and Pinpoint are not touched"</strong>
                                        ": erase the employee and the application there. Backups made before "
                                        "keep the data until they are rotated out. This cannot be undone."
                                    </p>
                                    <ActionForm action=erase>
                                        <input type="hidden" name="id" value=x.id.to_string() />
                                        <label>"Type ERASE to confirm "
                                            <input name="confirmation" autocomplete="off" required=true />
                                        </label>
                                        " "
                                        <button type="submit" class="danger">"Erase personal data"</button>
                                    </ActionForm>
                                </section>
                            })}
                            {move || erase.value().get().map(crate::pages::outcome_notice)}
                            {(x.status == "succeeded" && x.erased_at.is_none()).then(|| view! {
                                <crate::pages::export_changes::ChangesSinceExport id=x.id can_operate=can_retry />
                            })}
                            <h2>"Timeline"</h2>
                            <ol class="timeline">
                                {x
                                    .timeline
                                    .into_iter()
                                    .map(|t| {
                                        view! {
                                            <li class=format!("entry outcome-{}", t.outcome)>
                                                <div class="entry-head">
                                                    <strong>{match t.link {
                                                        Some(href) => view! { <a href=href>{t.title}</a> }.into_any(),
                                                        None => t.title.into_any(),
                                                    }}</strong>
                                                    {status_badge(&t.outcome)}
                                                    <span class="meta">
                                                        {when(&t.at)}
                                                        {t.duration_ms.map(|d| format!(" · {d} ms"))}
                                                    </span>
                                                </div>
                                                {(!t.detail.is_empty()).then(|| view! { <p class="detail">{t.detail}</p> })}
                                                {t.body.map(|(label, json)| view! {
                                                    <details class="employee-body" open=t.body_sent>
                                                        <summary>{label.clone()}</summary>
                                                        <pre class="body" tabindex="0" aria-label=label>{json}</pre>
                                                    </details>
                                                })}
                                                {t.exchanges.map(|x| view! {
                                                    <details>
                                                        <summary>"Requests and answers"</summary>
                                                        <pre class="exchanges" tabindex="0" aria-label="Requests and answers">{x}</pre>
                                                    </details>
                                                })}
                                            </li>
                                        }
                                    })
                                    .collect_view()}
                            </ol>
                        }
                            .into_any()
                    }
                }
            })}
        </Transition>
    }
}
