//! The Java article's DispatcherServlet, in Rust.
//!
//! [`HandlerMapping`] finds the [`Handler`] registered for a method and path; the
//! [`Handler`] trait is the HandlerAdapter, letting any closure `Fn(&Request) -> Response`
//! serve a route; [`Dispatcher::dispatch`] ties them together, answers 404 and 405 itself,
//! and turns a panicking handler into a 500 so one bad request never takes a thread, a
//! pool worker or the server down with it.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::codec::Request;
use crate::response::Response;
use crate::stats::Stats;

// ANCHOR: handler
/// Something that answers requests for a route.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, request: &Request) -> Response;
}

/// Any closure of the right shape is a handler: the adapter the Java article built by hand.
impl<F> Handler for F
where
    F: Fn(&Request) -> Response + Send + Sync + 'static,
{
    fn handle(&self, request: &Request) -> Response {
        self(request)
    }
}
// ANCHOR_END: handler

/// What [`HandlerMapping::lookup`] found.
pub enum Lookup<'a> {
    Found(&'a dyn Handler),
    /// The path exists, but not for this method; the methods it does take.
    MethodNotAllowed(Vec<String>),
    NotFound,
}

impl std::fmt::Debug for Lookup<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Found(_) => f.write_str("Found"),
            Self::MethodNotAllowed(allowed) => {
                f.debug_tuple("MethodNotAllowed").field(allowed).finish()
            }
            Self::NotFound => f.write_str("NotFound"),
        }
    }
}

/// A method and the handler serving it, under one path.
type Route = (String, Box<dyn Handler>);

/// Routes by exact path, then by method.
#[derive(Default)]
pub struct HandlerMapping {
    routes: BTreeMap<String, Vec<Route>>,
}

impl std::fmt::Debug for HandlerMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let routes: Vec<String> = self
            .routes
            .iter()
            .flat_map(|(path, methods)| methods.iter().map(move |(m, _)| format!("{m} {path}")))
            .collect();
        f.debug_struct("HandlerMapping").field("routes", &routes).finish()
    }
}

impl HandlerMapping {
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `method path` with `handler`, replacing any handler already there.
    pub fn route(mut self, method: &str, path: &str, handler: impl Handler) -> Self {
        let methods = self.routes.entry(path.to_owned()).or_default();
        methods.retain(|(m, _)| m != method);
        methods.push((method.to_owned(), Box::new(handler)));
        self
    }

    /// `HEAD` is served by the `GET` handler; the body is dropped when the reply is written.
    pub fn lookup(&self, method: &str, path: &str) -> Lookup<'_> {
        let Some(methods) = self.routes.get(path) else {
            return Lookup::NotFound;
        };
        let wanted = if method == "HEAD" { "GET" } else { method };
        match methods.iter().find(|(m, _)| m == wanted) {
            Some((_, handler)) => Lookup::Found(handler.as_ref()),
            None => {
                let mut allowed: Vec<String> = methods.iter().map(|(m, _)| m.clone()).collect();
                if allowed.iter().any(|m| m == "GET") {
                    allowed.push("HEAD".into());
                }
                Lookup::MethodNotAllowed(allowed)
            }
        }
    }
}

/// Routes every request of a server to its handler and counts it. The mechanism only: it
/// knows no route. The built-in ones, and `Dispatcher::with_builtin_routes`, are the
/// application's, in [`handlers`](crate::handlers).
#[derive(Debug)]
pub struct Dispatcher {
    mapping: HandlerMapping,
    stats: Arc<Stats>,
}

impl Dispatcher {
    pub fn new(mapping: HandlerMapping, stats: Arc<Stats>) -> Self {
        Self { mapping, stats }
    }

    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// The name in the `Server` header: the crate that answered.
    pub fn server(&self) -> &'static str {
        self.stats.server()
    }

    /// The 404 or 405 `request` gets whatever its body, if it gets one: what a server can
    /// answer instead of `100 Continue`.
    pub fn refusal(&self, request: &Request) -> Option<Response> {
        match self.mapping.lookup(&request.method, request.path()) {
            Lookup::Found(_) => None,
            Lookup::MethodNotAllowed(allowed) => {
                let allowed = allowed.join(", ");
                let response = Response::text(405, format!("{} takes {allowed}", request.path()));
                Some(response.with_header("Allow", allowed))
            }
            Lookup::NotFound => {
                Some(Response::text(404, format!("no route for {}", request.path())))
            }
        }
    }

    // ANCHOR: dispatch
    pub fn dispatch(&self, request: &Request) -> Response {
        self.stats.request_served();
        let Lookup::Found(handler) = self.mapping.lookup(&request.method, request.path()) else {
            // Not found, or the wrong method: the refusal, without running a handler.
            return self.refusal(request).unwrap_or_else(|| Response::text(404, "no route"));
        };
        // A handler is our code or a test's; a bug in it must cost one reply, not a thread.
        // Nothing is shared with the handler but `&Request`, so unwinding leaves no state
        // half-updated, which is what AssertUnwindSafe promises.
        catch_unwind(AssertUnwindSafe(|| handler.handle(request))).unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(path = request.path(), "handler panicked: {what}");
            Response::text(500, "the handler failed; see the server log")
        })
    }
    // ANCHOR_END: dispatch
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Request;

    fn dispatcher(mapping: HandlerMapping) -> Dispatcher {
        Dispatcher::new(mapping, Stats::new("test"))
    }

    #[test]
    fn routes_by_path_and_method_ignoring_the_query() {
        let d = dispatcher(
            HandlerMapping::new().route("GET", "/a", |_: &Request| Response::text(200, "a")),
        );
        assert_eq!(d.dispatch(&Request::get("/a?x=1")).body, b"a");
        assert_eq!(d.dispatch(&Request::get("/b")).status, 404);
        assert_eq!(d.stats().requests(), 2);
    }

    #[test]
    fn wrong_method_is_405_with_allow() {
        let d = dispatcher(
            HandlerMapping::new().route("GET", "/a", |_: &Request| Response::text(200, "a")),
        );
        let response = d.dispatch(&Request { method: "DELETE".into(), ..Request::get("/a") });
        assert_eq!(response.status, 405);
        assert_eq!(response.headers, vec![("Allow", "GET, HEAD".to_owned())]);
    }

    #[test]
    fn a_panicking_handler_becomes_a_500() {
        let d = dispatcher(HandlerMapping::new().route(
            "GET",
            "/boom",
            |_: &Request| -> Response { panic!("boom") },
        ));
        assert_eq!(d.dispatch(&Request::get("/boom")).status, 500);
    }
}
