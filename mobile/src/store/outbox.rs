//! What the sync engine needs: pages of the outbox, applying an answer
//! (acknowledged rows, remote changes, the cursor) in one transaction,
//! resending a document's whole history, the sync bar's figures.

use std::collections::HashMap;

use automerge::Change;
use bilan_shared::Inspection;
use bilan_shared::InspectionDoc;
use bilan_shared::doc::{changes_of_chunks, contain_panics, is_saved_document, now_ms};
use bilan_shared::ids::*;
use bilan_shared::protocol::DocChanges;
use rayon::prelude::*;
use rusqlite::{OptionalExtension, params};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

use super::docs::{raw_doc_upto, summary_of, write_summary_with_conflicts};
use super::{DeviceStore, OutboxPage, SyncStatus};
use crate::error::{MobileError, Result};

/// A document of a sync answer: its chunks as received, their changes, and
/// when it came as one saved document, its list row read from it (what a
/// device that has none of it lists, with no change applied again). Only
/// the row is kept, not the loaded document: an answer of hundreds of
/// inspections held loaded took hundreds of megabytes.
type Received = (
    InspectionId,
    Vec<ByteBuf>,
    Vec<Change>,
    Option<Result<(InspectionDoc, i64)>>,
);

/// Runs of consecutive row ids, as (first, last): acknowledging a cold push
/// of thousands of changes takes a handful of statements.
pub(super) fn id_runs(ids: &[i64]) -> Vec<(i64, i64)> {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut runs: Vec<(i64, i64)> = Vec::new();
    for id in sorted {
        match runs.last_mut() {
            Some((_, last)) if *last + 1 == id => *last = id,
            _ => runs.push((id, id)),
        }
    }
    runs
}

/// A document's changes as one saved document, when that is smaller and
/// loads back to the same heads (otherwise the changes go as they are).
fn compacted(changes: &[ByteBuf]) -> Option<Vec<u8>> {
    let raw: Vec<u8> = changes.iter().flat_map(|c| c.iter().copied()).collect();
    let mut doc = automerge::Automerge::new();
    doc.apply_changes(changes_of_chunks(&raw).ok()?).ok()?;
    let saved = doc.save();
    if saved.len() >= raw.len() {
        return None;
    }
    let back =
        bilan_shared::doc::contain_panics(|| Ok(automerge::Automerge::load(&saved)?)).ok()?;
    (back.get_heads() == doc.get_heads()).then_some(saved)
}

impl DeviceStore {
    /// Whether documents the server never had go as their saved form (the
    /// default) or as their changes (what builds before did: the sync
    /// benchmark compares both in one run).
    pub fn set_push_saved_documents(&self, saved: bool) -> Result<()> {
        if saved {
            self.clear_setting("push_as_changes")
        } else {
            self.set_setting("push_as_changes", "1")
        }
    }

    /// Every change the server has not acknowledged, grouped by document, with the row ids to ack.
    pub fn outbox(&self) -> Result<(Vec<DocChanges>, Vec<i64>)> {
        let page = self.outbox_page(usize::MAX, u64::MAX)?;
        Ok((page.docs, page.ids))
    }

    /// The first unacknowledged changes, whole documents at a time, within
    /// `max_docs` documents and about `max_bytes` of change bytes (a single
    /// larger document still goes alone), so that a request stays under the
    /// server's limits however long the device was offline. A document the
    /// server has never had goes as its saved form (see [`compacted`]).
    pub fn outbox_page(&self, max_docs: usize, max_bytes: u64) -> Result<OutboxPage> {
        let conn = self.lock();
        // CROSS JOIN makes SQLite walk the (small) outbox and sort it: with a
        // plain JOIN it walked every change of the device through the
        // `changes_doc` index to avoid the sort, so one edit's sync cost grew
        // with the device's history (57 ms of 73 at 10,000 inspections).
        let mut stmt = conn.prepare_cached(
            "SELECT c.id, c.doc_id, c.bytes FROM outbox o CROSS JOIN changes c ON c.id = o.id ORDER BY c.doc_id, c.id",
        )?;
        let mut page = OutboxPage::default();
        let mut bytes_in_page = 0u64;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let doc_id: InspectionId = r
                .get::<_, String>(1)?
                .parse()
                .map_err(|_| MobileError::Invalid("identifiant de document corrompu".into()))?;
            let bytes: Vec<u8> = r.get(2)?;
            let same_doc = page.docs.last().is_some_and(|d| d.doc_id == doc_id);
            if !same_doc
                && !page.docs.is_empty()
                && (page.docs.len() >= max_docs || bytes_in_page >= max_bytes)
            {
                page.more = true;
                break;
            }
            page.ids.push(r.get::<_, i64>(0)?);
            bytes_in_page += bytes.len() as u64;
            match page.docs.last_mut() {
                Some(d) if same_doc => d.changes.push(ByteBuf::from(bytes)),
                _ => page.docs.push(DocChanges {
                    doc_id,
                    changes: vec![ByteBuf::from(bytes)],
                }),
            }
        }
        drop(rows);
        // Documents the server has never seen (every change still in the
        // outbox) travel as their saved form when that is smaller: automerge
        // keeps every change, its author and time in it, compressed by
        // column (two thirds of the bytes of its changes, compressed, on the
        // sync bench's workload).
        let mut synced_before = conn.prepare_cached(
            "SELECT EXISTS(SELECT 1 FROM changes c WHERE c.doc_id = ?1
               AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.id = c.id))",
        )?;
        let mut never_synced = Vec::new();
        let as_changes = conn
            .query_row(
                "SELECT value FROM settings WHERE key = 'push_as_changes'",
                [],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .is_some_and(|v| v == "1");
        // A document compacted on the device since its last change already
        // has its saved form (checked to load back when it was written).
        let mut whole_snapshot = conn.prepare_cached(
            "SELECT d.snapshot FROM docs d WHERE d.doc_id = ?1 AND d.snapshot IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM changes c WHERE c.doc_id = ?1 AND c.in_snapshot = 0)",
        )?;
        let mut ready: Vec<(usize, Vec<u8>)> = Vec::new();
        for (i, d) in page.docs.iter().enumerate().filter(|_| !as_changes) {
            let id = d.doc_id.to_string();
            let seen: bool = synced_before.query_row([&id], |r| r.get(0))?;
            if seen {
                continue;
            }
            match whole_snapshot
                .query_row([&id], |r| r.get::<_, Vec<u8>>(0))
                .optional()?
            {
                Some(snapshot) => ready.push((i, snapshot)),
                None => never_synced.push(i),
            }
        }
        drop(whole_snapshot);
        drop(synced_before);
        drop(stmt);
        drop(conn);
        let saved: Vec<(usize, Option<Vec<u8>>)> = never_synced
            .into_par_iter()
            .map(|i| (i, compacted(&page.docs[i].changes)))
            .collect();
        for (i, bytes) in saved {
            if let Some(bytes) = bytes {
                page.docs[i].changes = vec![ByteBuf::from(bytes)];
            }
        }
        for (i, snapshot) in ready {
            let raw: usize = page.docs[i].changes.iter().map(|c| c.len()).sum();
            if snapshot.len() < raw {
                page.docs[i].changes = vec![ByteBuf::from(snapshot)];
            }
        }
        Ok(page)
    }

    /// Applies a server response: stores remote chunks, acknowledges what was
    /// sent and moves the cursor, all in one transaction; then rewrites the
    /// list rows of the documents it touched. Returns how many changes came.
    pub fn apply_sync(&self, acked: &[i64], remote: Vec<DocChanges>, cursor: u64) -> Result<u64> {
        self.apply_sync_then(acked, remote, cursor, || {})
    }

    /// [`Self::apply_sync`], calling `checked` once every chunk has parsed and
    /// before anything is written: the sync engine sends its next pull then,
    /// so that the server prepares it while this device waits for its disk
    /// rather than while it parses on every core.
    pub fn apply_sync_then(
        &self,
        acked: &[i64],
        remote: Vec<DocChanges>,
        cursor: u64,
        checked: impl FnOnce(),
    ) -> Result<u64> {
        let started = std::time::Instant::now();
        // Every chunk is checked before anything is stored (on every core).
        // A document that comes as one saved document is kept loaded: a
        // device that has none of it takes it as is instead of applying its
        // changes one by one again.
        let parsed: Vec<Received> = remote
            .into_par_iter()
            .map(|d| {
                let mut changes = Vec::new();
                let mut loaded = None;
                match d.changes.as_slice() {
                    [only] if is_saved_document(only) => {
                        let doc = contain_panics(|| Ok(automerge::Automerge::load(only)?))
                            .map_err(MobileError::protocol)?;
                        changes.extend(doc.get_changes(&[]).into_iter().cloned());
                        loaded = Some(summary_of(&Inspection::from_automerge(doc)));
                    }
                    items => {
                        for item in items {
                            changes.extend(changes_of_chunks(item).map_err(MobileError::protocol)?);
                        }
                    }
                }
                Ok((d.doc_id, d.changes, changes, loaded))
            })
            .collect::<Result<_>>()?;
        // A document may come in several runs of one response: one entry each.
        let mut index: HashMap<InspectionId, usize> = HashMap::new();
        let mut grouped: Vec<Received> = Vec::new();
        for (doc_id, items, changes, loaded) in parsed {
            match index.get(&doc_id) {
                Some(&i) => {
                    grouped[i].1.extend(items);
                    grouped[i].2.extend(changes);
                    grouped[i].3 = None;
                }
                None => {
                    index.insert(doc_id, grouped.len());
                    grouped.push((doc_id, items, changes, loaded));
                }
            }
        }
        let parsed = grouped;
        checked();
        let received = parsed.iter().map(|p| p.2.len() as u64).sum();
        let parsed_at = started.elapsed();
        let before: i64;
        {
            let mut conn = self.lock();
            let tx = conn.transaction()?;
            before = tx.query_row("SELECT COALESCE(MAX(id), 0) FROM changes", [], |r| r.get(0))?;
            {
                let mut ack = tx.prepare_cached("DELETE FROM outbox WHERE id BETWEEN ?1 AND ?2")?;
                for (first, last) in id_runs(acked) {
                    ack.execute([first, last])?;
                }
                // One row per received chunk (a bundle of changes or a snapshot).
                let mut ins = tx.prepare_cached(
                    "INSERT OR IGNORE INTO changes (doc_id, hash, bytes, local, acked) VALUES (?1, ?2, ?3, 0, 1)",
                )?;
                let mut doc = tx.prepare_cached(
                    "INSERT INTO docs (doc_id, snapshot, updated_at) VALUES (?1, NULL, ?2)
                     ON CONFLICT(doc_id) DO UPDATE SET updated_at = excluded.updated_at",
                )?;
                for (doc_id, items, _, _) in &parsed {
                    doc.execute(params![doc_id.to_string(), now_ms()])?;
                    for item in items {
                        ins.execute(params![
                            doc_id.to_string(),
                            Sha256::digest(item.as_slice()).as_slice(),
                            item.as_slice()
                        ])?;
                    }
                }
            }
            tx.execute(
                "INSERT INTO settings (key, value) VALUES ('cursor', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [cursor.to_string()],
            )?;
            let written_at = started.elapsed();
            tx.commit()?;
            tracing::debug!(
                parse_ms = parsed_at.as_secs_f64() * 1000.0,
                write_ms = (written_at - parsed_at).as_secs_f64() * 1000.0,
                commit_ms = (started.elapsed() - written_at).as_secs_f64() * 1000.0,
                "apply_sync stored"
            );
        }
        // Open documents take the changes as they are; the others are built
        // from what SQLite held before plus the parsed changes, on every core,
        // and not kept in memory (a first sync may bring thousands).
        let mut rows: Vec<(InspectionId, Result<(InspectionDoc, i64)>)> = Vec::new();
        let mut raws = Vec::new();
        {
            let mut docs = self.docs();
            let conn = self.lock();
            for (doc_id, _, changes, loaded) in parsed {
                match docs.get_mut(&doc_id) {
                    Some(insp) => {
                        if insp.apply_changes(changes).is_err() {
                            docs.remove(&doc_id);
                        } else {
                            rows.push((doc_id, summary_of(insp)));
                        }
                    }
                    None => {
                        if let Some(raw) = raw_doc_upto(&conn, doc_id, before)? {
                            raws.push((doc_id, raw, changes, loaded));
                        }
                    }
                }
            }
        }
        rows.par_extend(raws.into_par_iter().map(|(id, raw, changes, loaded)| {
            let row = match loaded {
                Some(row) if raw.is_empty() => row,
                _ => raw.build_with(changes).and_then(|insp| summary_of(&insp)),
            };
            (id, row)
        }));
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        // A document whose first changes have not all arrived yet stays unlisted.
        for (id, (d, n)) in rows.into_iter().filter_map(|(id, r)| Some((id, r.ok()?))) {
            write_summary_with_conflicts(&tx, id, &d, n)?;
        }
        tx.commit()?;
        tracing::debug!(
            total_ms = started.elapsed().as_secs_f64() * 1000.0,
            "apply_sync listed"
        );
        Ok(received)
    }

    /// Marks every change of a document unacknowledged, so the next sync resends
    /// its whole history (after the server reported missing dependencies).
    pub fn resend_all(&self, doc_id: InspectionId) -> Result<()> {
        let all: Vec<Change> = self.with_doc(doc_id, |insp| Ok(insp.changes_since(&[])))?;
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        for c in &all {
            tx.execute(
                "INSERT OR IGNORE INTO changes (doc_id, hash, bytes, local, acked, in_snapshot) VALUES (?1, ?2, ?3, 0, 0, 1)",
                params![doc_id.to_string(), c.hash().0.as_slice(), c.raw_bytes()],
            )?;
        }
        tx.execute(
            "INSERT OR IGNORE INTO outbox (id) SELECT id FROM changes WHERE doc_id = ?1",
            [doc_id.to_string()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The sync bar's figures.
    pub fn status(&self) -> Result<SyncStatus> {
        let conn = self.lock();
        let pending_changes: i64 =
            conn.query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))?;
        let (pending_photos, bytes): (i64, i64) = conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM photos WHERE uploaded = 0",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        drop(conn);
        Ok(SyncStatus {
            pending_changes: pending_changes as u64,
            pending_photos: pending_photos as u64,
            pending_photo_bytes: bytes as u64,
            last_sync_ms: self.setting("last_sync_ms")?.and_then(|s| s.parse().ok()),
            last_error: self.setting("last_error")?,
        })
    }
}
