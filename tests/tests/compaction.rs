//! End-to-end log compaction: devices still receive everything, and a
//! device behind across a compaction gets small bundles within the retention.

use bilan_e2e::{TestServer, device, sync, two_devices_with_one_inspection_on};
use bilan_shared::domain::Rating;

/// Log compaction (retention 0) folds each inspection into its snapshot and
/// clears the log bytes it covers, without losing a change: a new device
/// still receives every inspection whole, a second compaction finds nothing
/// to do, and an edit made afterwards travels as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_log_compaction_a_new_device_still_receives_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let server =
        TestServer::start_with(&tmp.path().join("server"), |c| c.log_retention_days = 0).await;
    let (server, a, _b, id) = two_devices_with_one_inspection_on(server, tmp.path()).await;
    a.rate(id, "B3010", Rating::D).unwrap();
    sync(&a).await;
    let territory = a.user().unwrap().unwrap().territory_id.unwrap();
    let store = server.state.service();
    let changes = store.change_count(territory).unwrap();
    let r = store.compact().unwrap();
    assert_eq!(r.documents, 1);
    assert!(r.rows_cleared >= 2, "{r:?}");
    assert_eq!(
        store.compact().unwrap(),
        bilan_server::storage::CompactReport::default()
    );
    assert_eq!(store.change_count(territory).unwrap(), changes);

    let c = device(&tmp.path().join("c"), &server.url(), "inspecteur2").await;
    sync(&c).await;
    assert_eq!(
        c.inspection(id).unwrap().components["B3010"].rating,
        Some(Rating::D)
    );
    assert_eq!(c.heads(id).unwrap(), a.heads(id).unwrap());

    a.rate(id, "B2020", Rating::C).unwrap();
    sync(&a).await;
    sync(&c).await;
    assert_eq!(
        c.inspection(id).unwrap().components["B2020"].rating,
        Some(Rating::C)
    );
    assert_eq!(c.heads(id).unwrap(), a.heads(id).unwrap());
}

/// A device that was behind across a compaction gets what it misses as the
/// small bundles still kept (retention, 30 days by default), not the whole
/// snapshot of the inspection; once the retention has passed (0 here), the
/// same catch-up sends the snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_behind_across_a_compaction_gets_small_bundles_within_the_retention() {
    let mut figures = Vec::new();
    for retention in [30, 0] {
        let tmp = tempfile::tempdir().unwrap();
        let server = TestServer::start_with(&tmp.path().join("server"), |c| {
            c.log_retention_days = retention
        })
        .await;
        let (server, a, b, id) = two_devices_with_one_inspection_on(server, tmp.path()).await;
        b.rate(id, "B3010", Rating::D).unwrap();
        sync(&b).await;
        let r = server.state.service().compact().unwrap();
        assert_eq!(r.documents, 1, "snapshot written either way");
        let report = sync(&a).await;
        assert_eq!(
            a.inspection(id).unwrap().components["B3010"].rating,
            Some(Rating::D)
        );
        assert_eq!(a.heads(id).unwrap(), b.heads(id).unwrap());
        figures.push((
            retention,
            r.rows_cleared,
            report.received_changes,
            report.bytes_down,
        ));
    }
    let [
        (_, kept_cleared, kept_changes, kept_bytes),
        (_, all_cleared, all_changes, all_bytes),
    ] = figures[..]
    else {
        unreachable!()
    };
    println!(
        "behind across a compaction: {kept_bytes} B down (bundle kept), {all_bytes} B down (snapshot)"
    );
    assert_eq!(kept_cleared, 0, "recent rows keep their bytes");
    assert_eq!(kept_changes, 1, "only the missing change travels");
    assert!(all_cleared >= 2);
    assert!(all_changes > 1, "the snapshot carries the whole history");
    assert!(
        kept_bytes * 3 < all_bytes,
        "{kept_bytes} B with the bundle kept, {all_bytes} B with the snapshot"
    );
}
