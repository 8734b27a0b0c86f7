//! The sync log's read side on PostgreSQL: a page of the territory's merged
//! changes after a device's cursor.

use bilan_shared::ids::TerritoryId;
use bilan_shared::protocol::Rejection;
use deadpool_postgres::GenericClient;

use super::core::{Cached, Result, id};
use crate::codec::{code_of_name, unpack};
use crate::storage::PullPage;

/// Log rows read per query while filling a page.
const PULL_BATCH: i64 = 128;

/// Merged log rows after `cursor` up to `upto`, the device's own left out,
/// within about `page_bytes`; a row whose bytes compaction cleared is sent
/// as its document's snapshot (once per page); the device's refused rows
/// are reported; approved inspections a later approved one supersedes are
/// left out ([`crate::sql::superseded`]). `more` is also set while rows
/// wait for the merger.
pub(super) async fn pull(
    client: &impl GenericClient,
    territory: TerritoryId,
    device: &str,
    cursor: u64,
    upto: i64,
    page_bytes: u64,
) -> Result<PullPage> {
    let mut out = PullPage::at(cursor);
    let mut snapshots_sent = std::collections::HashSet::new();
    let t = territory.to_string();
    // Read once, when the first row to send comes (an edit's answer with
    // nothing new from others never reads it).
    let mut superseded: Option<std::collections::HashSet<String>> = None;
    // Rows a batch at a time, each with the bytes it sends (none for the
    // device's own rows and others' refused ones): one round trip per
    // batch, not per row.
    'batches: loop {
        let rows = client
            .rows(
                "SELECT seq, doc_id, device_id = $4, rejected,
                   CASE WHEN rejected IS NULL AND device_id != $4 THEN bytes END,
                   CASE WHEN device_id = $4 THEN reason END
                 FROM log WHERE territory_id = $1 AND seq > $2 AND seq <= $3
                 ORDER BY seq LIMIT $5",
                &[&t, &(out.cursor as i64), &upto, &device, &PULL_BATCH],
            )
            .await?;
        let last_batch = (rows.len() as i64) < PULL_BATCH;
        for r in rows {
            let seq: i64 = r.get(0);
            let doc: String = r.get(1);
            let mine: bool = r.get(2);
            let rejected: Option<String> = r.get(3);
            if !mine && rejected.is_none() && superseded.is_none() {
                superseded = Some(
                    client
                        .rows(&crate::sql::superseded("$1"), &[&t])
                        .await?
                        .iter()
                        .map(|r| r.get(0))
                        .collect(),
                );
            }
            let old = || superseded.as_ref().is_some_and(|s| s.contains(&doc));
            if mine == rejected.is_none() || (!mine && old()) {
                // Its own merged rows, another device's refused ones, or an
                // approved inspection a later approved one supersedes.
                out.cursor = seq as u64;
                continue;
            }
            match rejected {
                Some(code) => out.rejected.push(Rejection {
                    doc_id: id(doc)?,
                    code: code_of_name(code),
                    message: r.get::<_, Option<String>>(5).unwrap_or_default(),
                }),
                None => {
                    let bytes = match r.get::<_, Option<Vec<u8>>>(4) {
                        Some(b) => Some(unpack(b)?),
                        None if snapshots_sent.insert(doc.clone()) => client
                            .opt("SELECT snapshot FROM documents WHERE doc_id = $1", &[&doc])
                            .await?
                            .and_then(|r| r.get::<_, Option<Vec<u8>>>(0)),
                        None => None,
                    };
                    if let Some(bytes) = bytes
                        && !out.add(seq, id(doc)?, bytes, page_bytes)
                    {
                        break 'batches;
                    }
                }
            }
            out.cursor = seq as u64;
        }
        if last_batch {
            break;
        }
    }
    if !out.more {
        out.more = client
            .one(
                "SELECT EXISTS(SELECT 1 FROM log WHERE territory_id = $1 AND seq > $2 AND device_id != $3)",
                &[&t, &upto, &device],
            )
            .await?
            .get(0);
    }
    Ok(out)
}
