//! What a stage decides: go on, or answer instead of forwarding.

use bytes::Bytes;

use crate::problem::Problem;

/// The outcome of one pipeline stage.
#[derive(Debug)]
pub enum Flow {
    /// Hand the request to the next stage.
    Continue,
    /// Answer the client now; later stages and the upstream never see the request.
    Respond(Reply),
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
