//! `tracing`: where spans go. The ratio's range is checked by the config's schema.

use super::{Compiler, at};

/// `tracing.otlp_endpoint` as the OTLP/HTTP traces URL (`…/v1/traces`), or `None` when
/// traces are not exported. Only `http://` is accepted: the exporter speaks plain HTTP to a
/// collector (an agent beside the gateway, as OpenTelemetry deployments run one).
pub(super) fn otlp_traces_url(c: &mut Compiler<'_>) -> Option<String> {
    let endpoint = c.doc.tracing.as_ref()?.otlp_endpoint.as_deref()?;
    let path = at("tracing").key("otlp_endpoint");
    let uri = match endpoint.parse::<http::Uri>() {
        Ok(uri) => uri,
        Err(e) => {
            c.error(&path, format!("`{endpoint}` is not a URL: {e}"));
            return None;
        }
    };
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        c.error(
            &path,
            format!(
                "`{endpoint}` must be an `http://host:port` URL (OTLP/HTTP; TLS to the collector is not supported)"
            ),
        );
        return None;
    }
    if uri.query().is_some() {
        c.error(&path, format!("`{endpoint}` must not hold a query string"));
        return None;
    }
    // As OpenTelemetry's OTEL_EXPORTER_OTLP_ENDPOINT: the signal's path goes after the base.
    Some(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    const BASE: &str = "version: 1\nlisteners: [{ name: a, bind: \"127.0.0.1:0\" }]\n";

    fn compile_text(extra: &str) -> Result<crate::Snapshot, String> {
        let text = format!("{BASE}{extra}");
        let loaded =
            portcullis_config::load_str(&text, "t.yaml", Path::new("/tmp"), None).map_err(|e| e.to_string())?;
        crate::compile(&loaded).map_err(|e| e.to_string())
    }

    #[test]
    fn the_endpoint_becomes_the_traces_url() {
        let ok = compile_text("tracing: { otlp_endpoint: \"http://127.0.0.1:4318/\" }\n");
        assert_eq!(ok.ok().and_then(|s| s.otlp_traces_url).as_deref(), Some("http://127.0.0.1:4318/v1/traces"));
        assert_eq!(compile_text("").ok().and_then(|s| s.otlp_traces_url), None);
    }

    #[test]
    fn an_endpoint_the_exporter_cannot_reach_is_a_config_error() {
        for bad in ["https://collector:4318", "not a url", "127.0.0.1:4318", "http://c:4318/?x=1"] {
            let errors = compile_text(&format!("tracing: {{ otlp_endpoint: \"{bad}\" }}\n"));
            let errors = errors.err().unwrap_or_default();
            assert!(errors.contains("tracing.otlp_endpoint"), "{bad}: {errors}");
        }
    }
}
