//! esb's router: method + raw path -> route, over an immutable table built once from API Gateway
//! style templates (`/users/{id}`, `/echo/{proxy+}`, `ANY`), on top of `matchit`.
//!
//! Hot path: [`RouteTable::route`] allocates nothing; path parameters are copied into an inline
//! array of borrowed slices.
//!
//! Semantics (API Gateway REST):
//! - A literal segment beats a `{param}` segment, which beats a greedy `{proxy+}`; matchit
//!   backtracks, so `/items/special` and `/items/{id}` and `/{proxy+}` coexist.
//! - A greedy parameter needs at least one character: `/{proxy+}` does not match `/`; register
//!   `/` itself for the root (API Gateway's root resource is separate too).
//! - An exact method beats `ANY` on the same template. The path picks the template first, then
//!   the method: a method missing on the most specific template is a miss, with no fallback to a
//!   wider template (REST resources work this way).
//! - Routing runs on the **raw** (still percent-encoded) path, and path parameters are returned
//!   raw. REST APIs hand the function `path` and `pathParameters` undecoded, and routing on the
//!   same bytes the function sees means a `%2F` can never route differently from what the
//!   function is told (checklist A35). `esb-event` decodes for HTTP API (v2) events, where AWS does.
//! - "No route" and "wrong method" are both [`RouteMiss`]; API Gateway answers both with 403
//!   `{"message":"Missing Authentication Token"}`. The two are told apart only for logs and CORS.

use std::fmt;

/// Most path parameters a template may have; keeps [`PathParams`] inline (no allocation).
pub const MAX_PARAMS: usize = 16;

/// A route method: one HTTP method token (upper case), or `ANY`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Any,
    Only(Box<str>),
}

impl Method {
    /// Parses `ANY`/`any`/`GET`/`get`...; a method is an HTTP token, stored upper case.
    pub fn parse(s: &str) -> Option<Method> {
        if s.eq_ignore_ascii_case("any") {
            return Some(Method::Any);
        }
        if s.is_empty() || !s.bytes().all(is_tchar) {
            return None;
        }
        Some(Method::Only(s.to_ascii_uppercase().into_boxed_str()))
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Any => "ANY",
            Method::Only(m) => m,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One route to add to a table.
#[derive(Debug, Clone)]
pub struct RouteDef<T> {
    pub method: Method,
    /// API Gateway template: `/`, `/users/{id}`, `/echo/{proxy+}`.
    pub template: String,
    pub value: T,
}

/// A configuration mistake in the route list. Always the operator's fault; never retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The template is not a valid API Gateway resource path.
    #[error("route {method} {template}: {reason}")]
    BadTemplate {
        method: String,
        template: String,
        reason: &'static str,
    },
    /// The same method (or `ANY`) on the same template twice.
    #[error("route {method} {template} is defined twice")]
    Duplicate { method: String, template: String },
    /// Two templates that match the same paths with different parameter names, e.g.
    /// `/users/{id}` and `/users/{name}`.
    #[error("route {method} {template} conflicts with {other}")]
    Conflict {
        method: String,
        template: String,
        other: String,
    },
}

/// Why a request matched no route. API Gateway answers both with 403 "Missing Authentication Token".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteMiss {
    /// No template matches the path.
    NoPath,
    /// A template matches the path, but not for this method (and it has no `ANY`).
    MethodNotAllowed,
}

/// A successful lookup.
#[derive(Debug)]
pub struct Matched<'t, 'p, T> {
    pub value: &'t T,
    /// The template as configured, e.g. `/echo/{proxy+}` (the event's `resource`).
    pub resource: &'t str,
    /// The route's method as configured (`ANY` or the exact method; v2 `routeKey` uses it).
    pub method: &'t Method,
    pub params: PathParams<'t, 'p>,
}

/// Path parameters, raw (not percent-decoded), in template order. Names are the template's
/// (`proxy` for `{proxy+}`); values borrow the request path.
#[derive(Clone, Copy)]
pub struct PathParams<'t, 'p> {
    items: [(&'t str, &'p str); MAX_PARAMS],
    len: usize,
}

impl<'t, 'p> PathParams<'t, 'p> {
    pub fn as_slice(&self) -> &[(&'t str, &'p str)] {
        &self.items[..self.len]
    }

    pub fn get(&self, name: &str) -> Option<&'p str> {
        self.as_slice()
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn len(&self) -> usize {
        self.len
    }
}

impl fmt::Debug for PathParams<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.as_slice().iter().copied())
            .finish()
    }
}

/// All methods of one template.
struct Resource<T> {
    template: Box<str>,
    methods: Vec<(Method, T)>,
}

/// An immutable route table. Build once (config load), share behind an `Arc`, look up per request.
pub struct RouteTable<T> {
    matcher: matchit::Router<usize>,
    resources: Vec<Resource<T>>,
}

impl<T> fmt::Debug for RouteTable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = f.debug_list();
        for r in &self.resources {
            for (m, _) in &r.methods {
                l.entry(&format_args!("{m} {}", r.template));
            }
        }
        l.finish()
    }
}

impl<T> RouteTable<T> {
    /// Builds the table, rejecting bad templates, duplicates and conflicts with an error naming
    /// the offending route.
    pub fn new(routes: impl IntoIterator<Item = RouteDef<T>>) -> Result<Self, RouteError> {
        let mut table = RouteTable {
            matcher: matchit::Router::new(),
            resources: Vec::new(),
        };
        for def in routes {
            table.add(def)?;
        }
        Ok(table)
    }

    fn add(&mut self, def: RouteDef<T>) -> Result<(), RouteError> {
        let method = def.method.to_string();
        let translated = translate(&def.template).map_err(|reason| RouteError::BadTemplate {
            method: method.clone(),
            template: def.template.clone(),
            reason,
        })?;
        if let Some(idx) = self
            .resources
            .iter()
            .position(|r| *r.template == *def.template)
        {
            let res = &mut self.resources[idx];
            if res.methods.iter().any(|(m, _)| *m == def.method) {
                return Err(RouteError::Duplicate {
                    method,
                    template: def.template,
                });
            }
            res.methods.push((def.method, def.value));
            return Ok(());
        }
        let idx = self.resources.len();
        if let Err(e) = self.matcher.insert(translated, idx) {
            let other = match &e {
                matchit::InsertError::Conflict { with } => untranslate(with),
                _ => e.to_string(),
            };
            // `{a}` vs `{b}` at the same place and the same template twice both land here.
            if other == def.template {
                return Err(RouteError::Duplicate {
                    method,
                    template: def.template,
                });
            }
            return Err(RouteError::Conflict {
                method,
                template: def.template,
                other,
            });
        }
        self.resources.push(Resource {
            template: def.template.into_boxed_str(),
            methods: vec![(def.method, def.value)],
        });
        Ok(())
    }

    /// Looks up `method` (case-sensitive, as HTTP methods are) and `path` (raw, no query string).
    pub fn route<'t, 'p>(
        &'t self,
        method: &str,
        path: &'p str,
    ) -> Result<Matched<'t, 'p, T>, RouteMiss> {
        let m = self.matcher.at(path).map_err(|_| RouteMiss::NoPath)?;
        let res = &self.resources[*m.value];
        let (route_method, value) = res
            .methods
            .iter()
            .find(|(rm, _)| matches!(rm, Method::Only(x) if **x == *method))
            .or_else(|| res.methods.iter().find(|(rm, _)| *rm == Method::Any))
            .ok_or(RouteMiss::MethodNotAllowed)?;
        let mut params = PathParams {
            items: [("", ""); MAX_PARAMS],
            len: 0,
        };
        for (k, v) in m.params.iter() {
            // `translate` caps templates at MAX_PARAMS, so this never truncates.
            if params.len < MAX_PARAMS {
                params.items[params.len] = (k, v);
                params.len += 1;
            }
        }
        Ok(Matched {
            value,
            resource: &res.template,
            method: route_method,
            params,
        })
    }

    /// The methods configured for the template matching `path` (for CORS preflight answers).
    pub fn methods_at(&self, path: &str) -> impl Iterator<Item = &Method> {
        let res = self
            .matcher
            .at(path)
            .ok()
            .map(|m| &self.resources[*m.value]);
        res.into_iter()
            .flat_map(|r| r.methods.iter().map(|(m, _)| m))
    }

    /// Number of (method, template) routes.
    pub fn len(&self) -> usize {
        self.resources.iter().map(|r| r.methods.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// API Gateway template -> matchit route (`{proxy+}` -> `{*proxy}`), validating on the way.
fn translate(template: &str) -> Result<String, &'static str> {
    if !template.starts_with('/') {
        return Err("must start with '/'");
    }
    if template == "/" {
        return Ok("/".to_string());
    }
    if template.ends_with('/') {
        return Err("must not end with '/'");
    }
    let segments: Vec<&str> = template[1..].split('/').collect();
    let mut out = String::with_capacity(template.len() + 2);
    let mut names: Vec<&str> = Vec::new();
    for (i, seg) in segments.iter().enumerate() {
        out.push('/');
        if seg.is_empty() {
            return Err("empty path segment ('//')");
        }
        if let Some(inner) = seg.strip_prefix('{') {
            let inner = inner
                .strip_suffix('}')
                .ok_or("a parameter must be a whole segment: '{name}'")?;
            let (name, greedy) = match inner.strip_suffix('+') {
                Some(n) => (n, true),
                None => (inner, false),
            };
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
            {
                return Err("parameter names are letters, digits, '_', '-' and '.'");
            }
            if greedy && i + 1 != segments.len() {
                return Err("a greedy '{name+}' parameter must be the last segment");
            }
            if names.contains(&name) {
                return Err("the same parameter name twice");
            }
            names.push(name);
            if names.len() > MAX_PARAMS {
                return Err("too many parameters (at most 16)");
            }
            out.push('{');
            if greedy {
                out.push('*');
            }
            out.push_str(name);
            out.push('}');
        } else {
            if seg.contains(['{', '}']) {
                return Err("'{' and '}' only around a whole-segment parameter");
            }
            if !seg.bytes().all(|b| b.is_ascii_graphic()) {
                return Err("literal segments are visible ASCII");
            }
            out.push_str(seg);
        }
    }
    Ok(out)
}

/// matchit route -> API Gateway template, for error messages.
fn untranslate(route: &str) -> String {
    let mut out = String::with_capacity(route.len());
    let mut rest = route;
    while let Some(start) = rest.find("{*") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').unwrap_or(after.len());
        out.push('{');
        out.push_str(&after[..end]);
        out.push_str("+}");
        rest = after.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(routes: &[(&str, &str)]) -> RouteTable<usize> {
        RouteTable::new(routes.iter().enumerate().map(|(i, (m, t))| RouteDef {
            method: Method::parse(m).unwrap(),
            template: t.to_string(),
            value: i,
        }))
        .unwrap()
    }

    /// Routes `method path` and renders the outcome as `#idx resource params` or the miss.
    fn check(t: &RouteTable<usize>, input: &str, expected: &str) {
        let (method, path) = input.split_once(' ').unwrap();
        let got = match t.route(method, path) {
            Ok(m) => {
                let mut s = format!("#{} {} {}", m.value, m.method, m.resource);
                for (k, v) in m.params.as_slice() {
                    s.push_str(&format!(" {k}={v}"));
                }
                s
            }
            Err(miss) => format!("{miss:?}"),
        };
        assert_eq!(got, expected, "{input}");
    }

    fn build_err(routes: &[(&str, &str)]) -> String {
        RouteTable::new(routes.iter().map(|(m, t)| RouteDef {
            method: Method::parse(m).unwrap(),
            template: t.to_string(),
            value: (),
        }))
        .unwrap_err()
        .to_string()
    }

    #[test]
    fn static_beats_param_beats_greedy() {
        let t = table(&[
            ("GET", "/items/special"),
            ("GET", "/items/{id}"),
            ("ANY", "/{proxy+}"),
            ("GET", "/"),
        ]);
        check(&t, "GET /items/special", "#0 GET /items/special");
        check(&t, "GET /items/42", "#1 GET /items/{id} id=42");
        check(
            &t,
            "GET /items/42/sub",
            "#2 ANY /{proxy+} proxy=items/42/sub",
        );
        check(&t, "GET /", "#3 GET /");
        check(&t, "POST /", "MethodNotAllowed");
        // Path first, then method (REST resource semantics): no fallback to a wider template.
        check(&t, "POST /items/42", "MethodNotAllowed");
    }

    #[test]
    fn greedy_needs_a_remainder_and_root_is_separate() {
        let t = table(&[("ANY", "/echo/{proxy+}")]);
        check(&t, "GET /echo/a/b/c", "#0 ANY /echo/{proxy+} proxy=a/b/c");
        check(&t, "GET /echo/", "NoPath");
        check(&t, "GET /echo", "NoPath");
        check(&t, "GET /", "NoPath");
        check(&t, "GET /other", "NoPath");
    }

    #[test]
    fn exact_method_beats_any_and_methods_are_case_sensitive() {
        let t = table(&[("ANY", "/users/{id}"), ("delete", "/users/{id}")]);
        check(&t, "DELETE /users/7", "#1 DELETE /users/{id} id=7");
        check(&t, "GET /users/7", "#0 ANY /users/{id} id=7");
        // `get` is not `GET` on the wire; only ANY catches it.
        check(&t, "get /users/7", "#0 ANY /users/{id} id=7");
        let only_get = table(&[("GET", "/a")]);
        check(&only_get, "get /a", "MethodNotAllowed");
        check(&only_get, "HEAD /a", "MethodNotAllowed");
    }

    #[test]
    fn params_are_raw_and_several() {
        let t = table(&[("GET", "/orgs/{org}/users/{id}")]);
        check(
            &t,
            "GET /orgs/a%20b/users/x%2Fy",
            "#0 GET /orgs/{org}/users/{id} org=a%20b id=x%2Fy",
        );
        check(&t, "GET /orgs/a/users/", "NoPath");
        check(&t, "GET /orgs/a/users/b/c", "NoPath");
    }

    #[test]
    fn no_route_shapes() {
        let t = table(&[("GET", "/a")]);
        check(&t, "GET ", "NoPath");
        check(&t, "GET a", "NoPath");
        check(&t, "GET /a/", "NoPath");
        check(&t, "GET /a?x=1", "NoPath");
    }

    #[test]
    fn methods_at_lists_configured_methods() {
        let t = table(&[("GET", "/a/{x}"), ("POST", "/a/{x}"), ("GET", "/b")]);
        let m: Vec<_> = t.methods_at("/a/1").map(|m| m.to_string()).collect();
        assert_eq!(m, ["GET", "POST"]);
        assert_eq!(t.methods_at("/zzz").count(), 0);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn bad_templates_name_the_route() {
        for (tpl, why) in [
            ("users", "must start with '/'"),
            ("/users/", "must not end with '/'"),
            ("/a//b", "empty path segment"),
            ("/a/{proxy+}/b", "greedy"),
            ("/a/x{id}", "'{' and '}' only"),
            ("/a/{id", "whole segment"),
            ("/a/{}", "parameter names"),
            ("/a/{x y}", "parameter names"),
            ("/a/{id}/{id}", "same parameter name"),
            ("/a b", "visible ASCII"),
        ] {
            let e = build_err(&[("GET", tpl)]);
            assert!(e.starts_with(&format!("route GET {tpl}: ")), "{e}");
            assert!(e.contains(why), "{tpl}: {e}");
        }
    }

    #[test]
    fn duplicates_and_conflicts_are_rejected() {
        assert_eq!(
            build_err(&[("GET", "/a/{id}"), ("get", "/a/{id}")]),
            "route GET /a/{id} is defined twice"
        );
        assert_eq!(
            build_err(&[("ANY", "/a"), ("ANY", "/a")]),
            "route ANY /a is defined twice"
        );
        assert_eq!(
            build_err(&[("GET", "/users/{id}"), ("POST", "/users/{name}")]),
            "route POST /users/{name} conflicts with /users/{id}"
        );
        assert_eq!(
            build_err(&[("GET", "/f/{proxy+}"), ("GET", "/f/{rest+}")]),
            "route GET /f/{rest+} conflicts with /f/{proxy+}"
        );
    }

    #[test]
    fn method_parse() {
        assert_eq!(Method::parse("any"), Some(Method::Any));
        assert_eq!(Method::parse("patch"), Some(Method::Only("PATCH".into())));
        assert_eq!(Method::parse(""), None);
        assert_eq!(Method::parse("GE T"), None);
    }

    #[test]
    fn too_many_params() {
        let tpl: String = (0..17).map(|i| format!("/{{p{i}}}")).collect();
        assert!(build_err(&[("GET", &tpl)]).contains("too many parameters"));
        let ok: String = (0..16).map(|i| format!("/{{p{i}}}")).collect();
        let t = table(&[("GET", &ok)]);
        let path: String = (0..16).map(|i| format!("/v{i}")).collect();
        let m = t.route("GET", &path).unwrap();
        assert_eq!(m.params.len(), 16);
        assert_eq!(m.params.get("p15"), Some("v15"));
    }
}
