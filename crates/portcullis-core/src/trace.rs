//! The decision trace: every phase a request passes records its name and verdict, and, when
//! it refused or answered, what decided — the policy, limit, rule, provider or route. Always
//! on, so it must cost next to nothing: a step is three words kept inline in the context (no
//! allocation for the phases of an ordinary request), and names are shared `Arc<str>`s of the
//! config or static text. The access log's `decided_by`, the problem documents of refusals and
//! `portcullis explain` all read it.

use std::fmt;
use std::sync::Arc;

use smallvec::SmallVec;

/// What a phase did with the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Looked, let it go on.
    Pass,
    /// Does not apply to this request or route.
    Skip,
    /// Refused the request (a 4xx/5xx problem document or a login redirect).
    Refuse,
    /// Answered the request itself: a mock, a cache hit, `OPTIONS *`, a CORS preflight.
    Answer,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Skip => "skip",
            Self::Refuse => "refuse",
            Self::Answer => "answer",
        }
    }
}

/// What decided, beside the phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum By {
    None,
    /// A config name: a policy, rate limit, plan, provider, route, upstream, WAF rule.
    Name(Arc<str>),
    /// A fixed reason of the gateway's (`"path"`, `"host"`, `"transfer-encoding"`).
    Reason(&'static str),
}

impl By {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::None => None,
            Self::Name(n) => Some(n),
            Self::Reason(r) => Some(r),
        }
    }
}

/// One phase's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub phase: &'static str,
    pub verdict: Verdict,
    pub by: By,
}

/// Inline room: every request phase and the response phases of an ordinary request.
const INLINE_STEPS: usize = 20;

/// The steps of one request, in the order they ran.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    steps: SmallVec<[Step; INLINE_STEPS]>,
}

impl Trace {
    pub fn record(&mut self, phase: &'static str, verdict: Verdict, by: By) {
        self.steps.push(Step { phase, verdict, by });
    }

    pub fn pass(&mut self, phase: &'static str) {
        self.record(phase, Verdict::Pass, By::None);
    }

    pub fn skip(&mut self, phase: &'static str) {
        self.record(phase, Verdict::Skip, By::None);
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Forgets the steps from `len` on (a phase re-run after a JWKS refetch records anew).
    pub fn truncate(&mut self, len: usize) {
        self.steps.truncate(len);
    }

    /// The step that refused or answered the request, if one did.
    pub fn decider(&self) -> Option<&Step> {
        self.steps.iter().rev().find(|s| matches!(s.verdict, Verdict::Refuse | Verdict::Answer))
    }

    /// `decided_by` of the access log and problem documents: `phase` or `phase:name` of the
    /// step that refused or answered; `None` when the request went to its upstream.
    pub fn decided_by(&self) -> Option<DecidedBy<'_>> {
        self.decider().map(DecidedBy)
    }
}

/// Renders a deciding step as `phase` or `phase:name`.
#[derive(Debug, Clone, Copy)]
pub struct DecidedBy<'a>(pub &'a Step);

impl fmt::Display for DecidedBy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.by.as_str() {
            Some(by) => write!(f, "{}:{by}", self.0.phase),
            None => f.write_str(self.0.phase),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_refusing_or_answering_step_decides() {
        let mut t = Trace::default();
        t.pass("route");
        t.skip("cors");
        assert!(t.decided_by().is_none());
        t.record("authorize", Verdict::Refuse, By::Name(Arc::from("orders_read")));
        assert_eq!(t.decided_by().map(|d| d.to_string()).as_deref(), Some("authorize:orders_read"));
        let mut t = Trace::default();
        t.record("request_target", Verdict::Answer, By::None);
        assert_eq!(t.decided_by().map(|d| d.to_string()).as_deref(), Some("request_target"));
    }

    #[test]
    fn an_ordinary_request_stays_inline() {
        let mut t = Trace::default();
        for _ in 0..INLINE_STEPS {
            t.pass("x");
        }
        assert!(!t.steps.spilled());
    }
}
