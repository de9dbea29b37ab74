use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::{
    error::AppError,
    pages::{load_error, older_page_href, when},
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

#[server(endpoint = "audit")]
pub async fn list_audit(
    action: Option<String>,
    search: Option<String>,
    before: Option<i64>,
) -> Result<Vec<AuditRow>, AppError> {
    use crate::ssr::{self, fail, internal};
    ssr::require(integration::users::Role::Admin).await?;
    ssr::no_store();
    let filter = integration::audit::AuditFilter {
        action,
        search,
        before_id: before,
        limit: Some(PAGE_SIZE),
    };
    let rows = integration::audit::list(&ssr::state()?.pool, &filter)
        .await
        .map_err(|e| fail(internal(e)))?;
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

const ACTIONS: [(&str, &str); 5] = [
    ("", "All actions"),
    ("login", "Sign-ins"),
    ("logout", "Sign-outs"),
    ("user", "User changes"),
    ("settings", "Settings changes"),
];

#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    // Read once: filters are a plain GET form and paging links load a new page, so the query
    // never changes under a rendered page (and the resource is not re-run during hydration).
    let params = move || {
        let q = query.read_untracked();
        (
            q.get("action").filter(|s| !s.is_empty()),
            q.get("search").filter(|s| !s.is_empty()),
            q.get("before").and_then(|b| b.parse::<i64>().ok()),
        )
    };
    let entries = Resource::new(params, |(action, search, before)| {
        list_audit(action, search, before)
    });
    view! {
        <Title text="Audit" />
        <h1>"Audit log"</h1>
        <form method="get" action="/audit" class="filters" role="search">
            <label for="audit-action">"Action"</label>
            <select id="audit-action" name="action">
                {move || {
                    let current = params().0.unwrap_or_default();
                    ACTIONS
                        .into_iter()
                        .map(|(value, label)| {
                            view! {
                                <option value=value selected=value == current>
                                    {label}
                                </option>
                            }
                        })
                        .collect_view()
                }}
            </select>
            <label for="audit-search">"Search"</label>
            <input
                id="audit-search"
                name="search"
                type="search"
                maxlength="200"
                prop:value=move || params().1.unwrap_or_default()
                placeholder="who, what, detail"
            />
            <button type="submit">"Filter"</button>
        </form>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match entries.await {
                    Err(e) => load_error(e),
                    Ok(rows) if rows.is_empty() => {
                        view! { <p class="empty">"No audit entries match."</p> }.into_any()
                    }
                    Ok(rows) => {
                        let (action, search, _) = params();
                        let older = older_page_href(
                            "/audit",
                            rows.len(),
                            PAGE_SIZE,
                            rows.last().map(|r| r.id),
                            &[("action", &action), ("search", &search)],
                        );
                        view! {
                            <div class="table-wrap">
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
                                                        <td>{r.detail}</td>
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
