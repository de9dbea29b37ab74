//! The console's settings: credentials (environment, stored, sandbox), their encryption and the
//! sections the Settings page shows them in.

pub mod credentials;
pub mod keys;
pub mod mail_url;
pub mod secret_box;
pub mod sections;
pub mod stored;
