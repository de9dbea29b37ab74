//! The dashboard's list of exported hires that changed in Pinpoint since their export, or fell
//! through, the ones starting soonest first (see `integration::watch`).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Hires listed, the soonest to start first.
#[cfg(feature = "ssr")]
const LISTED: i64 = 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedHire {
    pub export_id: i64,
    pub candidate: String,
    pub start_date: String,
    pub days_to_start: Option<i64>,
    pub urgent: bool,
    /// "Start date 2027-01-04 → 2027-01-11; …"
    pub summary: String,
    /// Why it no longer counts as hired, when it does not and nobody decided yet.
    pub fell_through: Option<String>,
}

#[server(endpoint = "changed_hires", output = crate::codec::JsonText)]
pub async fn changed_hires() -> Result<Vec<ChangedHire>, AppError> {
    use crate::ssr;
    ssr::require(integration::access::users::Role::Viewer).await?;
    ssr::no_store();
    listed(&ssr::state()?.db, chrono::Utc::now().date_naive()).await
}

/// The flagged hires the dashboard lists, urgent ones first, then by start.
#[cfg(feature = "ssr")]
pub(crate) async fn listed(
    db: &integration::Db,
    today: chrono::NaiveDate,
) -> Result<Vec<ChangedHire>, AppError> {
    use integration::dates;
    let mut hires: Vec<ChangedHire> = db
        .watches()
        .flagged(LISTED)
        .await?
        .into_iter()
        .map(|f| {
            let start_date = f.start_date.unwrap_or_default();
            let days_to_start = dates::days_until(&start_date, today);
            ChangedHire {
                export_id: f.export_id,
                candidate: f
                    .candidate_name
                    .unwrap_or_else(|| format!("Export {}", f.export_id)),
                urgent: dates::is_urgent(days_to_start),
                days_to_start,
                start_date,
                summary: f.summary,
                fell_through: (!f.hired).then(|| f.hire_note.unwrap_or_default()),
            }
        })
        .collect();
    hires.sort_by_key(|h| {
        (
            !h.urgent,
            h.days_to_start.is_none(),
            h.days_to_start,
            h.export_id,
        )
    });
    Ok(hires)
}

/// The list, drawn from the dashboard's own data (one resource for the page: a second one of
/// its own here would be one more thing the page's HTML waits for).
#[component]
pub fn ChangedHires(list: Vec<ChangedHire>) -> impl IntoView {
    (!list.is_empty()).then(|| view! {
        <section class="panel attention changed-hires" aria-labelledby="changed-title" data-test="changed-hires">
            <h2 id="changed-title">"Changed since export"</h2>
            <p class="muted">"Exported hires whose Pinpoint record no longer matches HiBob, or that are no longer hired: decide on each export's page."</p>
            <ul class="attention-list">
                {list.into_iter().map(|h| view! {
                    <li class=if h.urgent { "attention-item urgent" } else { "attention-item" }>
                        <div class="attention-head">
                            {h.urgent.then(|| view! { <span class="badge urgent-badge">"Urgent"</span> })}
                            <a href=format!("/exports/{}#changes-heading", h.export_id)>{h.candidate.clone()}</a>
                            <span class="meta">{if h.start_date.is_empty() { "start date unknown".to_owned() } else { format!("starts {}", h.start_date) }}</span>
                        </div>
                        {h.fell_through.clone().map(|why| view! { <p class="meta error-text">{format!("No longer hired: {why}")}</p> })}
                        {(!h.summary.is_empty()).then(|| view! { <p class="meta">{h.summary.clone()}</p> })}
                    </li>
                }).collect_view()}
            </ul>
        </section>
    })
}
