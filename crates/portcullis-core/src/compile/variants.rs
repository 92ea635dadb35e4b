//! `validate`'s warning for path variants: a backend may read `/api/ADMIN/x`, `/api/users/7/`
//! or `/api/admin;jsessionid=1/x` as the path of a protected route, while the gateway routes
//! it to a public catch-all in front of the same backend. The gateway cannot know what the
//! backend ignores, so it says when that matters: for every route, a sample path of each of
//! its patterns is varied (each literal segment's case toggled, alone and all together; a
//! trailing slash added or removed; `;` parameters added) and looked up in the compiled table
//! — the matcher requests use, with `routing:` applied. A variant landing on another route to
//! the same upstream with weaker authentication is a warning naming both routes.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::Method;

use super::{Compiler, at};
use crate::route::{RouteMatch, RouteTable};
use crate::snapshot::{AuthRule, RouteSpec};

/// What a variant changed, in the warning's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Case,
    TrailingSlash,
    Matrix,
}

/// Warns for every (weaker route, stronger route) pair where a variant of the stronger one's
/// paths reaches the weaker one. `routes[i]` is route `i` of `table` (no route failed).
pub(super) fn warn(c: &mut Compiler<'_>, routes: &[Arc<RouteSpec>], table: &RouteTable) {
    let mut found: BTreeMap<(usize, usize), (Vec<Kind>, String)> = BTreeMap::new();
    let all_methods = listed_methods(routes);
    for (s, strong) in routes.iter().enumerate() {
        if strong.auth == AuthRule::Public && strong.policies.is_empty() {
            continue;
        }
        let methods = strong.methods.clone().unwrap_or_else(|| all_methods.clone());
        for host in sample_hosts(strong, routes) {
            for method in &methods {
                let lands = |path: &str| match table.lookup(host.as_deref(), method, path) {
                    RouteMatch::Found { route, .. } => Some(route),
                    _ => None,
                };
                let sample = fill(&strong.path, Toggle::None);
                if lands(&sample) != Some(s) {
                    continue;
                }
                for (kind, variant) in variants(&strong.path, &sample) {
                    let Some(w) = lands(&variant).filter(|&w| w != s) else { continue };
                    let weak = &routes[w];
                    if weak.upstream != strong.upstream || at_least_as_strict(weak, strong) {
                        continue;
                    }
                    let entry = found.entry((w, s)).or_insert_with(|| (Vec::new(), format!("{method} {variant}")));
                    if !entry.0.contains(&kind) {
                        entry.0.push(kind);
                    }
                }
            }
        }
    }
    for ((w, s), (mut kinds, example)) in found {
        kinds.sort();
        let message = message(&routes[w], &routes[s], &kinds, &example);
        c.warn(&at("routes").index(w).key("match").key("path"), message);
    }
}

fn message(weak: &RouteSpec, strong: &RouteSpec, kinds: &[Kind], example: &str) -> String {
    let what: Vec<&str> = kinds
        .iter()
        .map(|k| match k {
            Kind::Case => "case",
            Kind::TrailingSlash => "trailing-slash",
            Kind::Matrix => "`;` parameter",
        })
        .collect();
    let mut fix = Vec::new();
    if kinds.contains(&Kind::Case) {
        fix.push("`routing.case_insensitive: true`");
    }
    if kinds.contains(&Kind::TrailingSlash) {
        fix.push("`routing.trailing_slash: ignore`");
    }
    if kinds.contains(&Kind::Matrix) {
        fix.push("no `matrix_params` on the weaker route");
    }
    format!(
        "route `{}` has weaker authentication than route `{}` on the same upstream and receives {} variants \
         of its paths (e.g. `{example}`); a backend that ignores them serves `{}`'s resources unchecked — \
         if it does, set {}",
        weak.name,
        strong.name,
        what.join(", "),
        strong.name,
        fix.join(" and "),
    )
}

/// Whether every request `weak` admits, `strong` would admit too: each way `weak` accepts
/// a request (a provider of `any`, or all of `all`) includes a way `strong` accepts one, and
/// `weak` applies every policy `strong` does.
fn at_least_as_strict(weak: &RouteSpec, strong: &RouteSpec) -> bool {
    let policies = strong.policies.iter().all(|p| weak.policies.contains(p));
    let auth = match (ways(&weak.auth), ways(&strong.auth)) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(weak), Some(strong)) => {
            weak.iter().all(|w| strong.iter().any(|s| s.iter().all(|provider| w.contains(provider))))
        }
    };
    policies && auth
}

/// The sets of providers that admit a request, each set needing all its members; `None`:
/// public.
fn ways(auth: &AuthRule) -> Option<Vec<Vec<Arc<str>>>> {
    match auth {
        AuthRule::Public => None,
        AuthRule::Any(list) => Some(list.iter().map(|p| vec![p.clone()]).collect()),
        AuthRule::All(list) => Some(vec![list.clone()]),
    }
}

/// GET and every method a route lists: what a route without `methods` is tried with.
fn listed_methods(routes: &[Arc<RouteSpec>]) -> Vec<Method> {
    let mut out = vec![Method::GET];
    for m in routes.iter().filter_map(|r| r.methods.as_ref()).flatten() {
        if !out.contains(m) {
            out.push(m.clone());
        }
    }
    out
}

/// The hosts a route's paths are tried under: one it serves, and each host another route to
/// the same upstream names (a variant may reach that route under its host).
fn sample_hosts(route: &RouteSpec, routes: &[Arc<RouteSpec>]) -> Vec<Option<String>> {
    let mut out = vec![route.host.as_deref().map(sample_host)];
    for other in routes.iter().filter(|r| r.upstream == route.upstream) {
        let host = other.host.as_deref().map(sample_host);
        if host.is_some() && !out.contains(&host) {
            out.push(host);
        }
    }
    out
}

fn sample_host(pattern: &str) -> String {
    match pattern.strip_prefix('*') {
        Some(suffix) => format!("sample{suffix}"),
        None => pattern.to_owned(),
    }
}

/// Which literal segments of a pattern get their letters' case toggled.
#[derive(Debug, Clone, Copy)]
enum Toggle {
    None,
    Segment(usize),
    All,
}

/// A path the pattern matches: each parameter is `1`; letters toggled as asked.
fn fill(pattern: &str, toggle: Toggle) -> String {
    let mut out = String::with_capacity(pattern.len());
    for (i, segment) in pattern.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        let flip = match toggle {
            Toggle::None => false,
            Toggle::Segment(n) => n == i,
            Toggle::All => true,
        };
        let mut in_param = false;
        for ch in segment.chars() {
            match ch {
                '{' => in_param = true,
                '}' => {
                    in_param = false;
                    out.push('1');
                }
                _ if in_param => {}
                _ if flip && ch.is_ascii_uppercase() => out.push(ch.to_ascii_lowercase()),
                _ if flip => out.push(ch.to_ascii_uppercase()),
                _ => out.push(ch),
            }
        }
    }
    out
}

/// The variants of `sample` (a path of `pattern`) a backend may read as `sample` itself.
fn variants(pattern: &str, sample: &str) -> Vec<(Kind, String)> {
    let mut out = Vec::new();
    for (i, segment) in pattern.split('/').enumerate() {
        if lettered(segment) {
            out.push((Kind::Case, fill(pattern, Toggle::Segment(i))));
        }
    }
    out.push((Kind::Case, fill(pattern, Toggle::All)));
    match sample.strip_suffix('/') {
        Some(shorter) if !shorter.is_empty() => out.push((Kind::TrailingSlash, shorter.to_owned())),
        Some(_) => {}
        None => out.push((Kind::TrailingSlash, format!("{sample}/"))),
    }
    if let Some(end) = sample.get(1..).and_then(|rest| rest.find('/')).map(|e| e + 1) {
        out.push((Kind::Matrix, format!("{};v=1{}", &sample[..end], &sample[end..])));
    }
    out.push((Kind::Matrix, format!("{sample};v=1")));
    out.retain(|(_, v)| v != sample);
    out
}

/// Whether a pattern segment has letters outside its parameters.
fn lettered(segment: &str) -> bool {
    let mut in_param = false;
    for ch in segment.chars() {
        match ch {
            '{' => in_param = true,
            '}' => in_param = false,
            _ if !in_param && ch.is_ascii_alphabetic() => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_fill_parameters_and_toggle_literal_case() {
        assert_eq!(fill("/api/Users/{id}", Toggle::None), "/api/Users/1");
        assert_eq!(fill("/api/Users/{id}", Toggle::Segment(2)), "/api/uSERS/1");
        assert_eq!(fill("/api/{*rest}", Toggle::All), "/API/1");
    }

    #[test]
    fn variants_cover_case_slash_and_matrix_parameters() {
        let v: Vec<String> = variants("/api/users/{id}", "/api/users/1").into_iter().map(|(_, p)| p).collect();
        for expected in
            ["/API/users/1", "/api/USERS/1", "/API/USERS/1", "/api/users/1/", "/api;v=1/users/1", "/api/users/1;v=1"]
        {
            assert!(v.iter().any(|p| p == expected), "{expected} in {v:?}");
        }
    }
}
