use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use crate::{
    error::AppError,
    pages::{load_error, when, FormResult},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub role: String,
    pub disabled: bool,
    pub is_me: bool,
    pub created_at: String,
    pub last_login_at: Option<String>,
}

#[server(endpoint = "users", output = crate::codec::JsonText)]
pub async fn list_users() -> Result<Vec<UserRow>, AppError> {
    use crate::ssr;
    let me = ssr::require(integration::access::users::Role::Admin).await?;
    ssr::no_store();
    let users = ssr::state()?.db.users().list().await?;
    Ok(users
        .into_iter()
        .map(|u| UserRow {
            is_me: u.id == me.id,
            id: u.id,
            email: u.email,
            role: u.role.to_string(),
            disabled: u.disabled,
            created_at: u.created_at,
            last_login_at: u.last_login_at,
        })
        .collect())
}

#[server(endpoint = "add_user", output = crate::codec::JsonText)]
pub async fn add_user(email: String, role: String, password: String) -> Result<(), AppError> {
    use crate::ssr;
    use integration::access::users::Role;
    let me = ssr::require(Role::Admin).await?;
    let role: Role = role.parse()?;
    let actor = ssr::actor(&me).await;
    ssr::state()?
        .db
        .users()
        .create(&actor, &email, secrecy::SecretString::from(password), role)
        .await?;
    Ok(())
}

#[server(endpoint = "set_user_role", output = crate::codec::JsonText)]
pub async fn set_user_role(id: i64, role: String) -> Result<(), AppError> {
    use crate::ssr;
    use integration::access::users::Role;
    let me = ssr::require(Role::Admin).await?;
    let role: Role = role.parse()?;
    let actor = ssr::actor(&me).await;
    ssr::state()?.db.users().set_role(&actor, id, role).await?;
    Ok(())
}

#[server(endpoint = "set_user_disabled", output = crate::codec::JsonText)]
pub async fn set_user_disabled(id: i64, disabled: bool) -> Result<(), AppError> {
    use crate::{error::fail, ssr};
    use integration::access::users::Role;
    let me = ssr::require(Role::Admin).await?;
    if me.id == id && disabled {
        return Err(fail(AppError::Invalid(
            "You cannot disable your own account.".into(),
        )));
    }
    let actor = ssr::actor(&me).await;
    ssr::state()?
        .db
        .users()
        .set_disabled(&actor, id, disabled)
        .await?;
    Ok(())
}

/// A user's new password after an admin's reset: shown to the admin once, never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetAnswer {
    pub email: String,
    pub password: String,
}

#[server(endpoint = "reset_user_password", output = crate::codec::JsonText)]
pub async fn reset_user_password(id: i64) -> Result<ResetAnswer, AppError> {
    use crate::ssr;
    use integration::access::users::Role;
    use secrecy::ExposeSecret;
    let me = ssr::require(Role::Admin).await?;
    ssr::no_store();
    let actor = ssr::actor(&me).await;
    let (user, password) = ssr::state()?.db.users().reset(&actor, id).await?;
    Ok(ResetAnswer {
        email: user.email,
        password: password.expose_secret().to_owned(),
    })
}

#[component]
pub fn UsersPage() -> impl IntoView {
    let reset = ServerAction::<ResetUserPassword>::new();
    let add = ServerAction::<AddUser>::new();
    let set_role = ServerAction::<SetUserRole>::new();
    let set_disabled = ServerAction::<SetUserDisabled>::new();
    let users = Resource::new(
        move || {
            (
                add.version().get(),
                set_role.version().get(),
                set_disabled.version().get(),
                reset.version().get(),
            )
        },
        |_| list_users(),
    );
    view! {
        <Title text="Users" />
        <h1>"Users"</h1>
        <p class="lead">
            "Admins manage users and credentials; operators retry exports and edit mappings; viewers read."
        </p>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match users.await {
                    Err(e) => load_error(e),
                    Ok(list) => {
                        view! {
                            <div class="table-wrap" tabindex="0">
                                <table class="data">
                                    <thead>
                                        <tr>
                                            <th scope="col">"Email"</th>
                                            <th scope="col">"Role"</th>
                                            <th scope="col">"Status"</th>
                                            <th scope="col">"Last sign-in"</th>
                                            <th scope="col">"Actions"</th>
                                        </tr>
                                    </thead>
                                    <tbody>
                                        {list
                                            .into_iter()
                                            .map(|u| view! { <UserLine u set_role set_disabled reset /> })
                                            .collect_view()}
                                    </tbody>
                                </table>
                            </div>
                            // only someone who may add users sees the form
                            <FormResult value=move || set_role.value().get() ok="Role changed." />
                            <FormResult value=move || set_disabled.value().get() ok="User updated." />
                            {move || reset.value().get().map(|answer| match answer {
                                Ok(a) => view! {
                                    <div class="notice ok new-password" role="status">
                                        <p>{format!("New password for {}: ", a.email)}<code data-test="new-password">{a.password}</code></p>
                                        <p>"It is shown only now. Give it to them over a safe channel; their sessions have ended, and they can choose their own under Your account once signed in."</p>
                                    </div>
                                }.into_any(),
                                Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
                            })}
                            <section class="panel">
                                <h2>"Add a user"</h2>
                                <ActionForm action=add attr:class="grid-form">
                                    <label for="new-email">"Email"</label>
                                    <input id="new-email" name="email" type="email" required autocomplete="off" />
                                    <label for="new-role">"Role"</label>
                                    <select id="new-role" name="role">
                                        <option value="viewer">"viewer"</option>
                                        <option value="operator">"operator"</option>
                                        <option value="admin">"admin"</option>
                                    </select>
                                    <label for="new-password">"Initial password"</label>
                                    <input
                                        id="new-password"
                                        name="password"
                                        type="password"
                                        required
                                        minlength="12"
                                        autocomplete="new-password"
                                    />
                                    <p class="help">"At least 12 characters. Share it with the person over a safe channel."</p>
                                    <button type="submit" class="primary">"Add user"</button>
                                    <FormResult value=move || add.value().get() ok="User added." />
                                </ActionForm>
                            </section>
                        }
                            .into_any()
                    }
                }
            })}
        </Transition>
    }
}

#[component]
fn UserLine(
    u: UserRow,
    set_role: ServerAction<SetUserRole>,
    set_disabled: ServerAction<SetUserDisabled>,
    reset: ServerAction<ResetUserPassword>,
) -> impl IntoView {
    let reset_label = StoredValue::new(format!("Reset the password of {}", u.email));
    let role_id = format!("role-{}", u.id);
    let current_role = u.role.clone();
    view! {
        <tr class:disabled=u.disabled>
            <td>
                {u.email.clone()}
                {u.is_me.then(|| view! { <span class="muted">" (you)"</span> })}
            </td>
            <td>
                <ActionForm action=set_role attr:class="inline">
                    <input type="hidden" name="id" value=u.id.to_string() />
                    <label class="sr-only" for=role_id.clone()>{format!("Role of {}", u.email)}</label>
                    <select id=role_id name="role">
                        {["admin", "operator", "viewer"]
                            .into_iter()
                            .map(|r| {
                                view! {
                                    <option value=r selected=r == current_role>
                                        {r}
                                    </option>
                                }
                            })
                            .collect_view()}
                    </select>
                    <button type="submit" class="small">"Set role"</button>
                </ActionForm>
            </td>
            <td>{if u.disabled { "disabled" } else { "active" }}</td>
            <td>{u.last_login_at.as_deref().map(when).unwrap_or_else(|| "never".into())}</td>
            <td>
                <Show when=move || !u.is_me>
                    <ActionForm action=set_disabled attr:class="inline">
                        <input type="hidden" name="id" value=u.id.to_string() />
                        <input type="hidden" name="disabled" value=(!u.disabled).to_string() />
                        <button type="submit" class="small">
                            {if u.disabled { "Enable" } else { "Disable" }}
                        </button>
                    </ActionForm>
                    <ActionForm action=reset attr:class="inline">
                        <input type="hidden" name="id" value=u.id.to_string() />
                        <button type="submit" class="small" aria-label=reset_label.get_value()>
                            "Reset password"
                        </button>
                    </ActionForm>
                </Show>
            </td>
        </tr>
    }
}
