use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use crate::{
    error::AppError,
    pages::{load_error, status_badge},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupItem {
    pub label: String,
    pub done: bool,
    pub hint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupOverview {
    /// Export counts per status, problems first.
    pub exports: Vec<(String, i64)>,
    pub hibob_configured: bool,
    pub pinpoint_configured: bool,
    pub items: Vec<SetupItem>,
}

#[server(endpoint = "setup_status")]
pub async fn setup_status() -> Result<SetupOverview, AppError> {
    use crate::ssr;
    use integration::credentials::CredentialKey as K;
    ssr::require(integration::users::Role::Viewer).await?;
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
    let mut exports = integration::export_queue::counts(&ssr::state()?.pool)
        .await
        .map_err(|e| ssr::fail(ssr::internal(e)))?;
    let rank = |s: &str| match s {
        "needs_attention" => 0,
        "dead" => 1,
        "running" => 2,
        "queued" => 3,
        _ => 4,
    };
    exports.sort_by_key(|(s, _)| rank(s));
    Ok(SetupOverview {
        exports,
        hibob_configured,
        pinpoint_configured,
        items,
    })
}

/// Sandbox mode only: a new sample hire, delivered to this console's webhook exactly as Pinpoint
/// would (signed, over HTTP).
#[server(endpoint = "send_test_webhook")]
pub async fn send_test_webhook() -> Result<String, AppError> {
    use crate::ssr::{self, fail, internal};
    use integration::credentials::CredentialKey;
    use secrecy::ExposeSecret;
    ssr::require(integration::users::Role::Operator).await?;
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
    let count = integration::export_queue::counts(&st.pool)
        .await
        .map_err(|e| fail(internal(e)))?
        .iter()
        .map(|(_, n)| *n)
        .sum::<i64>();
    let application_id = 2001 + u64::try_from(count).unwrap_or(0);
    let status = integration::webhook_intake::send_signed_hire(
        &st.own_webhook_url,
        secret.expose_secret(),
        application_id,
    )
    .await
    .map_err(|e| fail(internal(e)))?;
    Ok(format!(
        "Sent application_hired for sample application {application_id}: the webhook answered HTTP {status}."
    ))
}

#[component]
pub fn DashboardPage() -> impl IntoView {
    let test_hook = ServerAction::<SendTestWebhook>::new();
    let status = Resource::new(move || test_hook.version().get(), |_| setup_status());
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
                {move || test_hook.value().get().map(|r| match r {
                    Ok(m) => view! { <p class="notice ok" role="status">{m}</p> }.into_any(),
                    Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
                })}
            </section>
        })})}
        </Suspense>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match status.await {
                    Err(e) => load_error(e),
                    Ok(s) => {
                        let done = s.items.iter().filter(|i| i.done).count();
                        let total = s.items.len();
                        view! {
                            <section class="panel exports-overview">
                                <h2>"Exports"</h2>
                                {if s.exports.is_empty() {
                                    view! { <p class="muted">"No exports yet."</p> }.into_any()
                                } else {
                                    view! {
                                        <p class="counts">
                                            {s.exports.iter().map(|(status, n)| view! {
                                                <a class="count" href=format!("/exports?status={status}")>
                                                    {status_badge(status)} " " <strong>{*n}</strong>
                                                </a>
                                            }).collect_view()}
                                        </p>
                                    }.into_any()
                                }}
                            </section>
                            <section class="cards">
                                <Connection name="HiBob" configured=s.hibob_configured />
                                <Connection name="Pinpoint" configured=s.pinpoint_configured />
                            </section>
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
                            .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
fn Connection(name: &'static str, configured: bool) -> impl IntoView {
    view! {
        <div class="card">
            <h2>{name}</h2>
            {if configured {
                view! { <p class="status ok">"Configured"</p> }.into_any()
            } else {
                view! { <p class="status warn">"Not configured"</p> }.into_any()
            }}
            <a href="/settings">"Test the connection in Settings"</a>
        </div>
    }
}
