use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::auth::Login;

#[component]
pub fn LoginPage() -> impl IntoView {
    #[cfg(feature = "ssr")]
    crate::ssr::no_store();
    let login = ServerAction::<Login>::new();
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_default();
    let error = move || login.value().get().and_then(Result::err);
    view! {
        <Title text="Sign in" />
        <main class="login" id="main">
            <div class="login-card">
                <div class="brand login-brand">
                    <span class="brand-mark" aria-hidden="true">"P→B"</span>
                    <span>"Pinpoint → HiBob"</span>
                </div>
                <h1>"Sign in"</h1>
                <ActionForm action=login>
                    <input type="hidden" name="next" prop:value=next />
                    <label for="email">"Email"</label>
                    <input id="email" name="email" type="email" autocomplete="username" required autofocus />
                    <label for="password">"Password"</label>
                    <input id="password" name="password" type="password" autocomplete="current-password" required />
                    {move || error().map(|e| view! { <p class="notice error" role="alert">{e.to_string()}</p> })}
                    <button type="submit" class="primary">"Sign in"</button>
                </ActionForm>
            </div>
        </main>
    }
}
