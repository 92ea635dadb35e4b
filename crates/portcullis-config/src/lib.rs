//! The Portcullis config file (SPEC §2): from YAML text to a validated surface [`Document`].
//!
//! Data flows: YAML text → a JSON value tree plus a map of where every node was written
//! ([`Locations`]) → `${env:…}` / `${file:…}` references resolved → the `--stage` overlay
//! merged in → checked against the JSON Schema derived from [`surface`] (which reports every
//! unknown key and wrong type at once) → deserialized into [`Document`].
//! Every problem becomes a [`Diagnostic`] with its key path and line:column.
//! Semantic checks between sections belong to `portcullis-core`'s compile step, which reuses
//! [`Locations`] to place its own diagnostics.

mod contents;
mod diagnostic;
mod load;
pub mod redact;
pub mod surface;
pub mod values;

pub use contents::{Contents, MAX_FILE_BYTES, ReadError};
pub use diagnostic::{Diagnostic, Diagnostics, KeyPath, Location, Locations, nearest, unknown_name};
pub use load::{
    Broken, Checked, Env, Loaded, ProcessEnv, Source, check, json_schema, load, load_file, load_parts, load_str,
    parse_document, stage_names,
};
pub use surface::Document;
