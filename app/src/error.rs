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
    #[error("Too many failed sign-in attempts. Try again in {0} minute(s).")]
    Throttled(u64),
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
        let err = crate::ssr::fail(err);
        err
    }
}

impl AppError {
    pub fn status(&self) -> u16 {
        match self {
            AppError::Unauthenticated => 401,
            AppError::Forbidden => 403,
            AppError::Invalid(_) => 422,
            AppError::Throttled(_) => 429,
            AppError::Internal(_) => 500,
            AppError::Transport(_) => 400,
        }
    }
}
