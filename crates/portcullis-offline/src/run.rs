//! Running a case file: its keys read, each case on a fresh offline gateway, each outcome
//! compared with the case's expectations.

use std::path::Path;
use std::time::Instant;

use portcullis_core::Snapshot;
use portcullis_core::snapshot::{ProviderKind, TokenSource};

use crate::cases::{self, Case, CaseFile, MadeToken, Mismatch, TokenPlace, TokenSpec};
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
/// depend on their order. A case's `repeat` sends its request that many times on that one
/// gateway (the run's clock stands still), so it can use up a burst or a quota.
async fn run_case(snapshot: &Snapshot, keys: &[SigningKey], case: &Case, now: i64) -> Result<Vec<Mismatch>, Error> {
    let token = match &case.request.token {
        None => None,
        Some(TokenSpec::Literal(token)) => Some((token.clone(), TokenPlace::Header)),
        Some(TokenSpec::Made(MadeToken { provider, claims })) => {
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
    if case.repeat == 0 || case.repeat > cases::MAX_REPEAT {
        fail!("repeat: {} is not between 1 and {}", case.repeat, cases::MAX_REPEAT);
    }
    let offline = Offline::new(snapshot, keys, now)?;
    let mut outcome = offline.run(&request, &stand_in).await?;
    for _ in 1..case.repeat {
        outcome = offline.run(&request, &stand_in).await?;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A public route under a limit of burst 2, and a case file that sends to it.
    fn outcome_of(cases: &str) -> Vec<Verdict> {
        let config = "version: 1\nlisteners: [{ name: l, bind: \"127.0.0.1:1\" }]\n\
                      upstreams: { m: { mock: { status: 200 } } }\n\
                      rate_limits: { tight: { rate: 1/h, burst: 2, key: client_ip } }\n\
                      routes:\n  - { name: r, match: { path: /x }, upstream: m, auth: none, rate_limits: [tight] }\n";
        let loaded = portcullis_config::load_str(config, "t.yaml", Path::new("/tmp"), None).expect("the config parses");
        let snapshot = portcullis_core::compile(&loaded).expect("the config compiles");
        let file: CaseFile = serde_saphyr::from_str(cases).expect("the case file parses");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        runtime.block_on(run_file(&snapshot, Path::new("/tmp/cases.yaml"), &file))
    }

    #[test]
    fn repeat_spends_the_burst_on_one_gateway_and_checks_the_last_answer() {
        let verdicts = outcome_of(
            "cases:\n\
             - { name: once, request: { url: 'http://a/x' }, expect: { status: 200 } }\n\
             - { name: twice, repeat: 2, request: { url: 'http://a/x' }, expect: { status: 200, headers: { ratelimit-remaining: '0' } } }\n\
             - { name: thrice, repeat: 3, request: { url: 'http://a/x' }, expect: { status: 429, code: rate_limited, decided_by: 'rate_limit:tight' } }\n\
             - { name: wrong, repeat: 3, request: { url: 'http://a/x' }, expect: { status: 200 } }\n",
        );
        let failed: Vec<&str> = verdicts.iter().filter(|v| !v.passed()).map(|v| v.name.as_str()).collect();
        assert_eq!(failed, ["wrong"], "{verdicts:#?}");
    }

    #[test]
    fn a_misspelt_token_key_is_refused_not_read_as_a_token_without_claims() {
        let parsed: Result<CaseFile, _> = serde_saphyr::from_str(
            "cases:\n- { name: t, request: { url: 'http://a/x', token: { provider: p, claimz: { sub: a } } } }\n",
        );
        assert!(parsed.is_err(), "{parsed:?}");
    }

    #[test]
    fn a_repeat_out_of_bounds_is_an_error_not_a_pass() {
        let verdicts = outcome_of(
            "cases:\n\
             - { name: none, repeat: 0, request: { url: 'http://a/x' }, expect: { status: 200 } }\n\
             - { name: too-many, repeat: 10001, request: { url: 'http://a/x' }, expect: { status: 200 } }\n",
        );
        assert!(verdicts.iter().all(|v| v.error.as_deref().is_some_and(|e| e.contains("repeat"))), "{verdicts:#?}");
    }
}
