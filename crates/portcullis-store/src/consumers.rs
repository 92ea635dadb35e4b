//! Consumers added at run time. Each write bumps the sync revision in its transaction.

use crate::connect::on_pool;
use crate::records::{from_unix, now_unix};
use crate::{Consumer, Store, StoreError};

/// Consumer names are identifiers that show up in headers (`X-Consumer`) and logs.
const MAX_NAME_LEN: usize = 128;

pub(crate) const BUMP_REVISION: &str = "UPDATE sync_revision SET n = n + 1 WHERE id = 1";

/// 1 to 128 of `[A-Za-z0-9._-]`: safe in a header, a URL path and a log line.
pub(crate) fn check_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!("a consumer name is 1 to {MAX_NAME_LEN} letters, digits, `.`, `_` or `-`")))
    }
}

type ConsumerRow = (String, Option<String>, i64);

fn consumer((name, plan, created_at): ConsumerRow) -> Consumer {
    Consumer { name, plan, created_at: from_unix(created_at) }
}

impl Store {
    /// Adds a consumer; `Conflict` when the name is taken.
    pub async fn create_consumer(&self, name: &str, plan: Option<&str>) -> Result<Consumer, StoreError> {
        check_name(name)?;
        let now = now_unix();
        let insert = "INSERT INTO consumers (name, plan, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING";
        let inserted = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(insert).bind(name).bind(plan).bind(now).execute(&mut *tx).await?;
            if done.rows_affected() == 1 {
                sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            done.rows_affected() == 1
        });
        if !inserted {
            return Err(StoreError::Conflict { what: "consumer", name: name.to_owned() });
        }
        Ok(Consumer { name: name.to_owned(), plan: plan.map(str::to_owned), created_at: from_unix(now) })
    }

    /// Every database consumer, by name.
    pub async fn list_consumers(&self) -> Result<Vec<Consumer>, StoreError> {
        let sql = "SELECT name, plan, created_at FROM consumers ORDER BY name";
        let rows: Vec<ConsumerRow> = on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(consumer).collect())
    }

    pub async fn get_consumer(&self, name: &str) -> Result<Option<Consumer>, StoreError> {
        let sql = "SELECT name, plan, created_at FROM consumers WHERE name = $1";
        let row: Option<ConsumerRow> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(name).fetch_optional(pool).await)?;
        Ok(row.map(consumer))
    }

    /// Deletes a consumer and revokes its keys (they stay listed, revoked). `Ok`: how many
    /// keys were revoked; `NotFound` when there is no such consumer.
    pub async fn delete_consumer(&self, name: &str) -> Result<u64, StoreError> {
        let now = now_unix();
        let revoke = "UPDATE api_keys SET revoked_at = $1 WHERE consumer = $2 AND revoked_at IS NULL";
        let delete = "DELETE FROM consumers WHERE name = $1";
        let outcome = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let deleted = sqlx::query(delete).bind(name).execute(&mut *tx).await?.rows_affected();
            if deleted == 0 {
                tx.rollback().await?;
                None
            } else {
                let revoked = sqlx::query(revoke).bind(now).bind(name).execute(&mut *tx).await?.rows_affected();
                sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
                tx.commit().await?;
                Some(revoked)
            }
        });
        outcome.ok_or_else(|| StoreError::NotFound { what: "consumer", name: name.to_owned() })
    }
}
