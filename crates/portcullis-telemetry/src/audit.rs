//! The audit log (SPEC §7): one JSON object per admin action or reload, with `ts`, `actor`,
//! `action`, `target`, `result` and `detail`. Entries are rare, so each is appended (and the
//! file opened) synchronously; a failure to write is logged, never fatal.

use std::io::Write;
use std::time::SystemTime;

use portcullis_core::snapshot::LogSink;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct AuditEntry<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub target: Option<&'a str>,
    /// `ok` or `error`.
    pub result: &'a str,
    pub detail: Option<&'a str>,
}

#[derive(Serialize)]
struct Line<'a> {
    ts: String,
    #[serde(flatten)]
    entry: &'a AuditEntry<'a>,
}

/// Appends `entry` to `sink`.
pub fn record(sink: &LogSink, entry: &AuditEntry<'_>) {
    let line = Line { ts: humantime::format_rfc3339_millis(SystemTime::now()).to_string(), entry };
    let Ok(mut text) = serde_json::to_string(&line) else { return };
    text.push('\n');
    let written = match sink {
        LogSink::Off => Ok(()),
        LogSink::Stdout => std::io::stdout().lock().write_all(text.as_bytes()),
        LogSink::Stderr => std::io::stderr().lock().write_all(text.as_bytes()),
        LogSink::File(path) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes())),
    };
    if let Err(e) = written {
        tracing::warn!(error = %e, "cannot write the audit log");
    }
}
