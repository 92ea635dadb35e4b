//! Traces over OTLP/HTTP (SPEC §7): a sampled request's server span, its child spans (each
//! upstream attempt, a JWKS fetch, a Redis limit decision, a cache lookup) turned into the
//! OpenTelemetry SDK's span data and exported in batches by a background task.
//!
//! Data flows one way: `portcullis-core` decides sampling at intake (parent-based, the
//! caller's flag believed only from `trusted_proxies`) and records plain child spans in the
//! request context ([`portcullis_core::spans`]); when the answer's head is ready the proxy
//! hands the recording and the request's context to [`Exporter::submit`], which builds the
//! spans and queues them without waiting. A full queue or a failed export drops spans and
//! counts them (`portcullis_trace_spans_dropped_total`); no request ever waits on the
//! collector.
//!
//! The SDK's tracer and batch processor are not used: the gateway already owns the W3C
//! context (its span ids are what goes upstream in `traceparent`), and the SDK's batch
//! processor neither exposes its drop count nor runs on the Tokio runtime with a hyper
//! client. The span model, the protobuf encoding and the OTLP/HTTP exporter are the
//! OpenTelemetry crates'.

mod export;
mod span;

pub use export::{EXPORT_TIMEOUT, Exporter, FLUSH_TIMEOUT, MAX_BATCH, MAX_QUEUE, SCHEDULE_DELAY};
pub use span::{ServerSpan, request_span_data, server_span_name};
