use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::{
    error::AppError,
    pages::{load_error, older_page_href, status_badge, when, DateRangeInputs},
};

pub const PAGE_SIZE: i64 = 50;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportLine {
    pub id: i64,
    pub source: String,
    pub status: String,
    pub application_id: String,
    pub candidate: String,
    pub email: String,
    pub start_date: String,
    pub employee_id: String,
    pub attempts: i64,
    pub last_error: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportsView {
    pub rows: Vec<ExportLine>,
    pub counts: Vec<(String, i64)>,
}

#[server(endpoint = "exports")]
pub async fn list_exports(
    status: Option<String>,
    source: Option<String>,
    search: Option<String>,
    from: Option<String>,
    to: Option<String>,
    before: Option<i64>,
) -> Result<ExportsView, AppError> {
    use crate::ssr::{self, fail, internal};
    use integration::export_queue::{self, ExportFilter};
    ssr::require(integration::users::Role::Viewer).await?;
    ssr::no_store();
    let pool = ssr::state()?.pool;
    let filter = ExportFilter {
        status,
        source,
        search,
        created_from: from,
        created_to: to,
        before_id: before,
        limit: Some(PAGE_SIZE),
    };
    filter.check()?;
    let rows = export_queue::list(&pool, &filter)
        .await
        .map_err(|e| fail(internal(e)))?;
    let counts = export_queue::counts(&pool)
        .await
        .map_err(|e| fail(internal(e)))?;
    Ok(ExportsView {
        rows: rows
            .into_iter()
            .map(|e| ExportLine {
                id: e.id,
                source: e.source,
                status: e.status,
                application_id: e.pinpoint_application_id,
                candidate: e.candidate_name.unwrap_or_default(),
                email: e.candidate_email.unwrap_or_default(),
                start_date: e.start_date.unwrap_or_default(),
                employee_id: e.hibob_employee_id.unwrap_or_default(),
                attempts: e.attempts,
                last_error: e.last_error.unwrap_or_default(),
                updated_at: e.updated_at,
            })
            .collect(),
        counts,
    })
}

/// Queues again every stopped export matching the list's filters (needs attention or dead).
#[server(endpoint = "retry_matching_exports")]
pub async fn retry_matching_exports(
    status: Option<String>,
    search: Option<String>,
) -> Result<usize, AppError> {
    use crate::ssr::{self, fail, internal};
    use integration::export_queue::{self, ExportFilter};
    let user = ssr::require(integration::users::Role::Operator).await?;
    let st = ssr::state()?;
    let actor = ssr::actor(&user).await;
    let filter = ExportFilter {
        status,
        search,
        ..Default::default()
    };
    let ids = export_queue::retry_matching(&st.pool, &actor, &filter)
        .await
        .map_err(|e| fail(internal(e)))?;
    if !ids.is_empty() {
        st.wake_worker.wake();
    }
    Ok(ids.len())
}

const STATUSES: [(&str, &str); 6] = [
    ("", "Any status"),
    ("needs_attention", "Needs attention"),
    ("dead", "Dead"),
    ("queued", "Queued"),
    ("running", "Running"),
    ("succeeded", "Succeeded"),
];

#[component]
pub fn ExportsPage() -> impl IntoView {
    let query = use_query_map();
    // Read once: filters are a plain GET form and paging links load a new page, so the query
    // never changes under a rendered page (and the resource is not re-run during hydration).
    let params = move || {
        let q = query.read_untracked();
        let text = |k: &str| q.get(k).filter(|s| !s.is_empty());
        (
            text("status"),
            text("source"),
            text("search"),
            q.get("before").and_then(|b| b.parse::<i64>().ok()),
            (text("from"), text("to")),
        )
    };
    let bulk = ServerAction::<RetryMatchingExports>::new();
    let data = Resource::new(
        move || (params(), bulk.version().get()),
        |((status, source, search, before, (from, to)), _)| {
            list_exports(status, source, search, from, to, before)
        },
    );
    let (from, to) = params().4;
    view! {
        <Title text="Exports" />
        <h1>"Exports"</h1>
        <form method="get" action="/exports" class="filters" role="search" aria-label="Filter exports">
            <div class="filter">
                <label for="exports-status">"Status"</label>
                <select id="exports-status" name="status">
                    {move || {
                        let current = params().0.unwrap_or_default();
                        STATUSES
                            .into_iter()
                            .map(|(value, label)| {
                                view! { <option value=value selected=value == current>{label}</option> }
                            })
                            .collect_view()
                    }}
                </select>
            </div>
            <div class="filter">
                <label for="exports-source">"Source"</label>
                <select id="exports-source" name="source">
                    {move || {
                        let current = params().1.unwrap_or_default();
                        [("", "Webhook and plugin"), ("webhook", "Webhook"), ("plugin", "Plugin")]
                            .into_iter()
                            .map(|(value, label)| {
                                view! { <option value=value selected=value == current>{label}</option> }
                            })
                            .collect_view()
                    }}
                </select>
            </div>
            <DateRangeInputs id="exports" legend="Created" from to />
            <div class="filter grow">
                <label for="exports-search">"Search"</label>
                <input
                    id="exports-search"
                    name="search"
                    type="search"
                    maxlength="200"
                    placeholder="name, email, application or employee id"
                    aria-describedby="exports-search-help"
                    prop:value=move || params().2.unwrap_or_default()
                />
            </div>
            <div class="filter-actions">
                <button type="submit">"Filter"</button>
            </div>
            <p id="exports-search-help" class="help">
                "Three characters or more are found anywhere in a name, email or id; one or two must be a whole application or employee id."
            </p>
        </form>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => load_error(e),
                    Ok(view) => {
                        let (status, source, search, _, (from, to)) = params();
                        let stopped = status.as_deref().is_some_and(|s| s == "needs_attention" || s == "dead");
                        let can_retry = crate::auth::current_me().await.is_some_and(|m| m.can_operate());
                        let (bulk_status, bulk_search) = (status.clone(), search.clone());
                        let bulk_form = (stopped && can_retry && !view.rows.is_empty()).then(move || {
                            view! {
                                <ActionForm action=bulk attr:class="inline bulk-retry">
                                    <input type="hidden" name="status" value=bulk_status.unwrap_or_default() />
                                    <input type="hidden" name="search" value=bulk_search.unwrap_or_default() />
                                    <button type="submit" class="primary">"Retry all matching exports"</button>
                                </ActionForm>
                            }
                        });
                        view! {
                            {bulk_form}
                            {move || bulk.value().get().map(|r| match r {
                                Ok(n) => view! { <p class="notice ok" role="status">{format!("{n} export(s) queued for another attempt.")}</p> }.into_any(),
                                Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
                            })}
                            <p class="counts">
                                {view
                                    .counts
                                    .iter()
                                    .map(|(s, n)| {
                                        view! {
                                            <a class="count" rel="external" href=format!("/exports?status={s}")>
                                                {status_badge(s)}
                                                " "
                                                <strong>{*n}</strong>
                                            </a>
                                        }
                                    })
                                    .collect_view()}
                            </p>
                            <ExportTable rows=view.rows status source search from to />
                        }
                            .into_any()
                    }
                }
            })}
        </Transition>
    }
}

#[component]
fn ExportTable(
    rows: Vec<ExportLine>,
    status: Option<String>,
    source: Option<String>,
    search: Option<String>,
    from: Option<String>,
    to: Option<String>,
) -> impl IntoView {
    if rows.is_empty() {
        let filtered = status.is_some()
            || source.is_some()
            || search.is_some()
            || from.is_some()
            || to.is_some();
        return view! {
            <section class="empty">
                <p class="lead">{if filtered { "No exports match these filters." } else { "No exports yet." }}</p>
                <p>
                    "Every hire sent to HiBob, from Pinpoint's Send to HiBob button or from the application_hired webhook, is listed here with its status and timeline."
                </p>
            </section>
        }
            .into_any();
    }
    let older = older_page_href(
        "/exports",
        rows.len(),
        PAGE_SIZE,
        rows.last().map(|r| r.id),
        &[
            ("status", &status),
            ("source", &source),
            ("search", &search),
            ("from", &from),
            ("to", &to),
        ],
    );
    view! {
        <div class="table-wrap" role="region" aria-label="Exports" tabindex="0">
            <table class="data">
                <thead>
                    <tr>
                        <th scope="col">"#"</th>
                        <th scope="col">"Candidate"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col">"Start date"</th>
                        <th scope="col">"HiBob employee"</th>
                        <th scope="col">"Source"</th>
                        <th scope="col">"Updated"</th>
                    </tr>
                </thead>
                <tbody>
                    {rows
                        .into_iter()
                        .map(|r| {
                            let href = format!("/exports/{}", r.id);
                            view! {
                                <tr>
                                    <td><a href=href.clone()>{r.id}</a></td>
                                    <td>
                                        <a href=href>
                                            {if !r.candidate.is_empty() {
                                                r.candidate.clone()
                                            } else if !r.application_id.is_empty() {
                                                format!("Application {}", r.application_id)
                                            } else {
                                                format!("Export {}", r.id)
                                            }}
                                        </a>
                                        <div class="meta">{r.email.clone()}</div>
                                    </td>
                                    <td>
                                        {status_badge(&r.status)}
                                        {(!r.last_error.is_empty())
                                            .then(|| view! { <div class="meta error-text">{r.last_error.clone()}</div> })}
                                    </td>
                                    <td class="nowrap">{r.start_date.clone()}</td>
                                    <td><code>{r.employee_id.clone()}</code></td>
                                    <td>{r.source.clone()}</td>
                                    <td class="nowrap">{when(&r.updated_at)}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
        {older.map(|href| view! { <p><a href=href rel="external">"Older exports →"</a></p> })}
    }
        .into_any()
}
