//! End-to-end: the live progress a sync reports to the sync bar, on a real
//! server: the stages it goes through, the photo queue's bytes going
//! forward only, and a finished sync at 100 %, with a cut upload too.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use bilan_e2e::{Proxy, TestServer, device, first_complex, roof_finding};
use bilan_mobile::progress::{Progress, Stage};
use bilan_mobile::{DeviceStore, SyncEngine};

/// Camera-like bytes (the server does not decode them).
fn photo(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// A finding with `count` photos of `size` bytes; returns their total.
fn photos_on_a_finding(d: &DeviceStore, count: usize, size: usize) -> u64 {
    let id = d.start_inspection(first_complex(d)).unwrap();
    let fid = d.add_finding(id, roof_finding()).unwrap();
    for i in 0..count {
        d.attach_photo(id, fid, &photo(size, i as u32), "image/jpeg", "Toit")
            .unwrap();
    }
    (count * size) as u64
}

/// Syncs `d` once, recording every progress state
/// the engine publishes (as a watcher sees them: each one it wakes for).
async fn sync_recording(d: &DeviceStore) -> (Vec<Progress>, bilan_mobile::Result<()>) {
    let (tx, mut rx) = tokio::sync::watch::channel(Progress::default());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = {
        let seen = seen.clone();
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let p = rx.borrow_and_update().clone();
                seen.lock().unwrap().push(p);
            }
        })
    };
    let engine = SyncEngine::new(d).with_progress(tx);
    let result = engine.sync().await.map(|_| ());
    let last = engine.progress();
    drop(engine);
    recorder.await.unwrap();
    let mut states = std::mem::take(&mut *seen.lock().unwrap());
    if states.last() != Some(&last) {
        states.push(last);
    }
    (states, result)
}

/// The queue's bytes never go back, photos come in order, and the sync
/// ends "Done" with the whole queue on the server.
fn assert_forward_to_complete(states: &[Progress], total: u64, photos: usize) {
    let queue: Vec<u64> = states.iter().map(|p| p.queue.0).collect();
    assert!(
        queue.windows(2).all(|w| w[0] <= w[1]),
        "the queue's bytes only go forward: {queue:?}"
    );
    let indices: Vec<usize> = states
        .iter()
        .filter_map(|p| match p.stage {
            Stage::Photos { index, count } => {
                assert_eq!(count, photos);
                Some(index)
            }
            _ => None,
        })
        .collect();
    assert!(
        indices.windows(2).all(|w| w[0] <= w[1]),
        "photos in order: {indices:?}"
    );
    assert!(!indices.is_empty(), "the photo stage was reported");
    let end = states.last().unwrap();
    assert_eq!(end.stage, Stage::Done);
    assert_eq!(end.queue, (total, total));
    assert_eq!(end.queue_fraction(), 1.0);
    assert!(end.bytes >= total, "{} bytes counted", end.bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_with_photos_reports_progress_that_only_goes_forward_and_ends_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("server")).await;
    let d = device(&tmp.path().join("d"), &server.url(), "inspecteur1").await;
    let total = photos_on_a_finding(&d, 3, 600_000);
    let (states, result) = sync_recording(&d).await;
    result.unwrap();
    assert_forward_to_complete(&states, total, 3);
    assert!(
        states
            .iter()
            .any(|p| matches!(p.stage, Stage::Sending { .. })),
        "the changes' sending was reported"
    );
    assert_eq!(d.photos_to_upload(i64::MAX).unwrap().len(), 0);
}

/// An upload cut at half its body resumes from what the server kept: the
/// bar takes back at most the photo's bytes lost with the cut, and the
/// sync still ends complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_upload_resumes_and_the_progress_still_ends_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("server")).await;
    let proxy = Proxy::start(server.addr).await;
    let d = device(&tmp.path().join("d"), &proxy.url(), "inspecteur1").await;
    let total = photos_on_a_finding(&d, 2, 1_000_000);
    proxy.cut_uploads_at_half.store(true, Ordering::SeqCst);
    let (mut states, first) = sync_recording(&d).await;
    let queue: Vec<u64> = states.iter().map(|p| p.queue.0).collect();
    assert!(
        queue
            .windows(2)
            .all(|w| w[1] >= w[0] || w[0] - w[1] <= 1_000_000),
        "only a cut photo's bytes are taken back: {queue:?}"
    );
    if first.is_err() {
        // The cut reached the device as a failed sync: the next one resumes.
        let (more, second) = sync_recording(&d).await;
        second.unwrap();
        states = more;
    }
    let end = states.last().unwrap();
    assert_eq!(end.stage, Stage::Done);
    assert_eq!(end.queue.0, end.queue.1);
    assert!(end.queue.1 <= total);
    assert_eq!(d.photos_to_upload(i64::MAX).unwrap().len(), 0);
}
