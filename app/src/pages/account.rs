//! The signed-in person's own account: who they are, and changing their password without an
//! admin or the command line.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{auth::current_me, error::AppError, pages::FormResult};

#[server(endpoint = "change_password", output = crate::codec::JsonText)]
pub async fn change_password(current: String, new: String, repeat: String) -> Result<(), AppError> {
    use crate::{error::fail, ssr};
    use integration::access::users::Role;
    use secrecy::SecretString;
    let me = ssr::require(Role::Viewer).await?;
    if new != repeat {
        return Err(fail(AppError::Invalid(
            "The new password and its repetition differ.".into(),
        )));
    }
    let actor = ssr::actor(&me).await;
    let st = ssr::state()?;
    let now = st
        .db
        .users()
        .change_own(
            &actor,
            &me,
            SecretString::from(current),
            SecretString::from(new),
        )
        .await?;
    // every other session of theirs ends with the old password; this one carries on
    let session = ssr::session().await?;
    session.cycle_id().await?;
    session
        .insert(ssr::SESSION_AUTH_VERSION, now.auth_version)
        .await?;
    Ok(())
}

#[component]
pub fn AccountPage() -> impl IntoView {
    let change = ServerAction::<ChangePassword>::new();
    view! {
        <Title text="Your account" />
        <h1>"Your account"</h1>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                current_me().await.map(|m| view! { <p class="lead">{format!("Signed in as {} ({}).", m.email, m.role)}</p> })
            })}
        </Suspense>
        <section class="panel">
            <h2>"Change your password"</h2>
            <ActionForm action=change attr:class="grid-form">
                <label for="current-password">"Current password"</label>
                <input id="current-password" name="current" type="password" required autocomplete="current-password" />
                <label for="new-password">"New password"</label>
                <input id="new-password" name="new" type="password" required minlength="12" autocomplete="new-password" />
                <label for="repeat-password">"New password again"</label>
                <input id="repeat-password" name="repeat" type="password" required minlength="12" autocomplete="new-password" />
                <p class="help">"At least 12 characters. Your other sessions end; this one stays signed in."</p>
                <button type="submit" class="primary">"Change password"</button>
                <FormResult value=move || change.value().get() ok="Your password was changed." />
            </ActionForm>
        </section>
    }
}
