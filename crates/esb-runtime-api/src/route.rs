//! Which endpoint a request is for: the invoke path and the Runtime API paths, as RIE routes them.
//!
//! Hot path: called once per request on both listeners; borrows from the path, allocates nothing.

/// The only invoke path RIE serves (the function name must literally be `function`).
pub const INVOKE_PATH: &str = "/2015-03-31/functions/function/invocations";

/// A Runtime API endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimeRoute<'a> {
    /// `GET /2018-06-01/runtime/invocation/next`
    Next,
    /// `POST /2018-06-01/runtime/invocation/{id}/response`
    Response(&'a str),
    /// `POST /2018-06-01/runtime/invocation/{id}/error`
    Error(&'a str),
    /// `POST /2018-06-01/runtime/init/error`
    InitError,
    /// `GET /2018-06-01/ping`
    Ping,
    /// A known path with the wrong method.
    MethodNotAllowed,
    NotFound,
}

const PREFIX: &str = "/2018-06-01/runtime/";

/// Routes a Runtime API request. `method` is the request method, upper case.
pub fn runtime<'a>(method: &str, path: &'a str) -> RuntimeRoute<'a> {
    let get = method == "GET";
    let post = method == "POST";
    if path == "/2018-06-01/ping" {
        return if get {
            RuntimeRoute::Ping
        } else {
            RuntimeRoute::MethodNotAllowed
        };
    }
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return RuntimeRoute::NotFound;
    };
    let (route, wants_post) = match rest {
        "invocation/next" => (RuntimeRoute::Next, false),
        "init/error" => (RuntimeRoute::InitError, true),
        _ => {
            let Some(rest) = rest.strip_prefix("invocation/") else {
                return RuntimeRoute::NotFound;
            };
            match rest.rsplit_once('/') {
                Some((id, "response")) if !id.is_empty() && !id.contains('/') => {
                    (RuntimeRoute::Response(id), true)
                }
                Some((id, "error")) if !id.is_empty() && !id.contains('/') => {
                    (RuntimeRoute::Error(id), true)
                }
                _ => return RuntimeRoute::NotFound,
            }
        }
    };
    if (wants_post && post) || (!wants_post && get) {
        route
    } else {
        RuntimeRoute::MethodNotAllowed
    }
}

/// Whether a request is for the invoke endpoint. Any method is accepted, as in RIE (Go's
/// `http.HandleFunc`); the query string is ignored.
pub fn is_invoke(path: &str) -> bool {
    path == INVOKE_PATH
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(method: &str, path: &str, expected: RuntimeRoute<'_>) {
        assert_eq!(runtime(method, path), expected, "{method} {path}");
    }

    #[test]
    fn routes() {
        check(
            "GET",
            "/2018-06-01/runtime/invocation/next",
            RuntimeRoute::Next,
        );
        check(
            "POST",
            "/2018-06-01/runtime/invocation/abc-1/response",
            RuntimeRoute::Response("abc-1"),
        );
        check(
            "POST",
            "/2018-06-01/runtime/invocation/abc-1/error",
            RuntimeRoute::Error("abc-1"),
        );
        check(
            "POST",
            "/2018-06-01/runtime/init/error",
            RuntimeRoute::InitError,
        );
        check("GET", "/2018-06-01/ping", RuntimeRoute::Ping);
    }

    #[test]
    fn wrong_method_and_unknown_paths() {
        check(
            "POST",
            "/2018-06-01/runtime/invocation/next",
            RuntimeRoute::MethodNotAllowed,
        );
        check(
            "GET",
            "/2018-06-01/runtime/invocation/x/response",
            RuntimeRoute::MethodNotAllowed,
        );
        check(
            "GET",
            "/2018-06-01/runtime/invocation/nxt",
            RuntimeRoute::NotFound,
        );
        check(
            "POST",
            "/2018-06-01/runtime/invocation//response",
            RuntimeRoute::NotFound,
        );
        check(
            "POST",
            "/2018-06-01/runtime/invocation/a/b/response",
            RuntimeRoute::NotFound,
        );
        check("GET", "/", RuntimeRoute::NotFound);
    }

    #[test]
    fn invoke_path_is_exact() {
        assert!(is_invoke("/2015-03-31/functions/function/invocations"));
        assert!(!is_invoke("/2015-03-31/functions/other/invocations"));
        assert!(!is_invoke("/2015-03-31/functions/function/invocations/"));
    }
}
