//! What the fault tests share: an edit that is certainly one change, and
//! the final check that every device holds exactly the server's documents.

use bilan_mobile::DeviceStore;
use bilan_server::Service;
use bilan_shared::domain::Rating;
use bilan_shared::ids::InspectionId;

use crate::workload::Seq;

/// The components the edits rate.
pub const COMPONENTS: [&str; 6] = ["A1010", "B2010", "B3010", "C1010", "D2021", "D3020"];
/// The ratings they choose from.
pub const RATINGS: [Rating; 5] = [Rating::A, Rating::B, Rating::C, Rating::D, Rating::E];

/// Every device has nothing left to send and lists exactly the server's
/// inspections, each with the server's automerge heads; returns their ids.
pub fn assert_devices_hold_the_servers_inspections(
    store: &Service,
    manager: &bilan_shared::protocol::UserInfo,
    devices: &[DeviceStore],
) -> Vec<InspectionId> {
    let mut ids: Vec<InspectionId> = store
        .summaries(manager)
        .unwrap()
        .into_iter()
        .map(|s| s.inspection_id)
        .collect();
    ids.sort();
    let ids = &ids[..];
    for (i, d) in devices.iter().enumerate() {
        assert_eq!(
            d.status().unwrap().pending_changes,
            0,
            "device {i} has unsent edits"
        );
        let mut mine = d.inspection_ids().unwrap();
        mine.sort();
        assert_eq!(mine, ids, "device {i} lists the server's inspections");
        for id in ids {
            assert_eq!(
                d.heads(*id).unwrap(),
                store
                    .inspection(manager, *id)
                    .unwrap()
                    .automerge()
                    .get_heads(),
                "device {i}, inspection {id}"
            );
        }
    }
    ids.to_vec()
}

/// Makes one edit that certainly changes the document (a new inspection, or
/// a rating different from the current one), so every edit is one change.
pub fn edit(d: &DeviceStore, seq: &mut Seq) -> InspectionId {
    let ids = d.inspection_ids().unwrap();
    if ids.is_empty() || seq.next_u64().is_multiple_of(8) {
        let complexes = d.complexes().unwrap();
        let c = &complexes[(seq.next_u64() % complexes.len() as u64) as usize];
        return d.start_inspection(c.id).unwrap();
    }
    let id = ids[(seq.next_u64() % ids.len() as u64) as usize];
    let code = COMPONENTS[(seq.next_u64() % COMPONENTS.len() as u64) as usize];
    let now = d.inspection(id).unwrap().components[code].rating;
    let choices: Vec<Rating> = RATINGS.into_iter().filter(|r| Some(*r) != now).collect();
    let rating = choices[(seq.next_u64() % choices.len() as u64) as usize];
    d.rate(id, code, rating).unwrap();
    id
}
