//! The sync log's read side on PostgreSQL: a page of the territory's merged
//! changes after a device's cursor.

use bilan_shared::ids::TerritoryId;
use bilan_shared::protocol::Rejection;
use deadpool_postgres::GenericClient;

use super::core::{Result, id};
use crate::codec::{code_of_name, unpack};
use crate::storage::PullPage;

/// Merged log rows after `cursor` up to `upto`, the device's own left out,
/// within about `page_bytes`; a row whose bytes compaction cleared is sent
/// as its document's snapshot (once per page); the device's refused rows
/// are reported. `more` is also set while rows wait for the merger.
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
    let rows = client
        .query(
            "SELECT seq, device_id, rejected FROM log
             WHERE territory_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq",
            &[&t, &(cursor as i64), &upto],
        )
        .await?;
    for r in rows {
        let seq: i64 = r.get(0);
        let from: String = r.get(1);
        let rejected: Option<String> = r.get(2);
        let mine = from == device;
        if mine == rejected.is_none() {
            // Its own merged rows, or another device's refused ones.
            out.cursor = seq as u64;
            continue;
        }
        let row = client
            .query_one(
                "SELECT doc_id, CASE WHEN rejected IS NULL THEN bytes END, reason FROM log WHERE seq = $1",
                &[&seq],
            )
            .await?;
        let (doc, stored, reason): (String, Option<Vec<u8>>, Option<String>) =
            (row.get(0), row.get(1), row.get(2));
        match rejected {
            Some(code) => out.rejected.push(Rejection {
                doc_id: id(doc)?,
                code: code_of_name(code),
                message: reason.unwrap_or_default(),
            }),
            None => {
                let bytes = match stored {
                    Some(b) => Some(unpack(b)?),
                    None if snapshots_sent.insert(doc.clone()) => client
                        .query_opt("SELECT snapshot FROM documents WHERE doc_id = $1", &[&doc])
                        .await?
                        .and_then(|r| r.get::<_, Option<Vec<u8>>>(0)),
                    None => None,
                };
                if let Some(bytes) = bytes
                    && !out.add(seq, id(doc)?, bytes, page_bytes)
                {
                    break;
                }
            }
        }
        out.cursor = seq as u64;
    }
    if !out.more {
        out.more = client
            .query_one(
                "SELECT EXISTS(SELECT 1 FROM log WHERE territory_id = $1 AND seq > $2 AND device_id != $3)",
                &[&t, &upto, &device],
            )
            .await?
            .get(0);
    }
    Ok(out)
}
