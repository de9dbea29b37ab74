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
        let err = crate::ssr::fail(err);
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
