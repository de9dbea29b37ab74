//! The integration core of the Pinpoint → HiBob console: the store, credentials, people and
//! access, and the outbound clients. The UI (`app`) and the binary (`server`) call into this crate;
//! nothing here knows about HTTP routing or rendering.

pub mod audit;
pub mod credentials;
pub mod db;
pub mod hibob;
pub mod login_throttle;
pub mod pinpoint;
pub mod secret_box;
pub mod users;

mod outbound;
pub use outbound::ConnectionCheck;
