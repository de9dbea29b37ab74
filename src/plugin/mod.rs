//! The Pinpoint plugin: the service behind its routes, its form (the mapping), and its checks.

mod answers;
pub mod checks;
pub mod form;
pub mod meta;
mod recent;
mod request;
pub mod service;
mod submission;
