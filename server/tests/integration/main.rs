//! The server's integration tests, in one binary: each test binary links the whole console, so
//! one per file cost a link (and its disk) each, and ran the files one after another.
//!
//! Tests share this process, so none may change what the others read: process-wide state such as
//! environment variables or the working directory stays as the runner started it, and each test
//! passes its configuration explicitly.

// beside this folder, not in it: the examples include `common/process.rs` by path
#[path = "../common/mod.rs"]
mod common;

mod console;
mod crash;
mod data_protection;
mod drain;
mod exactly_once;
mod failover;
mod hardening;
mod instances;
mod keep_in_step;
mod live;
mod logs;
mod mappings;
mod outbound_guard;
mod plugin;
mod postgres;
mod shared_limits;
mod webhooks;
