//! Who is asking: the API client a request comes from, and the rule of what it may touch.
//!
//! A computation belongs to the client that submitted it; only that client, or an admin client,
//! may read, list, re-submit or cancel it. Identifying a client from its token is the API's job
//! (`api::auth`); this module only names clients and states the rule.

/// The client of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub admin: bool,
    /// A monitoring client: it reads the metrics and the operator page, nothing else (the API
    /// refuses it everywhere else, `api::auth`).
    pub monitor: bool,
}

impl Caller {
    /// The name of the one client of a node that lists none (its API is then on loopback only).
    pub const LOCAL: &'static str = crate::config::LOCAL_CLIENT;

    /// Every request of a node without configured clients: it may do anything.
    pub fn local() -> Caller {
        Caller {
            name: Caller::LOCAL.to_string(),
            admin: true,
            monitor: false,
        }
    }

    /// Whether this caller may read, re-submit or cancel what `owner` submitted (`None`: nobody
    /// here submitted it, e.g. a computation a peer aborted before any client did).
    pub fn may_access(&self, owner: Option<&str>) -> bool {
        self.admin || owner == Some(self.name.as_str())
    }

    /// Whose computations a listing shows: `None` for all (admins, and monitoring clients on
    /// the operator page, the only listing they reach).
    pub fn listing_filter(&self) -> Option<&str> {
        (!self.admin && !self.monitor).then_some(self.name.as_str())
    }
}
