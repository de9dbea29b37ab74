use std::io::BufRead;

use anyhow::Context;
use clap::Parser;
use integration::access::users::{Actor, Role};
use integration::peers::leader::while_leader;
use secrecy::SecretString;
use server::{
    config::{Cli, Command, Config, UserCommand},
    startup,
};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // a missing .env is normal; a broken one is worth saying
    if let Err(e) = dotenvy::dotenv() {
        if !e.not_found() {
            eprintln!("warning: .env was not read: {e}");
        }
    }
    let cli = Cli::parse();
    startup::init_tracing(cli.config.log_format);
    startup::withhold_panic_messages();
    let outcome = match cli.command {
        None | Some(Command::Serve) => serve(cli.config).await,
        Some(Command::User(cmd)) => user_command(cli.config, cmd).await,
        Some(Command::Backup { output, force }) => {
            server::backups::backup_command(&cli.config, &output, force)
                .await
                .map(|checked| println!("wrote {}: {checked}", output.display()))
        }
        Some(Command::MigrateDb { from, to }) => store_postgres::from_sqlite::copy(&from, &to)
            .await
            .map(|copied| {
                println!("copied {copied}; point DATABASE_URL at the PostgreSQL database")
            })
            .map_err(anyhow::Error::from),
        Some(Command::Restore { input }) => server::backups::restore_command(&cli.config, &input)
            .await
            .map(|done| {
                println!("restored {}: {}", input.display(), done.checked);
                if let Some(kept) = done.kept {
                    println!("the replaced database is kept as {}", kept.display());
                }
            }),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let startup::Built {
        state,
        router,
        worker,
        first_admin,
        sandbox,
        ..
    } = startup::build(&config).await?;
    let public_url = config.public_url();
    match first_admin {
        startup::FirstAdmin::Generated { email, password } => {
            // printed, never logged: this is the only time anyone sees it
            eprintln!();
            eprintln!("  No users yet, so an admin was created:");
            eprintln!("    sign in at  {public_url}login");
            eprintln!("    email       {email}");
            eprintln!("    password    {password}");
            eprintln!("  Add your own admin under Users, then disable this one.");
            eprintln!();
        }
        startup::FirstAdmin::FromEnvironment(email) => {
            tracing::info!(%email, "created the first admin from ADMIN_EMAIL");
        }
        startup::FirstAdmin::AlreadyHaveUsers => {}
    }
    if sandbox.is_some() {
        eprintln!(
            "  Sandbox mode: HiBob and Pinpoint are simulated on this machine (no credentials are"
        );
        eprintln!(
            "  configured). Sample hires are being delivered to the webhook; see the dashboard."
        );
        // printed, never logged, like the generated sign-in
        if let Ok(Some(token)) = state
            .credentials
            .get(integration::settings::credentials::CredentialKey::PluginToken)
            .await
        {
            use secrecy::ExposeSecret;
            eprintln!(
                "  Plugin token (X-Plugin-Token, to play Pinpoint against {public_url}): {}",
                token.expose_secret()
            );
        }
        eprintln!();
    }
    let (stop_worker, worker_stopped) = tokio::sync::watch::channel(false);
    // the jobs that run once per database run on the leader only (on SQLite, this process)
    let alerts = tokio::spawn(while_leader(
        state.leadership.clone(),
        worker_stopped.clone(),
        {
            let alerts = state.alerts.clone();
            move |stop| alerts.clone().run(stop)
        },
    ));
    let watching = tokio::spawn(while_leader(
        state.leadership.clone(),
        worker_stopped.clone(),
        {
            let (watcher, per_minute) = (state.watcher.clone(), config.watch_checks_per_minute);
            move |stop| server::watch_job::run(watcher.clone(), per_minute, stop)
        },
    ));
    tokio::spawn(while_leader(
        state.leadership.clone(),
        worker_stopped.clone(),
        {
            let (db, policy) = (state.db.clone(), server::retention_job::policy(&config));
            move |stop| server::retention_job::run_hourly(db.clone(), policy, stop)
        },
    ));
    let heartbeat = tokio::spawn(server::instances::run(
        state.db.clone(),
        state.health.clone(),
        worker_stopped.clone(),
    ));
    let worker = tokio::spawn(server::worker::supervise(worker, worker_stopped));
    if let Some(schedule) = server::backups::Schedule::from_config(&config) {
        tracing::info!(dir = %schedule.dir.display(), every_hours = config.backup_interval_hours,
                       keep = schedule.keep, "scheduled backups on");
        tokio::spawn(server::backups::run_schedule(state.db.clone(), schedule));
    }
    let changes = state.changes.clone();
    let listener = tokio::net::TcpListener::bind(config.site_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.site_addr))?;
    tracing::info!(addr = %config.site_addr, url = %public_url, "console listening");
    if sandbox.is_some() {
        let seed_state = state.clone();
        tokio::spawn(async move {
            if let Err(e) = startup::seed_sandbox(&seed_state).await {
                tracing::warn!(error = %e, "could not deliver the sandbox's sample hires");
            }
        });
    }
    server::serving::serve(
        listener,
        router,
        server::serving::ConnectionLimits::from_config(&config),
        async move {
            shutdown_signal().await;
            // open event streams would otherwise keep their connections, and the server, up
            changes.close();
        },
    )
    .await;
    // requests are drained; now let the worker finish (or hand back) the export it holds
    let _ = stop_worker.send(true);
    if let Err(e) = worker.await {
        tracing::error!(error = %e, "export worker ended abnormally");
    }
    let _ = alerts.await;
    let _ = watching.await;
    // last: the other processes count this one until it has handed its exports back
    let _ = heartbeat.await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

fn read_password_line() -> anyhow::Result<SecretString> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    anyhow::ensure!(!password.is_empty(), "no password on standard input");
    Ok(SecretString::from(password))
}

async fn user_command(config: Config, cmd: UserCommand) -> anyhow::Result<()> {
    let db = startup::open_database(&config).await?.db;
    let actor = Actor::system("command line");
    match cmd {
        UserCommand::Add { email, role } => {
            let role: Role = role.parse()?;
            let password = read_password_line()?;
            let user = db.users().create(&actor, &email, password, role).await?;
            println!("added {} ({})", user.email, user.role);
        }
        UserCommand::SetPassword { email } => {
            let password = read_password_line()?;
            let user = db
                .users()
                .list()
                .await?
                .into_iter()
                .find(|u| u.email.eq_ignore_ascii_case(email.trim()))
                .context("no user with this email")?;
            db.users().set_password(&actor, user.id, password).await?;
            println!("password set for {}", user.email);
        }
    }
    Ok(())
}
