//! Running a case file: its keys read, each case on a fresh offline gateway, each outcome
//! compared with the case's expectations.

use std::path::Path;
use std::time::Instant;

use portcullis_core::Snapshot;
use portcullis_core::snapshot::{ProviderKind, TokenSource};

use crate::cases::{self, Case, CaseFile, Mismatch, TokenPlace, TokenSpec};
use crate::tokens::SigningKey;
use crate::{Error, Offline, StandIn, fail};

/// What one case came to.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub name: String,
    pub mismatches: Vec<Mismatch>,
    /// The case could not run (a bad key, an unknown provider, a bad URL).
    pub error: Option<String>,
    pub seconds: f64,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.mismatches.is_empty()
    }
}

/// Reads and runs the case file at `path` against `snapshot`.
pub async fn run_path(snapshot: &Snapshot, path: &Path) -> Vec<Verdict> {
    match cases::read(path) {
        Ok(file) => run_file(snapshot, path, &file).await,
        Err(e) => vec![failure("(case file)", e.to_string())],
    }
}

pub async fn run_file(snapshot: &Snapshot, path: &Path, file: &CaseFile) -> Vec<Verdict> {
    let base = path.parent().unwrap_or(Path::new("."));
    let now = match file.now.as_deref().map(humantime::parse_rfc3339) {
        None => unix_now(),
        Some(Ok(t)) => t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0)),
        Some(Err(e)) => return vec![failure("(case file)", format!("now: {e}"))],
    };
    let mut keys = Vec::new();
    for (provider, spec) in &file.keys {
        let Some(ProviderKind::Jwt(jwt)) = snapshot.provider(provider).map(|p| &p.kind) else {
            return vec![failure(
                "(case file)",
                format!("keys.{provider}: the config has no JWT provider `{provider}`"),
            )];
        };
        let key_path =
            if spec.private_key.is_absolute() { spec.private_key.clone() } else { base.join(&spec.private_key) };
        match SigningKey::from_pem(provider, &jwt.settings, &key_path, &spec.kid) {
            Ok(key) => keys.push(key),
            Err(e) => return vec![failure("(case file)", format!("keys.{provider}: {e}"))],
        }
    }
    let mut out = Vec::with_capacity(file.cases.len());
    for case in &file.cases {
        let started = Instant::now();
        let mut verdict = match run_case(snapshot, &keys, case, now).await {
            Ok(mismatches) => Verdict { name: case.name.clone(), mismatches, error: None, seconds: 0.0 },
            Err(e) => failure(&case.name, e.to_string()),
        };
        verdict.seconds = started.elapsed().as_secs_f64();
        out.push(verdict);
    }
    out
}

fn failure(name: &str, error: String) -> Verdict {
    Verdict { name: name.to_owned(), mismatches: Vec::new(), error: Some(error), seconds: 0.0 }
}

/// Each case runs on a fresh offline gateway: its rate limits start full, so cases do not
/// depend on their order.
async fn run_case(snapshot: &Snapshot, keys: &[SigningKey], case: &Case, now: i64) -> Result<Vec<Mismatch>, Error> {
    let token = match &case.request.token {
        None => None,
        Some(TokenSpec::Literal(token)) => Some((token.clone(), TokenPlace::Header)),
        Some(TokenSpec::Made { provider, claims }) => {
            let Some(ProviderKind::Jwt(jwt)) = snapshot.provider(provider).map(|p| &p.kind) else {
                fail!("token.provider: the config has no JWT provider `{provider}`");
            };
            let key = keys
                .iter()
                .find(|k| k.provider == *provider)
                .ok_or_else(|| Error::new(format!("token: the case file's `keys` has none for `{provider}`")))?;
            Some((key.sign(&jwt.settings, claims, now)?, token_place(&jwt.token_from)))
        }
    };
    let request = case.request.build(token)?;
    let stand_in = match &case.upstream_response {
        Some(response) => response.stand_in()?,
        None => StandIn::default(),
    };
    let offline = Offline::new(snapshot, keys, now)?;
    let outcome = offline.run(&request, &stand_in).await?;
    cases::check(&case.expect, &outcome.observed())
}

/// Where a provider looks for its token first.
pub fn token_place(sources: &[TokenSource]) -> TokenPlace {
    match sources.first() {
        Some(TokenSource::Cookie(name)) => TokenPlace::Cookie(name.clone()),
        Some(TokenSource::Query(name)) => TokenPlace::Query(name.clone()),
        Some(TokenSource::Header) | None => TokenPlace::Header,
    }
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
