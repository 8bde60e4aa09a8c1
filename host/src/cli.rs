//! The `canopy` command line (API.md "Command line").

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::ops::Settings;
use crate::policy::DefaultsRuntime;
use crate::server::{Config, Host, shutdown_signal};

mod policy;
use policy::PolicyCommand;
mod operator;
mod usage;

#[derive(Debug, Parser)]
#[command(
    name = "canopy",
    version,
    about = "Sub-account engine for communications platforms",
    after_help = "Each command's flags: `canopy <COMMAND> --help`."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve(Box<Serve>),
    /// Work with policies offline.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// The operator's chores from a shell, on the database.
    #[command(subcommand)]
    Operator(operator::OperatorCommand),
}

#[derive(Debug, clap::Args)]
struct Serve {
    /// Address to listen on.
    #[arg(long, env = "CANOPY_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    #[command(flatten)]
    database: operator::Database,
    /// The operator's bearer token; generated and printed once if unset.
    #[arg(long, env = "CANOPY_OPERATOR_TOKEN", hide_env_values = true)]
    operator_token: Option<String>,
    /// Directory of default policies (default: the shipped ones).
    #[arg(long, env = "CANOPY_POLICIES")]
    policies: Option<PathBuf>,
    /// Test suites only: enables POST /v1/operator/clock.
    #[arg(long, env = "CANOPY_TEST_CLOCK", value_parser = clap::builder::BoolishValueParser::new(), num_args = 0, default_missing_value = "true", default_value = "false")]
    test_clock: bool,
    /// How long invitations stay valid, in hours.
    #[arg(long, env = "CANOPY_INVITATION_TTL_HOURS", default_value_t = 168, value_parser = clap::value_parser!(u64).range(1..=8760))]
    invitation_ttl_hours: u64,
    /// Deliver notifications over SMTP: smtp://[user:password@]host[:port].
    #[arg(long, env = "CANOPY_SMTP_URL", hide_env_values = true)]
    smtp_url: Option<String>,
    /// Sender address of notifications.
    #[arg(long, env = "CANOPY_SMTP_FROM", default_value = "canopy@localhost")]
    smtp_from: String,
    /// Runtime of the shipped default policies: rhai or wasm.
    #[arg(long, env = "CANOPY_DEFAULT_POLICIES_RUNTIME", default_value = "rhai", value_parser = ["rhai", "wasm"])]
    default_policies_runtime: String,
    /// Private local directory for compiled Wasm components (default:
    /// `canopy-wasm-cache` beside an SQLite database, else under
    /// $XDG_CACHE_HOME or the current directory); created 0700, never shared
    /// between hosts.
    #[arg(long, env = "CANOPY_WASM_CACHE")]
    wasm_cache: Option<PathBuf>,
    /// Days decisions are kept in the decision log.
    #[arg(long, env = "CANOPY_DECISION_RETENTION_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3650))]
    decision_retention_days: u64,
    /// Most decisions kept per tree (the operator's actions count as one
    /// more tree); the oldest of a tree over it go first.
    #[arg(long, env = "CANOPY_DECISIONS_MAX_PER_TREE", default_value_t = 100_000, value_parser = clap::value_parser!(i64).range(1000..))]
    decisions_max_per_tree: i64,
    /// Consecutive failures after which an uploaded policy is no longer
    /// evaluated (fails closed at once) for the cool-down; 0 never.
    #[arg(long, env = "CANOPY_POLICY_BREAKER_FAILURES", default_value_t = crate::policy::breaker::FAILURES_TO_OPEN)]
    policy_breaker_failures: u32,
    /// Seconds an open policy circuit refuses before one trial evaluation.
    #[arg(long, env = "CANOPY_POLICY_BREAKER_COOL_DOWN_SECS", default_value_t = crate::policy::breaker::COOL_DOWN.as_secs(), value_parser = clap::value_parser!(u64).range(1..=86400))]
    policy_breaker_cool_down_secs: u64,
    /// Count login attempts per client by the last X-Forwarded-For entry
    /// (only behind a proxy that always sets it); default: the peer address.
    #[arg(long, env = "CANOPY_TRUST_FORWARDED_FOR", value_parser = clap::builder::BoolishValueParser::new(), num_args = 0, default_missing_value = "true", default_value = "false")]
    trust_forwarded_for: bool,
    /// Milliseconds a host's claim on a bulk operation lasts unless renewed
    /// (each chunk renews it); after that another host takes it over.
    #[arg(long, env = "CANOPY_OPERATION_LEASE_MS", default_value_t = crate::ops::operations::LEASE.as_millis() as u64, value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    operation_lease_ms: u64,
    /// The key (64 hex digits) webhook signing secrets are sealed under and
    /// the operator's console pass is MACed with, the same on every host of
    /// one database. Default on SQLite: a private key file beside the
    /// database; on PostgreSQL webhooks and the operator's console need it.
    #[arg(long, env = "CANOPY_DATA_KEY", hide_env_values = true)]
    data_key: Option<String>,
    /// Milliseconds before a failed webhook delivery is tried again,
    /// doubled after each failure (capped at an hour, with jitter).
    #[arg(long, env = "CANOPY_WEBHOOK_BACKOFF_BASE_MS", default_value_t = crate::domain::webhooks::BACKOFF_BASE.as_millis() as u64, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    webhook_backoff_base_ms: u64,
    /// Log format: text or json.
    #[arg(long, env = "CANOPY_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(2);
        }
        Err(e) => {
            let args: Vec<String> = std::env::args().skip(1).collect();
            let command = usage::command_path(&<Cli as clap::CommandFactory>::command(), &args);
            eprintln!("canopy: {}", usage::one_line(&e.to_string(), &command));
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Serve(serve) => run_serve(*serve),
        Command::Policy(command) => policy::run(command),
        Command::Operator(command) => operator::run(command),
    }
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("canopy: {message}");
    ExitCode::FAILURE
}

fn run_serve(serve: Serve) -> ExitCode {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("CANOPY_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(usage::colour_on_stderr())
        .with_writer(std::io::stderr);
    if serve.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(&serve.listen).await {
            Ok(l) => l,
            Err(e) => return fail(format!("cannot listen on {}: {e}", serve.listen)),
        };
        let data_key = match serve.data_key.as_deref().filter(|k| !k.is_empty()) {
            Some(k) => match crate::secrets::DataKey::from_hex(k) {
                Ok(key) => Some(key),
                Err(e) => return fail(format!("--data-key: {e}")),
            },
            None => None,
        };
        let config = Config {
            database_url: serve.database.database_url.clone(),
            operator_token: serve.operator_token.clone().filter(|t| !t.is_empty()),
            policies_dir: serve.policies.clone(),
            test_clock: serve.test_clock,
            smtp: serve.smtp_url.clone().filter(|u| !u.is_empty()).map(|url| {
                crate::ops::outbox::Smtp {
                    url,
                    from: serve.smtp_from.clone(),
                }
            }),
            settings: Settings {
                invitation_ttl: Duration::from_secs(serve.invitation_ttl_hours * 3600),
                decision_retention: Duration::from_secs(serve.decision_retention_days * 24 * 3600),
                decisions_max_per_tree: serve.decisions_max_per_tree,
                breaker_failures: serve.policy_breaker_failures,
                breaker_cool_down: Duration::from_secs(serve.policy_breaker_cool_down_secs),
                trust_forwarded_for: serve.trust_forwarded_for,
                operation_lease: Duration::from_millis(serve.operation_lease_ms),
                data_key,
                webhook_backoff_base: Duration::from_millis(serve.webhook_backoff_base_ms),
                ..Settings::default()
            },
            defaults_runtime: if serve.default_policies_runtime == "wasm" {
                DefaultsRuntime::Wasm
            } else {
                DefaultsRuntime::Rhai
            },
            wasm_cache: Some(serve.wasm_cache.clone().unwrap_or_else(|| {
                crate::policy::wasm_cache::default_dir(&serve.database.database_url)
            })),
        };
        let host = match Host::open(config).await {
            Ok(h) => h,
            Err(e) => return fail(e),
        };
        if let Some(token) = &host.generated_operator_token {
            println!("canopy: operator token (shown once, stored only as a hash): {token}");
        }
        let addr = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or(serve.listen.clone());
        tracing::info!(%addr, test_clock = host.test_clock, "canopy serving");
        match host.run(listener, shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(format!("server failed: {e}")),
        }
    })
}
