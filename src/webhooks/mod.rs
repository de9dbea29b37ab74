//! Webhook intake: verification, storage, the delivery log, and the limits on refusals.

pub mod deliveries;
pub mod intake;
pub mod log;
pub mod rejection_limit;
pub mod storage;

pub use storage::WebhookStore;
