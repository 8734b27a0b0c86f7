//! End-to-end on a slow rural link (the fault proxy shaping 1 Mbit/s and a
//! 300 ms round trip): a day's work syncs completely with live progress at
//! least once a second, and a sync stopped in the middle resumes without
//! sending again what the server acknowledged. Scaled down for CI (a few
//! small photos); `sync-bench`'s slow-link scenario runs the whole day.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bilan_e2e::fault_proxy::{FaultProxy, Link};
use bilan_e2e::{TestServer, device, roof_finding};
use bilan_mobile::progress::{Progress, Stage};
use bilan_mobile::{DeviceStore, SyncEngine};
use bilan_shared::domain::Rating;

/// A day of visits: `inspections` inspections, each with a few ratings and
/// a finding with `photos` photos of `size` bytes. Returns the photo bytes.
fn day_of_work(d: &DeviceStore, inspections: usize, photos: usize, size: usize) -> u64 {
    let complexes = d.complexes().unwrap();
    for i in 0..inspections {
        let id = d
            .start_inspection(complexes[i % complexes.len()].id)
            .unwrap();
        for code in ["A1010", "B2010", "B3010"] {
            d.rate(id, code, Rating::C).unwrap();
        }
        let fid = d.add_finding(id, roof_finding()).unwrap();
        for p in 0..photos {
            // xorshift, a stream of its own per photo.
            let mut x = 0x9E37_79B9_7F4A_7C15u64
                ^ ((i * photos + p + 1) as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
            let bytes: Vec<u8> = (0..size)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 24) as u8
                })
                .collect();
            d.attach_photo(id, fid, &bytes, "image/jpeg", "Toit")
                .unwrap();
        }
    }
    (inspections * photos * size) as u64
}

/// Progress states as a watcher saw them, each with when it saw it.
type Seen = Arc<Mutex<Vec<(Instant, Progress)>>>;

fn watch(rx: tokio::sync::watch::Receiver<Progress>) -> (Seen, tokio::task::JoinHandle<()>) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let task = tokio::spawn(async move {
        let mut rx = rx;
        while rx.changed().await.is_ok() {
            let p = rx.borrow_and_update().clone();
            s.lock().unwrap().push((Instant::now(), p));
        }
    });
    (seen, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_of_work_syncs_on_a_rural_link_with_progress_every_second_to_100_percent() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("server")).await;
    let proxy = FaultProxy::start(server.addr, 1).await;
    let d = device(&tmp.path().join("d"), &proxy.url(), "inspecteur1").await;
    let total = day_of_work(&d, 3, 2, 120_000);
    proxy.set_link(Some(Link::RURAL));
    let (tx, rx) = tokio::sync::watch::channel(Progress::default());
    let (seen, watcher) = watch(rx);
    let engine = SyncEngine::new(&d).with_progress(tx);
    let started = Instant::now();
    let report = engine.sync().await.unwrap();
    let took = started.elapsed();
    drop(engine);
    watcher.await.unwrap();
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    // Slow for real: at least the photos' time on a 1 Mbit/s link.
    assert!(
        took >= Duration::from_secs_f64(total as f64 * 8.0 / 1_000_000.0),
        "{took:?} for {total} bytes"
    );
    assert_eq!(report.photos_uploaded, 6);
    assert_eq!(d.status().unwrap().pending_changes, 0);
    assert!(d.photos_to_upload(i64::MAX).unwrap().is_empty());
    // Monotonic, and ending at 100 %.
    let queue: Vec<u64> = seen.iter().map(|(_, p)| p.queue.0).collect();
    assert!(queue.windows(2).all(|w| w[0] <= w[1]), "{queue:?}");
    let end = &seen.last().unwrap().1;
    assert_eq!(end.stage, Stage::Done);
    assert_eq!(end.queue, (total, total));
    // At least once a second, from the first state to the last.
    let gaps: Vec<Duration> = seen.windows(2).map(|w| w[1].0 - w[0].0).collect();
    let longest = gaps.iter().max().copied().unwrap_or_default();
    assert!(
        longest <= Duration::from_secs(1),
        "longest time without news: {longest:?} ({} states over {took:?})",
        seen.len()
    );
    assert!(
        seen.iter()
            .any(|(_, p)| p.bytes_per_sec.is_some() && p.left.is_some()),
        "speed and time left were reported"
    );
}

/// The app is stopped in the middle of the photos (the sync's future
/// dropped, as when the process dies): the next sync sends only what the
/// server had not acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_stopped_midway_on_a_rural_link_resumes_without_resending_what_was_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("server")).await;
    let proxy = FaultProxy::start(server.addr, 2).await;
    let d = device(&tmp.path().join("d"), &proxy.url(), "inspecteur1").await;
    let total = day_of_work(&d, 2, 2, 100_000);
    proxy.set_link(Some(Link::RURAL));
    let (tx, mut rx) = tokio::sync::watch::channel(Progress::default());
    {
        let engine = SyncEngine::new(&d).with_progress(tx);
        let third_photo = async {
            while rx.changed().await.is_ok() {
                let p = rx.borrow_and_update().clone();
                if matches!(p.stage, Stage::Photos { index: 3, .. }) && p.photo.0 > 0 {
                    return;
                }
            }
        };
        tokio::select! {
            r = engine.sync() => panic!("the sync should have been stopped first: {r:?}"),
            () = third_photo => {}
        }
    }
    assert_eq!(
        d.status().unwrap().pending_changes,
        0,
        "changes acknowledged"
    );
    let left = d.photos_to_upload(i64::MAX).unwrap();
    assert_eq!(left.len(), 2, "two photos acknowledged before the stop");
    let report = SyncEngine::new(&d).sync().await.unwrap();
    assert_eq!(report.photos_uploaded, 2);
    assert!(
        report.photo_bytes_sent <= total / 2,
        "{} bytes sent again of {total}",
        report.photo_bytes_sent
    );
    assert_eq!(report.sent_changes, 0);
    assert!(d.photos_to_upload(i64::MAX).unwrap().is_empty());
}
