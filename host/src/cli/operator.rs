//! `canopy operator ...`: the operator's chores from a shell.
//!
//! These commands work on the database (`--database-url`, as `serve`), not
//! through a running server: they work before any host serves and while all
//! are down, and `rotate-token` recovers a lost or leaked operator token,
//! which an HTTP route could only do for someone who still holds it. They
//! run the same operations (`ops`) as the API, policies included. Hosts
//! that took their operator token from the database take up a rotated one
//! within a second; hosts started with `--operator-token` keep theirs.

use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use serde_json::{Map, Value, json};

use super::fail;
use crate::domain::money::Amount;
use crate::ops::Settings;
use crate::ops::parents::NewParent;
use crate::policy::DefaultsRuntime;
use crate::server::{Config, Host};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct Database {
    /// sqlite://FILE (created if missing) or postgres://...
    #[arg(
        long,
        env = "CANOPY_DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://canopy.db"
    )]
    pub database_url: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BillingType {
    Prepaid,
    Postpaid,
}

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Create a parent account and its first admin; prints the admin's API
    /// key and invitation token once.
    CreateParent(Box<CreateParent>),
    /// Replace the operator token with a new one, printed once.
    RotateToken {
        #[command(flatten)]
        db: Database,
    },
    /// Recompute every balance from the transfers; exits 1 unless balanced.
    LedgerCheck {
        #[command(flatten)]
        db: Database,
    },
}

#[derive(Debug, clap::Args)]
pub struct CreateParent {
    #[command(flatten)]
    db: Database,
    /// The account's name.
    #[arg(long)]
    name: String,
    /// Legal name (default: the name).
    #[arg(long)]
    company_name: Option<String>,
    /// Billing e-mail address.
    #[arg(long)]
    email: String,
    #[arg(long, value_enum)]
    billing_type: BillingType,
    /// ISO 4217 code.
    #[arg(long, default_value = "USD")]
    currency: String,
    /// Postpaid only, e.g. 1000.00.
    #[arg(long)]
    monthly_credit_limit: Option<String>,
    /// A price per message, CHANNEL=AMOUNT (e.g. sms=0.0075); repeatable.
    #[arg(long = "price", value_parser = price)]
    prices: Vec<(String, String)>,
    /// A channel the parent may use (default sms); repeatable.
    #[arg(long = "channel")]
    channels: Vec<String>,
    /// IANA time zone (default UTC).
    #[arg(long)]
    timezone: Option<String>,
    #[arg(long)]
    admin_email: String,
    #[arg(long)]
    admin_name: String,
}

fn price(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((channel, amount)) if !channel.is_empty() && !amount.is_empty() => {
            Ok((channel.to_string(), amount.to_string()))
        }
        _ => Err(format!("`{s}` is not CHANNEL=AMOUNT (e.g. sms=0.0075)")),
    }
}

pub fn run(command: OperatorCommand) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(async move {
        match command {
            OperatorCommand::CreateParent(args) => create_parent(*args).await,
            OperatorCommand::RotateToken { db } => rotate_token(&db).await,
            OperatorCommand::LedgerCheck { db } => ledger_check(&db).await,
        }
    })
}

async fn open_store(db: &Database) -> Result<Store, ExitCode> {
    let at = |e: crate::store::StoreError| {
        fail(format!(
            "{e} (database {})",
            crate::store::redact_url(&db.database_url)
        ))
    };
    let store = Store::connect(&db.database_url).await.map_err(at)?;
    store.migrate().await.map_err(at)?;
    Ok(store)
}

async fn create_parent(args: CreateParent) -> ExitCode {
    let CreateParent {
        db,
        name,
        company_name,
        email,
        billing_type,
        currency,
        monthly_credit_limit,
        prices,
        channels,
        timezone,
        admin_email,
        admin_name,
    } = args;
    let mut body = Map::new();
    body.insert(
        "company_name".into(),
        json!(company_name.unwrap_or(name.clone())),
    );
    body.insert("name".into(), json!(name));
    body.insert("email".into(), json!(email));
    body.insert(
        "billing_type".into(),
        json!(match billing_type {
            BillingType::Prepaid => "prepaid",
            BillingType::Postpaid => "postpaid",
        }),
    );
    body.insert("currency".into(), json!(currency));
    if let Some(limit) = monthly_credit_limit {
        body.insert("monthly_credit_limit".into(), json!(limit));
    }
    body.insert(
        "prices".into(),
        Value::Object(prices.into_iter().map(|(c, a)| (c, json!(a))).collect()),
    );
    if !channels.is_empty() {
        body.insert("channels".into(), json!(channels));
    }
    if let Some(tz) = timezone {
        body.insert("timezone".into(), json!(tz));
    }
    body.insert(
        "admin".into(),
        json!({"email": admin_email, "name": admin_name}),
    );
    let request: NewParent = match serde_json::from_value(Value::Object(body)) {
        Ok(r) => r,
        Err(e) => return fail(format!("bad parent: {e}")),
    };
    // A token of this process alone: nothing about the stored one changes.
    let config = Config {
        database_url: db.database_url.clone(),
        operator_token: Some(crate::secrets::new_secret("cop")),
        policies_dir: None,
        test_clock: false,
        settings: Settings::default(),
        smtp: None,
        defaults_runtime: DefaultsRuntime::Rhai,
        wasm_cache: None,
    };
    let host = match Host::open(config).await {
        Ok(h) => h,
        Err(e) => return fail(e),
    };
    let created = host.canopy.create_parent(request).await;
    host.canopy.store.close().await;
    match created {
        Ok(c) => {
            println!("parent: {}", c.account.id);
            println!("admin: {}", c.admin.id);
            println!("api key (shown once): {}", c.api_key.secret);
            println!("invitation token (shown once): {}", c.invitation.token);
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("{} ({})", e, e.code())),
    }
}

async fn rotate_token(db: &Database) -> ExitCode {
    let store = match open_store(db).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let rotated = crate::server::rotate_operator_token(&store).await;
    store.close().await;
    match rotated {
        Ok(token) => {
            println!("operator token (shown once, stored only as a hash): {token}");
            eprintln!(
                "canopy: hosts that read the token from this database use it within a second; \
                 hosts started with --operator-token keep theirs"
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("cannot rotate the operator token: {e}")),
    }
}

async fn ledger_check(db: &Database) -> ExitCode {
    let store = match open_store(db).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let checked = async {
        let mut c = store.reader().await?;
        crate::store::ledger::reconcile(&mut c).await
    }
    .await;
    store.close().await;
    let r = match checked {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot check the ledger: {e}")),
    };
    let balanced = r.violations.is_empty();
    println!(
        "{} ({} ledger accounts)",
        if balanced { "balanced" } else { "NOT balanced" },
        r.accounts
    );
    for (currency, sum) in &r.sums {
        println!("sum {currency}: {}", Amount::from_micros(*sum).decimal());
    }
    for v in &r.violations {
        println!("violation: {v}");
    }
    if balanced {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
