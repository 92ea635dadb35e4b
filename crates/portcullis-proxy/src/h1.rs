//! The HTTP/1.1 engine of the proxy path, on `httparse`: request heads parsed in place
//! ([`head`]), the `chunked` transfer coding ([`chunked`]), a whole connection's byte stream
//! run through both ([`replay`], what the differential test and the fuzz target drive), and
//! the connection driver ([`conn`]) — with the same framing decisions as hyper's server plus
//! the gateway's own refusals (see `RawHeadFlaw`).

pub mod chunked;
pub mod conn;
pub mod head;
pub mod replay;
pub mod trailers;

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is the test failure")]
mod differential;

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is the test failure")]
mod trailers_differential;
