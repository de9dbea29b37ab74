//! One saved mapping version: its fields and variables, what changed from the version before,
//! and a way back to it.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

use crate::{
    auth::current_me,
    error::AppError,
    pages::{
        load_error,
        mapping_form::{EditorRow, EditorVariable},
        when, FormResult,
    },
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffView {
    /// "added", "removed" or "changed".
    pub change: String,
    pub subject: String,
    pub before: String,
    pub after: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionView {
    pub id: i64,
    pub current: i64,
    pub author: String,
    pub note: String,
    pub created_at: String,
    pub restored_from: Option<i64>,
    pub rows: Vec<EditorRow>,
    pub variables: Vec<EditorVariable>,
    /// Against the version before it (none for the first).
    pub diff: Vec<DiffView>,
    /// Against the version in force, when this is an older one.
    pub diff_to_current: Vec<DiffView>,
}

#[cfg(feature = "ssr")]
fn diff_views(lines: Vec<integration::mapping::DiffLine>) -> Vec<DiffView> {
    lines
        .into_iter()
        .map(|l| DiffView {
            change: format!("{:?}", l.change).to_lowercase(),
            subject: l.subject,
            before: l.before,
            after: l.after,
        })
        .collect()
}

#[server(endpoint = "mapping_version", output = crate::codec::JsonText)]
pub async fn mapping_version(id: i64) -> Result<VersionView, AppError> {
    use crate::{
        error::{fail, internal},
        pages::mapping_form::convert,
        ssr,
    };
    use integration::mapping;
    ssr::require(integration::access::users::Role::Viewer).await?;
    ssr::no_store();
    let db = ssr::state()?.db;
    let version = db.mappings().get(id).await?;
    let diff = match id {
        1 => Vec::new(),
        _ => match db.mappings().get(id - 1).await {
            Ok(before) => mapping::diff(&before.document, &version.document),
            Err(e) => return Err(fail(internal(e))),
        },
    };
    let current = db
        .mappings()
        .current()
        .await
        .map_err(|e| fail(internal(e)))?;
    let diff_to_current = if current.id == id {
        Vec::new()
    } else {
        mapping::diff(&version.document, &current.document)
    };
    Ok(VersionView {
        id,
        current: current.id,
        author: version.author,
        note: version.note,
        created_at: version.created_at,
        restored_from: version.restored_from,
        rows: convert::rows(&version.document),
        variables: convert::variables(&version.document),
        diff: diff_views(diff),
        diff_to_current: diff_views(diff_to_current),
    })
}

#[server(endpoint = "restore_mapping", output = crate::codec::JsonText)]
pub async fn restore_mapping(id: i64) -> Result<i64, AppError> {
    use crate::{
        error::{fail, internal},
        ssr,
    };
    use integration::{mapping::service::MappingError, mapping::store::StoreError};
    let user = ssr::require(integration::access::users::Role::Operator).await?;
    let st = ssr::state()?;
    let actor = ssr::actor(&user).await;
    match st.mappings.restore(&actor, id).await {
        Ok(v) => Ok(v.id),
        Err(MappingError::Store(e @ (StoreError::NotFound(_) | StoreError::Unchanged(_)))) => {
            Err(fail(AppError::Invalid(format!("Not restored: {e}."))))
        }
        Err(e) => Err(fail(internal(e))),
    }
}

#[component]
fn DiffTable(lines: Vec<DiffView>) -> impl IntoView {
    if lines.is_empty() {
        return view! { <p class="muted">"No differences."</p> }.into_any();
    }
    view! {
        <div class="table-wrap" tabindex="0">
        <table class="data diff">
            <thead>
                <tr><th scope="col">"What"</th><th scope="col">"Change"</th><th scope="col">"Before"</th><th scope="col">"After"</th></tr>
            </thead>
            <tbody>
                {lines.into_iter().map(|l| {
                    let class = format!("diff-{}", l.change);
                    view! {
                    <tr class=class>
                        <td><code>{l.subject}</code></td>
                        <td>{l.change}</td>
                        <td><del>{l.before}</del></td>
                        <td><ins>{l.after}</ins></td>
                    </tr>
                }}).collect_view()}
            </tbody>
        </table>
        </div>
    }
    .into_any()
}

#[component]
pub fn MappingVersionPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").and_then(|v| v.parse::<i64>().ok());
    let restore = ServerAction::<RestoreMapping>::new();
    let data = Resource::new(
        move || (id(), restore.version().get()),
        |(id, _)| async move {
            match id {
                Some(id) => mapping_version(id).await,
                None => Err(AppError::Invalid("That is not a version number.".into())),
            }
        },
    );
    view! {
        <Title text="Mapping version" />
        <p><a href="/mappings">"← Mappings"</a></p>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let can_edit = current_me().await.is_some_and(|m| m.can_operate());
                match data.await {
                    Err(e) => load_error(e),
                    Ok(v) => {
                        let is_current = v.id == v.current;
                        view! {
                            <h1>{format!("Mapping version {}", v.id)}</h1>
                            <p class="lead">
                                "Saved by " {v.author.clone()} " on " {when(&v.created_at)}
                                {(!v.note.is_empty()).then(|| format!(": “{}”", v.note))}
                                {v.restored_from.map(|r| format!(" (restored from version {r})"))}
                                "."
                                {is_current.then(|| view! { " " <span class="badge status-succeeded">"in force"</span> })}
                            </p>
                            {(!is_current && can_edit).then(|| view! {
                                <ActionForm action=restore attr:class="inline">
                                    <input type="hidden" name="id" value=v.id.to_string() />
                                    <button type="submit" class="primary">{format!("Restore version {} as version {}", v.id, v.current + 1)}</button>
                                </ActionForm>
                            })}
                            <FormResult value=move || restore.value().get() ok="Restored: it is now the mapping in force." />
                            <h2>{if v.id == 1 { "The first version".to_owned() } else { format!("Changes from version {}", v.id - 1) }}</h2>
                            {(v.id > 1).then(|| view! { <DiffTable lines=v.diff.clone() /> })}
                            {(!is_current).then(|| view! {
                                <h2>{format!("Compared with version {} (in force)", v.current)}</h2>
                                <DiffTable lines=v.diff_to_current.clone() />
                            })}
                            <h2>"Fields"</h2>
                            <div class="table-wrap" tabindex="0">
                            <table class="data">
                                <thead><tr><th scope="col">"HiBob field"</th><th scope="col">"Templates (in order)"</th><th scope="col">"Fixed value"</th></tr></thead>
                                <tbody>
                                    {v.rows.iter().map(|r| view! {
                                        <tr>
                                            <td><code>{r.target.clone()}</code></td>
                                            <td><pre class="inline">{r.sources.clone()}</pre></td>
                                            <td>{r.fixed.clone()}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                            </div>
                            <h2>"Custom variables"</h2>
                            {if v.variables.is_empty() {
                                view! { <p class="muted">"None."</p> }.into_any()
                            } else {
                                view! {
                                    <dl class="vars">
                                        {v.variables.iter().map(|x| view! {
                                            <dt><code>{x.name.clone()}</code></dt>
                                            <dd><code>{x.template.clone()}</code> " " <span class="muted">{x.description.clone()}</span></dd>
                                        }).collect_view()}
                                    </dl>
                                }.into_any()
                            }}
                        }
                        .into_any()
                    }
                }
            })}
        </Transition>
    }
}
