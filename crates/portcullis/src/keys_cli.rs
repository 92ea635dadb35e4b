//! `portcullis hash-key` and `portcullis keys create|list|revoke` (SPEC §1): API keys in the
//! database the config names (`state.database`), opened as `run` opens it. Only the parts of
//! the config a command reads are loaded (the database, the audit log, the plans), so an
//! unset `${env:…}` elsewhere does not stop it; one it reads is still an error naming it. Keys are shown
//! once, at creation; the database keeps only their digest. Writes are audited, as the admin
//! API's are, with the actor `cli:<OS user>`.

use std::io::{BufRead, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use portcullis_core::compile::StoreAccess;
use portcullis_store::{AuditEvent, KeyInfo, Store, StoreError, parse_rfc3339, rfc3339};
use serde_json::json;

/// The longest line `hash-key` reads (keys are 47 characters; this is generous).
const MAX_KEY_LINE: u64 = 64 * 1024;

#[derive(Subcommand)]
pub(crate) enum KeysCommand {
    /// Create a key for a database consumer (created first if missing); prints the key once.
    Create {
        #[command(flatten)]
        config: crate::cli::ConfigArgs,
        /// The consumer that owns the key.
        #[arg(long)]
        consumer: String,
        /// The plan of a consumer created now (a plan of the config).
        #[arg(long)]
        plan: Option<String>,
        /// When the key stops working (RFC 3339, e.g. 2027-01-01T00:00:00Z).
        #[arg(long, value_parser = rfc3339_arg)]
        expires_at: Option<time::OffsetDateTime>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List keys (never the keys themselves: id, prefix, dates, revoked).
    List {
        #[command(flatten)]
        config: crate::cli::ConfigArgs,
        /// Only this consumer's keys.
        #[arg(long)]
        consumer: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id; every instance stops accepting it within a second.
    Revoke {
        #[command(flatten)]
        config: crate::cli::ConfigArgs,
        /// The key id (`key_…`).
        id: String,
    },
}

fn rfc3339_arg(text: &str) -> Result<time::OffsetDateTime, String> {
    parse_rfc3339(text).ok_or_else(|| "expected an RFC 3339 time, e.g. 2027-01-01T00:00:00Z".to_owned())
}

/// `hash-key`: one line from stdin, its trailing `\n` or `\r\n` trimmed, printed as
/// `sha256:<hex>`. Exit 2 on empty input.
pub(crate) fn hash_key() -> ExitCode {
    let mut line = Vec::new();
    if let Err(e) = std::io::stdin().lock().take(MAX_KEY_LINE).read_until(b'\n', &mut line) {
        eprintln!("cannot read stdin: {e}");
        return ExitCode::from(2);
    }
    let key = line.strip_suffix(b"\n").unwrap_or(&line);
    let key = key.strip_suffix(b"\r").unwrap_or(key);
    if key.is_empty() {
        eprintln!("hash-key reads an API key on stdin: got an empty line");
        return ExitCode::from(2);
    }
    let digest = portcullis_auth::api_key::digest_of(key);
    println!("{}", portcullis_auth::api_key::stored_form(&digest));
    ExitCode::SUCCESS
}

pub(crate) fn run(command: KeysCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let outcome = runtime.block_on(async move {
        match command {
            KeysCommand::Create { config, consumer, plan, expires_at, json } => {
                let (access, store) = open(&config, &[DATABASE, AUDIT_LOG, PLANS]).await?;
                create(&access, &store, &consumer, plan.as_deref(), expires_at, json).await
            }
            KeysCommand::List { config, consumer, json } => {
                let (_, store) = open(&config, &[DATABASE]).await?;
                list(&store, consumer.as_deref(), json).await
            }
            KeysCommand::Revoke { config, id } => {
                let (access, store) = open(&config, &[DATABASE, AUDIT_LOG]).await?;
                revoke(&access, &store, &id).await
            }
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(1)
        }
    }
}

/// The parts of the config a command reads: only these are loaded and checked, so a
/// `${env:…}` elsewhere (the admin token, a TLS key) need not be set to manage keys.
const DATABASE: &str = "/state/database";
const AUDIT_LOG: &str = "/logging/audit";
const PLANS: &str = "/plans";

/// Loads `parts` of the config (with the stage applied, checked as `validate` checks them)
/// and opens the database it names.
async fn open(args: &crate::cli::ConfigArgs, parts: &[&str]) -> Result<(StoreAccess, Store), String> {
    let source = portcullis_config::Source::File(&args.config);
    let loaded = portcullis_config::load_parts(source, args.stage.as_deref(), &portcullis_config::ProcessEnv, parts);
    let access = loaded
        .and_then(|loaded| portcullis_core::compile::compile_store_access(&loaded))
        .map_err(|errors| format!("{errors}\n{} error(s)", errors.len()))?;
    let store = Store::connect(&access.database, &PathBuf::from("."))
        .await
        .map_err(|e| format!("cannot open {}: {e}", portcullis_store::redact_url(&access.database)))?;
    Ok((access, store))
}

/// The audit `actor` of a command: `cli:` and the OS user who ran it (from `USER`, else
/// `LOGNAME`, as login sessions, `sudo` and `su` set them).
fn cli_actor() -> String {
    let user = ["USER", "LOGNAME"].iter().find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()));
    format!("cli:{}", user.as_deref().unwrap_or("unknown"))
}

async fn audit(access: &StoreAccess, store: &Store, action: &str, target: &str, detail: &str) {
    let actor = cli_actor();
    let entry = portcullis_telemetry::audit::AuditEntry {
        actor: &actor,
        action,
        target: Some(target),
        result: "ok",
        detail: Some(detail),
    };
    portcullis_telemetry::audit::record(&access.audit_log, &entry);
    let event = AuditEvent { actor: &actor, action, target: Some(target), result: "ok", detail: Some(detail) };
    if let Err(e) = store.append_audit(&event).await {
        eprintln!("warning: cannot write the audit entry to the database: {e}");
    }
}

fn plan_known(access: &StoreAccess, plan: &str) -> bool {
    access.plans.iter().any(|p| &*p.name == plan)
}

async fn create(
    access: &StoreAccess,
    store: &Store,
    consumer: &str,
    plan: Option<&str>,
    expires_at: Option<time::OffsetDateTime>,
    json: bool,
) -> Result<(), String> {
    if let Some(plan) = plan
        && !plan_known(access, plan)
    {
        return Err(format!("`{plan}` is not a plan of the config"));
    }
    match store.get_consumer(consumer).await.map_err(|e| e.to_string())? {
        Some(existing) if plan.is_some() && existing.plan.as_deref() != plan => {
            let had = existing.plan.as_deref().unwrap_or("none");
            return Err(format!("consumer `{consumer}` exists with plan `{had}`; leave out --plan or change it there"));
        }
        Some(_) => {}
        None => {
            store.create_consumer(consumer, plan).await.map_err(|e| e.to_string())?;
            audit(access, store, "consumer.create", consumer, plan.map_or("", |p| p)).await;
        }
    }
    let key = store.create_key(consumer, expires_at).await.map_err(|e| e.to_string())?;
    audit(access, store, "key.create", consumer, &format!("{} ({})", key.id, key.prefix)).await;
    let expires = key.expires_at.map(rfc3339);
    if json {
        let body = json!({
            "id": key.id, "key": key.key, "prefix": key.prefix, "consumer": consumer,
            "created_at": rfc3339(key.created_at), "expires_at": expires,
        });
        println!("{body}");
    } else {
        println!("{}", key.key);
        println!("id: {}\nprefix: {}\nconsumer: {consumer}", key.id, key.prefix);
        println!("expires_at: {}", expires.as_deref().unwrap_or("never"));
        eprintln!("Store the key now: it is not shown again.");
    }
    Ok(())
}

async fn list(store: &Store, consumer: Option<&str>, json: bool) -> Result<(), String> {
    let keys = store.list_keys(consumer).await.map_err(|e| e.to_string())?;
    if json {
        let rows: Vec<_> = keys.iter().map(key_json).collect();
        println!("{}", serde_json::Value::Array(rows));
        return Ok(());
    }
    println!("{:<20}  {:<12}  {:<20}  {:<20}  {:<20}  REVOKED", "ID", "PREFIX", "CONSUMER", "CREATED", "EXPIRES");
    for k in &keys {
        let expires = k.expires_at.map(rfc3339).unwrap_or_else(|| "never".into());
        let revoked = if k.revoked { "yes" } else { "no" };
        println!(
            "{:<20}  {:<12}  {:<20}  {:<20}  {:<20}  {revoked}",
            k.id,
            k.prefix,
            k.consumer,
            rfc3339(k.created_at),
            expires
        );
    }
    Ok(())
}

fn key_json(k: &KeyInfo) -> serde_json::Value {
    json!({
        "id": k.id, "prefix": k.prefix, "consumer": k.consumer, "created_at": rfc3339(k.created_at),
        "expires_at": k.expires_at.map(rfc3339), "revoked": k.revoked,
    })
}

async fn revoke(access: &StoreAccess, store: &Store, id: &str) -> Result<(), String> {
    match store.revoke_key(id).await {
        Ok(key) => {
            audit(access, store, "key.revoke", id, &format!("consumer {}", key.consumer)).await;
            println!("revoked {id} ({}, consumer {})", key.prefix, key.consumer);
            Ok(())
        }
        Err(e @ StoreError::NotFound { .. }) => Err(e.to_string()),
        Err(e) => Err(format!("cannot revoke: {e}")),
    }
}
