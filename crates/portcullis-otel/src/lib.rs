//! Traces over OTLP/HTTP (SPEC §7): a sampled request's server span, its child spans (each
//! upstream attempt, a JWKS fetch, a Redis limit decision, a cache lookup), exported in
//! batches by a background task as OTLP protobuf.
//!
//! Data flows one way: `portcullis-core` decides sampling at intake (parent-based, the
//! caller's flag believed only from `trusted_proxies`) and records plain child spans in the
//! request context ([`portcullis_core::spans`]); when the answer's head is ready the proxy
//! hands the recording and the request's context to [`Exporter::submit`], which keeps a
//! compact record of the request ([`RequestSpans`]) and queues it without waiting. A full
//! queue or a failed export drops spans and counts them
//! (`portcullis_trace_spans_dropped_total`); no request ever waits on the collector.
//!
//! The SDK's tracer, span data and batch processor are not used: the gateway already owns
//! the W3C context (its span ids are what goes upstream in `traceparent`), the SDK's batch
//! processor neither exposes its drop count nor runs on the Tokio runtime with a hyper
//! client, and turning a request into the SDK's span data and that into protobuf cost more
//! than the request's proxying could spare. The background task builds the
//! `opentelemetry-proto` messages directly, encodes them with prost and posts them with
//! `opentelemetry-http`'s hyper client.

mod export;
mod span;

pub use export::{EXPORT_TIMEOUT, Exporter, FLUSH_TIMEOUT, MAX_BATCH, MAX_QUEUE, RETRIES, SCHEDULE_DELAY, export_body};
pub use span::{RequestSpans, ServerSpan, server_span_name};
