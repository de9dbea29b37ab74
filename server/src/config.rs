//! Every setting is a flag and an environment variable; `--help` documents them all. A `.env`
//! file in the working directory is read first (see `main`).

use std::{collections::HashMap, net::SocketAddr, path::PathBuf, str::FromStr};

use clap::{Args, Parser, Subcommand, ValueEnum};
use integration::{client_addr::TrustedProxies, settings::credentials::CredentialKey};
use secrecy::SecretString;

#[derive(Parser)]
#[command(
    name = "pinpoint-hibob",
    version,
    about = "Pinpoint → HiBob integration console: serves Pinpoint's plugin contract and webhooks, \
             exports hires to HiBob, and gives ops a browser console."
)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the console (the default).
    Serve,
    /// Manage console users.
    #[command(subcommand)]
    User(UserCommand),
    /// Write a consistent, checked copy of the database (the console may be running).
    Backup {
        /// The file to write; refused if it exists, unless --force.
        #[arg(long)]
        output: PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Put a backup in place of the database. Stop the console first: a database in use is
    /// refused. The replaced database is kept as <database>.before-restore-<UTC time>.
    Restore {
        /// The backup to restore; it is checked first.
        #[arg(long)]
        input: PathBuf,
    },
    /// Copy a SQLite database into an empty PostgreSQL database, all of it in one transaction
    /// (sessions are not copied: people sign in again). Stop the console first: a database in
    /// use is refused, and so is a PostgreSQL database that already holds data.
    MigrateDb {
        /// The SQLite database, e.g. sqlite://data/pinpoint-hibob.db
        #[arg(long)]
        from: String,
        /// The PostgreSQL database, e.g. postgres://user:password@host:5432/pinpoint_hibob
        #[arg(long)]
        to: String,
    },
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a user. The password is read from standard input (first line).
    Add {
        #[arg(long)]
        email: String,
        /// admin, operator or viewer
        #[arg(long, default_value = "viewer")]
        role: String,
    },
    /// Set a user's password, read from standard input (first line).
    SetPassword {
        #[arg(long)]
        email: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SandboxMode {
    /// Sandbox when neither HiBob nor Pinpoint credentials are configured.
    Auto,
    On,
    Off,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Args, Clone)]
pub struct Config {
    /// The database, and by its scheme the engine: sqlite://FILE (the file and its directory
    /// are created if missing), or postgres://USER:PASSWORD@HOST:PORT/DATABASE (the database
    /// must exist; its tables are created). On PostgreSQL, SECRET_KEY must be set and one
    /// console runs per database.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://data/pinpoint-hibob.db"
    )]
    pub database_url: String,

    /// PostgreSQL connections this console's pool opens at most; the console opens a few more of
    /// its own (notices, the leader election, the instance lock, and up to 4 holding the locks on
    /// the people being exported). Unused on SQLite.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub database_max_connections: u32,

    /// Address to listen on.
    #[arg(long, env = "LEPTOS_SITE_ADDR", default_value = "127.0.0.1:3000")]
    pub site_addr: SocketAddr,

    /// The URL Pinpoint and browsers use to reach the console [default: http://<LEPTOS_SITE_ADDR>].
    /// An https URL makes the session cookie Secure and answers carry Strict-Transport-Security.
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<url::Url>,

    /// Shared secret Pinpoint sends on plugin calls (header X-Plugin-Token or the pluginToken
    /// configuration value). Plugin calls other than the meta endpoint are refused until set.
    #[arg(long, env = "PLUGIN_TOKEN", hide_env_values = true)]
    pub plugin_token: Option<String>,

    /// The webhook's Signing Secret (PINPOINT-HMAC-SHA256). Webhooks are refused until set.
    #[arg(long, env = "PINPOINT_WEBHOOK_SECRET", hide_env_values = true)]
    pub pinpoint_webhook_secret: Option<String>,

    /// Pinpoint REST API root, e.g. https://acme.pinpointhq.com/api/v1.
    #[arg(long, env = "PINPOINT_API_BASE_URL")]
    pub pinpoint_api_base_url: Option<String>,

    /// Pinpoint REST API key (sent as X-API-KEY).
    #[arg(long, env = "PINPOINT_API_KEY", hide_env_values = true)]
    pub pinpoint_api_key: Option<String>,

    /// HiBob API root [default: https://api.hibob.com/v1].
    #[arg(long, env = "HIBOB_API_BASE_URL")]
    pub hibob_api_base_url: Option<String>,

    /// HiBob service user ID (Basic auth user).
    #[arg(long, env = "HIBOB_SERVICE_USER_ID")]
    pub hibob_service_user_id: Option<String>,

    /// HiBob service user token (Basic auth password).
    #[arg(long, env = "HIBOB_SERVICE_USER_TOKEN", hide_env_values = true)]
    pub hibob_service_user_token: Option<String>,

    /// HiBob site (work.site) given to every exported employee, as named in Bob.
    #[arg(long, env = "HIBOB_DEFAULT_SITE")]
    pub hibob_default_site: Option<String>,

    /// Start date when the offer has none: the hire date plus this many days [default: 14].
    #[arg(long, env = "DEFAULT_START_DAYS")]
    pub default_start_days: Option<String>,

    /// A Bob welcome wizard id: every new employee is invited to it once created [default: no
    /// invitation].
    #[arg(long, env = "HIBOB_WELCOME_WIZARD_ID")]
    pub hibob_welcome_wizard_id: Option<String>,

    /// Slack-compatible incoming webhook that stopped exports are posted to ({"text": …}); https,
    /// or http to this machine only.
    #[arg(long, env = "ALERT_WEBHOOK_URL", hide_env_values = true)]
    pub alert_webhook_url: Option<String>,

    /// Mail server for alert e-mails, over TLS: smtps://user:password@smtp.example.com, or
    /// smtp://user:password@smtp.example.com:587?tls=required (STARTTLS). Cleartext smtp:// is
    /// refused at start-up unless the server is on this machine (localhost).
    #[arg(long, env = "SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// From address of alert e-mails.
    #[arg(long, env = "ALERT_EMAIL_FROM")]
    pub alert_email_from: Option<String>,

    /// Recipients of alert e-mails, comma-separated.
    #[arg(long, env = "ALERT_EMAIL_TO")]
    pub alert_email_to: Option<String>,

    /// Non-urgent stopped exports are sent together at most this often, in minutes [default: 30].
    #[arg(long, env = "ALERT_DIGEST_MINUTES")]
    pub alert_digest_minutes: Option<String>,

    /// HiBob field ids updated without review when Pinpoint changes them after the export,
    /// comma-separated (e.g. work.startDate). Empty: every change waits for a person.
    #[arg(long, env = "WATCH_AUTO_FIELDS")]
    pub watch_auto_fields: Option<String>,

    /// Exported hires are compared with HiBob until this many days after their start [default: 14].
    #[arg(long, env = "WATCH_DAYS_AFTER_START")]
    pub watch_days_after_start: Option<String>,

    /// Create this admin at start-up when no user exists.
    #[arg(long, env = "ADMIN_EMAIL")]
    pub admin_email: Option<String>,

    /// Password of ADMIN_EMAIL (at least 12 characters).
    #[arg(long, env = "ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,

    /// Key that encrypts stored credentials: 32 bytes as base64 or hex [default: generated on first
    /// start and kept in secret.key, mode 0600, next to the database].
    #[arg(long, env = "SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,

    /// Sandbox mode: simulated HiBob and Pinpoint on loopback, seeded with sample hires.
    #[arg(long, env = "SANDBOX", value_enum, default_value = "auto")]
    pub sandbox: SandboxMode,

    /// Log format: human-readable lines or one JSON object per line.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "human")]
    pub log_format: LogFormat,

    /// Sign people out after this many minutes without activity.
    #[arg(long, env = "SESSION_IDLE_MINUTES", default_value_t = 480)]
    pub session_idle_minutes: u32,

    /// Sign people out this many hours after sign-in, active or not.
    #[arg(long, env = "SESSION_MAX_HOURS", default_value_t = 24)]
    pub session_max_hours: u32,

    /// Timeout of each call to HiBob or Pinpoint, in seconds.
    #[arg(long, env = "OUTBOUND_TIMEOUT_SECS", default_value_t = 20)]
    pub outbound_timeout_secs: u64,

    /// Attempts an export gets (passing failures, or attempts cut short by a crash) before it
    /// stops as dead and waits for someone to retry it.
    #[arg(long, env = "EXPORT_MAX_ATTEMPTS", default_value_t = 8,
          value_parser = clap::value_parser!(i64).range(1..=100))]
    pub export_max_attempts: i64,

    /// How long a claimed export is held without word from the process working on it, in
    /// seconds. The holder renews it every third of this while the attempt runs; a process that
    /// dies stops renewing, and another (or the next start) takes the export over once it lapses.
    /// Shorter means faster takeover after a crash, at one small write per export in flight per
    /// renewal.
    #[arg(long, env = "EXPORT_LEASE_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(3..=3600))]
    pub export_lease_secs: u64,

    /// The most exports in flight at once, to bound memory and connections. Within it HiBob's
    /// and Pinpoint's pacing decides: new exports start while their rate-limit windows have room
    /// and the services answer about as fast as they can.
    #[arg(long, env = "EXPORT_CONCURRENCY", default_value_t = 64,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub export_concurrency: u16,

    /// Exported hires re-read from Pinpoint and compared with HiBob per minute, at most; checks
    /// wait while any export is due. 0 turns watching off.
    #[arg(long, env = "WATCH_CHECKS_PER_MINUTE", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(0..=600))]
    pub watch_checks_per_minute: u32,

    /// Deliveries that fail verification are stored (as a short record) at most this often per
    /// client address per minute; beyond it they are answered 429 and only counted.
    #[arg(long, env = "REJECTED_DELIVERIES_PER_MINUTE", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub rejected_deliveries_per_minute: u32,

    /// Rejected deliveries kept in the webhook log; the oldest go first.
    #[arg(long, env = "REJECTED_DELIVERIES_KEPT", default_value_t = 5000,
          value_parser = clap::value_parser!(u32).range(10..=10_000_000))]
    pub rejected_deliveries_kept: u32,

    /// Seconds a client has to send a request's line and headers, on a new connection and
    /// between requests on a kept-alive one; a client that sends nothing, or trickles its
    /// headers, is disconnected when they run out.
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub header_read_timeout_secs: u64,

    /// Connections open at once; clients beyond it wait until one closes. Keep the process's
    /// open-file limit (ulimit -n) above it, with room for the database and outbound calls.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 2048,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// Largest request body accepted, in KiB.
    #[arg(long, env = "MAX_BODY_KIB", default_value_t = 512)]
    pub max_body_kib: usize,

    /// Reverse proxies whose X-Forwarded-For is believed, as comma-separated IPs or CIDRs (e.g.
    /// 10.0.0.0/8,::1). Behind them the client is the right-most forwarded address that is not a
    /// trusted proxy; from any other peer the header is ignored [default: none].
    #[arg(long, env = "TRUSTED_PROXIES", value_parser = TrustedProxies::parse)]
    pub trusted_proxies: Option<TrustedProxies>,

    /// Let destinations resolve to private, loopback or link-local addresses: HiBob and Pinpoint
    /// base URLs, the alert webhook and the mail server, when saved in the console and on every
    /// connection. The host of a URL given by environment or flags is not checked.
    #[arg(
        long,
        env = "ALLOW_PRIVATE_DESTINATIONS",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub allow_private_destinations: bool,

    /// Directory for scheduled backups (pinpoint-hibob-<UTC time>.db, each checked after
    /// writing) [default: none, no scheduled backups].
    #[arg(long, env = "BACKUP_DIR")]
    pub backup_dir: Option<PathBuf>,

    /// Hours between scheduled backups.
    #[arg(long, env = "BACKUP_INTERVAL_HOURS", default_value_t = 24,
          value_parser = clap::value_parser!(u32).range(1..=8760))]
    pub backup_interval_hours: u32,

    /// Scheduled backups kept in BACKUP_DIR; the oldest beyond this are deleted.
    #[arg(long, env = "BACKUP_KEEP", default_value_t = 7,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub backup_keep: u32,

    /// Days a webhook delivery keeps its body and headers; after that they are blanked and the
    /// row (time, outcome, hash, export) stays.
    #[arg(long, env = "RETAIN_WEBHOOK_BODIES_DAYS", default_value_t = 90,
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub retain_webhook_bodies_days: u32,

    /// Days an export step keeps its recorded requests and answers; after that they are cleared
    /// and the step row stays.
    #[arg(long, env = "RETAIN_CALL_RECORDS_DAYS", default_value_t = 90,
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub retain_call_records_days: u32,

    /// Days rejected webhook deliveries are kept before they are deleted.
    #[arg(long, env = "RETAIN_REJECTED_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub retain_rejected_days: u32,

    /// Days a succeeded export keeps its steps and its candidate's e-mail and start date; the
    /// export with name, ids, status and times stays.
    #[arg(long, env = "RETAIN_FINISHED_EXPORTS_DAYS", default_value_t = 365,
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub retain_finished_exports_days: u32,

    /// Days audit log entries are kept.
    #[arg(long, env = "RETAIN_AUDIT_DAYS", default_value_t = 730,
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub retain_audit_days: u32,

    /// Bearer token GET /metrics requires (Authorization: Bearer <token>) [default: none, the
    /// metrics are open].
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
}

impl Config {
    pub fn public_url(&self) -> url::Url {
        self.public_url.clone().unwrap_or_else(|| {
            url::Url::from_str(&format!("http://{}", self.site_addr)).unwrap_or_else(|_| {
                url::Url::from_str("http://127.0.0.1:3000").expect("literal URL")
            })
        })
    }

    /// `scheme://host[:port]` of the public URL, as browsers send it in `Origin`.
    pub fn public_origin(&self) -> String {
        self.public_url().origin().ascii_serialization()
    }

    pub fn secure_cookies(&self) -> bool {
        self.public_url().scheme() == "https"
    }

    /// Browsers reach the console only over https, so they are told to keep it that way.
    pub fn strict_transport(&self) -> bool {
        self.public_url().scheme() == "https"
    }

    pub fn metrics_token(&self) -> Option<String> {
        self.metrics_token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
    }

    /// Whether `DATABASE_URL` names a PostgreSQL database.
    pub fn on_postgres(&self) -> bool {
        self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://")
    }

    /// The database file, for placing the generated secret key beside it.
    pub fn database_file(&self) -> Option<PathBuf> {
        integration::db::file_of(&self.database_url)
    }

    /// Refuses, at start-up, a destination given by environment or flags that must not be used:
    /// a mail server reached in clear, an alert webhook over http to another machine. The
    /// message names the variable and how to fix it, never the value (it holds a password).
    pub fn check_destinations(&self) -> anyhow::Result<()> {
        use integration::settings::credentials::env_value_problem;
        for (key, value) in [
            (CredentialKey::SmtpUrl, &self.smtp_url),
            (CredentialKey::AlertWebhookUrl, &self.alert_webhook_url),
        ] {
            if let Some(why) = value.as_deref().and_then(|v| env_value_problem(key, v)) {
                anyhow::bail!("{} cannot be used: {why}", key.env_var());
            }
        }
        Ok(())
    }

    /// Credentials given by environment or flags; they are read-only in the console.
    pub fn credentials_from_env(&self) -> HashMap<CredentialKey, SecretString> {
        [
            (CredentialKey::PluginToken, &self.plugin_token),
            (
                CredentialKey::PinpointWebhookSecret,
                &self.pinpoint_webhook_secret,
            ),
            (
                CredentialKey::PinpointApiBaseUrl,
                &self.pinpoint_api_base_url,
            ),
            (CredentialKey::PinpointApiKey, &self.pinpoint_api_key),
            (CredentialKey::HibobApiBaseUrl, &self.hibob_api_base_url),
            (
                CredentialKey::HibobServiceUserId,
                &self.hibob_service_user_id,
            ),
            (
                CredentialKey::HibobServiceUserToken,
                &self.hibob_service_user_token,
            ),
            (CredentialKey::HibobDefaultSite, &self.hibob_default_site),
            (CredentialKey::DefaultStartDays, &self.default_start_days),
            (
                CredentialKey::HibobWelcomeWizardId,
                &self.hibob_welcome_wizard_id,
            ),
            (CredentialKey::AlertWebhookUrl, &self.alert_webhook_url),
            (CredentialKey::SmtpUrl, &self.smtp_url),
            (CredentialKey::AlertEmailFrom, &self.alert_email_from),
            (CredentialKey::AlertEmailTo, &self.alert_email_to),
            (
                CredentialKey::AlertDigestMinutes,
                &self.alert_digest_minutes,
            ),
            (CredentialKey::WatchAutoFields, &self.watch_auto_fields),
            (
                CredentialKey::WatchDaysAfterStart,
                &self.watch_days_after_start,
            ),
        ]
        .into_iter()
        .filter_map(|(k, v)| {
            v.as_ref()
                .filter(|v| !v.trim().is_empty())
                .map(|v| (k, SecretString::from(v.trim().to_owned())))
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("pinpoint-hibob").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn defaults_and_derived_values() {
        let cli = parse(&["--site-addr", "127.0.0.1:4000"]);
        let c = cli.config;
        assert_eq!(c.public_origin(), "http://127.0.0.1:4000");
        assert!(!c.secure_cookies());
        // the default itself, whatever DATABASE_URL the test process happens to have
        use clap::CommandFactory;
        let default = Cli::command()
            .get_arguments()
            .find(|a| a.get_id() == "database_url")
            .and_then(|a| a.get_default_values().first().cloned())
            .unwrap();
        assert_eq!(default, "sqlite://data/pinpoint-hibob.db");
        let c = parse(&["--database-url", "sqlite://data/pinpoint-hibob.db"]).config;
        assert_eq!(
            c.database_file(),
            Some(PathBuf::from("data/pinpoint-hibob.db"))
        );
    }

    #[test]
    fn https_public_url_makes_cookies_secure() {
        let c = parse(&["--public-url", "https://console.example.com/"]).config;
        assert!(c.secure_cookies());
        assert_eq!(c.public_origin(), "https://console.example.com");
    }

    #[test]
    fn security_settings_parse() {
        let c = parse(&[]).config;
        assert!(c.trusted_proxies.is_none());
        assert!(!c.allow_private_destinations);
        assert_eq!(c.metrics_token(), None);
        let c = parse(&[
            "--trusted-proxies",
            "10.0.0.0/8, ::1",
            "--allow-private-destinations",
            "true",
            "--metrics-token",
            " scrape ",
        ])
        .config;
        let proxies = c.trusted_proxies.clone().unwrap();
        assert!(proxies.contains("10.2.3.4".parse().unwrap()));
        assert!(proxies.contains("::1".parse().unwrap()));
        assert!(c.allow_private_destinations);
        assert_eq!(c.metrics_token().as_deref(), Some("scrape"));
        assert!(
            Cli::try_parse_from(["pinpoint-hibob", "--trusted-proxies", "10.0.0.0/99"]).is_err(),
            "a typo in the proxy list stops start-up"
        );
        let off = parse(&["--allow-private-destinations", "false"]).config;
        assert!(!off.allow_private_destinations);
    }

    #[test]
    fn a_mail_server_reached_in_clear_is_refused_at_start_up() {
        let refused = parse(&["--smtp-url", "smtp://user:secret-pw@mail.example.com:587"]).config;
        let err = refused.check_destinations().unwrap_err().to_string();
        assert!(err.starts_with("SMTP_URL cannot be used"), "{err}");
        assert!(
            err.contains("smtps://") && err.contains("tls=required"),
            "{err}"
        );
        assert!(!err.contains("secret-pw"), "{err}");
        let opportunistic = parse(&["--smtp-url", "smtp://mail.example.com?tls=opportunistic"]);
        assert!(opportunistic.config.check_destinations().is_err());
        for fine in [
            "smtps://user:pw@mail.example.com",
            "smtp://user:pw@mail.example.com:587?tls=required",
            "smtp://127.0.0.1:2525",
            "smtp://localhost",
        ] {
            let ok = parse(&["--smtp-url", fine]).config;
            assert!(ok.check_destinations().is_ok(), "{fine}");
        }
        let hook = parse(&["--alert-webhook-url", "http://hooks.example.com/x"]).config;
        assert!(hook.check_destinations().is_err());
    }

    #[test]
    fn blank_env_credentials_are_ignored() {
        let c = parse(&["--plugin-token", "  ", "--hibob-service-user-id", "S1"]).config;
        let env = c.credentials_from_env();
        assert!(!env.contains_key(&CredentialKey::PluginToken));
        assert!(env.contains_key(&CredentialKey::HibobServiceUserId));
    }

    #[test]
    fn backup_and_retention_settings_parse() {
        let c = parse(&[]).config;
        assert!(
            crate::backups::Schedule::from_config(&c).is_none(),
            "off by default"
        );
        let policy = crate::retention_job::policy(&c);
        assert_eq!(
            (
                policy.webhook_bodies_days,
                policy.call_records_days,
                policy.rejected_days,
                policy.finished_exports_days,
                policy.audit_days
            ),
            (90, 90, 30, 365, 730)
        );
        let c = parse(&[
            "--backup-dir",
            "/var/backups/pp",
            "--backup-interval-hours",
            "6",
            "--backup-keep",
            "3",
            "--retain-audit-days",
            "1000",
        ])
        .config;
        let schedule = crate::backups::Schedule::from_config(&c).unwrap();
        assert_eq!(schedule.interval.as_secs(), 6 * 3600);
        assert_eq!(schedule.keep, 3);
        assert_eq!(crate::retention_job::policy(&c).audit_days, 1000);
        assert!(
            Cli::try_parse_from(["pinpoint-hibob", "--backup-keep", "0"]).is_err(),
            "at least one backup is kept"
        );
    }

    #[test]
    fn help_documents_every_variable() {
        use clap::CommandFactory;
        let help = Cli::command().render_long_help().to_string();
        for var in [
            "DATABASE_URL",
            "LEPTOS_SITE_ADDR",
            "PUBLIC_URL",
            "PLUGIN_TOKEN",
            "PINPOINT_WEBHOOK_SECRET",
            "PINPOINT_API_BASE_URL",
            "PINPOINT_API_KEY",
            "HIBOB_API_BASE_URL",
            "HIBOB_SERVICE_USER_ID",
            "HIBOB_SERVICE_USER_TOKEN",
            "ADMIN_EMAIL",
            "ADMIN_PASSWORD",
            "SECRET_KEY",
            "TRUSTED_PROXIES",
            "ALLOW_PRIVATE_DESTINATIONS",
            "METRICS_TOKEN",
            "EXPORT_MAX_ATTEMPTS",
            "EXPORT_CONCURRENCY",
            "REJECTED_DELIVERIES_PER_MINUTE",
            "REJECTED_DELIVERIES_KEPT",
            "HIBOB_WELCOME_WIZARD_ID",
            "ALERT_WEBHOOK_URL",
            "SMTP_URL",
            "ALERT_EMAIL_FROM",
            "ALERT_EMAIL_TO",
            "ALERT_DIGEST_MINUTES",
            "WATCH_AUTO_FIELDS",
            "WATCH_DAYS_AFTER_START",
            "WATCH_CHECKS_PER_MINUTE",
            "BACKUP_DIR",
            "BACKUP_INTERVAL_HOURS",
            "BACKUP_KEEP",
            "RETAIN_WEBHOOK_BODIES_DAYS",
            "RETAIN_CALL_RECORDS_DAYS",
            "RETAIN_REJECTED_DAYS",
            "RETAIN_FINISHED_EXPORTS_DAYS",
            "RETAIN_AUDIT_DAYS",
        ] {
            assert!(help.contains(var), "--help lacks {var}");
        }
    }
}
