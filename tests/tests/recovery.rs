//! End-to-end recovery: a sync whose answer is cut, server and device
//! processes killed and restarted, a photo upload cut halfway: nothing is
//! lost and nothing is duplicated.

use std::sync::atomic::Ordering;

use bilan_e2e::{
    DEMO_PASSWORD, ProcessServer, Proxy, ProxyMode, TestServer, device, first_complex,
    put_photo_under_a_wrong_name, server_doc, sync,
};
use bilan_mobile::{DeviceStore, NewFinding, SyncEngine};
use bilan_shared::domain::{Rating, Severity};

/// The server commits a sync but the answer is lost on the way back; the
/// device retries: nothing lost, nothing duplicated in the server's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_whose_response_is_cut_is_retried_without_loss_or_duplicate() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("server")).await;
    let proxy = Proxy::start(server.addr).await;
    let a = device(&tmp.path().join("a"), &proxy.url(), "inspecteur1").await;
    let id = a.start_inspection(first_complex(&a)).unwrap();
    a.rate(id, "A1010", Rating::C).unwrap();
    a.rate(id, "A1020", Rating::B).unwrap();
    let territory = a.user().unwrap().unwrap().territory_id.unwrap();
    proxy.set_mode(ProxyMode::DropNextResponse);
    let err = SyncEngine::new(&a).sync().await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(a.status().unwrap().last_error.is_some());
    // The server did commit the three changes (a new inspection travels as
    // its saved document: one chunk of three changes); the device does not
    // know yet.
    assert_eq!(server.state.service().change_count(territory).unwrap(), 3);
    assert_eq!(a.status().unwrap().pending_changes, 3);
    let r = sync(&a).await;
    // Resent and stored again for the merger, which drops what it had.
    assert_eq!(
        (r.sent_changes, r.accepted),
        (3, 1),
        "the three changes resent, as one chunk"
    );
    assert_eq!(server.state.service().change_count(territory).unwrap(), 3);
    assert_eq!(a.status().unwrap().pending_changes, 0);
    assert!(a.status().unwrap().last_error.is_none());
    let ds = server_doc(&server, "responsable", id);
    assert_eq!(ds.components["A1020"].rating, Some(Rating::B));
}

/// The server process is SIGKILLed between and during syncs, and both it and
/// the device are restarted from their files: nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_server_and_device_lose_nothing() {
    let bin = env!("CARGO_BIN_EXE_e2e-server");
    let tmp = tempfile::tempdir().unwrap();
    let sdir = tmp.path().join("server");
    let ddir = tmp.path().join("device");
    let server = ProcessServer::start(bin, &sdir).await;
    let id = {
        let a = device(&ddir, &server.url(), "inspecteur1").await;
        let id = a.start_inspection(first_complex(&a)).unwrap();
        a.rate(id, "B3010", Rating::E).unwrap();
        sync(&a).await;
        a.rate(id, "B2020", Rating::D).unwrap();
        id
    }; // device "process" ends: store dropped
    server.kill().await;
    // Offline edit while the server is down: the sync fails and keeps everything.
    let a = DeviceStore::open(&ddir).unwrap();
    a.rate(id, "C1010", Rating::A).unwrap();
    assert!(SyncEngine::new(&a).sync().await.is_err());
    assert_eq!(a.status().unwrap().pending_changes, 2);
    drop(a);
    let server = ProcessServer::start(bin, &sdir).await;
    let a = DeviceStore::open(&ddir).unwrap();
    a.set_setting("server_url", &server.url()).unwrap();
    sync(&a).await;
    assert_eq!(a.status().unwrap().pending_changes, 0);
    server.kill().await;
    // A fresh device of the same territory pulls everything from a restarted server.
    let server = ProcessServer::start(bin, &sdir).await;
    let b = device(&tmp.path().join("b"), &server.url(), "inspecteur2").await;
    sync(&b).await;
    let d = b.inspection(id).unwrap();
    assert_eq!(d.components["B3010"].rating, Some(Rating::E));
    assert_eq!(d.components["B2020"].rating, Some(Rating::D));
    assert_eq!(d.components["C1010"].rating, Some(Rating::A));
    assert_eq!(d, a.inspection(id).unwrap());
    server.kill().await;
}

/// A photo upload cut halfway resumes from the server's offset; the server
/// stores the exact bytes once; bytes that do not match the hash are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_upload_cut_at_half_resumes_and_a_wrong_hash_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("server")).await;
    let proxy = Proxy::start(server.addr).await;
    let a = device(&tmp.path().join("a"), &proxy.url(), "inspecteur1").await;
    let id = a.start_inspection(first_complex(&a)).unwrap();
    let fid = a
        .add_finding(
            id,
            NewFinding {
                component: "B2011".into(),
                title: "Revêtement décollé".into(),
                location: "Façade sud".into(),
                severity: Severity::Major,
                description: String::new(),
            },
        )
        .unwrap();
    let photo: Vec<u8> = (0..2_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let hash = a
        .attach_photo(id, fid, &photo, "image/jpeg", "Façade sud")
        .unwrap();
    // Documents first, then the photo with its upload cut once at half its
    // body (the proxy follows the HTTP requests, whatever connection they use).
    let engine = SyncEngine::new(&a);
    let mut report = bilan_mobile::SyncReport::default();
    engine.sync_round(&mut report).await.unwrap();
    assert_eq!(a.photos_to_upload(i64::MAX).unwrap().len(), 1);
    proxy.take_counts();
    proxy.cut_uploads_at_half.store(true, Ordering::SeqCst);
    let r = sync(&a).await;
    proxy.cut_uploads_at_half.store(false, Ordering::SeqCst);
    assert_eq!(proxy.cuts.load(Ordering::SeqCst), 1, "one upload was cut");
    assert_eq!(r.photos_uploaded, 1, "resumed within the same sync");
    let (up, _) = proxy.take_counts();
    // Resumed from the server's offset: less than the half sent before the
    // cut plus the whole photo again. (Usually about one photo in all; more
    // when the device asked for the offset before the server had taken in
    // the cut bytes, and a stale resume was refused with 409.)
    assert!(
        up < photo.len() as u64 * 3 / 2,
        "only the rest crossed the wire after the cut: {up}"
    );
    let stored = server
        .state
        .0
        .photos
        .photo(&hash)
        .await
        .unwrap()
        .expect("photo stored")
        .to_vec();
    assert_eq!(stored, photo);
    assert_eq!(a.status().unwrap().pending_photos, 0);
    // The photo is served back to the territory.
    let token = a.setting("token").unwrap().unwrap();
    let got = reqwest::Client::new()
        .get(format!("{}/api/v1/photos/{hash}", server.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().len(), photo.len());

    // Bytes that do not hash to the name are refused and not kept.
    let (fake, status, body) = put_photo_under_a_wrong_name(&server, &token).await;
    assert_eq!(status, 422);
    assert_eq!(body["code"], "hash_mismatch");
    assert!(!server.state.0.photos.is_complete(&fake).await.unwrap());
    assert_eq!(
        SyncEngine::new(&a).photo_offset(&fake).await.unwrap(),
        (0, false)
    );
}

/// Runs the device CLI as its own process and returns (success, stdout).
async fn device_cli(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_e2e-device"))
        .arg("--data")
        .arg(dir)
        .args(args)
        .env("BILAN_PASSWORD", DEMO_PASSWORD)
        .output()
        .await
        .expect("run e2e-device");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Server and device are both real processes, each restarted (the server by
/// SIGKILL) between steps: every edit reaches a second device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_and_device_processes_restarted_between_steps_lose_nothing() {
    let bin = env!("CARGO_BIN_EXE_e2e-server");
    let tmp = tempfile::tempdir().unwrap();
    let (sdir, ddir, d2) = (
        tmp.path().join("server"),
        tmp.path().join("dev"),
        tmp.path().join("dev2"),
    );
    let server = ProcessServer::start(bin, &sdir).await;
    let login = |url: String| {
        let dir = ddir.clone();
        async move {
            let (ok, out) =
                device_cli(&dir, &["login", "--server", &url, "--user", "inspecteur1"]).await;
            assert!(ok, "{out}");
        }
    };
    login(server.url()).await;
    let (_, complexes) = device_cli(&ddir, &["complexes"]).await;
    let complex = complexes
        .lines()
        .next()
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .to_string();
    let (ok, id) = device_cli(&ddir, &["start", &complex]).await;
    assert!(ok);
    let id = id.trim().to_string();
    assert!(device_cli(&ddir, &["rate", &id, "B3010", "D"]).await.0);
    assert!(device_cli(&ddir, &["sync"]).await.0);
    server.kill().await;
    // Offline: the edit is saved, the sync fails and says so, nothing is lost.
    assert!(device_cli(&ddir, &["rate", &id, "B2020", "C"]).await.0);
    let (ok, _) = device_cli(&ddir, &["sync"]).await;
    assert!(!ok, "sync must fail while the server is down");
    let (_, status) = device_cli(&ddir, &["status"]).await;
    assert!(status.contains("Modifications en attente : 1"), "{status}");
    assert!(status.contains("serveur injoignable"), "{status}");
    let server = ProcessServer::start(bin, &sdir).await;
    login(server.url()).await;
    assert!(device_cli(&ddir, &["sync"]).await.0);
    server.kill().await;
    let server = ProcessServer::start(bin, &sdir).await;
    let (ok, out) = device_cli(
        &d2,
        &["login", "--server", &server.url(), "--user", "inspecteur2"],
    )
    .await;
    assert!(ok, "{out}");
    assert!(device_cli(&d2, &["sync"]).await.0);
    let (ok, json) = device_cli(&d2, &["show", &id]).await;
    assert!(ok);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["components"]["B3010"]["rating"], "D");
    assert_eq!(doc["components"]["B2020"]["rating"], "C");
    server.kill().await;
}
