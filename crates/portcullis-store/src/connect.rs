//! Opening the database: parse `state.database`, connect, run the backend's migrations.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::StoreError;

/// `state.database` when the config says nothing: a file beside the config.
pub const DEFAULT_DATABASE: &str = "sqlite://portcullis.db";
/// How long a query waits for a free connection (or a new one) before it fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long SQLite waits on a lock held by another connection or process (the CLI).
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Admin writes and a 250 ms poll: a few connections are plenty.
const SQLITE_CONNECTIONS: u32 = 4;
const POSTGRES_CONNECTIONS: u32 = 8;
/// How often opening SQLite is tried before its error is the answer (see `open_sqlite`).
const SQLITE_OPEN_ATTEMPTS: u32 = 5;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same code against whichever pool the store has (each arm is compiled for its
/// own driver). The SQL must be portable: `$N` placeholders work on both.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::connect::Pool::Sqlite($pool) => $body,
            $crate::connect::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// An open database with its migrations applied. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Store {
    pub(crate) pool: Pool,
    url: String,
}

/// What `state.database` names, before connecting.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Sqlite(PathBuf),
    Postgres(String),
}

/// Checks that `url` is a database URL this build opens (`sqlite://FILE`, `postgres://…`,
/// `postgresql://…`). The message never repeats the URL, which may hold a password.
pub fn check_url(url: &str) -> Result<(), StoreError> {
    target(url, Path::new(".")).map(|_| ())
}

fn target(url: &str, base_dir: &Path) -> Result<Target, StoreError> {
    if let Some(rest) = url.strip_prefix("sqlite://") {
        // Query parameters (`?mode=…`) are not supported: the store sets its own options.
        let file = rest.split('?').next().unwrap_or_default();
        if file.is_empty() || rest.contains('?') {
            return Err(StoreError::InvalidUrl("write sqlite://FILE (a path, no parameters)".into()));
        }
        let path = Path::new(file);
        return Ok(Target::Sqlite(if path.is_absolute() { path.to_path_buf() } else { base_dir.join(path) }));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Target::Postgres(url.to_owned()));
    }
    Err(StoreError::InvalidUrl("must be a sqlite://FILE or postgres://… URL".into()))
}

impl Store {
    /// Opens `url` (a relative SQLite path joins `base_dir`, the config file's folder),
    /// creating the SQLite file if missing, and applies pending migrations.
    pub async fn connect(url: &str, base_dir: &Path) -> Result<Self, StoreError> {
        let pool = match target(url, base_dir)? {
            Target::Sqlite(file) => Pool::Sqlite(open_sqlite(&file).await?),
            Target::Postgres(url) => {
                let options = PgConnectOptions::from_str(&url)?;
                let pool = PgPoolOptions::new()
                    .max_connections(POSTGRES_CONNECTIONS)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await?;
                POSTGRES_MIGRATIONS.run(&pool).await?;
                Pool::Postgres(pool)
            }
        };
        Ok(Self { pool, url: url.to_owned() })
    }

    /// The URL this store was opened with. It may hold a password: compare it, never log it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL for logs: the password, if any, replaced.
    pub fn describe(&self) -> String {
        redact_url(&self.url)
    }

    /// One round trip to the database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(drop))?;
        Ok(())
    }

    /// Closes every connection (waits for those in use).
    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await);
    }

    /// The sync revision: moves on every consumer or key write, from any instance.
    pub async fn revision(&self) -> Result<i64, StoreError> {
        let sql = "SELECT n FROM sync_revision WHERE id = 1";
        let (n,): (i64,) = on_pool!(self, pool => sqlx::query_as(sql).fetch_one(pool).await)?;
        Ok(n)
    }
}

/// Opens the SQLite file and applies its migrations. Postgres migrations take an advisory
/// lock; SQLite ones take none, so two instances (or `portcullis keys` and a starting gateway)
/// opening a new file at once race: the loser fails with "table … already exists" on a schema
/// the winner has just committed, or finds the file locked while the winner switches it to
/// WAL. Each migration is one transaction, so a failed attempt leaves nothing behind, and the
/// next attempt finds the winner's work recorded and skips it.
async fn open_sqlite(file: &Path) -> Result<SqlitePool, StoreError> {
    let mut attempt = 1;
    loop {
        match try_open_sqlite(file).await {
            Ok(pool) => return Ok(pool),
            Err(e) if attempt >= SQLITE_OPEN_ATTEMPTS => return Err(e),
            Err(e) => {
                tracing::debug!(attempt, error = %e, "opening the SQLite database failed; another process may be migrating it");
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                attempt += 1;
            }
        }
    }
}

async fn try_open_sqlite(file: &Path) -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::new()
        .filename(file)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(SQLITE_BUSY_TIMEOUT);
    let pool = SqlitePoolOptions::new()
        .max_connections(SQLITE_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await?;
    if let Err(e) = SQLITE_MIGRATIONS.run(&pool).await {
        pool.close().await;
        return Err(e.into());
    }
    Ok(pool)
}

/// Reads the files a `postgres://` URL's `sslrootcert`, `sslcert` and `sslkey` name, as a
/// connection would: one message per file that is missing or holds no certificate (no key).
/// `validate` uses it; the driver reads them again at each connection, so a rotated file is
/// picked up by the next one. Other URLs name no such files.
pub fn check_tls_files(url: &str) -> Vec<String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Vec::new();
    }
    let Ok(parsed) = url::Url::parse(url) else { return Vec::new() };
    let mut problems = Vec::new();
    for (name, value) in parsed.query_pairs() {
        let certificate = match &*name {
            "sslrootcert" | "sslcert" => true,
            "sslkey" => false,
            _ => continue,
        };
        if value.is_empty() {
            continue;
        }
        let pem = if value.starts_with("-----BEGIN") {
            value.as_bytes().to_vec()
        } else {
            match std::fs::read(&*value) {
                Ok(pem) => pem,
                Err(e) => {
                    problems.push(format!("state.database: {name} {value}: {e}"));
                    continue;
                }
            }
        };
        let usable = if certificate {
            CertificateDer::pem_slice_iter(&pem).next().is_some_and(|c| c.is_ok())
        } else {
            PrivateKeyDer::from_pem_slice(&pem).is_ok()
        };
        if !usable {
            let what = if certificate { "PEM certificate" } else { "PEM private key" };
            let shown = if value.starts_with("-----BEGIN") { "(inline)" } else { &value };
            problems.push(format!("state.database: {name} {shown} holds no {what}"));
        }
    }
    problems
}

/// `scheme://user:password@host` → `scheme://user:<redacted>@host`, and the value of a
/// `password` (or `sslpassword`) URL parameter, which the PostgreSQL driver also reads,
/// replaced the same way.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let tail = redact_parameters(tail);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:<redacted>@{host}{tail}")
        }
        _ => format!("{scheme}://{authority}{tail}"),
    }
}

/// The path and query with the values of secret parameters replaced.
fn redact_parameters(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else { return tail.to_owned() };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if name.eq_ignore_ascii_case("password") || name.eq_ignore_ascii_case("sslpassword") => {
                format!("{name}=<redacted>")
            }
            _ => pair.to_owned(),
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_relative_sqlite_paths_join_the_config_folder() {
        let base = Path::new("/etc/portcullis");
        assert_eq!(target(DEFAULT_DATABASE, base).ok(), Some(Target::Sqlite(base.join("portcullis.db"))));
        assert_eq!(target("sqlite:///var/db/p.db", base).ok(), Some(Target::Sqlite("/var/db/p.db".into())));
        assert!(matches!(target("postgres://u@h/db", base), Ok(Target::Postgres(_))));
        for bad in ["", "sqlite://", "mysql://h/db", "sqlite://x.db?mode=ro", "redis://h"] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_tls_files_of_a_postgres_url_are_read_as_a_connection_would() {
        let dir = std::env::temp_dir().join(format!("portcullis-tls-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let not_pem = dir.join("not.pem");
        std::fs::write(&not_pem, "not a certificate").expect("write");
        let missing = dir.join("missing.pem");
        let url = format!(
            "postgres://u:secret@db/p?sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
            missing.display(),
            not_pem.display(),
            not_pem.display()
        );
        let problems = check_tls_files(&url);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("state.database: sslrootcert ") && problems[0].contains("missing.pem"));
        assert_eq!(problems[1], format!("state.database: sslcert {} holds no PEM certificate", not_pem.display()));
        assert_eq!(problems[2], format!("state.database: sslkey {} holds no PEM private key", not_pem.display()));
        assert!(problems.iter().all(|p| !p.contains("secret")), "{problems:?}");
        // A URL without TLS files, and SQLite, name nothing to read.
        assert!(check_tls_files("postgres://u@db/p?sslmode=require").is_empty());
        assert!(check_tls_files("sqlite:///tmp/x.db").is_empty());
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn instances_opening_a_new_sqlite_file_at_once_all_start() {
        for round in 0..3 {
            let dir = std::env::temp_dir().join(format!("pcl-migrate-race-{}-{round}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("temp dir");
            let opens: Vec<_> = (0..4)
                .map(|_| {
                    let dir = dir.clone();
                    tokio::spawn(async move { Store::connect("sqlite://race.db", &dir).await })
                })
                .collect();
            for open in opens {
                let store = open.await.expect("task").expect("every instance migrates or finds it migrated");
                store.revision().await.expect("the schema is in place");
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn passwords_are_redacted_for_logs() {
        assert_eq!(redact_url("postgres://app:s3cret@db:5432/p"), "postgres://app:<redacted>@db:5432/p");
        assert_eq!(redact_url("postgres://app@db/p"), "postgres://app@db/p");
        assert_eq!(
            redact_url("postgres://app@db/p?sslmode=require&password=s3cret&sslpassword=k3y"),
            "postgres://app@db/p?sslmode=require&password=<redacted>&sslpassword=<redacted>"
        );
        assert_eq!(
            redact_url("postgres://app:a@db/p?password=b"),
            "postgres://app:<redacted>@db/p?password=<redacted>"
        );
        assert_eq!(redact_url("sqlite:///var/p.db"), "sqlite:///var/p.db");
    }
}
