//! API keys: created from `portcullis_auth::api_key::generate` (only the digest is stored),
//! listed, revoked, and read back as the usable set for the in-memory index.

use std::sync::Arc;

use portcullis_auth::api_key::{self, Digest, KeyRecord};
use ring::rand::{SecureRandom, SystemRandom};
use time::OffsetDateTime;

use crate::connect::on_pool;
use crate::consumers::BUMP_REVISION;
use crate::records::{arc, from_unix, now_unix};
use crate::{CreatedKey, KeyInfo, Store, StoreError};

/// Key ids are `key_` and 16 base62 characters (~95 bits): unguessable, not secret.
const ID_PREFIX: &str = "key_";
const ID_CHARS: usize = 16;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

pub(crate) fn new_id() -> Result<String, StoreError> {
    let rng = SystemRandom::new();
    let mut id = String::with_capacity(ID_PREFIX.len() + ID_CHARS);
    id.push_str(ID_PREFIX);
    let mut buf = [0u8; 32];
    while id.len() < ID_PREFIX.len() + ID_CHARS {
        rng.fill(&mut buf).map_err(|_| api_key::RandomError)?;
        // 248 = 4 × 62: bytes below it map to base62 without bias.
        for &b in buf.iter().filter(|&&b| b < 248).take(ID_PREFIX.len() + ID_CHARS - id.len()) {
            id.push(char::from(BASE62[usize::from(b % 62)]));
        }
    }
    Ok(id)
}

fn hex(digest: &Digest) -> String {
    // The stored form without its `sha256:` label.
    api_key::stored_form(digest).split_off("sha256:".len())
}

fn unhex(text: &str) -> Option<Digest> {
    api_key::parse_stored_form(&format!("sha256:{text}"))
}

type KeyRow = (String, String, String, i64, Option<i64>, Option<i64>);

fn key_info((id, consumer, prefix, created_at, expires_at, revoked_at): KeyRow) -> KeyInfo {
    KeyInfo {
        id,
        consumer,
        prefix,
        created_at: from_unix(created_at),
        expires_at: expires_at.map(from_unix),
        revoked: revoked_at.is_some(),
    }
}

/// id, consumer, digest, expires_at, the consumer's plan.
type UsableRow = (String, String, String, Option<i64>, Option<String>);

const KEY_COLUMNS: &str = "id, consumer, prefix, created_at, expires_at, revoked_at";

impl Store {
    /// Creates a key for a database consumer (`NotFound` otherwise). The key itself is in the
    /// answer only; the database keeps its digest.
    pub async fn create_key(
        &self,
        consumer: &str,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<CreatedKey, StoreError> {
        let now = now_unix();
        let expires = expires_at.map(OffsetDateTime::unix_timestamp);
        if expires.is_some_and(|t| t <= now) {
            return Err(StoreError::Invalid("expires_at is not in the future".into()));
        }
        let generated = api_key::generate()?;
        let id = new_id()?;
        let exists = "SELECT 1 FROM consumers WHERE name = $1";
        let insert = "INSERT INTO api_keys (id, consumer, prefix, digest, created_at, expires_at) \
                      VALUES ($1, $2, $3, $4, $5, $6)";
        let digest = hex(&generated.digest);
        let created = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let found: Option<(i32,)> = sqlx::query_as(exists).bind(consumer).fetch_optional(&mut *tx).await?;
            if found.is_none() {
                tx.rollback().await?;
                false
            } else {
                sqlx::query(insert)
                    .bind(&id)
                    .bind(consumer)
                    .bind(&generated.prefix)
                    .bind(&digest)
                    .bind(now)
                    .bind(expires)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
                tx.commit().await?;
                true
            }
        });
        if !created {
            return Err(StoreError::NotFound { what: "consumer", name: consumer.to_owned() });
        }
        Ok(CreatedKey {
            id,
            key: generated.key,
            prefix: generated.prefix,
            created_at: from_unix(now),
            expires_at: expires.map(from_unix),
        })
    }

    /// The keys of one consumer (revoked ones too), oldest first; `None` for all consumers.
    /// `NotFound` when the named consumer has neither a row nor a key.
    pub async fn list_keys(&self, consumer: Option<&str>) -> Result<Vec<KeyInfo>, StoreError> {
        let rows: Vec<KeyRow> = match consumer {
            Some(name) => {
                let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE consumer = $1 ORDER BY created_at, id");
                on_pool!(self, pool => sqlx::query_as(&sql).bind(name).fetch_all(pool).await)?
            }
            None => {
                let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY consumer, created_at, id");
                on_pool!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await)?
            }
        };
        if let Some(name) = consumer
            && rows.is_empty()
            && self.get_consumer(name).await?.is_none()
        {
            return Err(StoreError::NotFound { what: "consumer", name: name.to_owned() });
        }
        Ok(rows.into_iter().map(key_info).collect())
    }

    /// Revokes a key (again is a no-op). `NotFound` for an unknown id.
    pub async fn revoke_key(&self, id: &str) -> Result<KeyInfo, StoreError> {
        let now = now_unix();
        let revoke = "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
        let select = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1");
        let row: Option<KeyRow> = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let changed = sqlx::query(revoke).bind(now).bind(id).execute(&mut *tx).await?.rows_affected();
            if changed > 0 {
                sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
            }
            let row = sqlx::query_as(&select).bind(id).fetch_optional(&mut *tx).await?;
            tx.commit().await?;
            row
        });
        row.map(key_info).ok_or_else(|| StoreError::NotFound { what: "key", name: id.to_owned() })
    }

    /// Every key that may authenticate now: not revoked, not expired, owned by a consumer
    /// that exists, with that consumer's plan.
    pub async fn usable_keys(&self) -> Result<Vec<(Digest, KeyRecord)>, StoreError> {
        let sql = "SELECT k.id, k.consumer, k.digest, k.expires_at, c.plan FROM api_keys k \
                   JOIN consumers c ON c.name = k.consumer \
                   WHERE k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > $1)";
        let rows: Vec<UsableRow> = on_pool!(self, pool => sqlx::query_as(sql).bind(now_unix()).fetch_all(pool).await)?;
        let mut consumers: foldhash::HashMap<String, (Arc<str>, Option<Arc<str>>)> = foldhash::HashMap::default();
        let mut out = Vec::with_capacity(rows.len());
        for (id, consumer, digest, expires_at, plan) in rows {
            let Some(digest) = unhex(&digest) else {
                tracing::warn!(key = %id, "a stored key digest is malformed; the key is skipped");
                continue;
            };
            // One allocation per consumer, shared by its keys.
            let (name, plan) =
                consumers.entry(consumer).or_insert_with_key(|name| (arc(name), plan.as_deref().map(arc))).clone();
            out.push((digest, KeyRecord { id: Some(id), consumer: name, expires_at, plan }));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn key_ids_are_prefixed_base62_and_distinct() {
        let (a, b) = (super::new_id().expect("rng"), super::new_id().expect("rng"));
        assert_ne!(a, b);
        assert!(a.starts_with("key_") && a.len() == 20, "{a}");
        assert!(a[4..].bytes().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn digests_round_trip_through_hex() {
        let d = portcullis_auth::api_key::digest_of(b"test");
        assert_eq!(super::unhex(&super::hex(&d)), Some(d));
        assert_eq!(super::hex(&d).len(), 64);
    }
}
