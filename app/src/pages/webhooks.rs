use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::{
    error::AppError,
    pages::{load_error, older_page_href, status_badge, when},
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
    pub export_id: Option<i64>,
}

#[server(endpoint = "webhook_deliveries")]
pub async fn list_deliveries(
    outcome: Option<String>,
    before: Option<i64>,
) -> Result<Vec<DeliveryLine>, AppError> {
    use crate::ssr::{self, fail, internal};
    ssr::require(integration::users::Role::Viewer).await?;
    ssr::no_store();
    let rows = integration::webhook_intake::recent(
        &ssr::state()?.pool,
        outcome.as_deref(),
        before,
        PAGE_SIZE,
    )
    .await
    .map_err(|e| fail(internal(e)))?;
    Ok(rows
        .into_iter()
        .map(|d| DeliveryLine {
            id: d.id,
            received_at: d.received_at,
            outcome: d.outcome,
            reason: d.reason,
            event: d.event.unwrap_or_default(),
            application_id: d.application_id.unwrap_or_default(),
            export_id: d.export_id,
        })
        .collect())
}

#[component]
pub fn WebhooksPage() -> impl IntoView {
    let query = use_query_map();
    // Read once: filters are a plain GET form and paging links load a new page, so the query
    // never changes under a rendered page (and the resource is not re-run during hydration).
    let params = move || {
        let q = query.read_untracked();
        (
            q.get("outcome").filter(|s| !s.is_empty()),
            q.get("before").and_then(|b| b.parse::<i64>().ok()),
        )
    };
    let data = Resource::new(params, |(outcome, before)| list_deliveries(outcome, before));
    view! {
        <Title text="Webhooks" />
        <h1>"Webhook deliveries"</h1>
        <p class="lead">"Every delivery to /webhooks/pinpoint, whatever became of it."</p>
        <form method="get" action="/webhooks" class="filters">
            <label for="webhooks-outcome">"Outcome"</label>
            <select id="webhooks-outcome" name="outcome">
                {move || {
                    let current = params().0.unwrap_or_default();
                    [("", "All"), ("accepted", "Accepted"), ("duplicate", "Duplicate"), ("ignored", "Ignored"), ("rejected", "Rejected")]
                        .into_iter()
                        .map(|(value, label)| view! { <option value=value selected=value == current>{label}</option> })
                        .collect_view()
                }}
            </select>
            <button type="submit">"Filter"</button>
        </form>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => load_error(e),
                    Ok(rows) if rows.is_empty() => view! {
                        <section class="empty">
                            <p class="lead">"No webhook deliveries yet."</p>
                            <p>"Point Pinpoint's application_hired webhook at /webhooks/pinpoint and set its signing secret in Settings."</p>
                        </section>
                    }.into_any(),
                    Ok(rows) => {
                        let outcome = params().0;
                        let older = older_page_href(
                            "/webhooks",
                            rows.len(),
                            PAGE_SIZE,
                            rows.last().map(|r| r.id),
                            &[("outcome", &outcome)],
                        );
                        view! {
                            <div class="table-wrap">
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
                                        {rows.into_iter().map(|d| view! {
                                            <tr>
                                                <td>{d.id}</td>
                                                <td class="nowrap">{when(&d.received_at)}</td>
                                                <td>{status_badge(&d.outcome)}</td>
                                                <td><code>{d.event}</code></td>
                                                <td>{d.application_id}</td>
                                                <td>{d.reason}</td>
                                                <td>{d.export_id.map(|id| view! { <a href=format!("/exports/{id}")>{format!("Export {id}")}</a> })}</td>
                                            </tr>
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
