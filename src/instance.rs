//! Which console process this is. Several processes may serve one PostgreSQL database; each
//! names itself once at start-up, and that name is what the database, `/readyz`, `/metrics` and
//! the dashboard use to tell them apart (leases, the instance list, the leader of the jobs that
//! run once). A restarted process gets a new name even when the pid repeats.

use std::sync::OnceLock;

/// This process's name: the host, the pid and a random part.
pub fn id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let host = hostname();
        let random: String = crate::exports::plugin_attempt::random_suffix()
            .chars()
            .take(8)
            .collect();
        format!("{host}-{}-{random}", std::process::id())
    })
}

/// The machine's name, as the kernel has it, cut to something a page can show; "console" when
/// it cannot be read.
fn hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = name
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .take(40)
        .collect();
    if name.is_empty() {
        "console".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_name_is_stable_within_a_process_and_shaped_for_pages() {
        let id = super::id();
        assert_eq!(id, super::id());
        assert!(id.len() <= 40 + 1 + 10 + 1 + 8, "{id}");
        assert!(id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'));
    }
}
