//! The export page's "Changed since export" section: what the watch of an exported hire found
//! (see `integration::watch`), with the actions that close the loop: update HiBob, keep HiBob's
//! value, check now, and the decision about a hire that fell through.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{
    error::AppError,
    pages::{load_error, outcome_notice, when},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRow {
    pub field: String,
    pub label: String,
    pub sent: String,
    pub pinpoint: String,
    /// `None` when HiBob does not let the service user read it.
    pub hibob: Option<String>,
    pub edited_in_hibob: bool,
    /// Changed in HiBob by a person, never by the console.
    pub by_hand: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchView {
    pub watch_until: String,
    pub next_check_at: String,
    pub checked_at: Option<String>,
    pub check_error: Option<String>,
    pub changes: Vec<ChangeRow>,
    pub hired: bool,
    pub hire_note: Option<String>,
    /// (what was decided, by whom, when)
    pub decision: Option<(String, String, String)>,
    pub stopped_at: Option<String>,
    /// The decisions offered for a hire that fell through: (key, words).
    pub decisions: Vec<(String, String)>,
}

#[server(endpoint = "export_watch", output = crate::codec::JsonText)]
pub async fn export_watch(id: i64) -> Result<Option<WatchView>, AppError> {
    use crate::ssr;
    use integration::watch::{apply::DECISIONS, Route};
    ssr::require(integration::access::users::Role::Viewer).await?;
    ssr::no_store();
    let st = ssr::state()?;
    let Some(w) = st.db.watches().find(id).await? else {
        return Ok(None);
    };
    let words = |key: &str| {
        DECISIONS
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, w)| (*w).to_owned())
            .unwrap_or_else(|| key.to_owned())
    };
    Ok(Some(WatchView {
        watch_until: w.watch_until,
        next_check_at: w.next_check_at,
        checked_at: w.checked_at,
        check_error: w.check_error,
        changes: w
            .changes
            .into_iter()
            .map(|c| ChangeRow {
                by_hand: c.route == Route::ByHand,
                field: c.field,
                label: c.label,
                sent: c.sent,
                pinpoint: c.pinpoint,
                hibob: c.hibob,
                edited_in_hibob: c.edited_in_hibob,
            })
            .collect(),
        hired: w.hired,
        hire_note: w.hire_note,
        decision: match (w.decision, w.decided_by, w.decided_at) {
            (Some(d), Some(by), Some(at)) => Some((words(&d), by, at)),
            _ => None,
        },
        stopped_at: w.stopped_at,
        decisions: DECISIONS
            .iter()
            .map(|(k, w)| ((*k).to_owned(), (*w).to_owned()))
            .collect(),
    }))
}

/// Re-reads the application and the HiBob employee now.
#[server(endpoint = "check_hire", output = crate::codec::JsonText)]
pub async fn check_hire(id: i64) -> Result<String, AppError> {
    use crate::ssr;
    ssr::require(integration::access::users::Role::Operator).await?;
    let found = ssr::state()?.watcher.check(id).await?;
    let mut said = match found.changes.len() {
        0 => "Checked: HiBob is in step with Pinpoint.".to_owned(),
        1 => "Checked: one field differs.".to_owned(),
        n => format!("Checked: {n} fields differ."),
    };
    if !found.applied.is_empty() {
        said.push_str(&format!(
            " Sent to HiBob by the automatic policy: {}.",
            found.applied.join(", ")
        ));
    }
    if !found.hired {
        said.push_str(" Pinpoint no longer shows the application as hired.");
    }
    Ok(said)
}

/// Sends one change (or, with no field, every open one) to HiBob. `overwrite` must be "yes" to
/// replace a value someone changed in HiBob.
#[server(endpoint = "update_hibob", output = crate::codec::JsonText)]
pub async fn update_hibob(
    id: i64,
    #[server(default)] field: String,
    #[server(default)] overwrite: String,
) -> Result<String, AppError> {
    use crate::ssr;
    let user = ssr::require(integration::access::users::Role::Operator).await?;
    let st = ssr::state()?;
    let actor = ssr::actor(&user).await;
    let fields: Vec<String> = Some(field.trim().to_owned())
        .filter(|f| !f.is_empty())
        .into_iter()
        .collect();
    let done = st
        .watcher
        .apply(&actor, id, &fields, overwrite == "yes")
        .await?;
    let mut said = format!("HiBob updated: {}.", done.summary);
    if let Some(problem) = done.comment_problem {
        said.push_str(&format!(
            " The comment on the Pinpoint application could not be added: {problem}."
        ));
    } else {
        said.push_str(" The Pinpoint application has a comment saying so.");
    }
    Ok(said)
}

/// Keeps HiBob's value of one field: the change is set aside and not raised again.
#[server(endpoint = "keep_hibob_value", output = crate::codec::JsonText)]
pub async fn keep_hibob_value(id: i64, field: String) -> Result<String, AppError> {
    use crate::ssr;
    let user = ssr::require(integration::access::users::Role::Operator).await?;
    let st = ssr::state()?;
    let actor = ssr::actor(&user).await;
    st.watcher.keep_hibob(&actor, id, &field).await?;
    Ok("Kept HiBob's value; this change will not be raised again.".to_owned())
}

#[server(endpoint = "decide_fall_through", output = crate::codec::JsonText)]
pub async fn decide_fall_through(id: i64, decision: String) -> Result<String, AppError> {
    use crate::ssr;
    let user = ssr::require(integration::access::users::Role::Operator).await?;
    let st = ssr::state()?;
    let actor = ssr::actor(&user).await;
    st.watcher.decide(&actor, id, &decision).await?;
    Ok("Decision recorded.".to_owned())
}

#[component]
pub fn ChangesSinceExport(id: i64, can_operate: bool) -> impl IntoView {
    let check = ServerAction::<CheckHire>::new();
    let update = ServerAction::<UpdateHibob>::new();
    let keep = ServerAction::<KeepHibobValue>::new();
    let decide = ServerAction::<DecideFallThrough>::new();
    // the background check and other people's actions, without reloading the whole page
    let live = crate::live::use_live(move |n| n.touches_watch(id));
    // Drawn and fetched by the browser once the page is live. The component is made inside the
    // export page's own loading: a resource of its own there runs outside the request on the
    // server, and a nested transition hydrates against HTML the server may have streamed
    // differently, which stops the page from going live.
    let live_page = crate::pages::interactive();
    let data = LocalResource::new(move || {
        let _ = (
            live.get(),
            check.version().get(),
            update.version().get(),
            keep.version().get(),
            decide.version().get(),
        );
        export_watch(id)
    });
    let answers = move || {
        [
            check.value().get(),
            update.value().get(),
            keep.value().get(),
            decide.value().get(),
        ]
        .into_iter()
        .flatten()
        .map(outcome_notice)
        .collect_view()
    };
    move || {
        live_page.get().then(|| {
            view! {
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => load_error(e),
                        Ok(None) => ().into_any(),
                        Ok(Some(w)) => view! {
                            <section class="panel changes" aria-labelledby="changes-heading">
                                <h2 id="changes-heading">"Changed since export"</h2>
                                {summary_line(&w)}
                                {fall_through(&w, id, can_operate, decide)}
                                {changes_table(&w, id, can_operate, update, keep)}
                                {(can_operate && w.stopped_at.is_none()).then(|| view! {
                                    <ActionForm action=check attr:class="inline">
                                        <input type="hidden" name="id" value=id.to_string() />
                                        <button type="submit" class="secondary">"Check now"</button>
                                    </ActionForm>
                                })}
                                {answers}
                            </section>
                        }.into_any(),
                    }
                })}
            </Transition>
            }
        })
    }
}

fn summary_line(w: &WatchView) -> AnyView {
    let checked = match &w.checked_at {
        Some(at) => format!("Last compared {}", when(at)),
        None => "Not compared yet".to_owned(),
    };
    match &w.stopped_at {
        Some(at) => view! {
            <p class="muted">{format!("Watching ended {} (past its last day); the copies it kept were dropped.", when(at))}</p>
        }.into_any(),
        None => view! {
            <p class="muted">
                {format!(
                    "Pinpoint is compared with HiBob until {}. {checked}; next comparison {}.",
                    w.watch_until,
                    when(&w.next_check_at)
                )}
            </p>
            {w.check_error.clone().map(|e| view! {
                <p class="notice error" role="status">{format!("The last comparison could not finish: {e}")}</p>
            })}
        }.into_any(),
    }
}

fn fall_through(
    w: &WatchView,
    id: i64,
    can_operate: bool,
    decide: ServerAction<DecideFallThrough>,
) -> Option<AnyView> {
    if w.hired {
        return None;
    }
    let note = w.hire_note.clone().unwrap_or_default();
    let options = w
        .decisions
        .iter()
        .enumerate()
        .map(|(i, (key, words))| {
            view! {
                <label>
                    <input type="radio" name="decision" value=key.clone() required=true checked=i == 0 />
                    " " {words.clone()}
                </label>
            }
        })
        .collect_view();
    Some(match &w.decision {
        Some((words, by, at)) => view! {
            <p class="notice" role="status">
                {format!("No longer hired in Pinpoint: {note}. Decided by {by} {}: {words}.", when(at))}
            </p>
        }.into_any(),
        None => view! {
            <div class="notice error fell-through" role="status">
                <p><strong>"No longer hired in Pinpoint. "</strong>{note}"."</p>
                <p>"The employee is still in HiBob. The console does not withdraw or terminate anyone: decide here once it is dealt with."</p>
                {can_operate.then(|| view! {
                    <ActionForm action=decide attr:class="inline">
                        <input type="hidden" name="id" value=id.to_string() />
                        <fieldset class="choice">
                            <legend>"Decision"</legend>
                            {options}
                        </fieldset>
                        <button type="submit" class="primary">"Record decision"</button>
                    </ActionForm>
                })}
            </div>
        }.into_any(),
    })
}

fn changes_table(
    w: &WatchView,
    id: i64,
    can_operate: bool,
    update: ServerAction<UpdateHibob>,
    keep: ServerAction<KeepHibobValue>,
) -> AnyView {
    if w.changes.is_empty() {
        // before the first comparison there is nothing to say either way
        let compared = w.stopped_at.is_none() && w.checked_at.is_some() && w.check_error.is_none();
        return compared
            .then(|| view! { <p>"No changes: HiBob holds what Pinpoint says now."</p> })
            .into_any();
    }
    view! {
        <div class="table-wrap" role="region" aria-label="Changes" tabindex="0">
            <table class="data changes-table">
                <thead>
                    <tr>
                        <th scope="col">"Field"</th>
                        <th scope="col">"Sent"</th>
                        <th scope="col">"In Pinpoint now"</th>
                        <th scope="col">"In HiBob now"</th>
                        {can_operate.then(|| view! { <th scope="col">"Action"</th> })}
                    </tr>
                </thead>
                <tbody>
                    {w.changes.iter().map(|c| {
                        let label = if c.label.is_empty() { c.field.clone() } else { c.label.clone() };
                        let hibob = c.hibob.clone().unwrap_or_else(|| "not readable".to_owned());
                        view! {
                            <tr class:edited=c.edited_in_hibob>
                                <th scope="row">{label}<br /><code class="muted">{c.field.clone()}</code></th>
                                <td data-label="Sent">{dash(&c.sent)}</td>
                                <td data-label="In Pinpoint now"><strong>{dash(&c.pinpoint)}</strong></td>
                                <td data-label="In HiBob now">
                                    {dash(&hibob)}
                                    {c.edited_in_hibob.then(|| view! { <br /><span class="badge warn">"changed in HiBob by hand"</span> })}
                                </td>
                                {can_operate.then(|| row_actions(c, id, update, keep))}
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }.into_any()
}

fn row_actions(
    c: &ChangeRow,
    id: i64,
    update: ServerAction<UpdateHibob>,
    keep: ServerAction<KeepHibobValue>,
) -> AnyView {
    let needs_confirmation = c.edited_in_hibob || c.hibob.is_none();
    let (field, field_again) = (c.field.clone(), c.field.clone());
    view! {
        <td class="actions">
            {if c.by_hand {
                view! { <span class="muted">"Change it in HiBob by hand (the work e-mail and custom work-history columns)."</span> }.into_any()
            } else {
                view! {
                    <ActionForm action=update attr:class="inline">
                        <input type="hidden" name="id" value=id.to_string() />
                        <input type="hidden" name="field" value=field />
                        {needs_confirmation.then(|| view! {
                            <label class="confirm">
                                <input type="checkbox" name="overwrite" value="yes" required=true />
                                " Replace HiBob's value"
                            </label>
                        })}
                        <button type="submit" class="primary">"Update HiBob"</button>
                    </ActionForm>
                }.into_any()
            }}
            <ActionForm action=keep attr:class="inline">
                <input type="hidden" name="id" value=id.to_string() />
                <input type="hidden" name="field" value=field_again />
                <button type="submit" class="secondary">"Keep HiBob's value"</button>
            </ActionForm>
        </td>
    }.into_any()
}

fn dash(text: &str) -> String {
    if text.trim().is_empty() {
        "—".to_owned()
    } else {
        text.to_owned()
    }
}
