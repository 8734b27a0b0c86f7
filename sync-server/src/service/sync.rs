//! The sync use-case: who may sync, the request's limits, the push (checked
//! and packed off the lock) and the page of others' changes that answers it.

use bilan_shared::protocol::{PROTOCOL_VERSION, SyncRequest, SyncResponse, UserInfo};

use super::access;
use super::core::{Result, Service};
use crate::codec::prepare_push;

/// Limits a sync request is checked against.
#[derive(Clone, Copy, Debug)]
pub struct SyncLimits {
    pub max_docs: usize,
    pub page_bytes: u64,
}

/// Bytes of others' changes (uncompressed bundles) that the answer to a push
/// carries at most: a few new inspections, or hundreds of small edits. The
/// answer to a pull alone carries up to [`SyncLimits::page_bytes`].
const PUSH_ANSWER_PAGE_BYTES: u64 = 256 << 10;

impl Service {
    /// One sync round: stores the device's changes (durable before the
    /// answer), then answers with the territory's changes after its cursor.
    pub fn sync(
        &self,
        user: &UserInfo,
        req: SyncRequest,
        limits: SyncLimits,
    ) -> Result<SyncResponse> {
        let territory = access::require_field_role(user)?;
        access::check_document_count(req.docs.len(), limits.max_docs)?;
        let device = req.device_id.to_string();
        let started = std::time::Instant::now();
        let docs = req.docs.len();
        let accepted = if docs == 0 {
            0
        } else {
            self.store
                .push(territory, &device, prepare_push(req.docs)?)?
        };
        let pushed = started.elapsed();
        // A push is answered with a small page of the others' changes: the
        // device learns at once that its own are safe, and comes back for
        // the rest (`more`) with a pull. A pull alone (the device came back
        // for more) waits for the merger to reach what is committed, so it
        // gets everything.
        let page_bytes = if docs == 0 {
            limits.page_bytes
        } else {
            limits.page_bytes.min(PUSH_ANSWER_PAGE_BYTES)
        };
        let pulled = self
            .store
            .pull(territory, &device, req.cursor, page_bytes, docs == 0)?;
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        tracing::debug!(
            docs,
            accepted,
            push_ms = ms(pushed),
            pull_ms = ms(started.elapsed() - pushed),
            "sync phases"
        );
        Ok(SyncResponse {
            protocol: PROTOCOL_VERSION,
            cursor: pulled.cursor,
            more: pulled.more,
            accepted,
            changes: pulled.changes,
            rejected: pulled.rejected,
        })
    }

    /// Changes of the territory accepted so far.
    pub fn change_count(&self, territory: bilan_shared::ids::TerritoryId) -> Result<u64> {
        self.store.change_count(territory)
    }

    /// Log compaction (the console's `compact`, and the server periodically).
    pub fn compact(&self) -> Result<crate::storage::CompactReport> {
        self.store.compact()
    }
}
