//! Checking `state.redis` as a (re)load would, for the rate limits and the response cache
//! (the decisions themselves are `portcullis_core::limits`; `state.redis_ca` is read with the
//! other TLS files by [`crate::files::load_files`]).

use portcullis_core::snapshot::Snapshot;

use crate::files::LoadedFiles;

/// Builds the Redis client `state` describes without connecting, trusting the `redis_ca`
/// that `files` holds: `validate` uses it to check the URL as a (re)load would.
pub fn check_redis(snapshot: &Snapshot, files: &LoadedFiles) -> Option<String> {
    let url = snapshot.state.redis.as_deref()?;
    portcullis_state::client(url, files.redis_ca()).err().map(|e| format!("state.redis: {e}"))
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
    fn validate_builds_the_redis_client_with_the_loaded_ca() {
        let files = crate::files::LoadedFiles::default();
        assert_eq!(check_redis(&snapshot("state: { redis: \"rediss://127.0.0.1:1\" }"), &files), None);
        assert_eq!(check_redis(&snapshot(""), &files), None);
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
