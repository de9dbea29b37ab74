//! The variables templates can use: Pinpoint's catalogue with what fills each one (and its value
//! for the sample candidate), the filters, and the operator's own custom variables.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    error::AppError,
    pages::{
        load_error,
        mapping_form::{EditorVariable, IssueView},
        mappings::{mapping_editor, LintMapping, MappingView},
        FormResult,
    },
};

#[server(endpoint = "save_variables", output = crate::codec::JsonText)]
pub async fn save_variables(
    #[server(default)] variables: Vec<EditorVariable>,
    #[server(default)] note: String,
    edited: i64,
) -> Result<i64, AppError> {
    use crate::{pages::mapping_form::convert, ssr};

    let user = ssr::require(integration::access::users::Role::Operator).await?;
    let st = ssr::state()?;
    let actor = ssr::actor(&user).await;
    let current = st.db.mappings().get(edited).await?;
    let mut doc = current.document;
    doc.variables = convert::document(&[], &variables).variables;
    convert::saved(st.mappings.save(&actor, &doc, &note, edited).await)
}

#[derive(Clone, Copy)]
struct VarState {
    key: usize,
    name: RwSignal<String>,
    template: RwSignal<String>,
    description: RwSignal<String>,
}

impl VarState {
    fn new(key: usize, v: &EditorVariable) -> Self {
        Self {
            key,
            name: RwSignal::new(v.name.clone()),
            template: RwSignal::new(v.template.clone()),
            description: RwSignal::new(v.description.clone()),
        }
    }

    fn snapshot(&self) -> EditorVariable {
        EditorVariable {
            name: self.name.get(),
            template: self.template.get(),
            description: self.description.get(),
        }
    }
}

#[component]
pub fn VariablesPage() -> impl IntoView {
    let save = ServerAction::<SaveVariables>::new();
    let data = Resource::new(move || save.version().get(), |_| mapping_editor(None));
    view! {
        <Title text="Variables" />
        <h1>"Variables"</h1>
        <p class="lead">
            "What mapping templates can read. Pinpoint's variables are filled from the application, its job and its offer; "
            "custom variables are built from other variables and saved with the mapping as a new version."
        </p>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => load_error(e),
                    Ok(view) => view! { <VariablesBody view save /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn VariablesBody(view: MappingView, save: ServerAction<SaveVariables>) -> impl IntoView {
    let can_edit = view.can_edit;
    let version = view.version;
    let next_key = StoredValue::new(view.variables.len() + 1);
    let vars = RwSignal::new(
        view.variables
            .iter()
            .enumerate()
            .map(|(i, v)| VarState::new(i, v))
            .collect::<Vec<_>>(),
    );
    let issues: RwSignal<Vec<IssueView>> = RwSignal::new(
        view.issues
            .iter()
            .filter(|i| i.variable.is_some())
            .cloned()
            .collect(),
    );
    let lint = ServerAction::<LintMapping>::new();
    Effect::new(move |_| {
        if let Some(Ok(found)) = lint.value().get() {
            issues.set(found.into_iter().filter(|i| i.variable.is_some()).collect());
        }
    });
    let rows = StoredValue::new(view.rows.clone());
    crate::pages::mappings::lint_when_idle(lint, move || {
        let variables: Vec<EditorVariable> = vars.get().iter().map(VarState::snapshot).collect();
        (rows.get_value(), variables)
    });
    let add = move |_| {
        let key = next_key.get_value();
        next_key.set_value(key + 1);
        vars.update(|v| v.push(VarState::new(key, &EditorVariable::default())));
    };
    let errors = move || issues.get().iter().filter(|i| i.error).count();
    // as in the mapping editor: readable at once, editable once live, so nothing typed is lost
    let live = crate::pages::interactive();
    let locked = move || !can_edit || !live.get();
    let mut groups: Vec<(String, Vec<_>)> = Vec::new();
    for v in view.catalogue {
        match groups.iter_mut().find(|(g, _)| *g == v.group) {
            Some((_, list)) => list.push(v),
            None => groups.push((v.group.clone(), vec![v])),
        }
    }
    view! {
        <h2>"Custom variables"</h2>
        <p class="muted">
            "For example a work email: name " <code>"work_email"</code> ", template "
            <code>"{{ candidate_first_name | ascii | lower }}.{{ candidate_last_name | slug }}@example.com"</code>
            ". Company variables (company_name, …) are not in Pinpoint's API: define them here with the same name."
        </p>
        <ActionForm action=save attr:class="variables-form">
            <input type="hidden" name="edited" value=version.to_string() />
            <div class="table-wrap" tabindex="0">
            <table class="data">
                <thead>
                    <tr>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Template"</th>
                        <th scope="col">"Description"</th>
                        <th scope="col"><span class="sr-only">"Remove"</span></th>
                    </tr>
                </thead>
                <tbody>
                    <For
                        each={move || vars.get().into_iter().enumerate().collect::<Vec<_>>()}
                        key=|(i, v)| (*i, v.key)
                        children=move |(i, v)| {
                            let mine = move || issues.get().into_iter().filter(|x| x.variable == Some(i)).collect::<Vec<_>>();
                            view! {
                                <tr>
                                    <td><input name=format!("variables[{i}][name]") aria-label=format!("Name of variable {}", i + 1)
                                        spellcheck="false" disabled=locked value=v.name.get_untracked() bind:value=v.name /></td>
                                    <td>
                                        <input name=format!("variables[{i}][template]") aria-label=format!("Template of variable {}", i + 1)
                                            spellcheck="false" class="wide" disabled=locked value=v.template.get_untracked() bind:value=v.template />
                                        <ul class="issues">
                                            {move || mine().into_iter().map(|x| view! {
                                                <li class=if x.error { "issue error" } else { "issue warn" }>{x.text}</li>
                                            }).collect_view()}
                                        </ul>
                                    </td>
                                    <td><input name=format!("variables[{i}][description]") aria-label=format!("Description of variable {}", i + 1)
                                        disabled=locked value=v.description.get_untracked() bind:value=v.description /></td>
                                    <td>{can_edit.then(|| view! {
                                        <button type="button" class="link danger" disabled=locked aria-label=format!("Remove variable {}", i + 1)
                                            on:click=move |_| vars.update(|list| list.retain(|x| x.key != v.key))>"Remove"</button>
                                    })}</td>
                                </tr>
                            }
                        }
                    />
                    {move || vars.with(Vec::is_empty).then(|| view! {
                        <tr><td colspan="4" class="muted">"No custom variables yet."</td></tr>
                    })}
                </tbody>
            </table>
            </div>
            {can_edit.then(|| view! {
                <p><button type="button" class="secondary" disabled=locked on:click=add>"Add a variable"</button></p>
                <div class="save-bar">
                    <label>"What changed and why " <input name="note" required maxlength="500" /></label>
                    <button type="submit" class="primary" disabled={move || errors() > 0 || !live.get()}>
                        {format!("Save as mapping version {}", version + 1)}
                    </button>
                </div>
            })}
            <FormResult value=move || save.value().get() ok="Saved as a new mapping version." />
        </ActionForm>

        <h2>"Pinpoint's variables"</h2>
        <p class="muted">"Sample values are those of the fictional sample candidate the preview and lint use."</p>
        {groups.into_iter().map(|(group, list)| view! {
            <h3>{group}</h3>
            <div class="table-wrap" tabindex="0">
            <table class="data catalogue">
                <thead><tr><th scope="col">"Variable"</th><th scope="col">"What it holds"</th><th scope="col">"Sample value"</th></tr></thead>
                <tbody>
                    {list.into_iter().map(|v| view! {
                        <tr>
                            <td><code>{format!("{{{{ {} }}}}", v.name)}</code></td>
                            <td>{v.description}</td>
                            <td>{if v.sample.is_empty() { "(empty)".to_owned() } else { v.sample }}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
            </div>
        }).collect_view()}

        <h2>"Filters"</h2>
        <p class="muted">
            "A template is one value: variables, filters, tests, comparisons, "<code>"~"</code>" to join text and "
            <code>"{% if %}…{% elif %}…{% else %}…{% endif %}"</code>" are available. Loops, "<code>"{% set %}"</code>
            ", functions such as "<code>"range()"</code>", and "<code>"*"</code>" are not (they can grow without bound); define a custom variable instead. "
            "No value inside a template may grow past 64 KiB, and a template may write at most 16 KiB."
        </p>
        <dl class="vars">
            {view.filters.into_iter().map(|(f, what)| view! { <dt><code>{f}</code></dt><dd>{what}</dd> }).collect_view()}
        </dl>
    }
}
