//! Quota usage (saved periodically by the quota engine, read back at start) and the audit
//! trail. Neither bumps the sync revision: no instance's key index depends on them.

use time::OffsetDateTime;

use crate::connect::{Pool, on_pool};
use crate::records::{from_millis, now_millis, now_unix};
use crate::{AuditEvent, AuditRecord, Store, StoreError};

/// The most audit entries one `list_audit` returns.
pub const MAX_AUDIT_LIMIT: u32 = 1000;

/// ts, actor, action, target, result, detail.
type AuditRow = (i64, String, String, Option<String>, String, Option<String>);

impl Store {
    /// Saves `(consumer, period, used)` counters; a stored count larger than the one given
    /// is kept (instances save what they saw, and counts only grow within a period).
    pub async fn save_usage(&self, rows: &[(&str, &str, i64)]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        // The one statement that differs: SQLite's two-argument max() is GREATEST elsewhere.
        let larger = match self.pool {
            Pool::Sqlite(_) => "max(quota_usage.used, excluded.used)",
            Pool::Postgres(_) => "GREATEST(quota_usage.used, excluded.used)",
        };
        let sql = format!(
            "INSERT INTO quota_usage (consumer, period, used, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (consumer, period) DO UPDATE SET used = {larger}, updated_at = excluded.updated_at"
        );
        let now = now_unix();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for (consumer, period, used) in rows {
                sqlx::query(&sql).bind(*consumer).bind(*period).bind(*used).bind(now).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Every saved counter as `(consumer, period, used)`.
    pub async fn load_usage(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let sql = "SELECT consumer, period, used FROM quota_usage ORDER BY consumer, period";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)?)
    }

    /// Appends one audit entry, stamped now.
    pub async fn append_audit(&self, event: &AuditEvent<'_>) -> Result<(), StoreError> {
        let sql = "INSERT INTO audit (ts, actor, action, target, result, detail) VALUES ($1, $2, $3, $4, $5, $6)";
        on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(now_millis())
                .bind(event.actor)
                .bind(event.action)
                .bind(event.target)
                .bind(event.result)
                .bind(event.detail)
                .execute(pool)
                .await
                .map(drop)
        })?;
        Ok(())
    }

    /// The newest `limit` entries (at most [`MAX_AUDIT_LIMIT`]) at or after `since`, oldest
    /// first.
    pub async fn list_audit(&self, since: Option<OffsetDateTime>, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        let since = since.map_or(i64::MIN, |t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MIN));
        let limit = i64::from(limit.min(MAX_AUDIT_LIMIT));
        let sql = "SELECT ts, actor, action, target, result, detail FROM audit WHERE ts >= $1 \
                   ORDER BY seq DESC LIMIT $2";
        let rows: Vec<AuditRow> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(since).bind(limit).fetch_all(pool).await)?;
        Ok(rows
            .into_iter()
            .rev()
            .map(|(ts, actor, action, target, result, detail)| AuditRecord {
                ts: from_millis(ts),
                actor,
                action,
                target,
                result,
                detail,
            })
            .collect())
    }
}
