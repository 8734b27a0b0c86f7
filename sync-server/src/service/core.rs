//! The service itself: the backend it holds, its settings (token
//! lifetime), who acts ([`Actor`], for the audit entries), and the audit
//! log's reading. The use-cases are the sibling modules' `impl Service`.

use std::sync::Arc;

use bilan_shared::protocol::UserInfo;

use crate::audit::AuditEntry;
use crate::error::StoreError;
use crate::storage::Backend;

pub type Result<T> = std::result::Result<T, StoreError>;

/// Default token lifetime: 90 days, so a device offline for a season still syncs.
pub const DEFAULT_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(90 * 24 * 3600);

/// The server's use-cases over a storage backend (cheap to clone).
#[derive(Clone)]
pub struct Service {
    pub(super) store: Arc<dyn Backend>,
    /// Tokens older than this are refused.
    pub(super) token_ttl_ms: i64,
}

/// Who does an administrative action: a signed-in user or the console.
#[derive(Clone, Copy, Debug)]
pub enum Actor<'a> {
    User(&'a UserInfo),
    Console,
}

impl Actor<'_> {
    /// The audit entry of `action` on `target` by this actor.
    pub fn entry(
        self,
        territory: Option<bilan_shared::ids::TerritoryId>,
        action: crate::audit::AuditAction,
        target: impl Into<String>,
    ) -> AuditEntry {
        match self {
            Actor::User(u) => AuditEntry {
                territory_id: territory.or(u.territory_id),
                ..AuditEntry::by(u, action, target)
            },
            Actor::Console => AuditEntry::console(territory, action, target),
        }
    }
}

impl Service {
    /// The service over `store`, with the default token lifetime.
    pub fn new(store: Arc<dyn Backend>) -> Self {
        Self {
            store,
            token_ttl_ms: DEFAULT_TOKEN_TTL.as_millis() as i64,
        }
    }

    /// How long a token stays valid after its login (sessions and devices).
    pub fn with_token_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.token_ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        self
    }

    /// The storage backend (tests and the operator's tools).
    pub fn backend(&self) -> &dyn Backend {
        self.store.as_ref()
    }
}
