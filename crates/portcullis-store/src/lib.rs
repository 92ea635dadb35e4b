//! The database behind `state.database`: consumers added at run time, their API keys (only
//! the SHA-256 digest is stored), quota usage that must survive restarts, and the audit
//! trail. SQLite (`sqlite://FILE`, WAL mode, the default) for one instance, PostgreSQL
//! (`postgres://…`) when several instances share it.
//!
//! Data flows one way into the request path: the admin API and the CLI write here; every
//! write bumps a revision row in the same transaction; each instance's [`KeySync`] polls that
//! revision every [`SYNC_INTERVAL`] and, when it moved, rebuilds the in-memory
//! [`KeyIndex`](portcullis_auth::api_key::KeyIndex) and the consumer → plan map that requests
//! read. Requests never wait on the database.

mod connect;
mod consumers;
mod error;
mod keys;
mod records;
mod sync;
mod usage;

#[cfg(test)]
mod tests;

pub use connect::{DEFAULT_DATABASE, Store, check_tls_files, check_url, redact_url};
pub use error::StoreError;
pub use records::{AuditEvent, AuditRecord, Consumer, CreatedKey, KeyInfo, parse_rfc3339, rfc3339};
pub use sync::{ConsumerPlans, KeySync, SYNC_INTERVAL};
pub use usage::MAX_AUDIT_LIMIT;
