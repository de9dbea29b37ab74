//! The mapping editor's preview: the edited (unsaved) mapping rendered for one candidate, with
//! the value of each field, which template gave it and what it read. Nothing reaches HiBob.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{
    error::AppError,
    pages::mapping_form::{EditorRow, EditorVariable, IssueView},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriedView {
    pub template: String,
    pub output: String,
    pub reads: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldPreview {
    pub target: String,
    pub label: String,
    pub kind: String,
    pub required: bool,
    pub came_from: String,
    pub value: String,
    pub tried: Vec<TriedView>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompareView {
    pub message: String,
    pub lines: Vec<(String, String, String, bool)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewView {
    pub candidate: String,
    pub schema_note: Option<String>,
    pub errors: Vec<String>,
    pub fields: Vec<FieldPreview>,
    pub custom_variables: Vec<(String, String)>,
    pub body: String,
    pub issues: Vec<IssueView>,
    pub comparison: Option<CompareView>,
}

#[server(endpoint = "preview_mapping", output = crate::codec::JsonText)]
pub async fn preview_mapping(
    #[server(default)] rows: Vec<EditorRow>,
    #[server(default)] variables: Vec<EditorVariable>,
    source: String,
    #[server(default)] application: String,
    #[server(default)] compare: bool,
) -> Result<PreviewView, AppError> {
    use crate::{
        error::{fail, internal},
        ssr,
    };
    use integration::mapping::service::{MappingError, PreviewSource};
    ssr::require(integration::access::users::Role::Operator).await?;
    let st = ssr::state()?;
    let source = match source.as_str() {
        "sample" => PreviewSource::Sample,
        "application" => PreviewSource::Application(application),
        other => match other.strip_prefix("export:").and_then(|n| n.parse().ok()) {
            Some(id) => PreviewSource::Export(id),
            None => {
                return Err(fail(AppError::Invalid(
                    "Choose a candidate to preview.".into(),
                )))
            }
        },
    };
    let doc = super::mapping_form::convert::document(&rows, &variables);
    let report = match st.mappings.preview(&doc, &source, compare).await {
        Ok(r) => r,
        Err(MappingError::Source(why)) => {
            return Err(fail(AppError::Invalid(format!(
                "Cannot load that candidate: {why}"
            ))))
        }
        Err(e) => return Err(fail(internal(e))),
    };
    Ok(PreviewView {
        candidate: report.candidate,
        schema_note: report.schema_note,
        errors: report.errors.iter().map(ToString::to_string).collect(),
        fields: report
            .trace
            .iter()
            .map(|t| FieldPreview {
                target: t.target.clone(),
                label: t.label.clone(),
                kind: t.kind.clone(),
                required: t.required,
                came_from: super::mapping_form::convert::choice(&t.choice),
                value: t
                    .value
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                tried: t
                    .tried
                    .iter()
                    .map(|x| TriedView {
                        template: x.template.clone(),
                        output: x.output.clone(),
                        reads: x.reads.clone(),
                    })
                    .collect(),
                error: t.error.clone(),
            })
            .collect(),
        custom_variables: report.custom_variables,
        body: report.body,
        issues: super::mapping_form::convert::issues(&report.issues),
        comparison: report.comparison.map(|c| CompareView {
            message: c.message,
            lines: c
                .lines
                .into_iter()
                .map(|l| (l.target, l.in_hibob, l.mapped, l.same))
                .collect(),
        }),
    })
}

/// The preview form and its result. `chosen` is an export to preselect (from a "fix in
/// Mappings" link): once the page is interactive it is previewed at once.
#[component]
pub fn PreviewPanel<F>(
    recent: Vec<(i64, String)>,
    chosen: Option<i64>,
    rows: F,
    custom: StoredValue<Vec<EditorVariable>>,
    preview: ServerAction<PreviewMapping>,
) -> impl IntoView
where
    F: Fn() -> Vec<EditorRow> + Copy + Send + Sync + 'static,
{
    let initial = chosen
        .filter(|id| recent.iter().any(|(r, _)| r == id))
        .map(|id| format!("export:{id}"))
        .unwrap_or_else(|| "sample".to_owned());
    let source = RwSignal::new(initial.clone());
    let application = RwSignal::new(String::new());
    let compare = RwSignal::new(false);
    // the rows the shown preview was rendered from: once the mapping is edited it is out of date
    let previewed = RwSignal::new(None::<Vec<EditorRow>>);
    let stale = move || previewed.with(|p| p.as_ref().is_some_and(|p| *p != rows()));
    let dispatch = move || {
        previewed.set(Some(rows()));
        preview.dispatch(PreviewMapping {
            rows: rows(),
            variables: custom.get_value(),
            source: source.get_untracked(),
            application: application.get_untracked(),
            compare: compare.get_untracked(),
        });
    };
    let run = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        dispatch();
    };
    if initial != "sample" {
        // effects run only in the browser, once it has hydrated
        Effect::new(move |done: Option<()>| {
            if done.is_none() {
                dispatch();
            }
        });
    }
    view! {
        <section class="panel preview" id="preview" aria-labelledby="preview-title">
            <h2 id="preview-title">"Preview on a candidate"</h2>
            <p class="muted">"Renders the mapping as edited above, before saving. Nothing is sent to HiBob."</p>
            <form class="preview-form" on:submit=run>
                <label>
                    "Candidate "
                    <select name="source" on:change=move |ev| source.set(event_target_value(&ev))>
                        <option value="sample" selected=initial == "sample">"Sample candidate (Ada Lovelace)"</option>
                        {recent.into_iter().map(|(id, label)| {
                            let value = format!("export:{id}");
                            let selected = value == initial;
                            view! { <option value=value selected=selected>{label}</option> }
                        }).collect_view()}
                        <option value="application">"A Pinpoint application by id…"</option>
                    </select>
                </label>
                <Show when=move || source.get() == "application">
                    <label>
                        "Application id "
                        <input name="application" inputmode="numeric" bind:value=application />
                    </label>
                </Show>
                <label class="check">
                    <input type="checkbox" name="compare" bind:checked=compare />
                    " Compare with the HiBob employee who has the same email"
                </label>
                <button type="submit" class="primary">"Preview"</button>
                <noscript><p class="muted">"The preview needs JavaScript."</p></noscript>
            </form>
            {move || preview.pending().get().then(|| view! { <p class="loading">"Rendering…"</p> })}
            {move || (stale() && !preview.pending().get()).then(|| view! {
                <p class="notice warn stale-preview" role="status" data-test="preview-stale">
                    <span><strong>"Preview is out of date"</strong>": the mapping was edited after it ran."</span>
                    <button type="button" class="secondary" on:click=move |_| dispatch()>"Run it again"</button>
                </p>
            })}
            <div class=move || if stale() { "preview-output stale" } else { "preview-output" }>
                {move || preview.value().get().map(|r| match r {
                    Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(p) => view! { <PreviewResult p /> }.into_any(),
                })}
            </div>
        </section>
    }
}

#[component]
fn PreviewResult(p: PreviewView) -> impl IntoView {
    let would_export = p.errors.is_empty() && !p.fields.is_empty();
    view! {
        <div class="preview-result" role="region" aria-live="polite" aria-label="Preview result">
            <p><strong>{p.candidate}</strong></p>
            {p.schema_note.map(|n| view! { <p class="notice warn">"HiBob's field list was not available (" {n} "): values are shown as written."</p> })}
            {(!p.errors.is_empty()).then(|| view! {
                <div class="notice error" role="alert">
                    <p>"This candidate would fail to export:"</p>
                    <ul>{p.errors.into_iter().map(|e| view! { <li>{e}</li> }).collect_view()}</ul>
                </div>
            })}
            {would_export.then(|| view! { <p class="notice ok">"This candidate would export."</p> })}
            <p class="scroll-hint" aria-hidden="true">"Scroll the table sideways →"</p>
            <div class="table-wrap scroll-cue" tabindex="0" role="region" aria-label="Fields sent">
            <table class="data trace">
                <thead>
                    <tr>
                        <th scope="col">"HiBob field"</th>
                        <th scope="col">"Value sent"</th>
                        <th scope="col">"Came from"</th>
                        <th scope="col">"Why this value"</th>
                    </tr>
                </thead>
                <tbody>
                    {p.fields.into_iter().map(|f| {
                        let class = if f.error.is_some() { "has-error" } else { "" };
                        view! {
                        <tr class=class>
                            <td><code>{f.target}</code><br /><span class="muted">{f.label} " · " {f.kind}</span></td>
                            <td>
                                <code>{if f.value.is_empty() { "—".to_owned() } else { f.value }}</code>
                                {f.error.map(|e| view! { <p class="error">{e}</p> })}
                            </td>
                            <td>{f.came_from}</td>
                            <td>
                                <ol class="tried">
                                    {f.tried.into_iter().map(|t| view! {
                                        <li>
                                            <code>{t.template}</code> " → "
                                            <code>{if t.output.is_empty() { "(empty)".to_owned() } else { t.output }}</code>
                                            {(!t.reads.is_empty()).then(|| view! {
                                                <span class="reads">
                                                    {t.reads.into_iter().map(|(n, v)| view! {
                                                        <span class="read"><code>{n}</code> " = " {if v.is_empty() { "(empty)".to_owned() } else { v }}</span>
                                                    }).collect_view()}
                                                </span>
                                            })}
                                        </li>
                                    }).collect_view()}
                                </ol>
                            </td>
                        </tr>
                    }}).collect_view()}
                </tbody>
            </table>
            </div>
            {(!p.custom_variables.is_empty()).then(|| view! {
                <h3>"Custom variables"</h3>
                <dl class="vars">
                    {p.custom_variables.into_iter().map(|(n, v)| view! { <dt><code>{n}</code></dt><dd>{v}</dd> }).collect_view()}
                </dl>
            })}
            <h3>"HiBob request body"</h3>
            <p class="muted"><code>"POST /v1/people"</code></p>
            <pre class="body" tabindex="0" aria-label="HiBob request body">{p.body}</pre>
            {p.comparison.map(|c| view! {
                <h3>"Compared with HiBob"</h3>
                <p>{c.message}</p>
                {(!c.lines.is_empty()).then(|| view! {
                    <div class="table-wrap" tabindex="0">
                    <table class="data">
                        <thead><tr><th scope="col">"Field"</th><th scope="col">"In HiBob"</th><th scope="col">"Mapped"</th></tr></thead>
                        <tbody>
                            {c.lines.into_iter().map(|(t, h, m, same)| view! {
                                <tr class=if same { "same" } else { "differs" }>
                                    <td><code>{t}</code></td><td>{h}</td>
                                    <td>{m}{(!same).then(|| view! { " " <span class="badge status-needs_attention">"differs"</span> })}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                    </div>
                })}
            })}
        </div>
    }
}
