use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::{
    error::AppError,
    pages::{
        href_with, load_error, minute, older_page_href, outcome_notice, status_badge, when,
        DateRangeInputs,
    },
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
    /// How many exports a bulk retry with these filters would queue now.
    pub retryable: usize,
    /// The mapping version in force, which a bulk retry rebuilds its exports with.
    pub mapping_version: i64,
}

#[server(endpoint = "exports", output = crate::codec::JsonText)]
pub async fn list_exports(
    status: Option<String>,
    source: Option<String>,
    search: Option<String>,
    from: Option<String>,
    to: Option<String>,
    before: Option<i64>,
) -> Result<ExportsView, AppError> {
    use crate::ssr;
    use integration::access::users::Role;
    use integration::exports::search::ExportFilter;
    let user = ssr::require(Role::Viewer).await?;
    ssr::no_store();
    let db = ssr::state()?.db;
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
    let rows = db.search().search(&filter).await?;
    // the chips count what the other filters select, each status on its own
    let counts = db.search().status_counts(&filter).await?;
    // only those who may retry are shown the count
    let retryable = if user.role.allows(Role::Operator) {
        let all_pages = ExportFilter {
            before_id: None,
            limit: None,
            ..filter
        };
        db.bulk_retries().preview(&all_pages).await?
    } else {
        0
    };
    let mapping_version = db.mappings().current_id().await?;
    Ok(ExportsView {
        mapping_version,
        retryable,
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

/// What a bulk retry started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkStarted {
    pub run_id: i64,
    pub count: usize,
    pub message: String,
}

/// Queues again, as one recorded bulk retry, every stopped export matching the list's filters
/// (needs attention or dead) that a retry can finish (see `exports::search::stopped_matching`). `expected` is the count the operator was shown; fewer are
/// queued when someone else retried some of them meanwhile, and the answer says so.
#[server(endpoint = "retry_matching_exports", output = crate::codec::JsonText)]
pub async fn retry_matching_exports(
    status: Option<String>,
    source: Option<String>,
    search: Option<String>,
    from: Option<String>,
    to: Option<String>,
    expected: Option<usize>,
) -> Result<BulkStarted, AppError> {
    use crate::ssr;
    use integration::{exports::search::ExportFilter, live::Change};
    let user = ssr::require(integration::access::users::Role::Operator).await?;
    let st = ssr::state()?;
    let actor = ssr::actor(&user).await;
    let filter = ExportFilter {
        status,
        source,
        search,
        created_from: from.filter(|f| !f.is_empty()),
        created_to: to.filter(|t| !t.is_empty()),
        ..Default::default()
    };
    let started = st.db.bulk_retries().start(&actor, &filter).await?;
    st.wake_worker.wake();
    st.changes.publish(Change::BulkRetry { id: started.run_id });
    let count = started.export_ids.len();
    let mut message = format!(
        "Retrying {count} {}; they run one at a time at HiBob's pace.",
        if count == 1 { "export" } else { "exports" }
    );
    if let Some(missing) = expected
        .and_then(|e| e.checked_sub(count))
        .filter(|m| *m > 0)
    {
        message.push_str(&format!(
            " {missing} of the {} shown were retried by someone else meanwhile.",
            count + missing
        ));
    }
    Ok(BulkStarted {
        run_id: started.run_id,
        count,
        message,
    })
}

/// Stops a bulk retry: the exports the worker has not started go back to how they were.
#[server(endpoint = "cancel_bulk_retry", output = crate::codec::JsonText)]
pub async fn cancel_bulk_retry(id: i64) -> Result<String, AppError> {
    use crate::ssr;
    use integration::live::Change;
    let user = ssr::require(integration::access::users::Role::Operator).await?;
    let st = ssr::state()?;
    let actor = ssr::actor(&user).await;
    let restored = st.db.bulk_retries().cancel(&actor, id).await?;
    st.changes.publish(Change::BulkRetry { id });
    Ok(format!(
        "Bulk retry {id} cancelled: {} not yet started {} back as {} {}.",
        restored.len(),
        if restored.len() == 1 {
            "export is"
        } else {
            "exports are"
        },
        if restored.len() == 1 { "it" } else { "they" },
        if restored.len() == 1 { "was" } else { "were" },
    ))
}

/// A bulk retry and how far it has got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkRunLine {
    pub id: i64,
    pub started_by: String,
    pub created_at: String,
    pub cancelled_at: Option<String>,
    pub total: i64,
    pub done: i64,
    pub summary: String,
    pub finished: bool,
    /// Once it has finished: the exports it retried that stopped again.
    pub stopped: Vec<i64>,
}

/// Bulk retries still running, and the last one if it ended within the day.
#[server(endpoint = "bulk_retries", output = crate::codec::JsonText)]
pub async fn bulk_retries() -> Result<Vec<BulkRunLine>, AppError> {
    use crate::ssr;
    ssr::require(integration::access::users::Role::Viewer).await?;
    ssr::no_store();
    let db = ssr::state()?.db;

    let runs = db.bulk_retries().recent(10).await?;
    let day_ago = integration::db::time_text(chrono::Utc::now() - chrono::Duration::days(1));
    let mut lines = Vec::new();
    for (i, r) in runs.into_iter().enumerate() {
        if r.finished() && !(i == 0 && r.created_at > day_ago) {
            continue;
        }
        let stopped = if r.finished() && r.failed > 0 {
            db.bulk_retries().stopped_again(r.id).await?
        } else {
            Vec::new()
        };
        lines.push(BulkRunLine {
            id: r.id,
            started_by: r.actor_email.clone().unwrap_or_default(),
            created_at: r.created_at.clone(),
            cancelled_at: r.cancelled_at.clone(),
            total: r.total,
            done: r.done(),
            summary: r.summary(),
            finished: r.finished(),
            stopped,
        });
    }
    Ok(lines)
}

const STATUSES: [(&str, &str); 7] = [
    ("", "Any status"),
    ("needs_attention", "Needs attention"),
    ("dead", "Dead"),
    ("queued", "Queued"),
    ("running", "Running"),
    ("succeeded", "Succeeded"),
    ("resolved", "Resolved"),
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
    let cancel = ServerAction::<CancelBulkRetry>::new();
    let live = crate::live::use_live(crate::live::Notice::touches_exports);
    let live_runs = live.clone();
    let data = Resource::new(
        move || {
            let actions = (bulk.version().get(), cancel.version().get());
            (params(), actions, live.get())
        },
        |((status, source, search, before, (from, to)), _, _)| {
            list_exports(status, source, search, from, to, before)
        },
    );
    let runs = Resource::new(
        move || {
            (
                bulk.version().get(),
                cancel.version().get(),
                live_runs.get(),
            )
        },
        |_| bulk_retries(),
    );
    // the preview stays open across live reloads of the list it sits in
    let preview_open = RwSignal::new(false);
    Effect::new(move || {
        if matches!(bulk.value().get(), Some(Ok(_))) {
            preview_open.set(false);
        }
    });
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
                {move || {
                    let (status, source, search, _, (from, to)) = params();
                    let any = status.is_some() || source.is_some() || search.is_some() || from.is_some() || to.is_some();
                    any.then(|| view! { <a href="/exports" class="clear-filters" rel="external">"Clear filters"</a> })
                }}
            </div>
            <p id="exports-search-help" class="help">
                "Three characters or more are found anywhere in a name, email or id; one or two must be a whole application or employee id."
            </p>
        </form>
        // a refusal here; what a started retry is doing is said in its own panel, until it ends
        {move || bulk.value().get().and_then(Result::err).map(|e| outcome_notice(Err(e)))}
        {move || cancel.value().get().map(outcome_notice)}
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let can_operate = crate::auth::current_me().await.is_some_and(|m| m.can_operate());
                match runs.await {
                    Err(e) => load_error(e),
                    Ok(runs) => runs
                        .into_iter()
                        .map(|run| {
                            // "Retrying 4 exports…" belongs to the run it started, while it runs
                            let started = bulk.value().get_untracked().and_then(Result::ok)
                                .filter(|s| s.run_id == run.id && !run.finished)
                                .map(|s| s.message);
                            view! { <BulkRun run cancel can_operate started /> }
                        })
                        .collect_view()
                        .into_any(),
                }
            })}
        </Transition>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => load_error(e),
                    Ok(view) => {
                        let (status, source, search, _, (from, to)) = params();
                        let can_retry = crate::auth::current_me().await.is_some_and(|m| m.can_operate());
                        let preview = (can_retry && view.retryable > 0).then(|| view! {
                            <BulkPreview
                                count=view.retryable
                                mapping_version=view.mapping_version
                                status=status.clone()
                                source=source.clone()
                                search=search.clone()
                                from=from.clone()
                                to=to.clone()
                                bulk
                                open=preview_open
                            />
                        });
                        view! {
                            {preview}
                            <StatusChips counts=view.counts source=source.clone() search=search.clone() from=from.clone() to=to.clone() />
                            <ExportTable rows=view.rows status source search from to />
                        }
                            .into_any()
                    }
                }
            })}
        </Transition>
    }
}

/// How many exports of each status the filters select, each a link to that status within them.
#[component]
fn StatusChips(
    counts: Vec<(String, i64)>,
    source: Option<String>,
    search: Option<String>,
    from: Option<String>,
    to: Option<String>,
) -> impl IntoView {
    let filtered = source.is_some() || search.is_some() || from.is_some() || to.is_some();
    view! {
        <p class="counts" data-test="status-counts">
            {filtered.then(|| view! { <span class="muted">"Matching these filters:"</span> })}
            {counts
                .into_iter()
                .map(|(s, n)| {
                    let href = href_with(
                        "/exports",
                        &[
                            ("status", &Some(s.clone())),
                            ("source", &source),
                            ("search", &search),
                            ("from", &from),
                            ("to", &to),
                        ],
                    );
                    view! {
                        <a class="count" rel="external" href=href data-status=s.clone()>
                            {status_badge(&s)}
                            " "
                            <strong>{n}</strong>
                        </a>
                    }
                })
                .collect_view()}
        </p>
    }
}

/// "Retry matching…": the count from the same filters the retry will use, then the confirm.
/// Without script the `<details>` opens by itself and the form posts as usual.
#[component]
fn BulkPreview(
    count: usize,
    mapping_version: i64,
    status: Option<String>,
    source: Option<String>,
    search: Option<String>,
    from: Option<String>,
    to: Option<String>,
    bulk: ServerAction<RetryMatchingExports>,
    open: RwSignal<bool>,
) -> impl IntoView {
    let noun = if count == 1 { "export" } else { "exports" };
    view! {
        <details class="bulk-retry" prop:open=move || open.get()>
            <summary on:click=move |ev| {
                ev.prevent_default();
                open.update(|o| *o = !*o);
            }>"Retry matching…"</summary>
            <div class="bulk-preview">
                <p data-test="bulk-preview">
                    <strong>{format!("{count} {noun} will be retried")}</strong>
                    ": every stopped export (needs attention or dead) that matches these filters and a retry can finish, at HiBob's pace."
                    <BulkMappingVersion version=mapping_version />
                </p>
                <ActionForm action=bulk attr:class="inline">
                    <input type="hidden" name="status" value=status.unwrap_or_default() />
                    <input type="hidden" name="source" value=source.unwrap_or_default() />
                    <input type="hidden" name="search" value=search.unwrap_or_default() />
                    <input type="hidden" name="from" value=from.unwrap_or_default() />
                    <input type="hidden" name="to" value=to.unwrap_or_default() />
                    <input type="hidden" name="expected" value=count.to_string() />
                    <button type="submit" class="primary">{format!("Retry {count} {noun}")}</button>
                </ActionForm>
            </div>
        </details>
    }
}

/// Which mapping version the retried exports will be built with.
#[component]
fn BulkMappingVersion(version: i64) -> impl IntoView {
    view! {
        " They will be built with "
        <a href=format!("/mappings/versions/{version}")>{format!("mapping version {version}")}</a>
        ", the one in force."
    }
}

#[component]
fn BulkRun(
    run: BulkRunLine,
    cancel: ServerAction<CancelBulkRetry>,
    can_operate: bool,
    /// What starting it said ("Retrying 4 exports…"), shown while it runs.
    started: Option<String>,
) -> impl IntoView {
    let state = match (&run.cancelled_at, run.finished) {
        (Some(_), false) => "Cancelled; finishing the export already started",
        (Some(_), true) => "Cancelled",
        (None, true) => "Finished",
        (None, false) => "In progress",
    };
    let cancellable = can_operate && run.cancelled_at.is_none() && !run.finished;
    let title = format!("Bulk retry {}", run.id);
    view! {
        <section class="panel bulk-run" aria-label=title.clone() data-test="bulk-run">
            <h2>{title.clone()} " " <span class="badge">{state}</span></h2>
            <progress max=run.total value=run.done aria-label=format!("{title} progress")>
                {format!("{} of {}", run.done, run.total)}
            </progress>
            {started.map(|m| view! { <p class="notice ok" role="status">{m}</p> })}
            <p class="progress-text" aria-live="polite">{run.summary.clone()}</p>
            {(!run.stopped.is_empty()).then(|| view! {
                <p class="stopped-again">
                    "Stopped again: "
                    {run.stopped.iter().enumerate().map(|(i, id)| view! {
                        {(i > 0).then_some(", ")}
                        <a href=format!("/exports/{id}")>{format!("Export {id}")}</a>
                    }).collect_view()}
                </p>
            })}
            <p class="meta">
                "Started " {when(&run.created_at)}
                {(!run.started_by.is_empty()).then(|| format!(" by {}", run.started_by))}
                {run.cancelled_at.as_deref().map(|at| format!(", cancelled {}", when(at)))}
            </p>
            {cancellable.then(|| view! {
                <ActionForm action=cancel attr:class="inline">
                    <input type="hidden" name="id" value=run.id.to_string() />
                    <button type="submit">"Cancel"</button>
                </ActionForm>
            })}
        </section>
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
                        // status first: on a phone it is the column in view
                        <th scope="col">"Status"</th>
                        <th scope="col">"#"</th>
                        <th scope="col">"Candidate"</th>
                        <th scope="col">"Start date"</th>
                        <th scope="col">"HiBob employee"</th>
                        <th scope="col">"Source"</th>
                        <th scope="col">"Updated (UTC)"</th>
                    </tr>
                </thead>
                <tbody>
                    {rows
                        .into_iter()
                        .map(|r| {
                            let href = format!("/exports/{}", r.id);
                            view! {
                                <tr>
                                    <td class="wrap">
                                        {status_badge(&r.status)}
                                        {(!r.last_error.is_empty())
                                            .then(|| view! { <div class="meta error-text">{r.last_error.clone()}</div> })}
                                    </td>
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
                                        // a long e-mail may break before its domain
                                        <div class="meta">{match r.email.split_once('@') {
                                            Some((local, domain)) => view! { {local.to_owned()} <wbr /> {format!("@{domain}")} }.into_any(),
                                            None => r.email.clone().into_any(),
                                        }}</div>
                                    </td>
                                    <td class="nowrap">{r.start_date.clone()}</td>
                                    <td class="nowrap"><code>{r.employee_id.clone()}</code></td>
                                    <td>{r.source.clone()}</td>
                                    <td class="nowrap"><time datetime=r.updated_at.clone()>{minute(&r.updated_at)}</time></td>
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
