//! The Settings page's read-only account of backups and retention: they are set by environment
//! or flags only, so people can see what the console keeps and for how long.

use leptos::prelude::*;

// where the server's start-up names it
pub use crate::data_setting::DataSetting;
use crate::{error::AppError, pages::load_error};

#[server(endpoint = "data_settings", output = crate::codec::JsonText)]
pub async fn get_data_settings() -> Result<Vec<DataSetting>, AppError> {
    use crate::ssr;
    ssr::require(integration::access::users::Role::Viewer).await?;
    ssr::no_store();
    Ok(ssr::state()?.data_settings)
}

#[component]
pub fn DataSettingsPanel() -> impl IntoView {
    let settings = Resource::new(|| (), |_| get_data_settings());
    view! {
        <section class="panel data-settings settings-section" aria-label="Data">
            <h2>"Data"</h2>
            <p class="muted">"Backups and how long personal data is kept: set by environment variables or flags when the console starts, read-only here for everyone."</p>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match settings.await {
                        Err(e) => load_error(e),
                        Ok(rows) => view! {
                            <div class="table-wrap" tabindex="0">
                            <table class="data">
                                <thead><tr><th scope="col">"Setting"</th><th scope="col">"Value"</th><th scope="col">"Variable"</th></tr></thead>
                                <tbody>
                                    {rows.into_iter().map(|r| view! {
                                        <tr>
                                            <td>{r.meaning}</td>
                                            <td>{r.value}</td>
                                            <td><code>{r.variable}</code></td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                            </div>
                        }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}
