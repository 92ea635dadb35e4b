//! Reading `state.redis_ca` and checking `state.redis` as a (re)load would, for the rate
//! limits and the response cache (the decisions themselves are `portcullis_core::limits`).

use portcullis_core::snapshot::Snapshot;

/// The PEM of `state.redis_ca`, read as every (re)load reads it: one or more certificates.
pub fn redis_ca(snapshot: &Snapshot) -> std::io::Result<Option<Vec<u8>>> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let Some(path) = &snapshot.state.redis_ca else { return Ok(None) };
    let fail =
        |kind, e: &dyn std::fmt::Display| std::io::Error::new(kind, format!("state.redis_ca: {}: {e}", path.display()));
    let pem = std::fs::read(path).map_err(|e| fail(e.kind(), &e))?;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&pem).collect();
    match certs {
        Ok(certs) if !certs.is_empty() => Ok(Some(pem)),
        Ok(_) => Err(fail(std::io::ErrorKind::InvalidData, &"holds no PEM certificate")),
        Err(e) => Err(fail(std::io::ErrorKind::InvalidData, &e)),
    }
}

/// Builds the Redis client `state` describes without connecting: `validate` uses it to check
/// the URL and the CA as a (re)load would.
pub fn check_redis(snapshot: &Snapshot) -> Option<String> {
    let url = snapshot.state.redis.as_deref()?;
    let ca = match redis_ca(snapshot) {
        Ok(ca) => ca,
        Err(e) => return Some(e.to_string()),
    };
    portcullis_state::client(url, ca.as_deref()).err().map(|e| format!("state.redis: {e}"))
}

#[cfg(test)]
mod tests {
    use portcullis_core::limits::RateLimits;
    use portcullis_core::snapshot::Snapshot;
    use portcullis_state::{Clock, SystemClock};

    use super::check_redis;

    fn snapshot(state: &str) -> Snapshot {
        let text = format!(
            "version: 1\nlisteners: [{{ name: l, bind: \"127.0.0.1:1\" }}]\n{state}\nupstreams:\n  m: {{ mock: {{ status: 200 }} }}\n\
             routes:\n  - {{ name: r, match: {{ path: /x }}, upstream: m, auth: none }}\n"
        );
        let loaded = portcullis_config::load_str(&text, "t.yaml", std::path::Path::new("/tmp"), None).expect("parses");
        portcullis_core::compile(&loaded).expect("compiles")
    }

    #[test]
    fn validate_reads_the_redis_ca_as_a_load_would() {
        let dir = std::env::temp_dir().join(format!("pcl-redis-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let not_pem = dir.join("not.pem");
        std::fs::write(&not_pem, "not a certificate\n").expect("write");
        let with = |ca: &std::path::Path| {
            snapshot(&format!("state: {{ redis: \"rediss://127.0.0.1:1\", redis_ca: \"{}\" }}", ca.display()))
        };
        let missing = check_redis(&with(&dir.join("missing.pem"))).expect("a missing file is an error");
        assert!(missing.starts_with("state.redis_ca: ") && missing.contains("missing.pem"), "{missing}");
        let empty = check_redis(&with(&not_pem)).expect("a file without certificates is an error");
        assert!(empty.contains("no PEM certificate"), "{empty}");
        assert_eq!(check_redis(&snapshot("state: { redis: \"rediss://127.0.0.1:1\" }")), None);
        assert_eq!(check_redis(&snapshot("")), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    // A runtime: the Redis engine starts its connection task (it connects lazily).
    #[tokio::test]
    async fn an_engine_built_at_a_reload_reads_the_clock_of_the_one_it_replaces() {
        // A changed Redis setting makes a new engine, while unchanged limits keep their
        // buckets, whose times were read from the old engine's clock.
        let clock = || std::sync::Arc::new(SystemClock::process()) as std::sync::Arc<dyn Clock>;
        let before = RateLimits::new(&snapshot(""), None, clock()).expect("limits");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let old_now = before.engine().clock().monotonic();
        let mut after =
            RateLimits::new(&snapshot("state: { redis: \"redis://127.0.0.1:1\" }"), None, clock()).expect("limits");
        after.adopt(&before);
        assert!(!std::sync::Arc::ptr_eq(before.engine(), after.engine()), "a new engine");
        let new_now = after.engine().clock().monotonic();
        assert!(new_now >= old_now, "the new engine's clock went back: {new_now} < {old_now}");
    }
}
