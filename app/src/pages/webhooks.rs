//! The webhook log: every delivery to /webhooks/pinpoint with its outcome and cause, one
//! delivery in full, and re-processing a stored delivery.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use serde::{Deserialize, Serialize};

use crate::{
    auth::current_me,
    error::AppError,
    pages::{load_error, older_page_href, status_badge, when, DateRangeInputs},
};

pub const PAGE_SIZE: i64 = 50;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryLine {
    pub id: i64,
    pub received_at: String,
    pub outcome: String,
    pub reason: String,
    pub event: String,
    pub application_id: String,
    pub body_sha256: String,
    pub export_id: Option<i64>,
}

#[server(endpoint = "webhook_deliveries", output = crate::codec::JsonText)]
pub async fn list_deliveries(
    outcome: Option<String>,
    event: Option<String>,
    search: Option<String>,
    from: Option<String>,
    to: Option<String>,
    before: Option<i64>,
) -> Result<Vec<DeliveryLine>, AppError> {
    use crate::ssr;
    use integration::webhooks::log::DeliveryFilter;
    ssr::require(integration::access::users::Role::Viewer).await?;
    ssr::no_store();
    let filter = DeliveryFilter {
        outcome,
        event,
        search,
        received_from: from,
        received_to: to,
        before_id: before,
        limit: Some(PAGE_SIZE),
    };
    filter.check()?;
    let rows = ssr::state()?.db.webhooks().log(&filter).await?;
    Ok(rows
        .into_iter()
        .map(|d| DeliveryLine {
            id: d.id,
            received_at: d.received_at,
            outcome: d.outcome,
            reason: d.reason,
            event: d.event.unwrap_or_default(),
            application_id: d.application_id.unwrap_or_default(),
            body_sha256: d.body_sha256,
            export_id: d.export_id,
        })
        .collect())
}

/// Who may re-process a delivery, as the page explains it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReprocessRule {
    /// Its signature verified: operators and admins.
    Verified,
    /// Its signature did not verify: admins, after confirming the hire.
    Unverified,
    /// Not possible, and why.
    Refused(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryView {
    pub id: i64,
    pub received_at: String,
    pub outcome: String,
    pub reason: String,
    pub event: String,
    pub application_id: String,
    pub body_sha256: String,
    pub body: String,
    pub headers: Vec<(String, String)>,
    pub client_ip: String,
    pub export_id: Option<i64>,
    pub export_status: Option<String>,
    pub rule: ReprocessRule,
    /// The delivery this one re-processed, when it is a re-processing.
    pub reprocessed_from: Option<i64>,
    /// Its re-processings: the new delivery and the export it made or named.
    pub reprocessed_as: Vec<(i64, Option<i64>)>,
}

#[server(endpoint = "webhook_delivery", output = crate::codec::JsonText)]
pub async fn get_delivery(id: i64) -> Result<DeliveryView, AppError> {
    use crate::{error::fail, ssr};
    use integration::webhooks::log::{self as webhook_log, Eligibility};
    ssr::require(integration::access::users::Role::Viewer).await?;
    ssr::no_store();
    let d = ssr::state()?
        .db
        .webhooks()
        .delivery(id)
        .await?
        .ok_or_else(|| {
            fail(AppError::Invalid(format!(
                "There is no webhook delivery {id}."
            )))
        })?;
    Ok(DeliveryView {
        id: d.id,
        received_at: d.received_at,
        outcome: d.outcome,
        reason: d.reason,
        event: d.event.unwrap_or_default(),
        application_id: d.application_id.unwrap_or_default(),
        body_sha256: d.body_sha256,
        body: webhook_log::pretty_body(&d.body),
        headers: d.headers,
        client_ip: d.client_ip.unwrap_or_default(),
        export_id: d.export_id,
        export_status: d.export_status,
        reprocessed_from: d.reprocessed_from,
        reprocessed_as: d.reprocessed_as,
        rule: match d.reprocess {
            Eligibility::Verified => ReprocessRule::Verified,
            Eligibility::Unverified => ReprocessRule::Unverified,
            Eligibility::Refused(why) => ReprocessRule::Refused(why),
        },
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reprocessed {
    pub message: String,
    pub delivery_id: i64,
    pub export_id: Option<i64>,
}

/// Runs a stored delivery through intake again (see `integration::webhooks::log` for who may).
#[server(endpoint = "reprocess_delivery", output = crate::codec::JsonText)]
pub async fn reprocess_delivery(id: i64, confirm: Option<String>) -> Result<Reprocessed, AppError> {
    use crate::ssr;

    let user = ssr::require(integration::access::users::Role::Operator).await?;
    let st = ssr::state()?;
    let actor = ssr::actor(&user).await;
    let confirmed = confirm.is_some_and(|c| !c.is_empty());
    let report = st
        .db
        .webhooks()
        .reprocess(&actor, user.role, id, confirmed)
        .await?;
    if report.export_created || report.retried {
        st.wake_worker.wake();
    }
    Ok(Reprocessed {
        message: report.message,
        delivery_id: report.delivery_id,
        export_id: report.export_id,
    })
}

const OUTCOMES: [(&str, &str); 5] = [
    ("", "Any outcome"),
    ("accepted", "Accepted"),
    ("duplicate", "Duplicate"),
    ("ignored", "Ignored"),
    ("rejected", "Rejected"),
];

#[derive(Debug, Clone, Default, PartialEq)]
struct Filters {
    outcome: Option<String>,
    event: Option<String>,
    search: Option<String>,
    from: Option<String>,
    to: Option<String>,
    before: Option<i64>,
}

impl Filters {
    fn any(&self) -> bool {
        self.outcome.is_some()
            || self.event.is_some()
            || self.search.is_some()
            || self.from.is_some()
            || self.to.is_some()
    }
}

#[component]
pub fn WebhooksPage() -> impl IntoView {
    let query = use_query_map();
    // Read once: filters are a plain GET form and paging links load a new page, so the query
    // never changes under a rendered page (and the resource is not re-run during hydration).
    let params = move || {
        let q = query.read_untracked();
        let text = |k: &str| q.get(k).filter(|s| !s.trim().is_empty());
        Filters {
            outcome: text("outcome"),
            event: text("event"),
            search: text("search"),
            from: text("from"),
            to: text("to"),
            before: q.get("before").and_then(|b| b.parse::<i64>().ok()),
        }
    };
    let data = Resource::new(params, |f| {
        list_deliveries(f.outcome, f.event, f.search, f.from, f.to, f.before)
    });
    let current = params();
    view! {
        <Title text="Webhooks" />
        <h1>"Webhook deliveries"</h1>
        <p class="lead">"Every delivery to /webhooks/pinpoint, whatever became of it. Open one to see its headers and body, or to re-process it."</p>
        <form method="get" action="/webhooks" class="filters" role="search" aria-label="Filter deliveries">
            <div class="filter">
                <label for="webhooks-outcome">"Outcome"</label>
                <select id="webhooks-outcome" name="outcome">
                    {OUTCOMES
                        .into_iter()
                        .map(|(value, label)| {
                            let selected = current.outcome.as_deref().unwrap_or_default() == value;
                            view! { <option value=value selected=selected>{label}</option> }
                        })
                        .collect_view()}
                </select>
            </div>
            <div class="filter">
                <label for="webhooks-event">"Event"</label>
                <input
                    id="webhooks-event"
                    name="event"
                    type="text"
                    maxlength="200"
                    placeholder="application_hired"
                    value=current.event.clone().unwrap_or_default()
                />
            </div>
            <DateRangeInputs id="webhooks" legend="Received" from=current.from.clone() to=current.to.clone() />
            <div class="filter grow">
                <label for="webhooks-search">"Search"</label>
                <input
                    id="webhooks-search"
                    name="search"
                    type="search"
                    maxlength="200"
                    placeholder="application id, body hash or reason"
                    value=current.search.clone().unwrap_or_default()
                />
            </div>
            <div class="filter-actions">
                <button type="submit">"Filter"</button>
                {current.any().then(|| view! { <a href="/webhooks" rel="external">"Clear"</a> })}
            </div>
        </form>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let f = params();
                match data.await {
                    Err(e) => load_error(e),
                    Ok(rows) if rows.is_empty() && f.before.is_some() => view! {
                        <section class="empty">
                            <p class="lead">"No older deliveries."</p>
                            <p><a href="/webhooks" rel="external">"Back to the newest"</a></p>
                        </section>
                    }.into_any(),
                    Ok(rows) if rows.is_empty() && f.any() => view! {
                        <section class="empty">
                            <p class="lead">"No deliveries match these filters."</p>
                            <p>"Search looks for an exact application id, the start of a body hash, or words in the reason."</p>
                        </section>
                    }.into_any(),
                    Ok(rows) if rows.is_empty() => view! {
                        <section class="empty">
                            <p class="lead">"No webhook deliveries yet."</p>
                            <p>"Point Pinpoint's application_hired webhook at /webhooks/pinpoint and have an admin set its signing secret in Settings."</p>
                        </section>
                    }.into_any(),
                    Ok(rows) => {
                        let older = older_page_href(
                            "/webhooks",
                            rows.len(),
                            PAGE_SIZE,
                            rows.last().map(|r| r.id),
                            &[
                                ("outcome", &f.outcome),
                                ("event", &f.event),
                                ("search", &f.search),
                                ("from", &f.from),
                                ("to", &f.to),
                            ],
                        );
                        view! {
                            <div class="table-wrap" role="region" aria-label="Deliveries" tabindex="0">
                                <table class="data">
                                    <thead>
                                        <tr>
                                            <th scope="col">"#"</th>
                                            <th scope="col">"Received"</th>
                                            <th scope="col">"Outcome"</th>
                                            <th scope="col">"Event"</th>
                                            <th scope="col">"Application"</th>
                                            <th scope="col">"Why"</th>
                                            <th scope="col">"Export"</th>
                                        </tr>
                                    </thead>
                                    <tbody>
                                        {rows.into_iter().map(|d| {
                                            let href = format!("/webhooks/{}", d.id);
                                            view! {
                                                <tr>
                                                    <td><a href=href.clone() aria-label=format!("Delivery {}", d.id)>{d.id}</a></td>
                                                    <td class="nowrap"><a href=href>{when(&d.received_at)}</a></td>
                                                    <td>{status_badge(&d.outcome)}</td>
                                                    <td><code>{d.event}</code></td>
                                                    <td>{d.application_id}</td>
                                                    <td class="wrap">{d.reason}</td>
                                                    <td class="nowrap">{d.export_id.map(|id| view! { <a href=format!("/exports/{id}")>{format!("Export {id}")}</a> })}</td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                            {older.map(|href| view! { <p><a href=href rel="external">"Older deliveries →"</a></p> })}
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

#[component]
pub fn DeliveryPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").and_then(|v| v.parse::<i64>().ok());
    let reprocess = ServerAction::<ReprocessDelivery>::new();
    let data = Resource::new(
        move || (id(), reprocess.version().get()),
        |(id, _)| async move {
            match id {
                Some(id) => get_delivery(id).await,
                None => Err(AppError::Invalid("That is not a delivery number.".into())),
            }
        },
    );
    view! {
        <Title text="Webhook delivery" />
        <p><a href="/webhooks">"← All deliveries"</a></p>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let me = current_me().await;
                match data.await {
                    Err(e) => view! {
                        <h1>"Webhook delivery"</h1>
                        {load_error(e)}
                    }.into_any(),
                    Ok(d) => {
                        let is_admin = me.as_ref().is_some_and(|m| m.is_admin());
                        let can_operate = me.as_ref().is_some_and(|m| m.can_operate());
                        view! {
                            <h1>{format!("Delivery {}", d.id)}</h1>
                            <section class="panel summary">
                                <dl>
                                    <dt>"Received"</dt>
                                    <dd>{when(&d.received_at)} " " <span class="muted">{format!("from {}", if d.client_ip.is_empty() { "an unknown address" } else { d.client_ip.as_str() })}</span></dd>
                                    <dt>"Outcome"</dt>
                                    <dd>{status_badge(&d.outcome)}</dd>
                                    {(!d.reason.is_empty()).then(|| view! { <dt>"Why"</dt><dd class="wrap">{d.reason.clone()}</dd> })}
                                    <dt>"Event"</dt>
                                    <dd><code>{if d.event.is_empty() { "—".to_owned() } else { d.event.clone() }}</code></dd>
                                    <dt>"Pinpoint application"</dt>
                                    <dd><code>{if d.application_id.is_empty() { "—".to_owned() } else { d.application_id.clone() }}</code></dd>
                                    <dt>"Body SHA-256"</dt>
                                    <dd><code class="hash">{d.body_sha256.clone()}</code></dd>
                                    <dt>"Export"</dt>
                                    <dd>{match (d.export_id, d.export_status.clone()) {
                                        (Some(id), Some(status)) => view! {
                                            <a href=format!("/exports/{id}")>{format!("Export {id}")}</a>
                                            " "
                                            {status_badge(&status)}
                                        }.into_any(),
                                        (Some(id), None) => view! { <span>{format!("Export {id} no longer exists.")}</span> }.into_any(),
                                        (None, _) if !d.reprocessed_as.is_empty() => view! { <span class="muted">"None by itself: see its re-processing below."</span> }.into_any(),
                                        (None, _) => view! { <span class="muted">"This delivery started no export."</span> }.into_any(),
                                    }}</dd>
                                    {d.reprocessed_from.map(|from| view! {
                                        <dt>"Re-processing of"</dt>
                                        <dd><a href=format!("/webhooks/{from}")>{format!("Delivery {from}")}</a></dd>
                                    })}
                                    {(!d.reprocessed_as.is_empty()).then(|| view! {
                                        <dt>"Re-processed as"</dt>
                                        <dd data-test="reprocessed-as">
                                            {d.reprocessed_as.iter().map(|(delivery, export)| view! {
                                                <span class="reprocessing">
                                                    <a href=format!("/webhooks/{delivery}")>{format!("Delivery {delivery}")}</a>
                                                    {export.map(|e| view! { ", which made or found " <a href=format!("/exports/{e}")>{format!("Export {e}")}</a> })}
                                                </span>
                                            }).collect_view()}
                                        </dd>
                                    })}
                                </dl>
                            </section>
                            <ReprocessPanel id=d.id rule=d.rule.clone() application=d.application_id.clone() is_admin can_operate action=reprocess />
                            <h2 class="section-title">"Headers"</h2>
                            <p class="help">"Signatures, cookies and credentials are never kept; they show as redacted."</p>
                            {if d.headers.is_empty() {
                                view! { <p class="muted">"No headers were kept for this delivery."</p> }.into_any()
                            } else {
                                view! {
                                    <div class="table-wrap" role="region" aria-label="Headers" tabindex="0">
                                        <table class="data headers">
                                            <thead><tr><th scope="col">"Name"</th><th scope="col">"Value"</th></tr></thead>
                                            <tbody>
                                                {d.headers.into_iter().map(|(name, value)| view! {
                                                    <tr><td><code>{name}</code></td><td class="wrap"><code>{value}</code></td></tr>
                                                }).collect_view()}
                                            </tbody>
                                        </table>
                                    </div>
                                }.into_any()
                            }}
                            <h2 class="section-title">"Body"</h2>
                            <p class="help">"Candidate data as Pinpoint sent it. Shown only to signed-in people; never written to the server log."</p>
                            {if d.body.is_empty() {
                                view! { <p class="muted">"No body was kept (it was empty or over the size limit)."</p> }.into_any()
                            } else {
                                view! { <pre class="body" tabindex="0" aria-label="Delivery body">{d.body}</pre> }.into_any()
                            }}
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

#[component]
fn ReprocessPanel(
    id: i64,
    rule: ReprocessRule,
    application: String,
    is_admin: bool,
    can_operate: bool,
    action: ServerAction<ReprocessDelivery>,
) -> impl IntoView {
    let explanation = match &rule {
        ReprocessRule::Refused(why) => format!("This delivery cannot be re-processed: {why}."),
        ReprocessRule::Verified => "Its signature was verified when it arrived. Re-processing runs it through intake again: the export is created if this hire has none, and an export that stopped is retried.".to_owned(),
        ReprocessRule::Unverified => "Its signature did not verify (or there was no signing secret to check it with), so nothing proves that Pinpoint sent it. Only an admin can re-process it, after checking in Pinpoint that the candidate really was hired.".to_owned(),
    };
    let form = match rule {
        ReprocessRule::Refused(_) => None,
        ReprocessRule::Verified if can_operate => Some(
            view! {
                <ActionForm action attr:class="inline">
                    <input type="hidden" name="id" value=id.to_string() />
                    <button type="submit" class="primary">"Re-process delivery"</button>
                </ActionForm>
            }
            .into_any(),
        ),
        ReprocessRule::Verified => Some(
            view! { <p class="muted">"Operators and admins can re-process it."</p> }.into_any(),
        ),
        ReprocessRule::Unverified if is_admin => {
            let (label_for, confirm_id) = (format!("confirm-{id}"), format!("confirm-{id}"));
            let what = if application.is_empty() {
                "this application".to_owned()
            } else {
                format!("application {application}")
            };
            Some(view! {
                <ActionForm action attr:class="stack">
                    <input type="hidden" name="id" value=id.to_string() />
                    <label class="check" for=label_for>
                        <input id=confirm_id type="checkbox" name="confirm" value="yes" required />
                        {format!("I checked in Pinpoint that {what} really was hired")}
                    </label>
                    <button type="submit" class="danger">"Re-process unverified delivery"</button>
                </ActionForm>
            }.into_any())
        }
        ReprocessRule::Unverified => None,
    };
    view! {
        <section class="panel" aria-labelledby="reprocess-heading">
            <h2 id="reprocess-heading">"Re-process"</h2>
            <p>{explanation}</p>
            {form}
            {move || action.value().get().map(|r| match r {
                Ok(done) => view! {
                    <div class="notice ok" role="status">
                        <p>{done.message}</p>
                        <p>
                            <a href=format!("/webhooks/{}", done.delivery_id)>{format!("Delivery {} records this run", done.delivery_id)}</a>
                            {done.export_id.map(|e| view! { " · " <a href=format!("/exports/{e}")>{format!("Open export {e}")}</a> })}
                        </p>
                    </div>
                }.into_any(),
                Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
            })}
        </section>
    }
}
