//! The console's settings: credentials (environment, stored, sandbox) and their encryption.

pub mod credentials;
pub mod mail_url;
pub mod secret_box;
