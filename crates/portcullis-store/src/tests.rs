//! Every behaviour is checked on both backends: SQLite in a temp file and PostgreSQL at
//! `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`), each test in a schema
//! of its own. Without a reachable PostgreSQL the Postgres half is skipped, except under
//! `CI=true`, where it fails.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use portcullis_auth::api_key::digest_of;
use sqlx::Connection;
use time::OffsetDateTime;

use crate::{AuditEvent, KeySync, Store, StoreError, parse_rfc3339, rfc3339};

const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

fn scratch() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "portcullis-store-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A store on a fresh SQLite file.
async fn sqlite() -> Store {
    let dir = scratch();
    Store::connect("sqlite://portcullis.db", &dir).await.expect("open sqlite")
}

/// A fresh schema on the test PostgreSQL, dropped by [`PgSchema::drop_now`].
pub(crate) struct PgSchema {
    base: String,
    name: String,
    /// The URL that puts a connection in this schema.
    pub(crate) url: String,
}

impl PgSchema {
    /// `None`: no PostgreSQL here (a failure under `CI=true`).
    pub(crate) async fn create() -> Option<Self> {
        let base = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_POSTGRES.to_owned());
        let mut conn = match sqlx::PgConnection::connect(&base).await {
            Ok(c) => c,
            Err(e) => {
                assert!(std::env::var("CI").as_deref() != Ok("true"), "PostgreSQL is required under CI: {e}");
                eprintln!("skipping the PostgreSQL half: {e}");
                return None;
            }
        };
        let name = format!("t_{}", crate::keys::new_id().expect("rng")[4..].to_ascii_lowercase());
        sqlx::query(&format!("CREATE SCHEMA {name}")).execute(&mut conn).await.expect("create schema");
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{name}");
        Some(Self { base, name, url })
    }

    pub(crate) async fn drop_now(self) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.base).await {
            let _ = sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.name)).execute(&mut conn).await;
        }
    }
}

/// Runs `check` on SQLite, then on PostgreSQL when there is one.
macro_rules! both {
    ($check:ident) => {{
        $check(sqlite().await).await;
        if let Some(schema) = PgSchema::create().await {
            let store = Store::connect(&schema.url, std::path::Path::new(".")).await.expect("open postgres");
            $check(store).await;
            schema.drop_now().await;
        }
    }};
}

#[tokio::test]
async fn consumers_are_created_once_listed_and_deleted() {
    async fn check(store: Store) {
        store.ping().await.expect("ping");
        let acme = store.create_consumer("acme", Some("gold")).await.expect("create");
        assert_eq!((acme.name.as_str(), acme.plan.as_deref()), ("acme", Some("gold")));
        assert!(matches!(store.create_consumer("acme", None).await, Err(StoreError::Conflict { .. })));
        assert!(matches!(store.create_consumer("bad name", None).await, Err(StoreError::Invalid(_))));
        store.create_consumer("beta", None).await.expect("create");
        let names: Vec<_> = store.list_consumers().await.expect("list").into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["acme", "beta"]);
        assert_eq!(store.get_consumer("acme").await.expect("get"), Some(acme));
        assert_eq!(store.delete_consumer("beta").await.expect("delete"), 0);
        assert!(matches!(store.delete_consumer("beta").await, Err(StoreError::NotFound { .. })));
        assert_eq!(store.get_consumer("beta").await.expect("get"), None);
    }
    both!(check);
}

#[tokio::test]
async fn keys_store_only_a_digest_and_revoked_keys_stop_being_usable() {
    async fn check(store: Store) {
        store.create_consumer("acme", Some("gold")).await.expect("create");
        let created = store.create_key("acme", None).await.expect("key");
        assert!(created.key.starts_with(&created.prefix) && created.id.starts_with("key_"));
        assert!(!format!("{created:?}").contains(&created.key), "the key never shows in debug output");
        let usable = store.usable_keys().await.expect("usable");
        assert_eq!(usable.len(), 1);
        let (digest, record) = &usable[0];
        assert_eq!(*digest, digest_of(created.key.as_bytes()));
        assert_eq!((record.id.as_deref(), &*record.consumer), (Some(created.id.as_str()), "acme"));
        assert_eq!(record.plan.as_deref(), Some("gold"));

        let listed = store.list_keys(Some("acme")).await.expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].prefix.as_str(), listed[0].revoked), (created.prefix.as_str(), false));
        let revoked = store.revoke_key(&created.id).await.expect("revoke");
        assert!(revoked.revoked);
        assert!(store.revoke_key(&created.id).await.expect("again").revoked, "revoking twice is harmless");
        assert!(matches!(store.revoke_key("key_nope").await, Err(StoreError::NotFound { .. })));
        assert!(store.usable_keys().await.expect("usable").is_empty());
        assert!(store.list_keys(Some("acme")).await.expect("list")[0].revoked);
        assert!(matches!(store.list_keys(Some("nobody")).await, Err(StoreError::NotFound { .. })));
        assert!(matches!(store.create_key("nobody", None).await, Err(StoreError::NotFound { .. })));
    }
    both!(check);
}

#[tokio::test]
async fn expiry_is_kept_and_deleting_a_consumer_revokes_its_keys() {
    async fn check(store: Store) {
        store.create_consumer("acme", None).await.expect("create");
        let past = OffsetDateTime::now_utc() - Duration::from_secs(60);
        assert!(matches!(store.create_key("acme", Some(past)).await, Err(StoreError::Invalid(_))));
        let at = parse_rfc3339("2999-01-02T03:04:05+02:00").expect("time");
        let key = store.create_key("acme", Some(at)).await.expect("key");
        assert_eq!(key.expires_at.map(rfc3339).as_deref(), Some("2999-01-02T01:04:05Z"));
        let usable = store.usable_keys().await.expect("usable");
        assert_eq!(usable[0].1.expires_at, Some(at.unix_timestamp()));
        store.create_key("acme", None).await.expect("key");
        assert_eq!(store.delete_consumer("acme").await.expect("delete"), 2);
        assert!(store.usable_keys().await.expect("usable").is_empty());
        assert!(store.list_keys(None).await.expect("list").iter().all(|k| k.revoked));
    }
    both!(check);
}

#[tokio::test]
async fn every_key_write_moves_the_revision_and_the_sync_follows_it() {
    async fn check(store: Store) {
        let store = Arc::new(store);
        let sync = KeySync::start(store.clone()).await.expect("sync");
        assert!(sync.keys().is_empty());
        let r0 = store.revision().await.expect("rev");
        store.create_consumer("acme", Some("gold")).await.expect("create");
        let key = store.create_key("acme", None).await.expect("key");
        assert!(store.revision().await.expect("rev") >= r0 + 2);
        assert!(sync.refresh().await.expect("refresh"));
        assert!(!sync.refresh().await.expect("refresh"), "nothing moved: no reload");
        let found = sync.keys().lookup(key.key.as_bytes()).expect("indexed");
        assert_eq!(found.plan.as_deref(), Some("gold"));
        assert_eq!(sync.consumers().get("acme").cloned(), Some(Some(Arc::from("gold"))));
        store.revoke_key(&key.id).await.expect("revoke");
        sync.refresh().await.expect("refresh");
        assert_eq!(sync.keys().lookup(key.key.as_bytes()), None);
    }
    both!(check);
}

#[tokio::test]
async fn usage_saves_keep_the_larger_count() {
    async fn check(store: Store) {
        store.save_usage(&[("acme", "day:2026-12-02", 5), ("acme", "month:2026-12", 7)]).await.expect("save");
        store.save_usage(&[("acme", "day:2026-12-02", 3), ("beta", "day:2026-12-02", 1)]).await.expect("save");
        store.save_usage(&[]).await.expect("nothing to save");
        let usage = store.load_usage().await.expect("load");
        let expect = [("acme", "day:2026-12-02", 5), ("acme", "month:2026-12", 7), ("beta", "day:2026-12-02", 1)];
        let got: Vec<_> = usage.iter().map(|(c, p, u)| (c.as_str(), p.as_str(), *u)).collect();
        assert_eq!(got, expect);
    }
    both!(check);
}

#[tokio::test]
async fn audit_entries_are_listed_newest_window_oldest_first() {
    async fn check(store: Store) {
        for i in 0..3 {
            let target = format!("c{i}");
            let event = AuditEvent {
                actor: "admin",
                action: "consumer.create",
                target: Some(&target),
                result: "ok",
                detail: None,
            };
            store.append_audit(&event).await.expect("append");
        }
        let all = store.list_audit(None, 100).await.expect("list");
        let targets: Vec<_> = all.iter().filter_map(|a| a.target.as_deref()).collect();
        assert_eq!(targets, ["c0", "c1", "c2"]);
        let last = store.list_audit(None, 2).await.expect("list");
        assert_eq!(last.iter().filter_map(|a| a.target.as_deref()).collect::<Vec<_>>(), ["c1", "c2"]);
        let future = OffsetDateTime::now_utc() + Duration::from_secs(60);
        assert!(store.list_audit(Some(future), 10).await.expect("list").is_empty());
        assert!(store.list_audit(Some(all[0].ts), 10).await.expect("list").len() == 3);
    }
    both!(check);
}

#[tokio::test]
async fn a_relative_sqlite_file_is_created_in_the_config_folder_in_wal_mode() {
    let dir = scratch();
    let store = Store::connect("sqlite://data/p.db", &dir).await;
    assert!(store.is_err(), "a missing folder is an error, not a surprise elsewhere");
    std::fs::create_dir_all(dir.join("data")).expect("dir");
    let store = Store::connect("sqlite://data/p.db", &dir).await.expect("open");
    assert!(dir.join("data/p.db").exists());
    let crate::connect::Pool::Sqlite(pool) = &store.pool else { panic!("sqlite") };
    let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode").fetch_one(pool).await.expect("pragma");
    assert_eq!(mode, "wal");
    // Reopening runs no migration twice.
    store.close().await;
    Store::connect("sqlite://data/p.db", &dir).await.expect("reopen");
}

#[tokio::test]
async fn when_the_database_fails_the_last_key_index_keeps_serving() {
    let store = Arc::new(sqlite().await);
    store.create_consumer("acme", None).await.expect("create");
    let key = store.create_key("acme", None).await.expect("key");
    let sync = KeySync::start(store.clone()).await.expect("sync");
    assert!(sync.keys().lookup(key.key.as_bytes()).is_some());
    // Break the one query the poll makes.
    let crate::connect::Pool::Sqlite(pool) = &store.pool else { panic!("sqlite") };
    sqlx::query("DROP TABLE sync_revision").execute(pool).await.expect("drop");
    assert_eq!(sync.failures(), 0);
    assert!(sync.refresh().await.is_err_and(|e| e.is_unavailable()));
    assert_eq!(sync.failures(), 1, "counted for portcullis_state_errors_total");
    assert!(sync.keys().lookup(key.key.as_bytes()).is_some(), "the last index still answers");
    assert!(sync.consumers().contains_key("acme"));
}
