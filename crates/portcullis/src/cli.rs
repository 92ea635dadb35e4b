//! Command-line parsing and the subcommands. Exit codes: 0 success, 1 validation failure,
//! 2 usage error (clap's own exit code for bad arguments).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use portcullis_admin::Admin;
use portcullis_config::{Diagnostics, Loaded, ProcessEnv, Source};
use portcullis_core::Snapshot;
use portcullis_proxy::reload::{self, Reloader};
use portcullis_proxy::{Gateway, LoadedFiles, Runtime};

#[derive(Parser)]
#[command(name = "portcullis", version, about = "A secure, self-hosted API gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve until SIGTERM/SIGINT (graceful drain).
    Run(ConfigArgs),
    /// Check everything `run` checks and print every error; exit 0 or 1.
    /// Without --stage: the base document and every stage overlay.
    Validate(ConfigArgs),
    /// Trace one request through every phase offline: each phase's verdict, the route, the
    /// consumer, the limits, and the request the upstream would receive or the answer.
    Explain(crate::explain::ExplainArgs),
    /// Run declarative request cases offline through the same phases; exit 0 or 1.
    Test(crate::test_cli::TestArgs),
    /// Print the JSON Schema of the config file (for editors and CI).
    Schema,
    /// Print the OpenAPI 3.1 document of the API the config serves.
    Openapi(ConfigArgs),
    /// SOAP to REST helpers.
    Soap {
        #[command(subcommand)]
        command: crate::soap_cli::SoapCommand,
    },
    /// Manage API keys in the configured database (`state.database`).
    Keys {
        #[command(subcommand)]
        command: crate::keys_cli::KeysCommand,
    },
    /// Read an API key on stdin (one line), print its stored form `sha256:<hex>`.
    HashKey,
    /// A self-contained quick start: a local echo backend, a mock upstream, no files needed.
    Demo {
        /// Where the demo gateway listens.
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: String,
    },
}

#[derive(clap::Args)]
pub(crate) struct ConfigArgs {
    /// The config file.
    #[arg(short = 'c', long = "config")]
    pub(crate) config: PathBuf,
    /// The stage overlay to apply (`stages.NAME`).
    #[arg(long)]
    pub(crate) stage: Option<String>,
}

pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run(&args),
        Command::Validate(args) => validate(&args),
        Command::Explain(args) => crate::explain::run(&args),
        Command::Test(args) => crate::test_cli::run(&args),
        Command::Schema => {
            println!("{:#}", portcullis_config::json_schema());
            ExitCode::SUCCESS
        }
        Command::Demo { bind } => crate::demo::run(&bind),
        Command::Openapi(args) => crate::openapi::run(&args.config, args.stage.as_deref()),
        Command::Soap { command } => crate::soap_cli::run(&command),
        Command::Keys { command } => crate::keys_cli::run(command),
        Command::HashKey => crate::keys_cli::hash_key(),
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Loads and compiles one stage (or the base document).
pub(crate) fn build(loaded: Result<Loaded, Diagnostics>) -> Result<Snapshot, Diagnostics> {
    portcullis_core::compile(&loaded?)
}

/// Loads and compiles one stage and loads the files it names, reporting every error of both:
/// what `run` serves. (`explain` and `test` run offline on [`build`]: no certificate needed.)
pub(crate) fn prepare(loaded: Result<Loaded, Diagnostics>) -> Result<(Snapshot, LoadedFiles), Diagnostics> {
    portcullis_proxy::prepare(&loaded?)
}

fn run(args: &ConfigArgs) -> ExitCode {
    let loaded = portcullis_config::load_file(&args.config, args.stage.as_deref());
    match prepare(loaded) {
        Ok(prepared) => serve(prepared, Some((args.config.clone(), args.stage.clone())), |_| {}),
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{} error(s); not starting", errors.len());
            ExitCode::from(1)
        }
    }
}

/// How long the exit waits for the database to close and for blocking work still running
/// (a reload's compile, a WSDL answer being parsed) once the drain is over.
const EXIT_WAIT: Duration = Duration::from_secs(1);

/// Serves a compiled snapshot with its loaded files on a fresh Tokio runtime until a signal. With the `source` it
/// was loaded from (config file and stage), it also reloads on SIGHUP, on file changes and
/// through the admin API. `listening` is called once every listener is bound and the signal
/// handlers are in place, with each listener's name and address (not called when binding
/// fails).
pub(crate) fn serve(
    (snapshot, files): (Snapshot, LoadedFiles),
    source: Option<(PathBuf, Option<String>)>,
    listening: impl FnOnce(&[(Arc<str>, SocketAddr)]),
) -> ExitCode {
    init_logging();
    for warning in &snapshot.warnings {
        tracing::warn!("{warning}");
    }
    // On one core (a container limit, or `taskset`), the single-threaded scheduler avoids
    // the work-stealing machinery's cross-thread wakeups.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let mut builder = if cores == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(async move {
        let gateway = match Runtime::new(snapshot, files) {
            Ok(rt) => Gateway::bind(rt).await,
            Err(e) => Err(e),
        };
        let gateway = match gateway {
            Ok(g) => g,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(1);
            }
        };
        // Signal handlers first: until one is installed, SIGTERM or SIGHUP would end the
        // process without a drain, so nothing may say "listening" before them.
        let shutdown = shutdown_signal();
        if let Some((path, stage)) = source {
            let reloader = Reloader::new(path, stage, gateway.handle());
            tokio::spawn(reloader.clone().watch());
            #[cfg(unix)]
            tokio::spawn(reload::on_sighup(reloader.clone()));
            if let Some(spec) = reloader.handle().current().snapshot.admin.clone() {
                let admin = match Admin::bind(spec.bind, reloader.clone()).await {
                    Ok(admin) => admin,
                    Err(e) => {
                        eprintln!("{e}");
                        return ExitCode::from(1);
                    }
                };
                if let Ok(addr) = admin.local_addr() {
                    tracing::info!(listener = "admin", admin_addr = %addr, "admin API listening");
                }
                tokio::spawn(admin.run());
            }
        }
        let addrs = gateway.local_addrs();
        for (name, addr) in &addrs {
            tracing::info!(listener = %name, %addr, "listening");
        }
        listening(&addrs);
        let handle = gateway.handle();
        gateway.run(shutdown).await;
        // Closed now rather than dropped with the runtime: SQLite folds its write-ahead log
        // back into the file and removes it, so the folder is left as it was found.
        if let Some(database) = &handle.current().database {
            let _ = tokio::time::timeout(EXIT_WAIT, database.store().close()).await;
        }
        tracing::info!("stopped");
        ExitCode::SUCCESS
    });
    // Dropping the runtime would wait without bound for blocking tasks still running.
    runtime.shutdown_timeout(EXIT_WAIT);
    // The access-log writers gather lines for a few milliseconds: the last ones go out now,
    // including those of requests the runtime's end cut short.
    portcullis_telemetry::access_log::flush_all(EXIT_WAIT);
    code
}

/// Installs the SIGTERM and SIGINT handlers now (they must be in place before the gateway
/// says it is listening); the future resolves on the first of them.
#[cfg(unix)]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    let (term, int) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()));
    async fn first(signal: std::io::Result<Signal>) {
        match signal {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    }
    async move {
        tokio::select! {
            () = first(term) => {}
            () = first(int) => {}
        }
    }
}

#[cfg(not(unix))]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn validate(args: &ConfigArgs) -> ExitCode {
    let mut failed = false;
    let mut report = |stage: Option<&str>| {
        let label = stage.map_or_else(|| "base".to_owned(), |s| format!("stage {s}"));
        let found = check(&args.config, stage);
        for w in &found.warnings {
            eprintln!("warning: {w}");
        }
        if !found.errors.is_empty() {
            println!("{}", found.errors);
        }
        let count = found.errors.len();
        if count == 0 {
            println!("{label}: ok ({} routes)", found.routes);
        } else {
            failed = true;
            println!("{label}: {count} error(s)");
        }
    };
    match &args.stage {
        Some(stage) => report(Some(stage)),
        None => {
            report(None);
            for stage in stage_names(&args.config) {
                report(Some(&stage));
            }
        }
    }
    if failed { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

/// What `validate` finds in one stage of a config.
struct Found {
    errors: Diagnostics,
    warnings: Vec<portcullis_config::Diagnostic>,
    routes: usize,
}

/// Everything wrong with one stage, in one run, each at its `file:line:col`: the load's
/// problems (schema, `${env:}` and `${file:}` references), the compile step's (references
/// between sections, with the nearest name for an unknown one) and every certificate, key or
/// CA file that `run` would fail to load ([`portcullis_proxy::load_files`], the step `run` and
/// reloads take), both on every part whose shape is right, whether or not the rest compiles.
/// Reads files only; starts nothing.
fn check(path: &Path, stage: Option<&str>) -> Found {
    let checked = portcullis_config::check(Source::File(path), stage, &ProcessEnv);
    let mut found = Found { errors: checked.diagnostics.clone(), warnings: Vec::new(), routes: 0 };
    if let Some(loaded) = &checked.loaded {
        let files = portcullis_proxy::load_files(loaded, std::time::SystemTime::now());
        // Building from material that is partly missing would only say so again.
        let files_loaded = files.errors.is_empty();
        found.errors.0.extend(files.errors.0.into_iter().map(|d| checked.place(d)));
        found.warnings.extend(files.warnings.into_iter().map(|w| checked.place(w)));
        match portcullis_core::compile(loaded) {
            Ok(snapshot) => {
                found.warnings.extend(snapshot.warnings.iter().map(|w| checked.place(w.clone())));
                let mut built = portcullis_proxy::runtime::check_database_files(&snapshot);
                if files_loaded {
                    built.extend(portcullis_proxy::runtime::check_build(&snapshot, &files.files));
                }
                let placed = built.into_iter().map(|(at, e)| checked.place(loaded.locations.diagnostic(&at, e)));
                found.errors.0.extend(placed);
                found.routes = snapshot.routes.len();
            }
            Err(errors) => found.errors.0.extend(errors.0.into_iter().map(|d| checked.place(d))),
        }
    }
    found.errors.sort();
    found
}

fn stage_names(path: &Path) -> Vec<String> {
    portcullis_config::stage_names(Source::File(path), &ProcessEnv).unwrap_or_default()
}
