//! SOAP to REST through the gateway (SPEC §6).
//!
//! [`hostile`]: answers no SOAP server should give (XXE, billion laughs, …) and the request
//! side's limits, against small hyper backends. [`reload`]: a WSDL edit reloads a running
//! gateway.

mod hostile;
mod reload;

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;

use crate::kit::{Reply, client, send};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The soap crate's WSDL fixtures.
fn fixtures() -> PathBuf {
    repo().join("crates/portcullis-soap/tests/fixtures")
}

pub(crate) async fn post_json(url: &str, body: &str) -> Reply {
    let request = Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("request");
    send(&client(), request).await
}
