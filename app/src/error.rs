//! The one error type every server function returns. It crosses the wire, so it carries only what
//! a person may see: internal detail stays in the server log, tied to the request id.

use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("Please sign in to continue.")]
    Unauthenticated,
    #[error("Your role does not allow this. Ask an admin.")]
    Forbidden,
    #[error("{0}")]
    Invalid(String),
    /// Seconds to wait.
    #[error("Too many failed sign-in attempts. Try again in {}.", wait_words(*.0))]
    Throttled(u64),
    #[error("The console is busy checking other sign-ins. Try again in a few seconds.")]
    Busy,
    #[error("Something went wrong on our side (request {0}). The details are in the server log.")]
    Internal(String),
    #[error("The request could not be completed: {0}")]
    Transport(String),
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        let err = AppError::Transport(value.to_string());
        // On the server this is a request the function could not even decode: the client's fault,
        // so a 4xx rather than the 500 the framework would answer.
        #[cfg(feature = "ssr")]
        let err = fail(err);
        err
    }
}

/// A wait in the words a person reads it in: seconds while short, else whole minutes rounded up.
pub fn wait_words(seconds: u64) -> String {
    match seconds {
        0 | 1 => "1 second".to_owned(),
        2..=90 => format!("{seconds} seconds"),
        _ => format!("{} minutes", seconds.div_ceil(60)),
    }
}

impl AppError {
    pub fn status(&self) -> u16 {
        match self {
            AppError::Unauthenticated => 401,
            AppError::Forbidden => 403,
            AppError::Invalid(_) => 422,
            AppError::Throttled(_) => 429,
            AppError::Busy => 503,
            AppError::Internal(_) => 500,
            AppError::Transport(_) => 400,
        }
    }
}

#[cfg(feature = "ssr")]
pub use server::{fail, internal};

/// How the core's errors reach the browser: what the person can act on becomes `Invalid` (422) or
/// `Forbidden` (403); anything else is logged and answered with the request id only.
#[cfg(feature = "ssr")]
mod server {
    use http::{header, request::Parts, StatusCode};
    use integration::{
        access::users::UserError, exports::bulk_retry::BulkError, filters::FilterError,
        mapping::store::StoreError, settings::credentials::CredentialError,
        webhooks::log::ReprocessError,
    };
    use leptos::prelude::use_context;
    use leptos_axum::ResponseOptions;

    use super::AppError;

    fn request_id() -> String {
        use_context::<Parts>()
            .and_then(|p| {
                p.headers
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "unknown".to_owned())
    }

    /// Logs the cause and hands the browser only the request id.
    pub fn internal(cause: impl std::fmt::Display) -> AppError {
        let id = request_id();
        tracing::error!(request_id = %id, error = %cause, "server function failed");
        AppError::Internal(id)
    }

    /// Sets the HTTP status of a failed server-function call made by `fetch`. A plain HTML form
    /// post is answered with a redirect back to the page (the error travels in the URL), so its
    /// status is left alone.
    pub fn fail(err: AppError) -> AppError {
        if let (Some(parts), Some(res)) = (use_context::<Parts>(), use_context::<ResponseOptions>())
        {
            let is_form_post = parts
                .headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("text/html"))
                && parts.uri.path().starts_with("/api/");
            if !is_form_post {
                if let Ok(status) = StatusCode::from_u16(err.status()) {
                    res.set_status(status);
                }
            }
        }
        err
    }

    /// Errors that are never the person's doing.
    macro_rules! internal_from {
        ($($error:ty),* $(,)?) => {$(
            impl From<$error> for AppError {
                fn from(e: $error) -> Self {
                    fail(internal(e))
                }
            }
        )*};
    }

    internal_from!(
        sqlx::Error,
        tower_sessions::session::Error,
        integration::alerts::AlertError,
        integration::hibob::ClientError,
        integration::pinpoint::ClientError,
    );

    impl From<UserError> for AppError {
        fn from(e: UserError) -> Self {
            match e {
                UserError::Invalid(m) => fail(AppError::Invalid(m)),
                UserError::Duplicate | UserError::NotFound | UserError::LastAdmin => {
                    fail(AppError::Invalid(e.to_string()))
                }
                other => fail(internal(other)),
            }
        }
    }

    impl From<CredentialError> for AppError {
        fn from(e: CredentialError) -> Self {
            match e {
                CredentialError::SetByEnvironment(..) | CredentialError::Invalid(..) => {
                    fail(AppError::Invalid(e.to_string()))
                }
                other => fail(internal(other)),
            }
        }
    }

    impl From<FilterError> for AppError {
        fn from(e: FilterError) -> Self {
            fail(AppError::Invalid(e.to_string()))
        }
    }

    impl From<StoreError> for AppError {
        fn from(e: StoreError) -> Self {
            match e {
                StoreError::NotFound(id) => fail(AppError::Invalid(format!(
                    "There is no mapping version {id}."
                ))),
                StoreError::Conflict { .. } | StoreError::Unchanged(_) => {
                    fail(AppError::Invalid(e.to_string()))
                }
                other => fail(internal(other)),
            }
        }
    }

    impl From<BulkError> for AppError {
        fn from(e: BulkError) -> Self {
            match e {
                BulkError::Db(e) => fail(internal(e)),
                other => {
                    let mut text = other.to_string();
                    if let Some(first) = text.get(..1) {
                        text = first.to_uppercase() + text.get(1..).unwrap_or_default();
                    }
                    fail(AppError::Invalid(format!("{text}.")))
                }
            }
        }
    }

    impl From<integration::watch::WatchError> for AppError {
        fn from(e: integration::watch::WatchError) -> Self {
            use integration::watch::WatchError;
            match e {
                WatchError::Db(e) => fail(internal(e)),
                other => fail(AppError::Invalid(other.to_string())),
            }
        }
    }

    impl From<ReprocessError> for AppError {
        fn from(e: ReprocessError) -> Self {
            match e {
                ReprocessError::NeedsAdmin(_) => fail(AppError::Forbidden),
                ReprocessError::Db(e) => fail(internal(e)),
                other => fail(AppError::Invalid(other.to_string())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_says_how_long_to_wait() {
        assert_eq!(
            AppError::Throttled(30).to_string(),
            "Too many failed sign-in attempts. Try again in 30 seconds."
        );
        assert_eq!(wait_words(0), "1 second");
        assert_eq!(wait_words(91), "2 minutes");
        assert_eq!(wait_words(900), "15 minutes");
    }
}
