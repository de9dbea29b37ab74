//! Who may do what: users and sessions' people, the login throttle, and the audit log.

pub mod audit;
pub mod passwords;
pub mod storage;
pub mod throttle;
pub mod users;

pub use storage::{AuditLog, UserStore};
