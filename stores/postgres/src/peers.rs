//! What the instances serving one database tell each other, and which of them leads, through
//! PostgreSQL itself: notices go out with `pg_notify` and come in by `LISTEN` (the relay), and
//! the leader is whoever holds a session advisory lock. Each holds a connection of its own, not
//! one of the pool's: a `LISTEN` and a session lock belong to the server process behind one
//! connection, which is also why a transaction-pooling proxy (PgBouncer's `pool_mode=transaction`)
//! breaks both.

use std::time::Duration;

use integration::peers::{
    leader::Leadership,
    relay::{Incoming, Outgoing},
};
use sqlx::{
    postgres::{PgConnectOptions, PgListener, PgPoolOptions},
    ConnectOptions, Connection, PgConnection, PgPool,
};

/// The channel every instance of a database listens on (`NOTIFY` reaches one database only).
pub const CHANNEL: &str = "pinpoint_hibob";

/// The session lock the leader holds (a fixed number no other lock of the console uses).
pub const LEADER_KEY: i64 = 0x7069_6e70_6869_6202;
/// The session lock start-up's one-off writes are made under.
const START_UP_KEY: i64 = 0x7069_6e70_6869_6203;

/// A relay that hears nothing this long asks the server whether its connection still works.
const QUIET: Duration = Duration::from_secs(30);
/// How long a connection's check may take before the connection is taken for dead.
const CHECK_PATIENCE: Duration = Duration::from_secs(5);
/// The pause before connecting again after a failure.
const RECONNECT: Duration = Duration::from_secs(2);
/// How often an instance that does not lead tries for the lock.
pub const FOLLOWER_POLL: Duration = Duration::from_secs(3);
/// How often the leader checks that its connection, and with it the lock, is still there.
const LEADER_CHECK: Duration = Duration::from_secs(1);
/// A leader whose connection failed waits this long before trying for the lock again, so that a
/// follower whose connection is sound takes over rather than the leader that just failed.
const STEP_BACK: Duration = Duration::from_secs(7);

/// The pool's connection settings, for a connection of one's own named after `role`.
fn dedicated(pool: &PgPool, role: &str) -> PgConnectOptions {
    pool.connect_options()
        .as_ref()
        .clone()
        .application_name(&format!("pinpoint-hibob {role}"))
}

/// Carries this instance's notices to the others and theirs to it, until the process ends. After
/// its connection was lost (and whenever it is unsure what it missed), this process's pages,
/// worker and caches are told that anything may have changed.
pub async fn relay(pool: PgPool, mut outgoing: Outgoing, incoming: Incoming) {
    let options = dedicated(&pool, "relay");
    // one connection, kept: the listener reconnects through this pool of one
    let own = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .max_lifetime(None)
        .idle_timeout(None)
        .acquire_timeout(CHECK_PATIENCE)
        .connect_lazy_with(options);
    let mut unsent: Vec<String> = Vec::new();
    let mut connected_before = false;
    loop {
        let mut listener = match listen(&own).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for other instances' notices; trying again");
                incoming.listening(false);
                tokio::time::sleep(RECONNECT).await;
                continue;
            }
        };
        if connected_before {
            tracing::info!("listening for other instances' notices again");
            incoming.missed();
        }
        connected_before = true;
        incoming.listening(true);
        loop {
            if !unsent.is_empty() {
                match notify(&mut listener, &unsent).await {
                    Ok(()) => unsent.clear(),
                    Err(e) => {
                        tracing::warn!(error = %e, "notices to other instances could not be sent; connecting again");
                        break;
                    }
                }
            }
            tokio::select! {
                next = outgoing.next() => match next {
                    Some(payloads) => unsent = payloads,
                    // the console is gone: nothing more will be sent
                    None => return,
                },
                heard = tokio::time::timeout(QUIET, listener.try_recv()) => match heard {
                    Ok(Ok(Some(notification))) => incoming.heard(notification.payload()),
                    // the connection was lost and made again: what came meanwhile is lost
                    Ok(Ok(None)) => {
                        tracing::info!("the connection for other instances' notices was lost and made again");
                        incoming.missed();
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "lost the connection for other instances' notices");
                        break;
                    }
                    Err(_) => {
                        let alive = tokio::time::timeout(CHECK_PATIENCE, ping(&mut listener)).await;
                        if !matches!(alive, Ok(Ok(()))) {
                            tracing::warn!("the connection for other instances' notices stopped answering");
                            break;
                        }
                    }
                },
            }
        }
        drop(listener);
        incoming.listening(false);
        tokio::time::sleep(RECONNECT).await;
    }
}

async fn listen(own: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(own).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Sends `payloads` in one statement, so in one transaction: PostgreSQL delivers them together
/// and in order, and folds identical ones into one.
async fn notify(listener: &mut PgListener, payloads: &[String]) -> Result<(), sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT COUNT(pg_notify($1, payload)) AS "sent!" FROM unnest($2::text[]) AS payload"#,
        CHANNEL,
        payloads
    )
    .fetch_one(listener)
    .await?;
    Ok(())
}

async fn ping(listener: &mut PgListener) -> Result<(), sqlx::Error> {
    sqlx::query_scalar!(r#"SELECT 1 AS "one!""#)
        .fetch_one(listener)
        .await?;
    Ok(())
}

/// Elects this instance the leader when no other holds the leader's lock, and tells
/// `leadership`; runs until the process ends. The lock is held on a connection of its own and is
/// lost with it, which the leader notices within about a second and a follower within
/// [`FOLLOWER_POLL`] of PostgreSQL noticing (at once for a process that ended; for a machine that
/// vanished, when the server's TCP keep-alive gives up on it).
pub async fn elect(pool: PgPool, leadership: Leadership) {
    let options = dedicated(&pool, "leader");
    let mut pause = Duration::ZERO;
    loop {
        tokio::time::sleep(pause).await;
        pause = RECONNECT;
        let mut conn = match options.connect().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "cannot connect to take part in the leader election");
                continue;
            }
        };
        // follow until the lock is free
        loop {
            match try_lead(&mut conn).await {
                Ok(true) => break,
                Ok(false) => tokio::time::sleep(FOLLOWER_POLL).await,
                Err(e) => {
                    tracing::warn!(error = %e, "the leader election's connection failed");
                    break;
                }
            }
        }
        if !matches!(still_leading(&mut conn).await, Ok(true)) {
            continue;
        }
        leadership.set(true);
        tracing::info!("this instance leads: it runs the jobs that run once per database");
        loop {
            tokio::time::sleep(LEADER_CHECK).await;
            let check = tokio::time::timeout(CHECK_PATIENCE, still_leading(&mut conn)).await;
            if !matches!(check, Ok(Ok(true))) {
                break;
            }
        }
        leadership.set(false);
        tracing::warn!("this instance lost the lead (its connection to the database failed); another takes over");
        drop(conn);
        pause = STEP_BACK;
    }
}

async fn try_lead(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(r#"SELECT pg_try_advisory_lock($1) AS "held!""#, LEADER_KEY)
        .fetch_one(conn)
        .await
}

/// Whether the server process behind `conn` holds the leader's lock: a session lock lasts as
/// long as that process, which this also shows is still there.
async fn still_leading(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (
               SELECT 1 FROM pg_locks
               WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()
                 AND classid = ($1::bigint >> 32)::oid
                 AND objid = ($1::bigint & 4294967295)::oid AND objsubid = 1) AS "held!""#,
        LEADER_KEY
    )
    .fetch_one(conn)
    .await
}

/// Start-up's one-off writes (the first admin) made by one instance at a time, while this lives.
#[derive(Debug)]
pub struct StartUpLock {
    conn: PgConnection,
}

impl StartUpLock {
    /// Waits (up to the statement timeout) for instances starting at the same moment.
    pub async fn take(pool: &PgPool) -> Result<Self, sqlx::Error> {
        let mut conn = dedicated(pool, "start-up").connect().await?;
        sqlx::query!("SELECT pg_advisory_lock($1)", START_UP_KEY)
            .execute(&mut conn)
            .await?;
        Ok(Self { conn })
    }

    /// Lets the next instance start; closing the connection ends its lock.
    pub async fn release(self) {
        let _ = self.conn.close().await;
    }
}
