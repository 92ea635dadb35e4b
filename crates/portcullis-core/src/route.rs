//! The route table (SPEC §2 precedence): exact host, then wildcard host (longest suffix
//! first), then any host; within a host, exact path, then parameters, then catch-all
//! (matchit's own priority). The first pattern that matches the path decides: a method it
//! does not take is 405 with its `Allow` set, never a less specific pattern or host — that
//! one may be a public catch-all in front of the same backend (SPEC §3).
//!
//! Paths meet patterns as `routing:` says ([`PathOptions`]). A path with `;` parameters is
//! looked up twice, as sent and as Tomcat or Spring read it (parameters dropped): both must
//! find the same route, and that route must take matrix parameters.

mod path;

use std::collections::HashMap;
use std::sync::Arc;

use http::{HeaderValue, Method};

pub use path::PathOptions;

/// The routes that share one host pattern.
#[derive(Debug, Default)]
pub struct HostRoutes {
    /// Exact and parameter patterns (matchit ranks exact above parameters).
    router: matchit::Router<usize>,
    /// Catch-all patterns, tried only when no exact or parameter pattern matches: matchit
    /// cannot hold `/static/{file}` and `/static/{*rest}` in one tree.
    catch_all: matchit::Router<usize>,
    paths: Vec<PathEntry>,
    index: HashMap<String, usize>,
}

/// The routes of one pattern: (methods, route index); `None` methods match all.
type PathRoutes = [(Option<Vec<Method>>, usize)];

#[derive(Debug)]
struct PathEntry {
    /// (methods, route index); `None` methods match all.
    routes: Vec<(Option<Vec<Method>>, usize)>,
    allow: HeaderValue,
    /// The pattern's parameter names in order, shared so a match does not allocate them.
    names: Vec<Arc<str>>,
}

/// Parameter names of a pattern (`{id}`, `{*rest}` → `id`, `rest`).
fn param_names(pattern: &str) -> Vec<Arc<str>> {
    let mut out = Vec::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else { break };
        out.push(Arc::from(rest[open + 1..open + close].trim_start_matches('*')));
        rest = &rest[open + close + 1..];
    }
    out
}

/// The outcome of a lookup.
#[derive(Debug, PartialEq, Eq)]
pub enum RouteMatch {
    Found {
        route: usize,
        params: Vec<(Arc<str>, String)>,
    },
    MethodNotAllowed {
        allow: HeaderValue,
    },
    NotFound,
    /// A path the table refuses to route (400): `;` parameters no route takes.
    BadPath(&'static str),
}

/// Why a route could not be added.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("path must start with `/`")]
    NotAbsolute,
    #[error("invalid path pattern: {0}")]
    Pattern(String),
    #[error("method {0} is already routed for this host and path by route `{1}`")]
    Duplicate(String, String),
}

/// What a lookup needs besides the bucket: the request, and the path as the client sent it
/// (parameters are taken from it, whatever case the match ignored).
struct Query<'a> {
    method: &'a Method,
    path: &'a str,
    original: &'a str,
    want_params: &'a dyn Fn(usize) -> bool,
}

impl HostRoutes {
    fn add(
        &mut self,
        path: &str,
        methods: Option<Vec<Method>>,
        route: usize,
        names: &[Arc<str>],
    ) -> Result<(), RouteError> {
        if !path.starts_with('/') {
            return Err(RouteError::NotAbsolute);
        }
        let entry = match self.index.get(path) {
            Some(&i) => i,
            None => {
                let i = self.paths.len();
                let router = if path.contains("{*") { &mut self.catch_all } else { &mut self.router };
                router.insert(path, i).map_err(|e| RouteError::Pattern(e.to_string()))?;
                self.paths.push(PathEntry {
                    routes: Vec::new(),
                    allow: HeaderValue::from_static(""),
                    names: param_names(path),
                });
                self.index.insert(path.to_owned(), i);
                i
            }
        };
        let entry = &mut self.paths[entry];
        for (existing, other) in &entry.routes {
            let clash = match (existing, &methods) {
                (None, _) | (_, None) => Some("*".to_owned()),
                (Some(a), Some(b)) => a.iter().find(|m| b.contains(m)).map(ToString::to_string),
            };
            if let Some(method) = clash {
                let name = names.get(*other).map(|n| n.to_string()).unwrap_or_default();
                return Err(RouteError::Duplicate(method, name));
            }
        }
        entry.routes.push((methods, route));
        entry.allow = allow_header(&entry.routes);
        Ok(())
    }

    /// The first pattern matching the path decides: exact or parameter patterns, else
    /// catch-alls. `NotFound` only when no pattern of this host matches the path at all.
    fn lookup(&self, q: &Query<'_>) -> RouteMatch {
        match self.lookup_in(&self.router, q) {
            RouteMatch::NotFound => self.lookup_in(&self.catch_all, q),
            decided => decided,
        }
    }

    /// The routes of the first pattern matching the path (as [`HostRoutes::lookup`] picks it).
    fn routes_at(&self, path: &str) -> Option<&PathRoutes> {
        let found = self.router.at(path).or_else(|_| self.catch_all.at(path)).ok()?;
        self.paths.get(*found.value).map(|entry| entry.routes.as_slice())
    }

    fn lookup_in(&self, router: &matchit::Router<usize>, q: &Query<'_>) -> RouteMatch {
        let Ok(found) = router.at(q.path) else { return RouteMatch::NotFound };
        let Some(entry) = self.paths.get(*found.value) else { return RouteMatch::NotFound };
        // An exact method (or any-method route) first; HEAD falls back to a GET route.
        let method = q.method;
        let exact = entry.routes.iter().find(|(methods, _)| methods.as_ref().is_none_or(|list| list.contains(method)));
        let hit = exact.or_else(|| {
            (method == Method::HEAD)
                .then(|| entry.routes.iter().find(|(m, _)| m.as_ref().is_some_and(|l| l.contains(&Method::GET))))
                .flatten()
        });
        match hit {
            Some(&(_, route)) => {
                let params = if (q.want_params)(route) {
                    found
                        .params
                        .iter()
                        .enumerate()
                        .map(|(i, (k, v))| {
                            let name = entry.names.get(i).cloned().unwrap_or_else(|| Arc::from(k));
                            (name, path::original_slice(q.original, q.path, v).unwrap_or(v).to_owned())
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                RouteMatch::Found { route, params }
            }
            None => RouteMatch::MethodNotAllowed { allow: entry.allow.clone() },
        }
    }
}

fn allow_header(routes: &[(Option<Vec<Method>>, usize)]) -> HeaderValue {
    let mut methods: Vec<String> = Vec::new();
    for (list, _) in routes {
        match list {
            None => return HeaderValue::from_static("*"),
            Some(list) => {
                for m in list {
                    if !methods.iter().any(|x| x == m.as_str()) {
                        methods.push(m.as_str().to_owned());
                    }
                }
                if list.contains(&Method::GET) && !methods.iter().any(|x| x == "HEAD") {
                    methods.push("HEAD".to_owned());
                }
            }
        }
    }
    HeaderValue::from_str(&methods.join(", ")).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// All routes, by host pattern.
#[derive(Debug, Default)]
pub struct RouteTable {
    options: PathOptions,
    exact: HashMap<String, HostRoutes>,
    /// `(".example.com", routes)`, longest suffix first.
    wildcard: Vec<(String, HostRoutes)>,
    any: HostRoutes,
    /// Per route index: whether matching should capture parameters.
    captures: Vec<bool>,
    /// Per route index: whether the route takes `;` parameters in its path.
    matrix: Vec<bool>,
    names: Vec<Arc<str>>,
}

/// What the table keeps of one route besides its pattern.
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteFlags {
    /// Matching captures the parameters (a rewrite or a SOAP template reads them).
    pub captures: bool,
    /// `match.matrix_params`: `;` parameters in path segments are accepted.
    pub matrix_params: bool,
}

impl RouteTable {
    /// An empty table whose paths meet patterns as `options` say.
    pub fn new(options: PathOptions) -> Self {
        Self { options, ..Self::default() }
    }

    pub fn options(&self) -> PathOptions {
        self.options
    }

    /// Adds route number `route` (routes must be added in index order).
    pub fn add(
        &mut self,
        name: Arc<str>,
        host: Option<&str>,
        path: &str,
        methods: Option<Vec<Method>>,
        flags: RouteFlags,
    ) -> Result<usize, RouteError> {
        let route = self.names.len();
        self.names.push(name);
        self.captures.push(flags.captures);
        self.matrix.push(flags.matrix_params);
        let pattern = self.options.pattern(path);
        let bucket = match host.map(str::to_ascii_lowercase) {
            None => &mut self.any,
            Some(h) if h.starts_with("*.") => {
                let suffix = h[1..].to_owned();
                if !self.wildcard.iter().any(|(s, _)| *s == suffix) {
                    self.wildcard.push((suffix.clone(), HostRoutes::default()));
                    self.wildcard.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
                }
                let at = self.wildcard.iter().position(|(s, _)| *s == suffix).unwrap_or(0);
                &mut self.wildcard[at].1
            }
            Some(h) => self.exact.entry(h).or_default(),
        };
        let names = self.names.clone();
        bucket.add(&pattern, methods, route, &names).map(|()| route)
    }

    /// Finds the route for a request. `host` must be lowercase without port.
    pub fn lookup(&self, host: Option<&str>, method: &Method, path: &str) -> RouteMatch {
        if !path.contains(';') {
            return self.lookup_plain(host, method, path);
        }
        const REFUSED: &str = "the path has `;` parameters, which its route does not take";
        let Some(stripped) = path::strip_matrix(path) else { return RouteMatch::BadPath(REFUSED) };
        let as_sent = self.lookup_plain(host, method, path);
        let as_stripped = self.lookup_plain(host, method, &stripped);
        match (&as_sent, &as_stripped) {
            (RouteMatch::Found { route: a, .. }, RouteMatch::Found { route: b, .. })
                if a == b && self.matrix.get(*a).copied().unwrap_or(false) =>
            {
                as_sent
            }
            _ => RouteMatch::BadPath(REFUSED),
        }
    }

    /// The first route, in declaration order, of the pattern that decides for `path` (whatever
    /// the method) for which `pick` holds: a CORS preflight asks about a path before it asks
    /// about a method. Paths with `;` parameters are left to [`RouteTable::lookup`].
    pub fn route_at(&self, host: Option<&str>, path: &str, pick: impl Fn(usize) -> bool) -> Option<usize> {
        if path.contains(';') {
            return None;
        }
        let normalized = self.options.path(path);
        let mut buckets: Vec<&HostRoutes> = Vec::new();
        if let Some(host) = host {
            buckets.extend(self.exact.get(host));
            buckets.extend(
                self.wildcard
                    .iter()
                    .filter(|(suffix, _)| host.len() > suffix.len() && host.ends_with(suffix.as_str()))
                    .map(|(_, bucket)| bucket),
            );
        }
        buckets.push(&self.any);
        let routes = buckets.into_iter().find_map(|bucket| bucket.routes_at(&normalized))?;
        routes.iter().map(|(_, route)| *route).filter(|r| pick(*r)).min()
    }

    /// The first host bucket (exact, wildcards longest first, any) with a pattern matching
    /// the path decides.
    fn lookup_plain(&self, host: Option<&str>, method: &Method, path: &str) -> RouteMatch {
        let want = |route: usize| self.captures.get(route).copied().unwrap_or(false);
        let normalized = self.options.path(path);
        let q = Query { method, path: &normalized, original: path, want_params: &want };
        if let Some(host) = host {
            if let Some(bucket) = self.exact.get(host) {
                match bucket.lookup(&q) {
                    RouteMatch::NotFound => {}
                    decided => return decided,
                }
            }
            for (suffix, bucket) in &self.wildcard {
                if host.len() > suffix.len() && host.ends_with(suffix.as_str()) {
                    match bucket.lookup(&q) {
                        RouteMatch::NotFound => {}
                        decided => return decided,
                    }
                }
            }
        }
        self.any.lookup(&q)
    }
}

#[cfg(test)]
mod tests;
