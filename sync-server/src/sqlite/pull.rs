//! The sync log's read side: a page of the territory's merged changes after
//! a device's cursor, walked on a covering index.

use bilan_shared::ids::TerritoryId;
use bilan_shared::protocol::Rejection;
use rusqlite::{Connection, OptionalExtension, params};

use super::core::{Result, parse_id};
use crate::codec::{code_of_name, unpack};
use crate::storage::PullPage;

/// A pull's walk of the territory's log (see the index `log_pull`).
pub(super) const PULL_WALK: &str = "SELECT seq, device_id, rejected FROM log
     WHERE territory_id = ?1 AND seq > ?2 AND seq <= ?3 ORDER BY seq";

/// The read half of a sync: merged log bundles after `cursor` (up to
/// `upto`, the merger's progress), the device's own left out, within
/// about `page_bytes`. A row whose bytes compaction cleared is sent as the
/// document's snapshot (once per response). The device's own rows that
/// the merger refused are reported, so it can tell its user (or resend).
/// Approved inspections a later approved one supersedes are left out
/// ([`crate::sql::superseded`]).
/// With `look_ahead`, `more` is also set while another device's rows wait
/// for the merger.
pub(super) fn pull(
    conn: &Connection,
    territory: TerritoryId,
    device: &str,
    cursor: u64,
    upto: i64,
    page_bytes: u64,
    look_ahead: bool,
) -> Result<PullPage> {
    let mut out = PullPage::at(cursor);
    let mut snapshots_sent = std::collections::HashSet::new();
    // Read once, when the first row to send comes (an edit's answer with
    // nothing new from others never reads it).
    let mut superseded: Option<std::collections::HashSet<String>> = None;
    // The walk reads the covering index `log_pull` only; a row's document
    // and bundle (or reason) are read for the rows that need them.
    let mut stmt = conn.prepare_cached(PULL_WALK)?;
    let mut row_of = conn.prepare_cached(
        "SELECT doc_id, CASE WHEN rejected IS NULL THEN bytes END, reason FROM log WHERE seq = ?1",
    )?;
    let mut rows = stmt.query(params![territory.to_string(), cursor as i64, upto])?;
    while let Some(r) = rows.next()? {
        let seq: i64 = r.get(0)?;
        let from: String = r.get(1)?;
        let rejected: Option<String> = r.get(2)?;
        let mine = from == device;
        if mine == rejected.is_none() {
            // Its own merged rows, or another device's refused ones.
            out.cursor = seq as u64;
            continue;
        }
        let (doc, stored, reason): (String, Option<Vec<u8>>, Option<String>) =
            row_of.query_row([seq], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        if rejected.is_none() && superseded_set(conn, territory, &mut superseded)?.contains(&doc) {
            out.cursor = seq as u64;
            continue;
        }
        match rejected {
            Some(code) => out.rejected.push(Rejection {
                doc_id: parse_id(doc)?,
                code: code_of_name(code),
                message: reason.unwrap_or_default(),
            }),
            None => {
                let bytes: Option<Vec<u8>> = match stored {
                    Some(b) => Some(unpack(b)?),
                    None if snapshots_sent.insert(doc.clone()) => conn
                        .prepare_cached("SELECT snapshot FROM documents WHERE doc_id = ?1")?
                        .query_row([&doc], |r| r.get(0))
                        .optional()?
                        .flatten(),
                    None => None,
                };
                if let Some(bytes) = bytes
                    && !out.add(seq, parse_id(doc)?, bytes, page_bytes)
                {
                    break;
                }
            }
        }
        out.cursor = seq as u64;
    }
    if !out.more && look_ahead {
        out.more = conn
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM log WHERE territory_id = ?1 AND seq > ?2 AND device_id != ?3)",
            )?
            .query_row(params![territory.to_string(), upto, device], |r| r.get(0))?;
    }
    Ok(out)
}

/// The territory's superseded approved inspections, read on first use.
fn superseded_set<'a>(
    conn: &Connection,
    territory: TerritoryId,
    cache: &'a mut Option<std::collections::HashSet<String>>,
) -> Result<&'a std::collections::HashSet<String>> {
    if cache.is_none() {
        let set = conn
            .prepare_cached(&crate::sql::superseded("?1"))?
            .query_map([territory.to_string()], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        *cache = Some(set);
    }
    Ok(cache.get_or_insert_default())
}
