use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use crate::{
    error::AppError,
    pages::{
        chart::{DayLine, ExportsPerDay},
        load_error, outcome_notice, status_badge, when,
    },
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupItem {
    pub label: String,
    pub done: bool,
    pub hint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupOverview {
    pub hibob_configured: bool,
    pub pinpoint_configured: bool,
    pub items: Vec<SetupItem>,
}

#[server(endpoint = "setup_status", output = crate::codec::JsonText)]
pub async fn setup_status() -> Result<SetupOverview, AppError> {
    use crate::ssr;
    use integration::settings::credentials::CredentialKey as K;
    ssr::require(integration::access::users::Role::Viewer).await?;
    ssr::no_store();
    let creds = ssr::state()?.credentials;
    let hibob_configured = creds.hibob_configured().await?;
    let pinpoint_configured = creds.pinpoint_configured().await?;
    let plugin = creds.get(K::PluginToken).await?.is_some();
    let webhook = creds.get(K::PinpointWebhookSecret).await?.is_some();
    let items = vec![
        SetupItem {
            label: "HiBob service user".into(),
            done: hibob_configured,
            hint: "Needed to create employees and upload CVs.".into(),
        },
        SetupItem {
            label: "Pinpoint API key".into(),
            done: pinpoint_configured,
            hint: "Needed to read hired applications and comment the HiBob id back.".into(),
        },
        SetupItem {
            label: "Plugin token".into(),
            done: plugin,
            hint: "Pinpoint's Send to HiBob button is refused until it is set.".into(),
        },
        SetupItem {
            label: "Webhook signing secret".into(),
            done: webhook,
            hint: "application_hired webhooks are refused until it is set.".into(),
        },
    ];
    Ok(SetupOverview {
        hibob_configured,
        pinpoint_configured,
        items,
    })
}

/// Sandbox mode only: a new sample hire, delivered to this console's webhook exactly as Pinpoint
/// would (signed, over HTTP).
#[server(endpoint = "send_test_webhook", output = crate::codec::JsonText)]
pub async fn send_test_webhook() -> Result<TestHookAnswer, AppError> {
    use crate::{
        error::{fail, internal},
        ssr,
    };
    use integration::settings::credentials::CredentialKey;
    use secrecy::ExposeSecret;
    ssr::require(integration::access::users::Role::Operator).await?;
    let st = ssr::state()?;
    if !st.credentials.is_sandbox() {
        return Err(fail(AppError::Invalid(
            "Test webhooks are only available in sandbox mode.".into(),
        )));
    }
    let secret = st
        .credentials
        .get(CredentialKey::PinpointWebhookSecret)
        .await?
        .ok_or_else(|| fail(internal("sandbox without a webhook secret")))?;
    let count = st
        .db
        .queue()
        .counts()
        .await?
        .iter()
        .map(|(_, n)| *n)
        .sum::<i64>();
    let application_id = 2001 + u64::try_from(count).unwrap_or(0);
    let status = integration::webhooks::intake::send_signed_hire(
        &st.own_webhook_url,
        secret.expose_secret(),
        application_id,
    )
    .await
    .map_err(|e| fail(internal(e)))?;
    // the worker names the candidate once it has read the application: wait for it briefly
    let filter = integration::exports::search::ExportFilter {
        search: Some(application_id.to_string()),
        limit: Some(1),
        ..Default::default()
    };
    let mut export = None;
    for _ in 0..TEST_HOOK_POLLS {
        export = st.db.search().search(&filter).await?.into_iter().next();
        if export.as_ref().is_some_and(|e| e.candidate_name.is_some()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let who = export
        .as_ref()
        .and_then(|e| e.candidate_name.clone())
        .unwrap_or_else(|| format!("sample application {application_id}"));
    Ok(TestHookAnswer {
        message: format!("Sent the hire of {who}: the webhook answered HTTP {status}."),
        export_id: export.map(|e| e.id),
    })
}

/// Looks for the test hire's export (and its candidate's name) at most this many times, 250 ms
/// apart.
#[cfg(feature = "ssr")]
const TEST_HOOK_POLLS: usize = 8;

/// What a test webhook did: in words, and the export it made, to link to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestHookAnswer {
    pub message: String,
    pub export_id: Option<i64>,
}

/// A stopped export on the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttentionLine {
    pub id: i64,
    pub status: String,
    pub candidate: String,
    pub application_id: String,
    pub start_date: String,
    pub days_to_start: Option<i64>,
    pub urgent: bool,
    pub last_error: String,
}

/// A recorded call to HiBob or Pinpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallLine {
    pub at: String,
    pub what: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceState {
    pub name: String,
    pub configured: bool,
    pub last_ok: Option<CallLine>,
    pub last_failed: Option<CallLine>,
}

impl ServiceState {
    /// The newest recorded call failed.
    fn failing(&self) -> bool {
        match (&self.last_ok, &self.last_failed) {
            (Some(ok), Some(failed)) => failed.at > ok.at,
            (None, Some(_)) => true,
            _ => false,
        }
    }
}

/// Everything on the dashboard that moves as exports do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overview {
    /// Export counts per status, problems first.
    pub counts: Vec<(String, i64)>,
    /// The stopped exports, urgent and soonest-starting first (at most `ATTENTION_SHOWN`).
    pub attention: Vec<AttentionLine>,
    pub stopped: i64,
    pub days: Vec<DayLine>,
    pub services: Vec<ServiceState>,
    pub queued: i64,
    /// How long the longest-waiting queued export has waited, in words.
    pub oldest_queued: Option<String>,
    /// Exports in flight and what holds the rest back, in words; `None` without a worker.
    pub drain: Option<String>,
    /// Why exports are not running in this process, when they are not.
    pub exports_stopped: Option<String>,
    /// Which console process served the page and how many share the database, where several
    /// may (PostgreSQL).
    #[serde(default)]
    pub serving: Option<String>,
    /// Set while webhook deliveries cannot be stored (Pinpoint is answered 503 and retries).
    pub intake_failing: Option<String>,
    /// Webhook deliveries refused in the last day, by cause: hires that may be going missing.
    pub refusals: Vec<RefusalLine>,
    /// No hire has arrived for longer than the usual gap: (quiet for, usually within, last at).
    pub silence: Option<(String, String, String)>,
    /// Settings are the sandbox's own and read-only: nothing may send the person there.
    pub sandbox: bool,
    /// Exported hires that changed in Pinpoint since, or fell through (see `watch`).
    pub changed: Vec<crate::pages::dashboard_changes::ChangedHire>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalLine {
    pub cause: String,
    pub count: i64,
    pub last_at: String,
    pub advice: String,
}

pub const ATTENTION_SHOWN: i64 = 20;

#[server(endpoint = "dashboard", output = crate::codec::JsonText)]
pub async fn dashboard_overview() -> Result<Overview, AppError> {
    use crate::ssr;
    use integration::dashboard as d;
    let user = ssr::require(integration::access::users::Role::Viewer).await?;
    ssr::no_store();
    let st = ssr::state()?;
    let db = &st.db;
    let now = chrono::Utc::now();
    let today = now.date_naive();
    let mut counts = db.queue().counts().await?;
    let rank = |s: &str| match s {
        "needs_attention" => 0,
        "dead" => 1,
        "running" => 2,
        "queued" => 3,
        _ => 4,
    };
    counts.sort_by_key(|(s, _)| rank(s));
    let count_of = |wanted: &[&str]| -> i64 {
        counts
            .iter()
            .filter(|(s, _)| wanted.contains(&s.as_str()))
            .map(|(_, n)| n)
            .sum()
    };
    let stopped = count_of(&["needs_attention", "dead"]);
    let queued = count_of(&["queued"]);
    let attention = db
        .dashboard()
        .needing_attention(today, ATTENTION_SHOWN)
        .await?
        .into_iter()
        .map(|a| AttentionLine {
            candidate: a
                .candidate_name
                .unwrap_or_else(|| format!("Application {}", a.pinpoint_application_id)),
            id: a.id,
            status: a.status,
            application_id: a.pinpoint_application_id,
            start_date: a.start_date.unwrap_or_default(),
            days_to_start: a.days_to_start,
            urgent: a.urgent,
            last_error: a.last_error.unwrap_or_default(),
        })
        .collect();
    let days = db
        .dashboard()
        .per_day(today, d::CHART_DAYS)
        .await?
        .into_iter()
        .map(|c| DayLine {
            day: c.day,
            succeeded: c.succeeded,
            failed: c.failed,
            other: c.other,
        })
        .collect();
    // a failure's message says what went wrong; a success's detail is not needed here
    let call = |c: d::Call, keep_detail: bool| CallLine {
        at: c.at,
        what: crate::pages::export_detail::step_title(&c.step),
        detail: if keep_detail { c.detail } else { String::new() },
    };
    let mut services = Vec::new();
    for (name, configured, steps) in [
        (
            "HiBob",
            st.credentials.hibob_configured().await?,
            &d::HIBOB_STEPS[..],
        ),
        (
            "Pinpoint",
            st.credentials.pinpoint_configured().await?,
            &d::PINPOINT_STEPS[..],
        ),
    ] {
        let calls = db.dashboard().last_calls(steps).await?;
        services.push(ServiceState {
            name: name.to_owned(),
            configured,
            last_ok: calls.ok.map(|c| call(c, false)),
            last_failed: calls.failed.map(|c| call(c, true)),
        });
    }
    let oldest_queued = db
        .dashboard()
        .oldest_queued_since()
        .await?
        .and_then(|since| d::seconds_since(&since, now))
        .map(d::age_text);
    let health = st.health.snapshot();
    let day_ago = integration::db::time_text(now - chrono::Duration::hours(24));
    let sandbox = st.credentials.is_sandbox();
    let refusals = db
        .dashboard()
        .refusals_since(&day_ago)
        .await?
        .into_iter()
        .map(|r| RefusalLine {
            cause: serde_json::to_value(r.cause)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            count: r.count,
            last_at: r.last_at,
            advice: r
                .cause
                .advice(
                    sandbox,
                    user.role.allows(integration::access::users::Role::Admin),
                )
                .to_owned(),
        })
        .collect();
    let silence = db.dashboard().delivery_silence(now).await?.map(|s| {
        (
            d::age_text(s.quiet_secs),
            d::age_text(s.usual_secs),
            s.last_at,
        )
    });
    let changed = crate::pages::dashboard_changes::listed(db, today).await?;
    Ok(Overview {
        changed,
        sandbox,
        silence,
        refusals,
        counts,
        attention,
        stopped,
        days,
        services,
        queued,
        oldest_queued,
        drain: (health.drain.bound > 0).then(|| health.drain.describe()),
        exports_stopped: health.exports_stopped(),
        serving: integration::instance::serving_line(
            integration::instance::id(),
            &health.instances,
        ),
        intake_failing: health.intake_failing,
    })
}

#[component]
pub fn DashboardPage() -> impl IntoView {
    let test_hook = ServerAction::<SendTestWebhook>::new();
    let setup = Resource::new(|| (), |_| setup_status());
    let live = crate::live::use_live(crate::live::Notice::touches_watches);
    let overview = Resource::new(move || live.get(), |_| dashboard_overview());
    let sandbox = Resource::new(
        || (),
        |_| async {
            crate::auth::current_me()
                .await
                .is_some_and(|m| m.sandbox && m.can_operate())
        },
    );
    view! {
        <Title text="Dashboard" />
        <h1>"Dashboard"</h1>
        <Suspense fallback=|| ()>
        {move || Suspend::new(async move { sandbox.await.then(|| view! {
            <section class="panel sandbox-tools">
                <ActionForm action=test_hook attr:class="inline">
                    <button type="submit">"Send test webhook"</button>
                </ActionForm>
                " "
                <span class="muted">"Delivers a signed application_hired for a new sample candidate."</span>
                {move || test_hook.value().get().map(|answer| match answer {
                    Ok(a) => view! {
                        <p class="notice ok" role="status">
                            {a.message} " "
                            {a.export_id.map(|id| view! { <a href=format!("/exports/{id}")>{format!("Open export {id}")}</a> })}
                        </p>
                    }.into_any(),
                    Err(e) => outcome_notice(Err(e)),
                })}
            </section>
        })})}
        </Suspense>
        // a Transition keeps what is shown while a live update loads
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match overview.await {
                    Err(e) => load_error(e),
                    Ok(o) => view! { <OverviewPanels o /> }.into_any(),
                }
            })}
        </Transition>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match setup.await {
                    Err(e) => load_error(e),
                    Ok(s) => view! { <SetupPanel s /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn OverviewPanels(o: Overview) -> impl IntoView {
    let Overview {
        counts,
        attention,
        stopped,
        days,
        services,
        queued,
        oldest_queued,
        drain,
        exports_stopped,
        serving,
        intake_failing,
        refusals,
        silence,
        sandbox,
        changed,
    } = o;
    let shown = attention.len();
    let alerts = exports_stopped.is_some() || intake_failing.is_some();
    view! {
        {alerts.then(|| view! {
            <section class="panel alert" role="alert" aria-labelledby="running-title" data-test="not-running">
                <h2 id="running-title">"Exports are not running"</h2>
                {exports_stopped.map(|cause| view! { <p>{cause}</p> })}
                {intake_failing.map(|cause| view! {
                    <p>{format!("Webhook deliveries cannot be stored ({cause}); Pinpoint is told to deliver them again later. Check the database's disk.")}</p>
                })}
                <p class="muted">"Hires that arrive meanwhile are kept (or re-sent by Pinpoint) and exported once this clears; it clears by itself when the cause is gone."</p>
            </section>
        })}
        {(!refusals.is_empty()).then(|| {
            let total: i64 = refusals.iter().map(|r| r.count).sum();
            view! {
                <section class="panel alert" role="alert" aria-labelledby="refused-title" data-test="refused-deliveries">
                    <h2 id="refused-title">{format!(
                        "{total} webhook {} refused in the last 24 hours",
                        if total == 1 { "delivery" } else { "deliveries" }
                    )}</h2>
                    <p>"A refused hire does not reach HiBob until the cause is fixed and it is delivered or re-processed again. Refusals leave this count once their hire is delivered again or re-processed."</p>
                    <ul>
                        {refusals.into_iter().map(|r| view! {
                            <li data-cause=r.cause.clone()>
                                <strong>{format!("{} refused", r.count)}</strong>
                                {format!(" (last {}): ", crate::pages::when(&r.last_at))}
                                {r.advice}
                            </li>
                        }).collect_view()}
                    </ul>
                    <p>
                        <a href="/webhooks?outcome=rejected" rel="external">"See them in the webhook log"</a>
                        {(!sandbox).then(|| view! { " · " <a href="/settings">"Settings"</a> })}
                    </p>
                </section>
            }
        })}
        {silence.map(|(quiet, usual, last)| view! {
            <section class="panel alert" role="alert" aria-labelledby="quiet-title" data-test="no-deliveries">
                <h2 id="quiet-title">{format!("No hire has arrived from Pinpoint for {quiet}")}</h2>
                <p>
                    {format!("Recent hires came at most {usual} apart; the last one was accepted ")}
                    {crate::pages::when(&last)} ". "
                    "If people were moved to Hired since, Pinpoint is not delivering: check that its "
                    <code>"application_hired"</code> " webhook is enabled and points at this console's "
                    <code>"/webhooks/pinpoint"</code> ", and look for refused deliveries in the webhook log."
                </p>
                <p><a href="/webhooks" rel="external">"Webhook log"</a></p>
            </section>
        })}
        <section class="panel attention" aria-labelledby="attention-title">
            <h2 id="attention-title">"Needs attention"</h2>
            {if attention.is_empty() {
                view! { <p class="muted">"No export is stopped. Failed exports are listed here, the hires starting soonest first."</p> }.into_any()
            } else {
                view! {
                    <ul class="attention-list">
                        {attention.into_iter().map(|a| view! { <AttentionItem a /> }).collect_view()}
                    </ul>
                    {(i64::try_from(shown).unwrap_or(0) < stopped).then(|| view! {
                        <p><a href="/exports?status=needs_attention" rel="external">{format!("All {stopped} stopped exports →")}</a></p>
                    })}
                }.into_any()
            }}
        </section>
        <crate::pages::dashboard_changes::ChangedHires list=changed />
        <section class="panel exports-overview" aria-labelledby="exports-title">
            <h2 id="exports-title">"Exports"</h2>
            {if counts.is_empty() {
                view! { <p class="muted">"No exports yet."</p> }.into_any()
            } else {
                view! {
                    <p class="counts">
                        {counts.iter().map(|(status, n)| view! {
                            <a class="count" href=format!("/exports?status={status}") rel="external">
                                {status_badge(status)} " " <strong>{*n}</strong>
                            </a>
                        }).collect_view()}
                    </p>
                }.into_any()
            }}
            <p class="queue-age" data-test="queue-age">
                {match oldest_queued {
                    Some(age) => format!("{queued} queued; oldest queued: {age}"),
                    None => "Nothing queued.".to_owned(),
                }}
            </p>
            {drain.map(|d| view! { <p class="queue-drain" data-test="queue-drain">{d}</p> })}
            {serving.map(|s| view! { <p class="muted" data-test="serving">{s}</p> })}
            <h3>"Exports per day"</h3>
            <ExportsPerDay days />
        </section>
        <section class="cards">
            {services.into_iter().map(|s| view! { <Connection s /> }).collect_view()}
        </section>
    }
}

/// "starts in 3 days", "started 2 days ago", "start date unknown".
fn start_words(start_date: &str, days: Option<i64>) -> String {
    match days {
        None if start_date.is_empty() => "start date unknown".to_owned(),
        None => format!("starts {start_date}"),
        Some(0) => format!("starts today ({start_date})"),
        Some(1) => format!("starts tomorrow ({start_date})"),
        Some(d) if d > 1 => format!("starts in {d} days ({start_date})"),
        Some(-1) => format!("started yesterday ({start_date})"),
        Some(d) => format!("started {} days ago ({start_date})", -d),
    }
}

#[component]
fn AttentionItem(a: AttentionLine) -> impl IntoView {
    let start = start_words(&a.start_date, a.days_to_start);
    view! {
        <li class=if a.urgent { "attention-item urgent" } else { "attention-item" }>
            <div class="attention-head">
                {a.urgent.then(|| view! { <span class="badge urgent-badge">"Urgent"</span> })}
                {status_badge(&a.status)}
                <a href=format!("/exports/{}", a.id)>{a.candidate.clone()}</a>
                <span class="meta">{start}</span>
            </div>
            {(!a.last_error.is_empty()).then(|| view! { <p class="meta error-text">{a.last_error.clone()}</p> })}
            <p class="attention-fix">
                {if mapping_stopped(&a.last_error) {
                    view! { <a href=format!("/mappings?candidate=export:{}#preview", a.id)>"Fix in Mappings"</a> }.into_any()
                } else {
                    view! { <a href=format!("/exports/{}", a.id)>"Open to retry or resolve"</a> }.into_any()
                }}
            </p>
        </li>
    }
}

/// The export stopped because its mapping could not build the employee (the pipeline's words):
/// the fix is the mapping, and retrying with the same one would stop again.
fn mapping_stopped(last_error: &str) -> bool {
    last_error.starts_with("Mapping version ")
        && last_error.contains("could not build the employee")
}

#[component]
fn SetupPanel(s: SetupOverview) -> impl IntoView {
    let done = s.items.iter().filter(|i| i.done).count();
    let total = s.items.len();
    view! {
        <section class="panel">
            <h2>"Set-up"</h2>
            <p class="muted">{format!("{done} of {total} done.")}</p>
            <ul class="checklist">
                {s
                    .items
                    .into_iter()
                    .map(|item| {
                        view! {
                            <li class=if item.done { "done" } else { "todo" }>
                                <span class="tick" aria-hidden="true">
                                    {if item.done { "✓" } else { "•" }}
                                </span>
                                <strong>{item.label}</strong>
                                <span class="sr-only">
                                    {if item.done { " (done)" } else { " (to do)" }}
                                </span>
                                " — "
                                {item.hint}
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
            <p>
                <a href="/settings">"Open settings"</a>
            </p>
        </section>
    }
}

#[component]
fn Connection(s: ServiceState) -> impl IntoView {
    let (class, state) = match (s.configured, s.failing(), &s.last_ok) {
        (false, _, _) => ("status warn", "Not configured"),
        (true, true, _) => ("status err", "Last call failed"),
        (true, false, Some(_)) => ("status ok", "Working"),
        (true, false, None) => ("status ok", "Configured, not called yet"),
    };
    let call = |label: &'static str, c: Option<CallLine>| {
        c.map(|c| {
            view! {
                <dt>{label}</dt>
                <dd>
                    {when(&c.at)} <span class="meta">{c.what}</span>
                    {(!c.detail.is_empty())
                        .then(|| view! { <span class="meta error-text">{c.detail}</span> })}
                </dd>
            }
        })
    };
    view! {
        <div class="card connection">
            <h2>{s.name.clone()}</h2>
            <p class=class>{state}</p>
            <dl class="calls">
                {call("Last successful call", s.last_ok)}
                {call("Last failed call", s.last_failed)}
            </dl>
            <a href="/settings">"Test the connection in Settings"</a>
        </div>
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn start_dates_in_words() {
        let w = super::start_words;
        assert_eq!(w("", None), "start date unknown");
        assert_eq!(w("2026-11-25", Some(3)), "starts in 3 days (2026-11-25)");
        assert_eq!(w("2026-11-22", Some(0)), "starts today (2026-11-22)");
        assert_eq!(w("2026-11-20", Some(-2)), "started 2 days ago (2026-11-20)");
    }
}
