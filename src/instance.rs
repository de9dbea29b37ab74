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
        // a restarted process may get the same pid: the random part tells them apart
        let random: String = random_suffix().chars().take(8).collect();
        format!("{host}-{}-{random}", std::process::id())
    })
}

/// Random hex, for names that must not repeat (the clock's nanoseconds if there is no entropy).
pub fn random_suffix() -> String {
    let mut bytes = [0u8; 12];
    match getrandom::getrandom(&mut bytes) {
        Ok(()) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        Err(_) => chrono::Utc::now()
            .timestamp_nanos_opt()
            .unwrap_or_default()
            .to_string(),
    }
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

/// A console process as the database last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub version: String,
    pub started_at: String,
    pub seen_at: String,
}

/// The console processes sharing a database, each seen by its heartbeat. Only PostgreSQL keeps
/// them: a SQLite file is served by one process.
#[async_trait::async_trait]
pub trait Instances: Send + Sync {
    /// Records process `id` as alive now, on the database's clock; its first beat records when
    /// it started.
    async fn beat(&self, id: &str, version: &str) -> Result<(), sqlx::Error>;
    /// The processes seen within `within`, oldest first; also forgets those not seen for a day.
    async fn alive(&self, within: std::time::Duration) -> Result<Vec<Member>, sqlx::Error>;
    /// Process `id` stops: it leaves the list at once instead of when its beats lapse.
    async fn leave(&self, id: &str) -> Result<(), sqlx::Error>;
}

/// Which process this page was served by and how many serve the database, in words; `None`
/// when this process is known to be the only one.
pub fn serving_line(this: &str, alive: &[String]) -> Option<String> {
    let others = alive.iter().filter(|id| id.as_str() != this).count();
    match others {
        0 if alive.is_empty() => None,
        0 => Some(format!(
            "Served by console process {this}, the only one running."
        )),
        n => Some(format!(
            "Served by console process {this}, one of {} running on this database.",
            n + 1
        )),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_serving_line_counts_this_process_once() {
        let a = "host-1-aa".to_owned();
        let b = "host-2-bb".to_owned();
        assert_eq!(super::serving_line(&a, &[]), None);
        assert_eq!(
            super::serving_line(&a, std::slice::from_ref(&a)).as_deref(),
            Some("Served by console process host-1-aa, the only one running.")
        );
        assert_eq!(
            super::serving_line(&a, &[b.clone(), a.clone()]).as_deref(),
            Some("Served by console process host-1-aa, one of 2 running on this database.")
        );
        // its own row not seen yet (the first beat is on its way): still counted
        assert_eq!(
            super::serving_line(&a, &[b]).as_deref(),
            Some("Served by console process host-1-aa, one of 2 running on this database.")
        );
    }

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
