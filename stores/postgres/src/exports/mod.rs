//! Exports on PostgreSQL: the durable queue, plugin submits' holds on their rows, the console's
//! employees and their invitations, and resolutions. The rules they apply (refusals, reasons,
//! audit texts) are the core's, shared with SQLite; what differs is how each read-modify-write
//! is kept from racing another, since PostgreSQL runs transactions side by side.

mod invitations;
mod plugin_attempt;
mod queue;

pub(crate) use queue::millis;
mod resolution;
