//! The hostile requests, as raw bytes. `@` stands for the case's marker: every request a case
//! holds, smuggled ones included, carries `X-Case: {M}`, so whatever of it reaches a backend is
//! seen there; `~` stands for 64 KiB of `a`. Names starting with `control` are valid requests
//! that must pass everywhere.

pub(super) struct Case {
    pub(super) name: &'static str,
    pub(super) bytes: &'static [u8],
}

const fn case(name: &'static str, bytes: &'static [u8]) -> Case {
    Case { name, bytes }
}

pub(super) const CORPUS: &[Case] = &[
    // Valid requests: the harness is broken if these do not pass everywhere.
    case("control-get", b"GET /ok HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nConnection: close\r\n\r\n"),
    case("control-post-length", b"POST /ok HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"),
    case("control-post-chunked", b"POST /ok HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
    case("control-pipelined", b"GET /a HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nConnection: close\r\n\r\n"),
    // Content-Length and Transfer-Encoding together (request smuggling).
    case("cl-te", b"POST / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\n\r\n"),
    case("te-cl", b"POST / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nTransfer-Encoding: chunked\r\nContent-Length: 60\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\n\r\n"),
    case("te-space-before-colon", b"POST / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nContent-Length: 4\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"),
    case("te-xchunked", b"POST / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"),
    case("te-chunked-then-x", b"POST / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n"),
    case("te-chunked-chunked", b"POST / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nTransfer-Encoding: chunked, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
    case("te-two-chunked-lines", b"POST / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
    case("te-gzip-chunked", b"POST / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
    case("te-identity-chunked", b"POST / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nTransfer-Encoding: identity, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
    case("te-chunked-identity", b"POST / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nTransfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
    case("te-quoted", b"POST / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nTransfer-Encoding: \"chunked\"\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
    case("te-obs-fold", b"POST / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nTransfer-Encoding:\r\n chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
    case("te-vertical-tab", b"POST / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nTransfer-Encoding:\x0bchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
    case("te-http10", b"POST / HTTP/1.0\r\nHost: t\r\nX-Case: {M}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
    case("te-unknown", b"POST / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nTransfer-Encoding: foo, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
    // Content-Length forms.
    case("cl-conflicting", b"POST / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhellox"),
    case("cl-list-conflicting", b"POST / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nContent-Length: 5, 6\r\n\r\nhellox"),
    case("cl-plus", b"POST / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nContent-Length: +5\r\n\r\nhello"),
    case("cl-negative", b"POST / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nContent-Length: -1\r\n\r\nhello"),
    case("cl-hex", b"POST / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nContent-Length: 0x5\r\n\r\nhello"),
    case("cl-two-numbers", b"POST / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nContent-Length: 1 2\r\n\r\nhello"),
    case("cl-overflow", b"POST / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nContent-Length: 99999999999999999999999\r\n\r\nhello"),
    case("cl-empty", b"POST / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nContent-Length:\r\n\r\nhello"),
    // Chunked framing.
    case("chunk-size-not-hex", b"POST / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"),
    case("chunk-size-0x", b"POST / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n"),
    case("chunk-size-negative", b"POST / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n"),
    case("chunk-size-overflow", b"POST / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nhello\r\n0\r\n\r\n"),
    case("chunk-missing-crlf", b"POST / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"),
    case("chunk-longer-than-size", b"POST / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n"),
    case("chunk-ext-bare-lf", b"POST / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n"),
    case("chunk-bare-lf-framing", b"POST / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n"),
    // Line endings and folding.
    case("bare-cr-in-value", b"GET / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nX-A: a\rb\r\n\r\n"),
    case("bare-cr-line-end", b"GET / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nX-A: a\r\r\n\r\n"),
    case("obs-fold", b"GET / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nX-A: a\r\n b\r\n\r\n"),
    case("leading-space-first-header", b"GET / HTTP/1.1\r\n X-A: a\r\nHost: t\r\nX-Case: {M}\r\n\r\n"),
    // Request targets.
    case("target-fragment", b"GET /a#frag HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\n\r\n"),
    case("target-query-fragment", b"GET /a?b=c#frag HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\n\r\n"),
    case("target-bad-percent", b"GET /a%zz HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\n\r\n"),
    case("target-bad-percent-short", b"GET /a%4 HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\n\r\n"),
    case("target-asterisk-get", b"GET * HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\n\r\n"),
    case("target-no-slash", b"GET admin HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\n\r\n"),
    case("target-connect-path", b"CONNECT / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\n\r\n"),
    case("target-space", b"GET /a b HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\n\r\n"),
    case("target-nul", b"GET /a\x00b HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\n\r\n"),
    case("target-del", b"GET /a\x7fb HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\n\r\n"),
    case("target-tab", b"GET /a\tb HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\n\r\n"),
    case("target-empty", b"GET  HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\n\r\n"),
    case("target-dotdot-above-root", b"GET /../../etc/passwd HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\n\r\n"),
    // Host.
    case("host-missing", b"GET / HTTP/1.1\r\nX-Case: {M}\r\n\r\n"),
    case("host-twice", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nX-Case: {M}\r\n\r\n"),
    case("host-slash", b"GET / HTTP/1.1\r\nHost: a/b\r\nX-Case: {M}\r\n\r\n"),
    case("host-backslash", b"GET / HTTP/1.1\r\nHost: a\\b\r\nX-Case: {M}\r\n\r\n"),
    case("host-space", b"GET / HTTP/1.1\r\nHost: a b\r\nX-Case: {M}\r\n\r\n"),
    case("host-two-ports", b"GET / HTTP/1.1\r\nHost: a:1:2\r\nX-Case: {M}\r\n\r\n"),
    case("host-control-byte", b"GET / HTTP/1.1\r\nHost: a\x01b\r\nX-Case: {M}\r\n\r\n"),
    case("host-at-userinfo", b"GET / HTTP/1.1\r\nHost: user@a\r\nX-Case: {M}\r\n\r\n"),
    // Header names and values.
    case("name-space-before-colon", b"GET / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nX-A : b\r\n\r\n"),
    case("name-with-space", b"GET / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nX A: b\r\n\r\n"),
    case("name-empty", b"GET / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\n: b\r\n\r\n"),
    case("line-without-colon", b"GET / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nnot a header\r\n\r\n"),
    case("name-nul", b"GET / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nX-\x00A: b\r\n\r\n"),
    case("value-nul", b"GET / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nX-A: a\x00b\r\n\r\n"),
    case("value-control", b"GET / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nX-A: a\x01b\r\n\r\n"),
    // Request lines.
    case("method-lowercase", b"get / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\n\r\n"),
    case("method-control", b"G\x01T / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\n\r\n"),
    case("version-1-2", b"GET / HTTP/1.2\r\nHost: t\r\nX-Case: {M}\r\n\r\n"),
    case("version-2-on-h1", b"GET / HTTP/2.0\r\nHost: t\r\nX-Case: {M}\r\n\r\n"),
    case("version-lowercase", b"GET / http/1.1\r\nHost: t\r\nX-Case: {M}\r\n\r\n"),
    case("version-missing-minor", b"GET / HTTP/1\r\nHost: t\r\nX-Case: {M}\r\n\r\n"),
    case("request-line-extra-token", b"GET / HTTP/1.1 x\r\nHost: t\r\nX-Case: {M}\r\n\r\n"),
    // Sizes.
    case("header-64k", b"GET / HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\nX-Big: {BIG}\r\n\r\n"),
    case("target-64k", b"GET /{BIG} HTTP/1.1\r\nHost: t\r\nX-Case: {M}\r\n\r\n"),
];
