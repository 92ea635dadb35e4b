//! The security regression suite: one test per hole found, each written so that it failed on
//! the code that had the hole. It grows with every hole found; a case is never deleted, only
//! moved when the behaviour it pins moves.
//!
//! - [`routing`]: path variants, method fall-through, request targets, `Host`
//! - [`credentials`]: forged or unverified credentials, header poisoning, the admin API's
//!   browser exposure, mTLS subjects
//! - [`data_path`]: passive health, the response cache, WebSocket handshakes, the access log
//! - [`protocol`]: message framing on both sides, HTTP/2 errors, half-closed clients

mod credentials;
mod data_path;
mod protocol;
mod routing;
