//! One way to audit (SPEC §7): every entry goes to the audit log file and, when the gateway
//! has a database open, to its audit table, so `GET /audit` shows what the file shows —
//! reloads, cache purges and refused admin logins included.

use portcullis_store::AuditEvent;
use portcullis_telemetry::audit::{self, AuditEntry};

use crate::runtime::Runtime;

/// Writes `entry` to `runtime`'s audit file and database. A failure is logged, never fatal:
/// the action it describes has already happened.
pub async fn record(runtime: &Runtime, entry: &AuditEntry<'_>) {
    audit::record(&runtime.snapshot.audit_log, entry);
    let Some(sync) = &runtime.database else { return };
    let event = AuditEvent {
        actor: entry.actor,
        action: entry.action,
        target: entry.target,
        result: entry.result,
        detail: entry.detail,
    };
    if let Err(e) = sync.store().append_audit(&event).await {
        tracing::warn!(error = %e, action = entry.action, "cannot write the audit entry to the database");
    }
}
