//! The router: ordered routes, first match wins unless a route says `continue`.
//!
//! Built once from the validated config; routing a notification only runs
//! precompiled matchers and collects sink ids, each once, in route order.

pub mod key;
pub mod matcher;

pub use key::Key;
pub use matcher::{KindSet, Matcher, Pattern, Patterns};

use crate::notification::Notification;

/// Index of a sink in the config's sink list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SinkId(pub usize);

#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    pub sinks: Vec<SinkId>,
    pub continue_: bool,
    pub matcher: Matcher,
    /// Whether the config had a `match` table (a route without one is a catch-all).
    pub has_match: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<Route>,
}

/// Where one notification goes: route indices and sink ids, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    pub routes: Vec<usize>,
    pub sinks: Vec<SinkId>,
}

impl Decision {
    pub fn is_unrouted(&self) -> bool {
        self.routes.is_empty()
    }
}

impl Router {
    pub fn new(routes: Vec<Route>) -> Router {
        Router { routes }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Routes `n`, which arrived on the source named `queue` (if known).
    pub fn route(&self, n: &Notification<'_>, queue: Option<&str>) -> Decision {
        let mut decision = Decision::default();
        for (index, route) in self.routes.iter().enumerate() {
            if !route.matcher.is_match(n, queue) {
                continue;
            }
            decision.routes.push(index);
            for sink in &route.sinks {
                if !decision.sinks.contains(sink) {
                    decision.sinks.push(*sink);
                }
            }
            if !route.continue_ {
                break;
            }
        }
        decision
    }
}
