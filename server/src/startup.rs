//! From configuration to a running console: logging, the database, the secret key, the first
//! admin, and the shared state.

use integration::mapping::service::MappingService;
use integration::Db;
use std::time::Duration;

use anyhow::Context;
use app::ssr::ConsoleState;
use integration::{
    access::throttle::LoginThrottle,
    access::users::{Actor, Role},
    hibob::gateway::{Gateway, GatewaySettings},
    settings::credentials::Credentials,
    settings::secret_box::{self as secret_box, SecretBox},
};
use secrecy::SecretString;

use crate::config::{Config, LogFormat};

pub fn init_tracing(format: LogFormat) {
    use tracing_subscriber::{fmt, prelude::*, EnvFilter};
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_sessions=warn,hyper=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    // try_init: tests may initialise more than once
    let _ = match format {
        LogFormat::Human => registry.with(fmt::layer().with_target(false)).try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false),
            )
            .try_init(),
    };
}

/// Logs a panic's place, not its message, which may quote what it was working on (a candidate's
/// data, a request). Panics are caught per request and per export. Not for tests, whose
/// failures need their messages.
pub fn withhold_panic_messages() {
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(location = %at, "panic caught (message withheld from the log)");
    }));
}

/// A console built from its configuration, not yet serving: the caller binds the listener, runs
/// the worker and says what start-up did.
pub use crate::database::{open_database, Database, Pool};

pub struct Built {
    /// The shared state.
    pub state: ConsoleState,
    pub router: axum::Router,
    /// The export worker, not running yet.
    pub worker: crate::worker::Worker,
    pub first_admin: FirstAdmin,
    pub database: Database,
    /// The simulators when sandbox mode applies; dropping them stops them.
    pub sandbox: Option<crate::sandbox::Simulators>,
}

/// Everything the binary and the integration tests share between configuration and serving.
pub async fn build(config: &Config) -> anyhow::Result<Built> {
    check(config)?;
    let database = open_database(config).await?;
    build_on(config, database).await
}

fn check(config: &Config) -> anyhow::Result<()> {
    config.check_destinations()?;
    anyhow::ensure!(
        !(config.on_postgres() && config.backup_dir.is_some()),
        "BACKUP_DIR schedules backups of a SQLite database; on PostgreSQL unset it and back up \
         with pg_dump (or the platform's backups)"
    );
    Ok(())
}

/// [`build`] on a database opened already (tests open one beside another console's).
pub async fn build_on(config: &Config, database: Database) -> anyhow::Result<Built> {
    check(config)?;
    let sealer = secret_box(config)?;
    let mut state = console_state(config, database.db.clone(), sealer);
    let sandbox = start_sandbox(config, &mut state).await?;
    // after the sandbox, so the relay forgets the credentials and catalogue in use
    join_peers(&state, &database);
    // after the sandbox, so the worker exports with the credentials it put in place
    let worker = export_worker(config, &state);
    let router = crate::console::router(config, state.clone(), &database).await?;
    // last, so that no later failure can lose a generated password before it is shown
    let first_admin = first_admin_once(&database, config).await?;
    Ok(Built {
        state,
        router,
        worker,
        first_admin,
        database,
        sandbox,
    })
}

pub fn secret_box(config: &Config) -> anyhow::Result<SecretBox> {
    if let Some(text) = &config.secret_key {
        return SecretBox::from_key_text(text).context("SECRET_KEY is not usable");
    }
    let path = config
        .database_file()
        .map(|f| secret_box::default_key_path(&f))
        .context(if config.on_postgres() {
            "SECRET_KEY must be set on PostgreSQL: there is no folder beside the database to keep a \
             generated key in, and every console of a database needs the same key (generate one \
             with: openssl rand -hex 32)"
        } else {
            "SECRET_KEY must be set when the database is not a file"
        })?;
    SecretBox::load_or_create(&path).context("cannot load or create the secret key file")
}

/// On PostgreSQL, the relay of notices between the instances sharing the database and this
/// instance's part in the leader election, each on a connection of its own, running until the
/// process ends. SQLite's one process needs neither: it always leads.
fn join_peers(state: &ConsoleState, database: &Database) {
    use integration::peers::relay;
    let Pool::Postgres(pool) = &database.pool else {
        return;
    };
    let local = relay::Local {
        changes: state.changes.clone(),
        worker: state.wake_worker.here().clone(),
        credentials: state.credentials.clone(),
        gateway: state.mappings.gateway().clone(),
        alerts: state.alerts.clone(),
        health: state.health.clone(),
    };
    if let Some((outgoing, incoming)) = relay::attach(local) {
        tokio::spawn(store_postgres::peers::relay(
            pool.clone(),
            outgoing,
            incoming,
        ));
    }
    tokio::spawn(store_postgres::peers::elect(
        pool.clone(),
        state.leadership.clone(),
    ));
}

/// [`ensure_first_admin`], one instance at a time where several start on one database together,
/// so that they make one admin between them.
async fn first_admin_once(database: &Database, config: &Config) -> anyhow::Result<FirstAdmin> {
    let Pool::Postgres(pool) = &database.pool else {
        return ensure_first_admin(&database.db, config).await;
    };
    let lock = store_postgres::peers::StartUpLock::take(pool)
        .await
        .context("cannot wait for other consoles starting on this database")?;
    let made = ensure_first_admin(&database.db, config).await;
    lock.release().await;
    made
}

/// What start-up did about the first admin, for the operator to read.
#[derive(Debug, PartialEq, Eq)]
pub enum FirstAdmin {
    AlreadyHaveUsers,
    FromEnvironment(String),
    Generated { email: String, password: String },
}

pub const GENERATED_ADMIN_EMAIL: &str = "admin@localhost";

/// Creates the first admin when there is no user: from ADMIN_EMAIL/ADMIN_PASSWORD, or else with a
/// generated password that is shown once on the terminal.
pub async fn ensure_first_admin(db: &Db, config: &Config) -> anyhow::Result<FirstAdmin> {
    if db.users().count().await? > 0 {
        return Ok(FirstAdmin::AlreadyHaveUsers);
    }
    let actor = Actor::system("start-up");
    match (&config.admin_email, &config.admin_password) {
        (Some(email), Some(password)) => {
            let user = db
                .users()
                .create(
                    &actor,
                    email,
                    SecretString::from(password.clone()),
                    Role::Admin,
                )
                .await
                .context("cannot create the admin from ADMIN_EMAIL/ADMIN_PASSWORD")?;
            Ok(FirstAdmin::FromEnvironment(user.email))
        }
        (Some(_), None) | (None, Some(_)) => {
            anyhow::bail!("set both ADMIN_EMAIL and ADMIN_PASSWORD, or neither")
        }
        (None, None) => {
            let password = generate_password()?;
            db.users()
                .create(
                    &actor,
                    GENERATED_ADMIN_EMAIL,
                    SecretString::from(password.clone()),
                    Role::Admin,
                )
                .await?;
            Ok(FirstAdmin::Generated {
                email: GENERATED_ADMIN_EMAIL.to_owned(),
                password,
            })
        }
    }
}

fn generate_password() -> anyhow::Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    getrandom::getrandom(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}

/// The export worker for this process; its lease owner name is the process's own, which tells
/// processes apart in the database (and after a restart).
pub fn export_worker(config: &Config, state: &ConsoleState) -> crate::worker::Worker {
    crate::worker::Worker {
        db: state.db.clone(),
        pipeline: integration::exports::pipeline::Pipeline::new(
            state.db.clone(),
            state.mappings.clone(),
        )
        .with_timeout(Duration::from_secs(config.outbound_timeout_secs.max(1))),
        wake: state.wake_worker.here().clone(),
        changes: state.changes.clone(),
        max_attempts: config.export_max_attempts,
        concurrency: usize::from(config.export_concurrency),
        health: state.health.clone(),
        alerts: state.alerts.clone(),
        lease: Duration::from_secs(config.export_lease_secs),
        owner: integration::instance::id().to_owned(),
    }
}

/// The address this process can reach itself at (a wildcard listen address is not one).
fn loopback(addr: std::net::SocketAddr) -> std::net::SocketAddr {
    if addr.ip().is_unspecified() {
        std::net::SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    }
}

/// The sample hires sandbox mode delivers at start-up; the last one has no last name in
/// Pinpoint (as with anonymised screening), so its export stops and needs attention.
pub const SANDBOX_SAMPLE_HIRES: [u64; 4] = [1001, 1002, 1003, 1004];
pub const SANDBOX_INCOMPLETE_HIRE: u64 = 1004;

/// Starts the simulators and points the console at them when sandbox mode applies.
pub async fn start_sandbox(
    config: &Config,
    state: &mut ConsoleState,
) -> anyhow::Result<Option<crate::sandbox::Simulators>> {
    use crate::config::SandboxMode;
    use integration::settings::credentials::CredentialKey as K;
    let wanted = match config.sandbox {
        SandboxMode::On => true,
        SandboxMode::Off => false,
        SandboxMode::Auto => {
            !state.credentials.hibob_configured().await?
                && !state.credentials.pinpoint_configured().await?
        }
    };
    if !wanted {
        return Ok(None);
    }
    let creds = crate::sandbox::SandboxCredentials::generate();
    let sims = crate::sandbox::start(([127, 0, 0, 1], 0).into(), creds.clone()).await?;
    sims.state.put_application(
        SANDBOX_INCOMPLETE_HIRE.to_string(),
        serde_json::json!({
            "first_name": "Noor",
            "last_name": null,
            "email": "noor+1004@example.com",
        }),
    );
    let secret = |s: String| SecretString::from(s);
    let values = [
        (K::HibobApiBaseUrl, secret(sims.hibob_base_url.clone())),
        (
            K::HibobServiceUserId,
            secret(creds.hibob_service_user_id.clone()),
        ),
        (K::HibobServiceUserToken, secret(creds.hibob_token.clone())),
        (
            K::PinpointApiBaseUrl,
            secret(sims.pinpoint_base_url.clone()),
        ),
        (K::PinpointApiKey, secret(creds.pinpoint_api_key.clone())),
        (
            K::PinpointWebhookSecret,
            secret(uuid::Uuid::new_v4().simple().to_string()),
        ),
        (K::HibobDefaultSite, secret("London".to_owned())),
    ]
    .into_iter()
    .collect();
    state.credentials = state.credentials.clone().with_sandbox(values);
    // so "Send to HiBob" can be tried at once: a plugin token made at the first sandbox start and
    // kept like one entered in Settings (the sandbox prints it with the sign-in)
    if state.credentials.get(K::PluginToken).await?.is_none() {
        let token = format!("sandbox-{}", uuid::Uuid::new_v4().simple());
        state
            .credentials
            .save(
                &integration::access::users::Actor::system("sandbox start-up"),
                vec![integration::settings::credentials::CredentialChange {
                    key: K::PluginToken,
                    value: Some(SecretString::from(token)),
                }],
            )
            .await?;
    }
    // the mapping service reads HiBob and Pinpoint through the credentials it was given
    state.mappings = MappingService::new(
        state.db.clone(),
        hibob_gateway(config, &state.db, state.credentials.clone()),
    );
    state.alerts = alerts(config, &state.db, &state.credentials, &state.changes);
    state.watcher = watcher(
        config,
        &state.db,
        &state.mappings,
        &state.alerts,
        &state.changes,
    );
    Ok(Some(sims))
}

/// Delivers the sample hires to the console's own webhook, signed, over HTTP, once it listens.
pub async fn seed_sandbox(state: &ConsoleState) -> anyhow::Result<()> {
    use integration::settings::credentials::CredentialKey;
    use secrecy::ExposeSecret;
    let secret = state
        .credentials
        .get(CredentialKey::PinpointWebhookSecret)
        .await?
        .context("sandbox without a webhook secret")?;
    for id in SANDBOX_SAMPLE_HIRES {
        integration::webhooks::intake::send_signed_hire(
            &state.own_webhook_url,
            secret.expose_secret(),
            id,
        )
        .await?;
    }
    Ok(())
}

/// The one way into HiBob for the console, the plugin and the worker. Where processes share
/// the database, its per-person locks are held there too.
fn hibob_gateway(config: &Config, db: &Db, credentials: Credentials) -> Gateway {
    let gateway = Gateway::new(
        credentials,
        GatewaySettings {
            timeout: Duration::from_secs(config.outbound_timeout_secs.max(1)),
            ..GatewaySettings::default()
        },
    );
    if let Some(locks) = db.shared_locks() {
        gateway.share_locks(locks);
    }
    gateway
}

pub fn console_state(config: &Config, db: Db, sealer: SecretBox) -> ConsoleState {
    // one outlet for everything this console tells other instances: its changes, its workers'
    // wake-ups and its saves (it leads nowhere until a relay is attached)
    let changes = integration::live::Changes::default();
    let credentials = Credentials::new(db.clone(), sealer, config.credentials_from_env())
        .allow_private_destinations(config.allow_private_destinations)
        .telling(changes.outlet().clone());
    let alerts = alerts(config, &db, &credentials, &changes);
    let mappings = MappingService::new(db.clone(), hibob_gateway(config, &db, credentials.clone()));
    let watcher = watcher(config, &db, &mappings, &alerts, &changes);
    // on a database several consoles share, they count sign-in failures together
    let throttle = LoginThrottle::default().over(&db);
    ConsoleState {
        alerts,
        mappings,
        watcher,
        credentials,
        db,
        throttle,
        absolute_session_limit: Duration::from_secs(u64::from(config.session_max_hours) * 3600),
        wake_worker: integration::exports::wake::WakeWorkers::new(
            Default::default(),
            changes.outlet().clone(),
        ),
        leadership: if config.on_postgres() {
            integration::peers::leader::Leadership::contested()
        } else {
            integration::peers::leader::Leadership::alone()
        },
        own_webhook_url: format!("http://{}/webhooks/pinpoint", loopback(config.site_addr)),
        changes,
        health: Default::default(),
        data_settings: data_settings(config),
    }
}

/// The alerts outbox and dispatcher, reading its targets through `credentials` (so it must be
/// made again when the sandbox replaces them) and telling the other instances of each alert.
fn alerts(
    config: &Config,
    db: &Db,
    credentials: &Credentials,
    changes: &integration::live::Changes,
) -> integration::alerts::Alerts {
    integration::alerts::Alerts::new(
        db.clone(),
        credentials.clone(),
        config.public_url().as_str(),
    )
    .telling(changes.outlet().clone())
}

/// The watch of exported hires, reading HiBob and Pinpoint through the mapping service's
/// credentials (so it must be made again when the sandbox replaces them).
fn watcher(
    config: &Config,
    db: &Db,
    mappings: &MappingService,
    alerts: &integration::alerts::Alerts,
    changes: &integration::live::Changes,
) -> integration::watch::check::Watcher {
    integration::watch::check::Watcher::new(
        db.clone(),
        mappings.clone(),
        alerts.clone(),
        changes.clone(),
    )
    .with_timeout(Duration::from_secs(config.outbound_timeout_secs.max(1)))
}

/// What the Settings page shows of backups and retention.
fn data_settings(config: &Config) -> Vec<app::pages::data_settings::DataSetting> {
    let days = |n: u32| format!("{n} days");
    let backups_on = config.backup_dir.is_some();
    [
        (
            "BACKUP_DIR",
            "Scheduled backups into",
            config
                .backup_dir
                .as_ref()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|| "off".to_owned()),
        ),
        (
            "BACKUP_INTERVAL_HOURS",
            "A backup every",
            if backups_on {
                format!("{} hours", config.backup_interval_hours)
            } else {
                "—".to_owned()
            },
        ),
        (
            "BACKUP_KEEP",
            "Scheduled backups kept",
            if backups_on {
                config.backup_keep.to_string()
            } else {
                "—".to_owned()
            },
        ),
        (
            "RETAIN_WEBHOOK_BODIES_DAYS",
            "Webhook bodies and headers kept for",
            days(config.retain_webhook_bodies_days),
        ),
        (
            "RETAIN_CALL_RECORDS_DAYS",
            "Export steps' requests and answers kept for",
            days(config.retain_call_records_days),
        ),
        (
            "RETAIN_REJECTED_DAYS",
            "Rejected deliveries kept for",
            days(config.retain_rejected_days),
        ),
        (
            "RETAIN_FINISHED_EXPORTS_DAYS",
            "Succeeded exports keep steps, e-mail and start date for",
            days(config.retain_finished_exports_days),
        ),
        (
            "RETAIN_AUDIT_DAYS",
            "Audit entries kept for",
            days(config.retain_audit_days),
        ),
    ]
    .into_iter()
    .map(
        |(variable, meaning, value)| app::pages::data_settings::DataSetting {
            variable: variable.to_owned(),
            meaning: meaning.to_owned(),
            value,
        },
    )
    .collect()
}
