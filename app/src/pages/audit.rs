use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::{
    error::AppError,
    pages::{href_with, load_error, older_page_href, when, DateRangeInputs},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub client_ip: String,
}

pub const PAGE_SIZE: i64 = 50;

#[server(endpoint = "audit", output = crate::codec::JsonText)]
pub async fn list_audit(
    action: Option<String>,
    search: Option<String>,
    from: Option<String>,
    to: Option<String>,
    before: Option<i64>,
) -> Result<Vec<AuditRow>, AppError> {
    use crate::ssr;
    ssr::require(integration::access::users::Role::Admin).await?;
    ssr::no_store();
    let filter = integration::access::audit::AuditFilter {
        action,
        search,
        from,
        to,
        before_id: before,
        limit: Some(PAGE_SIZE),
    };
    filter.check()?;
    let rows = ssr::state()?.db.audit().list(&filter).await?;
    Ok(rows
        .into_iter()
        .map(|e| AuditRow {
            id: e.id,
            at: e.at,
            actor: e.actor_email.unwrap_or_else(|| "system".into()),
            action: e.action,
            target: e.target.unwrap_or_default(),
            detail: e.detail,
            client_ip: e.client_ip.unwrap_or_default(),
        })
        .collect())
}

const ACTIONS: [(&str, &str); 9] = [
    ("", "All actions"),
    ("login", "Sign-ins"),
    ("logout", "Sign-outs"),
    ("user", "User changes"),
    ("settings", "Settings changes"),
    ("export", "Export retries"),
    ("webhook", "Webhook re-processing"),
    ("mapping", "Mapping changes"),
    ("audit", "Audit downloads"),
];

#[derive(Debug, Clone, Default, PartialEq)]
struct Filters {
    action: Option<String>,
    search: Option<String>,
    from: Option<String>,
    to: Option<String>,
    before: Option<i64>,
}

impl Filters {
    fn any(&self) -> bool {
        self.action.is_some() || self.search.is_some() || self.from.is_some() || self.to.is_some()
    }

    fn query(&self) -> [(&'static str, &Option<String>); 4] {
        [
            ("action", &self.action),
            ("search", &self.search),
            ("from", &self.from),
            ("to", &self.to),
        ]
    }
}

#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    // Read once: filters are a plain GET form and paging links load a new page, so the query
    // never changes under a rendered page (and the resource is not re-run during hydration).
    let params = move || {
        let q = query.read_untracked();
        let text = |k: &str| q.get(k).filter(|s| !s.trim().is_empty());
        Filters {
            action: text("action"),
            search: text("search"),
            from: text("from"),
            to: text("to"),
            before: q.get("before").and_then(|b| b.parse::<i64>().ok()),
        }
    };
    let entries = Resource::new(params, |f| {
        list_audit(f.action, f.search, f.from, f.to, f.before)
    });
    let current = params();
    let download = href_with("/audit.csv", &current.query());
    view! {
        <Title text="Audit" />
        <h1>"Audit log"</h1>
        <p class="lead">"Who signed in, changed settings or users, retried exports or re-processed webhooks, and when."</p>
        <form method="get" action="/audit" class="filters" role="search" aria-label="Filter the audit log">
            <div class="filter">
                <label for="audit-action">"Action"</label>
                <select id="audit-action" name="action">
                    {ACTIONS
                        .into_iter()
                        .map(|(value, label)| {
                            let selected = current.action.as_deref().unwrap_or_default() == value;
                            view! { <option value=value selected=selected>{label}</option> }
                        })
                        .collect_view()}
                </select>
            </div>
            <DateRangeInputs id="audit" legend="When" from=current.from.clone() to=current.to.clone() />
            <div class="filter grow">
                <label for="audit-search">"Search"</label>
                <input
                    id="audit-search"
                    name="search"
                    type="search"
                    maxlength="200"
                    value=current.search.clone().unwrap_or_default()
                    placeholder="who, what, detail"
                />
            </div>
            <div class="filter-actions">
                <button type="submit">"Filter"</button>
                {current.any().then(|| view! { <a href="/audit" rel="external">"Clear"</a> })}
            </div>
        </form>
        <p class="download">
            <a href=download rel="external" download="">"Download these entries as CSV"</a>
            <span class="help">" Up to 100,000 entries per file, newest first; narrow the dates for more."</span>
        </p>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let f = params();
                match entries.await {
                    Err(e) => load_error(e),
                    Ok(rows) if rows.is_empty() => {
                        let (lead, more) = if f.before.is_some() {
                            ("No older entries.", "You have reached the first entry.")
                        } else if f.any() {
                            ("No audit entries match these filters.", "Try a wider date range or another action.")
                        } else {
                            ("No audit entries yet.", "Sign-ins, settings and user changes, retries and re-processing are recorded here as they happen.")
                        };
                        view! {
                            <section class="empty">
                                <p class="lead">{lead}</p>
                                <p>{more}</p>
                            </section>
                        }.into_any()
                    }
                    Ok(rows) => {
                        let older = older_page_href(
                            "/audit",
                            rows.len(),
                            PAGE_SIZE,
                            rows.last().map(|r| r.id),
                            &f.query(),
                        );
                        view! {
                            <div class="table-wrap" role="region" aria-label="Audit entries" tabindex="0">
                                <table class="data">
                                    <thead>
                                        <tr>
                                            <th scope="col">"When"</th>
                                            <th scope="col">"Who"</th>
                                            <th scope="col">"Action"</th>
                                            <th scope="col">"Target"</th>
                                            <th scope="col">"Detail"</th>
                                            <th scope="col">"Address"</th>
                                        </tr>
                                    </thead>
                                    <tbody>
                                        {rows
                                            .into_iter()
                                            .map(|r| {
                                                view! {
                                                    <tr>
                                                        <td class="nowrap">{when(&r.at)}</td>
                                                        <td>{r.actor}</td>
                                                        <td><code>{r.action}</code></td>
                                                        <td>{r.target}</td>
                                                        <td class="wrap">{r.detail}</td>
                                                        <td>{r.client_ip}</td>
                                                    </tr>
                                                }
                                            })
                                            .collect_view()}
                                    </tbody>
                                </table>
                            </div>
                            {older.map(|href| view! { <p><a href=href rel="external">"Older entries →"</a></p> })}
                        }
                            .into_any()
                    }
                }
            })}
        </Transition>
    }
}
