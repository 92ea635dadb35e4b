//! What can go wrong, classified by who caused it: the caller (`Invalid`, `NotFound`,
//! `Conflict`) or the database (`Database`, `Migrate`), where a retry may help.

/// An error of the store. Messages never contain a key, a digest or a password.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `state.database` is not a URL this build can open.
    #[error("state.database: {0}")]
    InvalidUrl(String),
    /// The caller's input (a name, a time) is not acceptable.
    #[error("{0}")]
    Invalid(String),
    #[error("{what} `{name}` does not exist")]
    NotFound { what: &'static str, name: String },
    #[error("{what} `{name}` already exists")]
    Conflict { what: &'static str, name: String },
    /// The database refused or could not be reached; a retry may help.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Random(#[from] portcullis_auth::api_key::RandomError),
}

impl StoreError {
    /// The database (not the caller) failed: answer 503 and retry later.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Database(_) | Self::Migrate(_))
    }
}
