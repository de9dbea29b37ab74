//! The mapping editor: HiBob target fields with their templates, fallbacks or fixed values,
//! checked as you type, previewed on a real candidate, saved as a new version.

use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use crate::{
    error::AppError,
    pages::{
        interactive, load_error,
        mapping_form::{EditorRow, EditorVariable, IssueView},
        mapping_preview::{PreviewMapping, PreviewPanel},
        mapping_retry::RetryFixedExport,
        when, FormResult,
    },
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetView {
    pub id: String,
    pub label: String,
    pub kind: String,
    pub required: bool,
    pub choices: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariableView {
    pub name: String,
    pub group: String,
    pub description: String,
    pub sample: String,
    pub settable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionLine {
    pub id: i64,
    pub author: String,
    pub note: String,
    pub created_at: String,
    pub exports: i64,
    pub restored_from: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingView {
    pub version: i64,
    pub author: String,
    pub created_at: String,
    pub note: String,
    pub rows: Vec<EditorRow>,
    pub variables: Vec<EditorVariable>,
    pub issues: Vec<IssueView>,
    pub targets: Vec<TargetView>,
    pub catalogue: Vec<VariableView>,
    pub filters: Vec<(String, String)>,
    pub schema_note: Option<String>,
    /// Recent exports to preview on: (export id, label), with the one asked for first.
    pub recent: Vec<(i64, String)>,
    /// The export to preselect in the preview, when the page was opened to fix one.
    pub chosen: Option<i64>,
    pub versions: Vec<VersionLine>,
    pub can_edit: bool,
}

#[server(endpoint = "mapping_editor", output = crate::codec::JsonText)]
pub async fn mapping_editor(
    /// An export to preview first (the "fix in Mappings" link of one that failed).
    #[server(default)]
    candidate: Option<i64>,
) -> Result<MappingView, AppError> {
    use crate::{
        error::{fail, internal},
        pages::mapping_form::convert,
        ssr,
    };
    use integration::mapping::variables;
    let user = ssr::require(integration::access::users::Role::Viewer).await?;
    ssr::no_store();
    let st = ssr::state()?;
    let current = st
        .db
        .mappings()
        .current()
        .await
        .map_err(|e| fail(internal(e)))?;
    let targets = st.mappings.targets().await;
    let issues = st.mappings.lint(&current.document).await;
    let sample = variables::sample(&st.mappings.setting(chrono::Utc::now().date_naive()).await);
    let label = |id: i64, name: Option<String>, application: &str, status: &str| {
        let who = name.unwrap_or_else(|| format!("application {application}"));
        (
            id,
            format!("{who} — export {id} ({})", status.replace('_', " ")),
        )
    };
    let mut recent: Vec<(i64, String)> = st
        .db
        .search()
        .search(&integration::exports::search::ExportFilter {
            source: Some("webhook".into()),
            limit: Some(15),
            ..Default::default()
        })
        .await?
        .into_iter()
        .filter(|e| Some(e.id) != candidate)
        .map(|e| {
            label(
                e.id,
                e.candidate_name,
                &e.pinpoint_application_id,
                &e.status,
            )
        })
        .collect();
    let mut chosen = None;
    if let Some(id) = candidate {
        if let Some(e) = st.db.queue().find(id).await? {
            chosen = Some(e.id);
            recent.insert(
                0,
                label(
                    e.id,
                    e.candidate_name,
                    &e.pinpoint_application_id,
                    &e.status,
                ),
            );
        }
    }
    let versions = st
        .db
        .mappings()
        .versions(30)
        .await?
        .into_iter()
        .map(|v| VersionLine {
            id: v.id,
            author: v.author,
            note: v.note,
            created_at: v.created_at,
            exports: v.exports,
            restored_from: v.restored_from,
        })
        .collect();
    Ok(MappingView {
        version: current.id,
        author: current.author,
        created_at: current.created_at,
        note: current.note,
        rows: convert::rows(&current.document),
        variables: convert::variables(&current.document),
        issues: convert::issues(&issues),
        targets: targets
            .fields
            .into_iter()
            .map(|t| TargetView {
                label: format!("{} · {} ({})", t.name, t.category, t.kind),
                id: t.id,
                kind: t.kind,
                required: t.required,
                choices: t.choices,
            })
            .collect(),
        catalogue: variables::CATALOGUE
            .iter()
            .map(|v| VariableView {
                name: v.name.to_owned(),
                group: v.group.label().to_owned(),
                description: v.description.to_owned(),
                sample: match v.group {
                    variables::Group::Raw => "(object)".to_owned(),
                    _ => sample.get(v.name).unwrap_or_default().to_owned(),
                },
                settable: v.settable,
            })
            .collect(),
        filters: integration::mapping::templates::FILTERS
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect(),
        schema_note: targets.note,
        recent,
        chosen,
        versions,
        can_edit: user.role.allows(integration::access::users::Role::Operator),
    })
}

#[server(endpoint = "lint_mapping", output = crate::codec::JsonText)]
pub async fn lint_mapping(
    #[server(default)] rows: Vec<EditorRow>,
    #[server(default)] variables: Vec<EditorVariable>,
) -> Result<Vec<IssueView>, AppError> {
    use crate::{pages::mapping_form::convert, ssr};
    ssr::require(integration::access::users::Role::Operator).await?;
    let st = ssr::state()?;
    let doc = convert::document(&rows, &variables);
    Ok(convert::issues(&st.mappings.lint(&doc).await))
}

#[server(endpoint = "save_mapping", output = crate::codec::JsonText)]
pub async fn save_mapping(
    #[server(default)] rows: Vec<EditorRow>,
    #[server(default)] variables: Vec<EditorVariable>,
    #[server(default)] note: String,
    edited: i64,
) -> Result<i64, AppError> {
    use crate::{pages::mapping_form::convert, ssr};
    let user = ssr::require(integration::access::users::Role::Operator).await?;
    let st = ssr::state()?;
    let actor = ssr::actor(&user).await;
    let doc = convert::document(&rows, &variables);
    convert::saved(st.mappings.save(&actor, &doc, &note, edited).await)
}

/// Days of hires a save over warnings is checked against.
pub const RECENT_DAYS: i64 = 30;

/// What the edited mapping would have done to the most recent webhook hires of the last
/// [`RECENT_DAYS`] days, asked once before saving over warnings.
#[server(endpoint = "mapping_effect", output = crate::codec::JsonText)]
pub async fn mapping_effect(
    #[server(default)] rows: Vec<EditorRow>,
    #[server(default)] variables: Vec<EditorVariable>,
) -> Result<String, AppError> {
    use crate::{pages::mapping_form::convert, ssr};
    use integration::{exports::search, mapping::service::RECENT_HIRES_CHECKED};
    ssr::require(integration::access::users::Role::Operator).await?;
    let st = ssr::state()?;
    let doc = convert::document(&rows, &variables);
    let since = chrono::Utc::now().date_naive() - chrono::Days::new(RECENT_DAYS.unsigned_abs());
    let recent: Vec<i64> = st
        .db
        .search()
        .search(&search::ExportFilter {
            source: Some("webhook".into()),
            created_from: Some(since.format("%Y-%m-%d").to_string()),
            limit: i64::try_from(RECENT_HIRES_CHECKED).ok(),
            ..Default::default()
        })
        .await?
        .into_iter()
        .map(|e| e.id)
        .collect();
    let effect = st.mappings.recent_effect(&doc, &recent).await;
    Ok(convert::effect_text(effect, RECENT_DAYS))
}

#[server(endpoint = "refresh_hibob_fields", output = crate::codec::JsonText)]
pub async fn refresh_hibob_fields() -> Result<String, AppError> {
    use crate::ssr;
    ssr::require(integration::access::users::Role::Operator).await?;
    let st = ssr::state()?;
    Ok(match st.mappings.refresh_schema().await {
        None => "HiBob's fields and lists were read again.".to_owned(),
        Some(why) => format!("HiBob's fields could not be read: {why}"),
    })
}

/// Lints what `edited` returns each time it changes, once the typing pauses (not on the first
/// run: the page arrived with its lint). Only in the browser; the server renders the page's lint.
pub fn lint_when_idle<F>(lint: ServerAction<LintMapping>, edited: F)
where
    F: Fn() -> (Vec<EditorRow>, Vec<EditorVariable>) + Send + Sync + 'static,
{
    #[cfg(feature = "hydrate")]
    {
        let pending: StoredValue<Option<leptos::leptos_dom::helpers::TimeoutHandle>> =
            StoredValue::new(None);
        let first = StoredValue::new(true);
        Effect::new(move |_| {
            let (rows, variables) = edited();
            if first.get_value() {
                first.set_value(false);
                return;
            }
            if let Some(h) = pending.get_value() {
                h.clear();
            }
            let handle = set_timeout_with_handle(
                move || {
                    lint.dispatch(LintMapping { rows, variables });
                },
                std::time::Duration::from_millis(450),
            )
            .ok();
            pending.set_value(handle);
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (lint, edited);
}

/// Variables whose name starts with what follows the last unclosed `{{`, for completing a
/// template as it is typed.
pub fn completions<'a>(text: &str, names: &'a [String]) -> Vec<&'a str> {
    let Some(open) = text.rfind("{{") else {
        return Vec::new();
    };
    let tail = &text[open + 2..];
    if tail.contains("}}") || tail.contains('|') {
        return Vec::new();
    }
    let partial = tail.trim_start();
    if partial.contains(char::is_whitespace) {
        return Vec::new();
    }
    names
        .iter()
        .map(String::as_str)
        .filter(|n| n.starts_with(partial) && *n != partial)
        .take(8)
        .collect()
}

/// The text with the unclosed `{{ partial` at its end completed to `{{ name }}`.
pub fn complete(text: &str, name: &str) -> String {
    match text.rfind("{{") {
        Some(open) => format!("{}{{{{ {name} }}}}", &text[..open]),
        None => format!("{text}{{{{ {name} }}}}"),
    }
}

#[derive(Clone, Copy)]
struct RowState {
    key: usize,
    target: RwSignal<String>,
    sources: RwSignal<String>,
    fixed: RwSignal<String>,
}

impl RowState {
    fn new(key: usize, row: &EditorRow) -> Self {
        Self {
            key,
            target: RwSignal::new(row.target.clone()),
            sources: RwSignal::new(row.sources.clone()),
            fixed: RwSignal::new(row.fixed.clone()),
        }
    }

    fn snapshot(&self) -> EditorRow {
        EditorRow {
            target: self.target.get(),
            sources: self.sources.get(),
            fixed: self.fixed.get(),
        }
    }
}

#[component]
pub fn MappingsPage() -> impl IntoView {
    let save = ServerAction::<SaveMapping>::new();
    let refresh = ServerAction::<RefreshHibobFields>::new();
    let query = leptos_router::hooks::use_query_map();
    let candidate = move || {
        query.with(|q| {
            q.get("candidate")
                .and_then(|c| c.strip_prefix("export:").unwrap_or(&c).parse::<i64>().ok())
        })
    };
    let data = Resource::new(
        move || (save.version().get(), refresh.version().get(), candidate()),
        |(_, _, candidate)| mapping_editor(candidate),
    );
    view! {
        <Title text="Mappings" />
        <h1>"Mappings"</h1>
        <p class="lead">
            "How a Pinpoint hire becomes a HiBob employee. Each HiBob field takes templates tried in order: the first that is not empty wins. "
            "The fixed value is the last resort, used only when every template is empty (or there is none), so it never replaces a candidate's own data. "
            "Templates use Pinpoint's variables, like " <code>"{{ candidate_email }}"</code>
            ", and filters, like " <code>"{{ candidate_last_name | upper }}"</code> ". "
            <a href="/variables">"All variables and filters"</a> "."
        </p>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => load_error(e),
                    Ok(view) => view! { <Editor view save refresh /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Editor(
    view: MappingView,
    save: ServerAction<SaveMapping>,
    refresh: ServerAction<RefreshHibobFields>,
) -> impl IntoView {
    let can_edit = view.can_edit;
    // the server's HTML can be read at once, but an edit made before the page is live would be
    // lost when it hydrates: the inputs wait for it
    let live = interactive();
    let locked = move || !can_edit || !live.get();
    let next_key = StoredValue::new(view.rows.len() + 1);
    let rows = RwSignal::new(
        view.rows
            .iter()
            .enumerate()
            .map(|(i, r)| RowState::new(i, r))
            .collect::<Vec<_>>(),
    );
    let custom = StoredValue::new(view.variables.clone());
    let issues = RwSignal::new(view.issues.clone());
    let lint = ServerAction::<LintMapping>::new();
    let preview = ServerAction::<PreviewMapping>::new();
    Effect::new(move |_| {
        if let Some(Ok(found)) = lint.value().get() {
            issues.set(found);
        }
    });
    let snapshot = move || {
        rows.get()
            .iter()
            .map(RowState::snapshot)
            .collect::<Vec<_>>()
    };
    lint_when_idle(lint, move || (snapshot(), custom.get_value()));
    let names: Vec<String> = view
        .catalogue
        .iter()
        .map(|v| v.name.clone())
        .chain(view.variables.iter().map(|v| v.name.clone()))
        .collect();
    let names = StoredValue::new(names);
    let targets = StoredValue::new(view.targets.clone());
    let add_row = move |_| {
        let key = next_key.get_value();
        next_key.set_value(key + 1);
        rows.update(|r| r.push(RowState::new(key, &EditorRow::default())));
    };
    let global_issues = move || {
        issues
            .get()
            .into_iter()
            .filter(|i| i.field.is_none() && i.variable.is_none())
            .collect::<Vec<_>>()
    };
    let variable_issues = move || {
        issues
            .get()
            .into_iter()
            .filter(|i| i.variable.is_some())
            .collect::<Vec<_>>()
    };
    let error_count = move || issues.get().iter().filter(|i| i.error).count();
    let warning_count = move || issues.get().iter().filter(|i| !i.error).count();
    let effect = ServerAction::<MappingEffect>::new();
    let version = view.version;
    let chosen = view.chosen;
    let recent = view.recent.clone();
    let versions = view.versions.clone();
    let schema_note = view.schema_note.clone();
    view! {
        <section class="panel version-head">
            <p>
                <strong>{format!("Version {}", view.version)}</strong>
                " is in force — "
                {if view.author == "built-in" { "built into the console".to_owned() } else { format!("saved by {}", view.author) }}
                " on " {when(&view.created_at)}
                {(!view.note.is_empty()).then(|| format!(": “{}”", view.note))}
                ". "
                <a href=format!("/mappings/versions/{}", view.version)>"See what changed"</a>
            </p>
            {schema_note.map(|n| view! {
                <p class="notice warn" role="status">
                    "HiBob's field list could not be read (" {n} "), so only the required fields are offered and list values are not checked."
                </p>
            })}
            {can_edit.then(|| view! {
                <ActionForm action=refresh attr:class="inline">
                    <button type="submit" class="secondary">"Refresh HiBob fields"</button>
                </ActionForm>
                {move || refresh.value().get().map(|r| match r {
                    Ok(text) => view! { <span class="muted" role="status">{text}</span> }.into_any(),
                    Err(e) => view! { <span class="error" role="alert">{e.to_string()}</span> }.into_any(),
                })}
            })}
        </section>

        <datalist id="hibob-fields">
            {view.targets.iter().map(|t| view! { <option value=t.id.clone()>{t.label.clone()}</option> }).collect_view()}
        </datalist>

        <ActionForm action=save attr:class="mapping-form" attr:id="mapping-form">
            <input type="hidden" name="edited" value=version.to_string() />
            {view.variables.iter().enumerate().map(|(i, v)| view! {
                <input type="hidden" name=format!("variables[{i}][name]") value=v.name.clone() />
                <input type="hidden" name=format!("variables[{i}][template]") value=v.template.clone() />
                <input type="hidden" name=format!("variables[{i}][description]") value=v.description.clone() />
            }).collect_view()}
            <div class="lint-summary" role="status" aria-live="polite">
                {move || {
                    let errors = error_count();
                    let warnings = warning_count();
                    match (errors, warnings) {
                        (0, 0) => view! { <p class="notice ok">"No problems found."</p> }.into_any(),
                        (0, w) => view! { <p class="notice warn">{format!("{w} warning(s); the mapping can be saved.")}</p> }.into_any(),
                        (e, _) => view! { <p class="notice error">{format!("{e} error(s) to fix before saving.")}</p> }.into_any(),
                    }
                }}
                <ul class="issues">
                    {move || global_issues().into_iter().map(issue_item).collect_view()}
                    {move || variable_issues().into_iter().map(|i| view! {
                        <li class=if i.error { "issue error" } else { "issue warn" }>
                            {i.text} " — " <a href="/variables">"edit variables"</a>
                        </li>
                    }).collect_view()}
                </ul>
            </div>
            <table class="mapping-table">
                <thead>
                    <tr>
                        <th scope="col">"HiBob field"</th>
                        <th scope="col">"Templates, one per line (first non-empty wins)"</th>
                        <th scope="col">"Fixed value, if every template is empty"</th>
                        <th scope="col"><span class="sr-only">"Remove"</span></th>
                    </tr>
                </thead>
                <tbody>
                    <For
                        each={move || rows.get().into_iter().enumerate().collect::<Vec<_>>()}
                        key=|(i, r)| (*i, r.key)
                        children=move |(i, row)| {
                            let row_issues = move || {
                                issues.get().into_iter().filter(|x| x.field == Some(i)).collect::<Vec<_>>()
                            };
                            let kind = move || {
                                let id = row.target.get();
                                targets.with_value(|t| {
                                    t.iter().find(|t| t.id == id || t.id.trim_start_matches("root.") == id.trim_start_matches("root."))
                                        .map(|t| (t.label.clone(), t.required, t.choices.clone()))
                                })
                            };
                            let suggestions = move || {
                                let text = row.sources.get();
                                names.with_value(|n| completions(&text, n).into_iter().map(str::to_owned).collect::<Vec<_>>())
                            };
                            let remove = move |_| rows.update(|r| { r.retain(|x| x.key != row.key); });
                            // a chosen completion hands focus back to the template being typed
                            let area = NodeRef::<leptos::html::Textarea>::new();
                            let target_id = format!("row-{i}-target");
                            let sources_id = format!("row-{i}-sources");
                            view! {
                                <tr class=move || if row_issues().iter().any(|x| x.error) { "row has-error" } else { "row" }>
                                    <td data-label="HiBob field">
                                        <label class="sr-only" for=target_id.clone()>{format!("HiBob field of row {}", i + 1)}</label>
                                        <input id=target_id name=format!("rows[{i}][target]") list="hibob-fields"
                                            autocomplete="off" spellcheck="false" disabled=locked
                                            value=row.target.get_untracked() bind:value=row.target />
                                        <p class="field-kind">
                                            {move || kind().map(|(k, required, _)| {
                                                if required { format!("{k} · required by HiBob") } else { k }
                                            })}
                                        </p>
                                    </td>
                                    <td data-label="Templates, one per line (first non-empty wins)">
                                        <label class="sr-only" for=sources_id.clone()>{format!("Templates of row {}", i + 1)}</label>
                                        <textarea id=sources_id node_ref=area name=format!("rows[{i}][sources]") rows="2"
                                            spellcheck="false" disabled=locked bind:value=row.sources>{row.sources.get_untracked()}</textarea>
                                        <div class="completions">
                                            {move || suggestions().into_iter().map(|name| {
                                                let label = name.clone();
                                                view! {
                                                    <button type="button" class="chip"
                                                        on:click=move |_| {
                                                            row.sources.update(|t| *t = complete(t, &name));
                                                            if let Some(el) = area.get() {
                                                                let _ = el.focus();
                                                            }
                                                        }>
                                                        {label}
                                                    </button>
                                                }
                                            }).collect_view()}
                                        </div>
                                        <ul class="issues">{move || row_issues().into_iter().map(issue_item).collect_view()}</ul>
                                    </td>
                                    <td data-label="Fixed value, if every template is empty">
                                        <input name=format!("rows[{i}][fixed]") aria-label=format!("Fixed value of row {}", i + 1)
                                            disabled=locked value=row.fixed.get_untracked() bind:value=row.fixed
                                            list=move || kind().filter(|k| !k.2.is_empty()).map(|_| format!("choices-{i}")) />
                                        {move || kind().filter(|k| !k.2.is_empty()).map(|(_, _, choices)| view! {
                                            <datalist id=format!("choices-{i}")>
                                                {choices.into_iter().map(|c| view! { <option value=c /> }).collect_view()}
                                            </datalist>
                                        })}
                                    </td>
                                    <td>
                                        {can_edit.then(|| view! {
                                            <button type="button" class="link danger" disabled=locked on:click=remove
                                                aria-label=format!("Remove row {}", i + 1)>"Remove"</button>
                                        })}
                                    </td>
                                </tr>
                            }
                        }
                    />
                </tbody>
            </table>
            {can_edit.then(|| view! {
                <p><button type="button" class="secondary" disabled=locked on:click=add_row>"Add a field"</button></p>
                <div class="save-bar">
                    <label>
                        "What changed and why "
                        <input name="note" required maxlength="500" placeholder="e.g. site: HiBob calls it London, not London HQ" />
                    </label>
                    {move || if warning_count() > 0 && effect.value().get().is_none() {
                        // warnings do not block, but the first save over them shows what they
                        // would have done to recent hires
                        view! {
                            <button type="button" class="primary" disabled={move || error_count() > 0 || !live.get() || effect.pending().get()}
                                on:click=move |_| { effect.dispatch(MappingEffect { rows: snapshot(), variables: custom.get_value() }); }>
                                {format!("Save as version {}", version + 1)}
                            </button>
                        }.into_any()
                    } else {
                        let label = if effect.value().get().is_some() { "Save anyway as version" } else { "Save as version" };
                        view! {
                            <button type="submit" class="primary" disabled={move || error_count() > 0 || !live.get()}>
                                {format!("{label} {}", version + 1)}
                            </button>
                        }.into_any()
                    }}
                </div>
                {move || effect.pending().get().then(|| view! { <p class="muted" role="status">"Checking recent hires against this mapping…"</p> })}
                {move || effect.value().get().map(|answer| {
                    let text = answer.unwrap_or_else(|e| e.to_string());
                    view! {
                        <div class="notice warn" role="alert">
                            <p>{format!("This mapping has {} warning(s). ", warning_count())}{text}</p>
                            <p>"Fix the warnings, or save anyway."</p>
                        </div>
                    }
                })}
            })}
            <FormResult value=move || save.value().get() ok="Saved as a new version." />
        </ActionForm>
        // opened to fix an export: retry it with what was just saved, here, or go back to it
        {move || match (save.value().get(), chosen) {
            (Some(Ok(saved)), Some(export)) => Some(view! { <RetryFixedExport export version=saved /> }),
            _ => None,
        }}

        <PreviewPanel recent chosen=view.chosen rows=snapshot custom preview />

        <h2>"Versions"</h2>
        <VersionTable versions current=version />
    }
}

fn issue_item(i: IssueView) -> impl IntoView {
    view! { <li class=if i.error { "issue error" } else { "issue warn" }>{i.text}</li> }
}

#[component]
pub fn VersionTable(versions: Vec<VersionLine>, current: i64) -> impl IntoView {
    view! {
        <div class="table-wrap" tabindex="0">
        <table class="data">
            <thead>
                <tr>
                    <th scope="col">"Version"</th>
                    <th scope="col">"Saved"</th>
                    <th scope="col">"By"</th>
                    <th scope="col">"Note"</th>
                    <th scope="col">"Exports built with it"</th>
                </tr>
            </thead>
            <tbody>
                {versions.into_iter().map(|v| view! {
                    <tr class=if v.id == current { "current" } else { "" }>
                        <td>
                            <a href=format!("/mappings/versions/{}", v.id)>{format!("v{}", v.id)}</a>
                            {(v.id == current).then(|| view! { " " <span class="badge status-succeeded">"in force"</span> })}
                        </td>
                        <td>{when(&v.created_at)}</td>
                        <td>{v.author}</td>
                        <td>{v.note}{v.restored_from.map(|r| format!(" (restored from v{r})"))}</td>
                        <td>{v.exports}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_the_variable_being_typed() {
        let names: Vec<String> = ["candidate_email", "candidate_first_name", "job_title"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(
            completions("{{ cand", &names),
            ["candidate_email", "candidate_first_name"]
        );
        assert_eq!(completions("x {{job", &names), ["job_title"]);
        assert!(completions("{{ candidate_email }}", &names).is_empty());
        assert!(completions("{{ x | lo", &names).is_empty());
        assert!(completions("plain", &names).is_empty());
        assert_eq!(
            complete("Hi {{ cand", "candidate_email"),
            "Hi {{ candidate_email }}"
        );
    }
}
