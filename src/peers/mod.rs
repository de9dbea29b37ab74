//! What an instance shares with the other instances serving the same database: the relay that
//! carries notices between them (`relay`) and the leader that alone runs the jobs meant to run
//! once per database (`leader`). The engine's side (PostgreSQL's `LISTEN`/`NOTIFY` and advisory
//! locks) lives in the engine's crate; this side is the same for every engine, and with SQLite,
//! whose database one process serves, there is no relay and the process always leads.

pub mod leader;
pub mod relay;
