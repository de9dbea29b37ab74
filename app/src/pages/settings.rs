use std::collections::HashMap;

use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use crate::{
    error::AppError,
    pages::{load_error, when, FormResult},
};

/// One credential as the browser may see it: secrets arrive masked, never whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialRow {
    pub key: String,
    pub label: String,
    pub help: String,
    pub env_var: String,
    pub secret: bool,
    /// environment, console, default or unset
    pub source: String,
    pub display: Option<String>,
    pub updated_at: Option<String>,
    pub updated_by: Option<String>,
    /// Why the value in force is not used, e.g. an alert webhook saved over http in the sandbox.
    #[serde(default)]
    pub problem: Option<String>,
    /// The key of the section it is shown in.
    pub section: String,
}

/// A heading of the page: its key, title and what its values are for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionView {
    pub key: String,
    pub title: String,
    pub intro: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsView {
    pub rows: Vec<CredentialRow>,
    pub sections: Vec<SectionView>,
    pub can_edit: bool,
    /// Operators and admins may test the connections and alerts.
    pub can_test: bool,
    /// Why the page is read-only for this person, when it is.
    pub read_only_note: Option<String>,
}

/// Why Settings is read-only for someone of `role`, in one sentence; none for admins.
#[cfg(feature = "ssr")]
fn read_only_note(role: integration::access::users::Role) -> Option<String> {
    use integration::access::users::Role;
    match role {
        Role::Admin => None,
        Role::Operator => Some(
            "You are signed in as an operator: you can read these settings and test the \
             connections, but only an admin can change them."
                .to_owned(),
        ),
        Role::Viewer => Some(
            "You are signed in as a viewer: you can read these settings, but only an admin can \
             change them."
                .to_owned(),
        ),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub service: String,
    pub ok: bool,
    pub summary: String,
}

#[server(endpoint = "settings", output = crate::codec::JsonText)]
pub async fn get_settings() -> Result<SettingsView, AppError> {
    use crate::ssr;
    use integration::{
        access::users::Role,
        settings::{credentials::Source, sections::Section},
    };
    let section_key = |s: Section| {
        serde_json::to_value(s)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let user = ssr::require(Role::Viewer).await?;
    ssr::no_store();
    let rows = ssr::state()?
        .credentials
        .view()
        .await?
        .into_iter()
        .map(|v| CredentialRow {
            section: section_key(Section::of(v.key)),
            key: v.key.as_str().to_owned(),
            label: v.label,
            help: v.help,
            env_var: v.env_var,
            secret: v.secret,
            source: match v.source {
                Source::Sandbox => "sandbox",
                Source::Environment => "environment",
                Source::Console => "console",
                Source::Default => "default",
                Source::Unset => "unset",
            }
            .to_owned(),
            display: v.display,
            updated_at: v.updated_at,
            updated_by: v.updated_by,
            problem: v.problem,
        })
        .collect();
    Ok(SettingsView {
        rows,
        sections: Section::ALL
            .into_iter()
            .map(|s| SectionView {
                key: section_key(s),
                title: s.title().to_owned(),
                intro: s.intro().to_owned(),
            })
            .collect(),
        can_edit: user.role.allows(Role::Admin),
        can_test: user.role.allows(Role::Operator),
        read_only_note: read_only_note(user.role),
    })
}

/// `values[key]`: a new value (empty keeps the current one); `clear[key]`: remove a console value.
#[server(endpoint = "save_settings", output = crate::codec::JsonText)]
pub async fn save_settings(
    values: Option<HashMap<String, String>>,
    clear: Option<HashMap<String, String>>,
) -> Result<Vec<String>, AppError> {
    use crate::{error::fail, ssr};
    use integration::{
        access::users::Role,
        settings::credentials::{CredentialChange, CredentialKey},
    };
    use secrecy::SecretString;
    let user = ssr::require(Role::Admin).await?;
    let mut changes = Vec::new();
    for (name, value) in values.unwrap_or_default() {
        let key = CredentialKey::parse(&name)
            .ok_or_else(|| fail(AppError::Invalid(format!("unknown setting {name:?}"))))?;
        changes.push(CredentialChange {
            key,
            value: Some(SecretString::from(value)),
        });
    }
    for name in clear.unwrap_or_default().into_keys() {
        let key = CredentialKey::parse(&name)
            .ok_or_else(|| fail(AppError::Invalid(format!("unknown setting {name:?}"))))?;
        changes.retain(|c| c.key != key);
        changes.push(CredentialChange { key, value: None });
    }
    let actor = ssr::actor(&user).await;
    let changed = ssr::state()?.credentials.save(&actor, changes).await?;
    tracing::info!(changed = changed.len(), "credentials saved");
    Ok(changed)
}

#[server(endpoint = "test_connection", output = crate::codec::JsonText)]
pub async fn test_connection(service: String) -> Result<CheckResult, AppError> {
    use crate::{error::fail, ssr};
    ssr::require(integration::access::users::Role::Operator).await?;
    let creds = ssr::state()?.credentials;
    let check = match service.as_str() {
        "hibob" => integration::hibob::check_configured(&creds).await?,
        "pinpoint" => integration::pinpoint::check_configured(&creds).await?,
        other => {
            return Err(fail(AppError::Invalid(format!(
                "unknown service {other:?}: use hibob or pinpoint"
            ))))
        }
    };
    Ok(CheckResult {
        service: if service == "hibob" {
            "HiBob"
        } else {
            "Pinpoint"
        }
        .to_owned(),
        ok: check.ok,
        // in sandbox mode the answer came from the simulator, which must not pass for the service
        summary: if creds.is_sandbox() {
            format!(
                "{} (sandbox: this reached the simulator on this machine, not the real service)",
                check.summary
            )
        } else {
            check.summary
        },
    })
}

/// Sends a test message on every alert channel set up, and says how each went.
#[server(endpoint = "send_test_alert", output = crate::codec::JsonText)]
pub async fn send_test_alert() -> Result<Vec<CheckResult>, AppError> {
    use crate::{error::fail, ssr};
    ssr::require(integration::access::users::Role::Operator).await?;
    let results = ssr::state()?.alerts.send_test().await?;
    if results.is_empty() {
        return Err(fail(AppError::Invalid(
            "No alert channel is set up: enter an alert webhook, or a mail server with a sender \
             and recipients."
                .into(),
        )));
    }
    Ok(results
        .into_iter()
        .map(|(channel, result)| CheckResult {
            service: channel.label().to_owned(),
            ok: result.is_ok(),
            summary: match result {
                Ok(()) => "the test alert was accepted".to_owned(),
                Err(e) => e,
            },
        })
        .collect())
}

/// The welcome wizards HiBob offers, to choose the onboarding invitation from.
#[server(endpoint = "hibob_wizards", output = crate::codec::JsonText)]
pub async fn hibob_wizards() -> Result<Vec<(u64, String)>, AppError> {
    use crate::{error::fail, ssr};
    ssr::require(integration::access::users::Role::Operator).await?;
    let creds = ssr::state()?.credentials;
    let client = integration::hibob::Client::from_credentials(&creds)
        .await?
        .ok_or_else(|| fail(AppError::Invalid("HiBob is not configured.".into())))?;
    let mut log = integration::outbound::CallLog::new();
    client.wizards(&mut log).await.map_err(|e| {
        fail(AppError::Invalid(format!(
            "HiBob did not list its welcome wizards: {e}"
        )))
    })
}

fn source_label(source: &str, env_var: &str) -> String {
    match source {
        "environment" => format!("set by {env_var} (read-only)"),
        "sandbox" => "sandbox simulator (read-only)".to_owned(),
        "console" => "saved here".to_owned(),
        "default" => "default".to_owned(),
        _ => "not set".to_owned(),
    }
}

#[component]
pub fn SettingsPage() -> impl IntoView {
    let save = ServerAction::<SaveSettings>::new();
    let settings = Resource::new(move || save.version().get(), |_| get_settings());
    view! {
        <Title text="Settings" />
        <h1>"Settings"</h1>
        <p class="lead">
            "Credentials for Pinpoint and HiBob, onboarding and alerts. Secrets are stored encrypted and never shown again in full; "
            "leave a field empty to keep its current value."
        </p>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match settings.await {
                    Err(e) => load_error(e),
                    Ok(view) => {
                        let can_edit = view.can_edit;
                        let can_test = view.can_test;
                        let rows = view.rows;
                        view! {
                            {view.read_only_note.map(|note| view! {
                                <p class="notice read-only-note" role="status" data-test="read-only">{note}</p>
                            })}
                            {can_edit.then(|| view! {
                                <p class="muted" data-test="base-url-rule">
                                    "Base URLs entered here must start with https:// and, unless the operator allows private ones, reach a public address. "
                                    "Changing a base URL clears the credentials sent to it (HiBob: service user ID and token; "
                                    "Pinpoint: API key) unless you enter new ones in the same save."
                                </p>
                            })}
                            <ActionForm action=save attr:class="settings-form">
                                {view.sections.into_iter().map(|section| {
                                    let heading = format!("settings-{}", section.key);
                                    let mine: Vec<CredentialRow> = rows.iter().filter(|r| r.section == section.key).cloned().collect();
                                    view! {
                                        <section class="panel settings-section" aria-labelledby=heading>
                                            <h2 id=format!("settings-{}", section.key)>{section.title}</h2>
                                            <p class="muted section-intro">{section.intro}</p>
                                            {mine.into_iter().map(|row| view! { <CredentialField row can_edit /> }).collect_view()}
                                            {can_test.then(|| view! { <SectionTools section=section.key /> })}
                                        </section>
                                    }
                                }).collect_view()}
                                <Show when=move || can_edit>
                                    <button type="submit" class="primary">"Save settings"</button>
                                </Show>
                                <FormResult value=move || save.value().get() ok="Settings saved." />
                            </ActionForm>
                        }
                            .into_any()
                    }
                }
            })}
        </Transition>
        <crate::pages::data_settings::DataSettingsPanel />
    }
}

#[component]
fn CredentialField(row: CredentialRow, can_edit: bool) -> impl IntoView {
    let id = format!("cred-{}", row.key);
    let read_only = !can_edit || matches!(row.source.as_str(), "environment" | "sandbox");
    let current = row.display.clone().unwrap_or_else(|| "—".to_owned());
    let updated = row.updated_at.clone().map(|at| match &row.updated_by {
        Some(by) => format!("Updated {} by {by}", when(&at)),
        None => format!("Updated {}", when(&at)),
    });
    let clearable = can_edit && row.source == "console";
    view! {
        <div class="field">
            <div class="field-head">
                <label for=id.clone()>{row.label.clone()}</label>
                <span class=format!("badge source-{}", row.source)>
                    {source_label(&row.source, &row.env_var)}
                </span>
            </div>
            <p class="current">
                "Current: " <code class="value">{current}</code>
            </p>
            {row.problem.clone().map(|why| view! {
                <p class="error" role="alert" data-test="credential-problem">{why}</p>
            })}
            {(!read_only)
                .then(|| {
                    view! {
                        <input
                            id=id.clone()
                            name=format!("values[{}]", row.key)
                            type=if row.secret { "password" } else { "text" }
                            autocomplete="off"
                            spellcheck="false"
                            placeholder=if row.secret { "Enter a new value to replace it" } else { "" }
                        />
                    }
                })}
            {clearable
                .then(|| {
                    view! {
                        <label class="check">
                            <input type="checkbox" name=format!("clear[{}]", row.key) value="1" />
                            " Clear"
                        </label>
                    }
                })}
            <p class="help">{row.help.clone()}</p>
            {updated.map(|u| view! { <p class="meta">{u}</p> })}
        </div>
    }
}

/// A section's checks, beside its values: a connection test, the test alert, HiBob's welcome
/// wizards. Buttons of the page's one form that only run the check (they need the live page).
#[component]
fn SectionTools(section: String) -> impl IntoView {
    let test = ServerAction::<TestConnection>::new();
    let alert = ServerAction::<SendTestAlert>::new();
    let wizards = ServerAction::<HibobWizards>::new();
    let live = crate::pages::interactive();
    let service = |name: &'static str| {
        move |_| {
            test.dispatch(TestConnection {
                service: name.to_owned(),
            });
        }
    };
    let buttons = match section.as_str() {
        "pinpoint" => view! {
            <button type="button" disabled=move || !live.get() on:click=service("pinpoint")>"Test Pinpoint"</button>
        }.into_any(),
        "hibob" => view! {
            <button type="button" disabled=move || !live.get() on:click=service("hibob")>"Test HiBob"</button>
        }.into_any(),
        "onboarding" => view! {
            <button type="button" disabled=move || !live.get() on:click=move |_| { wizards.dispatch(HibobWizards {}); }>"List HiBob welcome wizards"</button>
        }.into_any(),
        "alerts" => view! {
            <button type="button" disabled=move || !live.get() on:click=move |_| { alert.dispatch(SendTestAlert {}); }>"Send test alert"</button>
        }.into_any(),
        _ => ().into_any(),
    };
    view! {
        <div class="buttons">{buttons}</div>
        {move || test.pending().get().then(|| view! { <p class="muted">"Testing…"</p> })}
        {move || test.value().get().map(|r| match r {
            Ok(r) => view! {
                <p class=if r.ok { "notice ok" } else { "notice error" } role="status" data-test="connection-result">
                    <strong>{r.service}": "</strong>{r.summary}
                </p>
            }.into_any(),
            Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
        })}
        {move || alert.value().get().map(|r| match r {
            Ok(results) => results
                .into_iter()
                .map(|r| view! {
                    <p class=if r.ok { "notice ok" } else { "notice error" } role="status" data-test="alert-result">
                        <strong>{r.service}": "</strong>{r.summary}
                    </p>
                })
                .collect_view()
                .into_any(),
            Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
        })}
        {move || wizards.value().get().map(|r| match r {
            Ok(list) if list.is_empty() => view! { <p class="notice warn" role="status">"HiBob lists no welcome wizards."</p> }.into_any(),
            Ok(list) => view! {
                <div role="status">
                    <p class="muted">"Enter one of these numbers as the HiBob welcome wizard to invite every new employee:"</p>
                    <ul>{list.into_iter().map(|(id, name)| view! { <li><code>{id}</code>" — "{name}</li> }).collect_view()}</ul>
                </div>
            }.into_any(),
            Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
        })}
    }
}
