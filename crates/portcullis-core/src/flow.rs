//! What a stage decides: go on, or answer instead of forwarding.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

use crate::problem::Problem;

/// The outcome of one pipeline stage.
#[derive(Debug)]
pub enum Flow {
    /// Hand the request to the next stage.
    Continue,
    /// The stage does not apply to this request or route (the trace says so); go on.
    Skip,
    /// Answer the client now; later stages and the upstream never see the request.
    Respond(Reply),
    /// A stage needs I/O first (a JWKS refetch for an unknown `kid`): await this, then run
    /// the pipeline again. Stages before authentication are idempotent, and the stage that
    /// asked marks the context so it never asks twice for one request.
    Wait(Pending),
}

/// The I/O a stage waits for; bounded by the stage's own timeout.
pub struct Pending(pub Pin<Box<dyn Future<Output = ()> + Send + 'static>>);

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pending")
    }
}

/// A response made by the gateway itself.
#[derive(Debug)]
pub enum Reply {
    Problem(Problem),
    /// Any other response (a login redirect, a CORS preflight).
    Response(http::Response<Bytes>),
}

impl From<Problem> for Flow {
    fn from(problem: Problem) -> Self {
        Flow::Respond(Reply::Problem(problem))
    }
}
