//! The route table (SPEC §2 precedence): exact host, then wildcard host (longest suffix
//! first), then any host; within a host, exact path, then parameters, then catch-all
//! (matchit's own priority). A path that matches with the wrong method gives the `Allow` set.

use std::collections::HashMap;
use std::sync::Arc;

use http::{HeaderValue, Method};

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
    Found { route: usize, params: Vec<(Arc<str>, String)> },
    MethodNotAllowed { allow: HeaderValue },
    NotFound,
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

    fn lookup(&self, method: &Method, path: &str, want_params: &dyn Fn(usize) -> bool) -> RouteMatch {
        let mut allow = None;
        for router in [&self.router, &self.catch_all] {
            match self.lookup_in(router, method, path, want_params) {
                RouteMatch::NotFound => {}
                RouteMatch::MethodNotAllowed { allow: a } => {
                    allow.get_or_insert(a);
                }
                found => return found,
            }
        }
        allow.map_or(RouteMatch::NotFound, |allow| RouteMatch::MethodNotAllowed { allow })
    }

    fn lookup_in(
        &self,
        router: &matchit::Router<usize>,
        method: &Method,
        path: &str,
        want_params: &dyn Fn(usize) -> bool,
    ) -> RouteMatch {
        let Ok(found) = router.at(path) else { return RouteMatch::NotFound };
        let Some(entry) = self.paths.get(*found.value) else { return RouteMatch::NotFound };
        // An exact method (or any-method route) first; HEAD falls back to a GET route.
        let exact = entry.routes.iter().find(|(methods, _)| methods.as_ref().is_none_or(|list| list.contains(method)));
        let hit = exact.or_else(|| {
            (method == Method::HEAD)
                .then(|| entry.routes.iter().find(|(m, _)| m.as_ref().is_some_and(|l| l.contains(&Method::GET))))
                .flatten()
        });
        match hit {
            Some(&(_, route)) => {
                let params = if want_params(route) {
                    found
                        .params
                        .iter()
                        .enumerate()
                        .map(|(i, (k, v))| (entry.names.get(i).cloned().unwrap_or_else(|| Arc::from(k)), v.to_owned()))
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
    exact: HashMap<String, HostRoutes>,
    /// `(".example.com", routes)`, longest suffix first.
    wildcard: Vec<(String, HostRoutes)>,
    any: HostRoutes,
    /// Per route index: whether matching should capture parameters.
    captures: Vec<bool>,
    names: Vec<Arc<str>>,
}

impl RouteTable {
    /// Adds route number `route` (routes must be added in index order).
    pub fn add(
        &mut self,
        name: Arc<str>,
        host: Option<&str>,
        path: &str,
        methods: Option<Vec<Method>>,
        captures: bool,
    ) -> Result<usize, RouteError> {
        let route = self.names.len();
        self.names.push(name);
        self.captures.push(captures);
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
        bucket.add(path, methods, route, &names).map(|()| route)
    }

    /// Finds the route for a request. `host` must be lowercase without port.
    pub fn lookup(&self, host: Option<&str>, method: &Method, path: &str) -> RouteMatch {
        let want = |route: usize| self.captures.get(route).copied().unwrap_or(false);
        let mut allowed: Option<HeaderValue> = None;
        let mut consider = |bucket: &HostRoutes| match bucket.lookup(method, path, &want) {
            RouteMatch::NotFound => None,
            RouteMatch::MethodNotAllowed { allow } => {
                allowed.get_or_insert(allow);
                None
            }
            found => Some(found),
        };
        if let Some(host) = host {
            if let Some(found) = self.exact.get(host).and_then(&mut consider) {
                return found;
            }
            for (suffix, bucket) in &self.wildcard {
                if host.len() > suffix.len()
                    && host.ends_with(suffix.as_str())
                    && let Some(found) = consider(bucket)
                {
                    return found;
                }
            }
        }
        if let Some(found) = consider(&self.any) {
            return found;
        }
        match allowed {
            Some(allow) => RouteMatch::MethodNotAllowed { allow },
            None => RouteMatch::NotFound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Spec<'a> = (Option<&'a str>, &'a str, Option<&'a [Method]>);

    fn table(routes: &[Spec<'_>]) -> RouteTable {
        let mut t = RouteTable::default();
        for (i, (host, path, methods)) in routes.iter().enumerate() {
            let added = t.add(Arc::from(format!("r{i}")), *host, path, methods.map(<[Method]>::to_vec), true);
            assert!(added.is_ok(), "{path}: {added:?}");
        }
        t
    }

    fn found(m: RouteMatch) -> Option<usize> {
        match m {
            RouteMatch::Found { route, .. } => Some(route),
            _ => None,
        }
    }

    #[test]
    fn exact_path_beats_parameter_beats_catch_all() {
        let t = table(&[(None, "/static/{*rest}", None), (None, "/static/{id}", None), (None, "/static/app.js", None)]);
        assert_eq!(found(t.lookup(None, &Method::GET, "/static/app.js")), Some(2));
        assert_eq!(found(t.lookup(None, &Method::GET, "/static/x")), Some(1));
        assert_eq!(found(t.lookup(None, &Method::GET, "/static/a/b")), Some(0));
    }

    #[test]
    fn exact_host_beats_wildcard_beats_any() {
        let t = table(&[(None, "/", None), (Some("*.example.com"), "/", None), (Some("api.example.com"), "/", None)]);
        assert_eq!(found(t.lookup(Some("api.example.com"), &Method::GET, "/")), Some(2));
        assert_eq!(found(t.lookup(Some("a.b.example.com"), &Method::GET, "/")), Some(1));
        assert_eq!(found(t.lookup(Some("example.com"), &Method::GET, "/")), Some(0));
        assert_eq!(found(t.lookup(None, &Method::GET, "/")), Some(0));
    }

    #[test]
    fn wrong_method_gives_allow_and_params_are_captured() {
        let t = table(&[
            (None, "/v1/orders/{id}", Some(&[Method::GET])),
            (None, "/v1/orders/{id}", Some(&[Method::DELETE])),
        ]);
        assert_eq!(
            t.lookup(None, &Method::POST, "/v1/orders/7"),
            RouteMatch::MethodNotAllowed { allow: HeaderValue::from_static("GET, HEAD, DELETE") }
        );
        match t.lookup(None, &Method::DELETE, "/v1/orders/7") {
            RouteMatch::Found { route, params } => {
                assert_eq!(route, 1);
                assert_eq!(params, vec![(Arc::from("id"), "7".to_owned())]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(found(t.lookup(None, &Method::HEAD, "/v1/orders/7")), Some(0));
        let t = table(&[(None, "/x", Some(&[Method::GET])), (None, "/x", Some(&[Method::HEAD]))]);
        assert_eq!(found(t.lookup(None, &Method::HEAD, "/x")), Some(1), "an explicit HEAD route wins");
        assert_eq!(t.lookup(None, &Method::GET, "/v2"), RouteMatch::NotFound);
    }

    #[test]
    fn overlapping_methods_on_one_path_are_refused() {
        let mut t = RouteTable::default();
        assert!(t.add("a".into(), None, "/x", Some(vec![Method::GET]), false).is_ok());
        assert!(t.add("b".into(), None, "/x", None, false).is_err());
        assert!(t.add("c".into(), None, "x", None, false).is_err());
        assert!(t.add("d".into(), None, "/{a}-{b}", None, false).is_err());
    }
}
