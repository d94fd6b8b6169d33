//! The `hearth` command: serve, migrate, manage users, check configuration.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hearth::{Config, Homeserver, Server};
use hearth_core::{
    accounts::{
        devices,
        registration::{self, NewAccount},
    },
    config::LogFormat,
};
use ruma::UserId;
use tracing_subscriber::EnvFilter;

// glibc's malloc keeps freed large blocks (argon2's 19 MiB per password hash) in per-thread
// arenas, so the process grows with every burst of logins; mimalloc returns them to the system.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "hearth", version, about = "A federated Matrix homeserver")]
struct Cli {
    /// Configuration file; settings can also come from HEARTH__SECTION__KEY variables.
    #[arg(long, short, global = true, default_value = "config.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the homeserver until Ctrl-C or SIGTERM.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage local user accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Validate the configuration and print it as resolved (JSON).
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account.
    Create {
        /// Localpart (e.g. `alice` for @alice:server).
        username: String,
        /// Password; read from HEARTH_PASSWORD when omitted.
        #[arg(long, env = "HEARTH_PASSWORD", hide_env_values = true)]
        password: String,
        /// Make the user a server administrator.
        #[arg(long)]
        admin: bool,
    },
    /// Set a new password and log out every device.
    ResetPassword {
        /// Full user ID.
        user_id: String,
        /// New password; read from HEARTH_PASSWORD when omitted.
        #[arg(long, env = "HEARTH_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Deactivate an account for good.
    Deactivate {
        /// Full user ID.
        user_id: String,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Load and validate the configuration, then print it.
    Check,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(Some(&cli.config))?;
    init_logging(&config);
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            Homeserver::open(config).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::User { command } => user(config, command).await,
        Command::Config { command: ConfigCommand::Check } => {
            println!("{}", serde_json::to_string_pretty(&config.redacted())?);
            eprintln!("configuration is valid");
            Ok(())
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let server = Server::start(config).await?;
    server.run_until(shutdown_signal()).await
}

async fn user(config: Config, command: UserCommand) -> anyhow::Result<()> {
    let hs = Homeserver::open(config).await?;
    match command {
        UserCommand::Create { username, password, admin } => {
            let new = NewAccount {
                username: Some(username),
                password: Some(password),
                is_admin: admin,
                inhibit_login: true,
                ..NewAccount::default()
            };
            let registered = registration::register(&hs, new).await.map_err(core_error)?;
            println!("created {}", registered.user_id);
        }
        UserCommand::ResetPassword { user_id, password } => {
            let user_id = UserId::parse(user_id).context("invalid user ID")?;
            devices::reset_password(&hs, &user_id, &password).await.map_err(core_error)?;
            println!("password of {user_id} reset; all its devices were logged out");
        }
        UserCommand::Deactivate { user_id } => {
            let user_id = UserId::parse(user_id).context("invalid user ID")?;
            devices::deactivate(&hs, &user_id).await.map_err(core_error)?;
            println!("deactivated {user_id}");
        }
    }
    hs.db().close().await;
    Ok(())
}

fn core_error(e: hearth_core::Error) -> anyhow::Error {
    match e {
        hearth_core::Error::Internal(e) => e,
        hearth_core::Error::Matrix { message, .. } => anyhow::anyhow!(message),
        other => anyhow::anyhow!("{other}"),
    }
}

fn init_logging(config: &Config) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.logging.level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match config.logging.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
