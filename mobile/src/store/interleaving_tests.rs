//! Property test of the device store under the concurrency a sync brings:
//! the inspector's edits, pulled pages being stored and the device's own
//! compactions run at once on three threads, in whatever order the
//! scheduler picks; nothing edited or received may be lost, in memory or
//! after the app is stopped and opened again, and every edit stays in the
//! outbox until acknowledged.

use std::path::Path;
use std::sync::{Arc, Barrier};

use bilan_shared::catalogue::Catalogue;
use bilan_shared::domain::Rating;
use bilan_shared::ids::InspectionId;
use bilan_shared::protocol::DocChanges;
use proptest::prelude::*;

use super::DeviceStore;

/// Components this device rates, and the ones a colleague rates (apart,
/// so each has one expected value).
fn components() -> (Vec<String>, Vec<String>) {
    let all: Vec<String> = Catalogue::current()
        .components()
        .map(|(_, c)| c.code.clone())
        .take(16)
        .collect();
    (all[..8].to_vec(), all[8..].to_vec())
}

const RATINGS: [Rating; 5] = [Rating::A, Rating::B, Rating::C, Rating::D, Rating::E];

/// A logged-in store; signed in to `from`'s territory when given, else
/// to a new one with one complex (`tests::logged_in`).
fn store_of(dir: &Path, user: &str, from: Option<&DeviceStore>) -> DeviceStore {
    let Some(from) = from else {
        return super::tests::logged_in(dir).0;
    };
    let store = DeviceStore::open(dir).unwrap();
    store
        .sign_in_offline(
            user,
            user,
            from.territory().unwrap().unwrap(),
            vec![],
            from.complexes().unwrap(),
        )
        .unwrap();
    store
}

/// The last rating written to each component by `edits`.
fn expected(codes: &[String], edits: &[(usize, usize)]) -> Vec<(String, Rating)> {
    let mut last = std::collections::BTreeMap::new();
    for &(c, r) in edits {
        last.insert(codes[c].clone(), RATINGS[r]);
    }
    last.into_iter().collect()
}

fn assert_has(store: &DeviceStore, id: InspectionId, values: &[(String, Rating)], what: &str) {
    let doc = store.inspection(id).unwrap();
    for (code, rating) in values {
        assert_eq!(
            doc.components[code].rating,
            Some(*rating),
            "{what}: {code} lost"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn nothing_edited_or_received_is_lost_whatever_the_interleaving(
        local in proptest::collection::vec((0usize..8, 0usize..5), 1..14),
        remote in proptest::collection::vec((0usize..8, 0usize..5), 1..14),
        page in 1usize..4,
        compactions in 1usize..8,
    ) {
        let (mine, theirs) = components();
        let dir_a = tempfile::tempdir().unwrap();
        let dir_b = tempfile::tempdir().unwrap();
        let dir_c = tempfile::tempdir().unwrap();
        let a = Arc::new(store_of(dir_a.path(), "julie", None));
        let b = store_of(dir_b.path(), "karim", Some(&a));
        let id = a.start_inspection(a.complexes().unwrap()[0].id).unwrap();
        b.apply_sync(&[], a.outbox().unwrap().0, 0).unwrap();
        // The colleague's edits, as the pages a pull brings: each page
        // the changes of `page` edits.
        let mut pages: Vec<Vec<DocChanges>> = Vec::new();
        for edits in remote.chunks(page) {
            for &(c, r) in edits {
                b.rate(id, &theirs[c], RATINGS[r]).unwrap();
            }
            let (docs, ids) = b.outbox().unwrap();
            b.apply_sync(&ids, vec![], 0).unwrap();
            pages.push(docs);
        }
        let server_has = pages.concat();
        let start = Arc::new(Barrier::new(3));
        let editing = {
            let (a, start, codes, local) = (a.clone(), start.clone(), mine.clone(), local.clone());
            std::thread::spawn(move || {
                start.wait();
                for (c, r) in local {
                    a.rate(id, &codes[c], RATINGS[r]).unwrap();
                }
            })
        };
        let pulling = {
            let (a, start) = (a.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                for (i, docs) in pages.into_iter().enumerate() {
                    a.apply_sync(&[], docs, i as u64 + 1).unwrap();
                }
            })
        };
        let compacting = {
            let (a, start) = (a.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                for i in 0..compactions {
                    if i % 2 == 0 {
                        a.put_away(id).unwrap();
                    } else {
                        a.compact_if_due(id).unwrap();
                    }
                    std::thread::yield_now();
                }
            })
        };
        for t in [editing, pulling, compacting] {
            t.join().unwrap();
        }
        let ours = expected(&mine, &local);
        let received = expected(&theirs, &remote);
        assert_has(&a, id, &ours, "in memory, own edit");
        assert_has(&a, id, &received, "in memory, received");
        // Stopped and opened again: the same from its files.
        drop(a);
        let a = DeviceStore::open(dir_a.path()).unwrap();
        assert_has(&a, id, &ours, "reopened, own edit");
        assert_has(&a, id, &received, "reopened, received");
        // Every own edit is still in the outbox: a third device that gets
        // the colleague's pages (as the server has them) and this outbox
        // has them all.
        let c = store_of(dir_c.path(), "marc", Some(&a));
        let (outbox, _) = a.outbox().unwrap();
        c.apply_sync(&[], server_has, 0).unwrap();
        c.apply_sync(&[], outbox, 0).unwrap();
        assert_has(&c, id, &ours, "sent from the outbox");
    }
}
