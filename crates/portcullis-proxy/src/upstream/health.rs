//! Active health checks: one task per target probing `health.active.path`; a target goes out
//! after `unhealthy_after` consecutive failures and back in after `healthy_after` successes.
//! The tasks hold only a weak reference, so they end when a reload drops the upstream.

use std::sync::Weak;
use std::sync::atomic::Ordering;

use http::header::HOST;
use http::{Request, Version};

use super::UpstreamRuntime;
use crate::body::RequestBody;

/// Starts the checks of every target of `upstream` that has `health.active`.
pub fn spawn_active_checks(upstream: &std::sync::Arc<UpstreamRuntime>) {
    let Some(pool) = &upstream.pool else { return };
    if pool.spec.active_health.is_none() {
        return;
    }
    for index in 0..pool.targets.len() {
        let weak = std::sync::Arc::downgrade(upstream);
        tokio::spawn(check_loop(weak, index));
    }
}

async fn check_loop(upstream: Weak<UpstreamRuntime>, index: usize) {
    let (mut fails, mut passes) = (0u32, 0u32);
    loop {
        let Some(up) = upstream.upgrade() else { return };
        let Some(pool) = &up.pool else { return };
        let Some(spec) = pool.spec.active_health.clone() else { return };
        let target = &pool.targets[index];
        let ok = probe(pool, target, &spec).await;
        if ok {
            fails = 0;
            passes += 1;
            if passes >= spec.healthy_after && !target.active_ok.swap(true, Ordering::Relaxed) {
                tracing::info!(target = %target.spec.name, "target healthy again");
            }
        } else {
            passes = 0;
            fails += 1;
            if fails >= spec.unhealthy_after && target.active_ok.swap(false, Ordering::Relaxed) {
                tracing::warn!(target = %target.spec.name, "target failed health checks");
            }
        }
        let interval = spec.interval;
        drop(up);
        tokio::time::sleep(interval).await;
    }
}

async fn probe(pool: &super::Pool, target: &super::Target, spec: &portcullis_core::snapshot::ActiveHealthSpec) -> bool {
    // A TLS target is probed over TLS with the upstream's settings (the client's connector).
    let scheme = if target.spec.https { "https" } else { "http" };
    let uri = format!("{scheme}://{}{}{}", target.spec.authority, target.spec.base_path, spec.path);
    let Ok(uri) = uri.parse::<http::Uri>() else { return false };
    let mut request = Request::new(RequestBody::empty());
    *request.uri_mut() = uri;
    if pool.spec.protocol == portcullis_core::snapshot::Protocol::H2 {
        *request.version_mut() = Version::HTTP_2;
    } else if let Ok(host) = http::HeaderValue::from_str(target.spec.authority.as_str()) {
        request.headers_mut().insert(HOST, host);
    }
    match tokio::time::timeout(spec.timeout, pool.client.request(request)).await {
        Ok(Ok(response)) => response.status().is_success(),
        _ => false,
    }
}
