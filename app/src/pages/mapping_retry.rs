//! The end of the fix loop: the Mappings page opened from an export ("Fix in Mappings") offers,
//! once the fix is saved, to retry that export with the version just saved, there and then, and
//! leads back to it.

use leptos::prelude::*;

use crate::pages::export_detail::RetryExport;

/// "Retry export 12 with version 3", then "queued" and the link back to the export.
#[component]
pub fn RetryFixedExport(export: i64, version: i64) -> impl IntoView {
    let retry = ServerAction::<RetryExport>::new();
    let href = format!("/exports/{export}");
    let open = format!("Open export {export}");
    view! {
        <section class="notice ok back-to-export" aria-label="Retry the export" data-test="retry-fixed-export">
            {move || match retry.value().get() {
                Some(Ok(())) => view! {
                    <p role="status">
                        {format!("Export {export} is queued for another attempt with version {version}. ")}
                        <a href=href.clone()>{open.clone()}</a>
                    </p>
                }
                    .into_any(),
                other => view! {
                    <ActionForm action=retry attr:class="inline">
                        <input type="hidden" name="id" value=export.to_string() />
                        // the version in force, which is the one just saved
                        <input type="hidden" name="mapping" value="current" />
                        <button type="submit" class="primary">
                            {format!("Retry export {export} with version {version}")}
                        </button>
                    </ActionForm>
                    " "
                    <a href=href.clone()>{open.clone()}</a>
                    {other.and_then(Result::err).map(|e| view! { <p class="error" role="alert">{e.to_string()}</p> })}
                }
                    .into_any(),
            }}
        </section>
    }
}
