//! End-to-end: real server on loopback, real device stores on SQLite files.

use std::sync::atomic::Ordering;

use bilan_e2e::{DEMO_PASSWORD, ProcessServer, Proxy, ProxyMode, TestServer, device};
use bilan_mobile::{DeviceStore, NewFinding, SyncEngine};
use bilan_server::store::NewUser;
use bilan_shared::domain::{Rating, Role, Severity};
use bilan_shared::ids::*;
use bilan_shared::protocol::{
    self, DocChanges, ErrorCode, PROTOCOL_VERSION, SyncRequest, SyncResponse,
};

fn first_complex(d: &DeviceStore) -> ComplexId {
    d.complexes().unwrap()[0].id
}

async fn sync(d: &DeviceStore) -> bilan_mobile::SyncReport {
    SyncEngine::new(d).sync().await.expect("sync")
}

fn server_doc(server: &TestServer, user: &str, id: InspectionId) -> bilan_shared::InspectionDoc {
    let (_, u) = server
        .state
        .store()
        .login(user, DEMO_PASSWORD, None)
        .unwrap();
    server
        .state
        .store()
        .inspection(&u, id)
        .unwrap()
        .read()
        .unwrap()
}

/// A server, two inspectors' devices, and one inspection both hold.
async fn two_devices_with_one_inspection(
    dir: &std::path::Path,
) -> (TestServer, DeviceStore, DeviceStore, InspectionId) {
    two_devices_with_one_inspection_on(TestServer::start(&dir.join("server")).await, dir).await
}

async fn two_devices_with_one_inspection_on(
    server: TestServer,
    dir: &std::path::Path,
) -> (TestServer, DeviceStore, DeviceStore, InspectionId) {
    let a = device(&dir.join("a"), &server.url(), "inspecteur1").await;
    let b = device(&dir.join("b"), &server.url(), "inspecteur2").await;
    let id = a.start_inspection(first_complex(&a)).unwrap();
    sync(&a).await;
    sync(&b).await;
    (server, a, b, id)
}

/// Two devices edit different components of one inspection offline; after
/// syncing, both devices and the server hold the union.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_edits_of_different_components_merge_to_the_union_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, a, b, id) = two_devices_with_one_inspection(tmp.path()).await;
    // Offline from here on: each edits its own components.
    a.rate(id, "B3010", Rating::D).unwrap();
    a.rate(id, "B2020", Rating::C).unwrap();
    b.rate(id, "D2021", Rating::B).unwrap();
    b.add_finding(
        id,
        NewFinding {
            component: "D2021".into(),
            title: "Chauffe-eau en fin de vie".into(),
            location: "Salle mécanique".into(),
            severity: Severity::Moderate,
            description: String::new(),
        },
    )
    .unwrap();
    sync(&a).await;
    // The server has merged A's push (a read waits for the merger): B's
    // sync then sends and receives everything in one request. Without this
    // wait B is asked to come back while A's rows are still being merged.
    server_doc(&server, "responsable", id);
    let rb = sync(&b).await;
    assert_eq!(rb.round_trips, 1, "one round trip");
    sync(&a).await;
    let (da, db, ds) = (
        a.inspection(id).unwrap(),
        b.inspection(id).unwrap(),
        server_doc(&server, "responsable", id),
    );
    assert_eq!(da, db);
    assert_eq!(da, ds);
    assert_eq!(da.components["B3010"].rating, Some(Rating::D));
    assert_eq!(da.components["B2020"].rating, Some(Rating::C));
    assert_eq!(da.components["D2021"].rating, Some(Rating::B));
    assert_eq!(da.findings.len(), 1);
    assert!(a.conflicts(id).unwrap().is_empty());
}

/// A pull of many pages is pipelined: each answer that says `more` starts
/// the next pull before it is stored. With one bundle per page, a new
/// device gets every inspection, in order, once; the pulls sent ahead are
/// used; and the next sync has nothing left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paged_pull_sends_the_next_request_while_storing_and_misses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(&tmp.path().join("server"), |c| {
        c.response_page_bytes = 1;
    })
    .await;
    let a = device(&tmp.path().join("a"), &server.url(), "inspecteur1").await;
    let complex = first_complex(&a);
    let ids: Vec<InspectionId> = (0..6)
        .map(|_| a.start_inspection(complex).unwrap())
        .collect();
    for id in &ids {
        a.rate(*id, "B3010", Rating::C).unwrap();
    }
    sync(&a).await;
    let b = device(&tmp.path().join("b"), &server.url(), "inspecteur2").await;
    let rb = sync(&b).await;
    assert_eq!(rb.round_trips, 6, "one page per inspection");
    assert_eq!(
        rb.pulls_ahead, 5,
        "every page after the first was asked ahead"
    );
    let mut listed: Vec<InspectionId> = b.summaries(None).unwrap().iter().map(|s| s.id).collect();
    let mut expected = ids.clone();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected);
    for id in &ids {
        assert_eq!(b.inspection(*id).unwrap(), a.inspection(*id).unwrap());
    }
    let again = sync(&b).await;
    assert_eq!((again.round_trips, again.received_changes), (1, 0));
}

/// Two ratings of one component are one conflict with both values on both
/// devices and on the server; resolving it on one device clears it everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_conflict_shows_everywhere_and_its_resolution_syncs() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, a, b, id) = two_devices_with_one_inspection(tmp.path()).await;
    a.rate(id, "B3010", Rating::D).unwrap();
    b.rate(id, "B3010", Rating::B).unwrap();
    sync(&a).await;
    sync(&b).await;
    sync(&a).await;
    let (_, manager) = server
        .state
        .store()
        .login("responsable", DEMO_PASSWORD, None)
        .unwrap();
    let on_server =
        bilan_shared::conflicts::list(&server.state.store().inspection(&manager, id).unwrap())
            .unwrap();
    for conflicts in [
        a.conflicts(id).unwrap(),
        b.conflicts(id).unwrap(),
        on_server,
    ] {
        assert_eq!(conflicts.len(), 1, "{conflicts:?}");
        assert_eq!(conflicts[0].path, ["components", "B3010", "rating"]);
        let mut people: Vec<_> = conflicts[0]
            .values
            .iter()
            .map(|v| (v.user_name.clone(), v.value.clone()))
            .collect();
        people.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(
            people,
            [
                ("Julie Tremblay".to_string(), "D".into()),
                ("Marc Gagnon".to_string(), "B".into())
            ]
        );
    }
    let summaries = server.state.store().summaries(&manager).unwrap();
    assert_eq!(
        summaries
            .iter()
            .find(|s| s.inspection_id == id)
            .unwrap()
            .conflicts,
        1
    );
    let c = &b.conflicts(id).unwrap()[0];
    let julie = c
        .values
        .iter()
        .find(|v| v.user_name == "Julie Tremblay")
        .unwrap();
    b.resolve(id, &c.path, &julie.value_id).unwrap();
    sync(&b).await;
    sync(&a).await;
    assert!(a.conflicts(id).unwrap().is_empty());
    assert!(b.conflicts(id).unwrap().is_empty());
    let insp = server.state.store().inspection(&manager, id).unwrap();
    assert!(bilan_shared::conflicts::list(&insp).unwrap().is_empty());
    assert_eq!(
        a.inspection(id).unwrap().components["B3010"].rating,
        Some(Rating::D)
    );
    assert_eq!(
        server.state.store().summaries(&manager).unwrap()[0].conflicts,
        0
    );
}

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
    // The server did commit the three changes; the device does not know yet.
    assert_eq!(server.state.store().change_count(territory).unwrap(), 3);
    assert_eq!(a.status().unwrap().pending_changes, 3);
    let r = sync(&a).await;
    // Resent and stored again for the merger, which drops what it had.
    assert_eq!((r.sent_changes, r.accepted), (3, 3), "resent");
    assert_eq!(server.state.store().change_count(territory).unwrap(), 3);
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
    let stored = std::fs::read(server.state.0.photos.path(&hash)).unwrap();
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
    let fake = PhotoHash::of(b"the real photo");
    let resp = reqwest::Client::new()
        .put(format!("{}/api/v1/photos/{fake}", server.url()))
        .bearer_auth(&token)
        .header("content-type", "image/jpeg")
        .body(b"something else entirely".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "hash_mismatch");
    assert!(!server.state.0.photos.is_complete(&fake));
    assert_eq!(
        SyncEngine::new(&a).photo_offset(&fake).await.unwrap(),
        (0, false)
    );
}

/// Territory and office isolation, and revoked tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_reads_or_writes_beyond_their_territory_office_or_token() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("server")).await;
    let store = server.state.store();
    // Territory B with its own inspector, office and complex.
    let tb = bilan_e2e::second_territory(store, "Les Cèdres");
    store
        .create_user(&NewUser {
            username: "inspecteur-b".into(),
            display_name: "Inspecteur B".into(),
            role: Role::Inspector,
            territory_id: Some(tb),
            office_id: None,
            password: DEMO_PASSWORD.into(),
        })
        .unwrap();
    let b = device(&tmp.path().join("b"), &server.url(), "inspecteur-b").await;
    let b_doc = b.start_inspection(first_complex(&b)).unwrap();
    let (b_changes, _) = b.outbox().unwrap();
    sync(&b).await;

    let a = device(&tmp.path().join("a"), &server.url(), "inspecteur1").await;
    assert!(
        a.complexes().unwrap().iter().all(|c| c.territory_id != tb),
        "A never sees B's complexes"
    );
    let a_token = a.setting("token").unwrap().unwrap();
    let http = reqwest::Client::new();
    // Read B's inspection: 403.
    let r = http
        .get(format!("{}/api/v1/inspections/{b_doc}", server.url()))
        .bearer_auth(&a_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Write into B's inspection (replaying B's own changes, or a new one): 403, nothing stored.
    let count_before = store.change_count(tb).unwrap();
    let req = SyncRequest {
        protocol: PROTOCOL_VERSION,
        device_id: DeviceId::new(),
        cursor: 0,
        docs: b_changes.clone(),
    };
    let r = http
        .post(format!("{}/api/v1/sync", server.url()))
        .bearer_auth(&a_token)
        .body(protocol::encode(&req).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["code"],
        "forbidden"
    );
    // A's own sync never returns B's changes.
    let mut report = bilan_mobile::SyncReport::default();
    SyncEngine::new(&a).sync_round(&mut report).await.unwrap();
    assert!(a.inspection_ids().unwrap().is_empty());
    // A document claiming territory B, created through A's account: stored,
    // then refused as invalid when merged, and the device is told.
    let forged_id = InspectionId::new();
    let forged = DocChanges {
        doc_id: forged_id,
        changes: b_changes[0].changes.clone(),
    };
    let forger = DeviceId::new();
    let post_sync = |docs: Vec<DocChanges>| {
        let req = SyncRequest {
            protocol: PROTOCOL_VERSION,
            device_id: forger,
            cursor: 0,
            docs,
        };
        http.post(format!("{}/api/v1/sync", server.url()))
            .bearer_auth(&a_token)
            .body(protocol::encode(&req).unwrap())
            .send()
    };
    assert_eq!(post_sync(vec![forged]).await.unwrap().status(), 200);
    assert_eq!(store.change_count(tb).unwrap(), count_before);
    let told: SyncResponse = protocol::decode(
        &post_sync(vec![]).await.unwrap().bytes().await.unwrap(),
        1 << 24,
    )
    .unwrap();
    assert_eq!(told.rejected.len(), 1, "{told:?}");
    assert_eq!(
        (told.rejected[0].doc_id, told.rejected[0].code),
        (forged_id, ErrorCode::InvalidDocument)
    );
    assert!(
        store
            .summaries(&a.user().unwrap().unwrap())
            .unwrap()
            .iter()
            .all(|s| s.inspection_id != forged_id)
    );

    // Office reader of Trois-Rivières: sees that office's inspections only.
    let in_tr = a
        .start_inspection(
            a.complexes()
                .unwrap()
                .iter()
                .find(|c| c.code.starts_with("OH-TR"))
                .unwrap()
                .id,
        )
        .unwrap();
    let in_sh = a
        .start_inspection(
            a.complexes()
                .unwrap()
                .iter()
                .find(|c| c.code.starts_with("OMH-SH"))
                .unwrap()
                .id,
        )
        .unwrap();
    sync(&a).await;
    let reader = SyncEngine::new(&DeviceStore::open(&tmp.path().join("reader")).unwrap())
        .login(&server.url(), "lecteur-tr", DEMO_PASSWORD)
        .await
        .unwrap();
    let get = |id: InspectionId| {
        http.get(format!("{}/api/v1/inspections/{id}", server.url()))
            .bearer_auth(&reader.token)
            .send()
    };
    assert_eq!(get(in_tr).await.unwrap().status(), 200);
    assert_eq!(get(in_sh).await.unwrap().status(), 403);
    assert_eq!(get(b_doc).await.unwrap().status(), 403);
    let list: Vec<serde_json::Value> = http
        .get(format!("{}/api/v1/inspections", server.url()))
        .bearer_auth(&reader.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    let r = http
        .post(format!("{}/api/v1/sync", server.url()))
        .bearer_auth(&reader.token)
        .body(protocol::encode(&req).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "office readers cannot write");

    // Revoked token: 401 with a stable code.
    assert_eq!(store.revoke_user_tokens("inspecteur1").unwrap(), 1);
    let r = http
        .get(format!("{}/api/v1/me", server.url()))
        .bearer_auth(&a_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["code"],
        "unauthorized"
    );
    let err = SyncEngine::new(&a).sync().await.unwrap_err();
    assert!(matches!(
        err,
        bilan_mobile::MobileError::Server { status: 401, .. }
    ));
}

/// Review comments and the "returned" status written by the CS reach the device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returned_review_with_comment_reaches_the_device_at_next_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("server")).await;
    let a = device(&tmp.path().join("a"), &server.url(), "inspecteur1").await;
    let id = a.start_inspection(first_complex(&a)).unwrap();
    a.submit(id).unwrap();
    sync(&a).await;
    let manager = SyncEngine::new(&DeviceStore::open(&tmp.path().join("m")).unwrap())
        .login(&server.url(), "responsable", DEMO_PASSWORD)
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/api/v1/inspections/{id}/review", server.url()))
        .bearer_auth(&manager.token)
        .json(&serde_json::json!({"status": "retournee", "comment": "Ajoutez une photo de la toiture."}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // An inspector may not review.
    let r = http
        .post(format!("{}/api/v1/inspections/{id}/review", server.url()))
        .bearer_auth(a.setting("token").unwrap().unwrap())
        .json(&serde_json::json!({"status": "approuvee"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    sync(&a).await;
    let d = a.inspection(id).unwrap();
    assert_eq!(d.status, bilan_shared::domain::InspectionStatus::Returned);
    assert_eq!(
        d.review.comments[0].text,
        "Ajoutez une photo de la toiture."
    );
    assert_eq!(d.review.comments[0].author_name, "Sophie Bergeron");
}

/// Bad input gets a clear JSON error with a stable code and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sync_input_is_refused_with_stable_codes_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(&tmp.path().join("server"), |c| {
        c.max_body_bytes = 200_000;
        c.max_docs_per_request = 3;
    })
    .await;
    let a = device(&tmp.path().join("a"), &server.url(), "inspecteur1").await;
    let token = a.setting("token").unwrap().unwrap();
    let territory = a.user().unwrap().unwrap().territory_id.unwrap();
    let http = reqwest::Client::new();
    let post = |body: Vec<u8>| {
        http.post(format!("{}/api/v1/sync", server.url()))
            .bearer_auth(&token)
            .body(body)
            .send()
    };
    let code = |r: reqwest::Response| async move {
        (
            r.status().as_u16(),
            r.json::<serde_json::Value>().await.unwrap()["code"]
                .as_str()
                .unwrap()
                .to_string(),
        )
    };
    let dev = DeviceId::new();
    let req = |docs: Vec<DocChanges>, protocol: u32| SyncRequest {
        protocol,
        device_id: dev,
        cursor: 0,
        docs,
    };

    assert_eq!(
        code(post(b"garbage".to_vec()).await.unwrap()).await,
        (400, "malformed_body".into())
    );
    let bad_change = DocChanges {
        doc_id: InspectionId::new(),
        changes: vec![serde_bytes::ByteBuf::from(vec![
            0x85, 0x6f, 0x4a, 0x83, 1, 2, 3,
        ])],
    };
    assert_eq!(
        code(
            post(protocol::encode(&req(vec![bad_change], protocol::PROTOCOL_VERSION)).unwrap())
                .await
                .unwrap()
        )
        .await,
        (400, "malformed_change".into())
    );
    assert_eq!(
        code(
            post(protocol::encode(&req(vec![], 99)).unwrap())
                .await
                .unwrap()
        )
        .await,
        (400, "unsupported_protocol".into())
    );
    let many = (0..4)
        .map(|_| DocChanges {
            doc_id: InspectionId::new(),
            changes: vec![],
        })
        .collect();
    assert_eq!(
        code(
            post(protocol::encode(&req(many, protocol::PROTOCOL_VERSION)).unwrap())
                .await
                .unwrap()
        )
        .await,
        (413, "too_many_documents".into())
    );
    let big: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    assert_eq!(
        code(post(big).await.unwrap()).await,
        (413, "payload_too_large".into())
    );
    let bomb = zstd::bulk::compress(&vec![0u8; 300 << 20], 19).unwrap();
    assert!(bomb.len() < 200_000);
    assert_eq!(
        code(post(bomb).await.unwrap()).await,
        (413, "payload_too_large".into())
    );
    // One good document and one bad in the same request: nothing of either is kept.
    let id = a.start_inspection(first_complex(&a)).unwrap();
    let (mut good, _) = a.outbox().unwrap();
    good.push(DocChanges {
        doc_id: InspectionId::new(),
        changes: vec![serde_bytes::ByteBuf::from(vec![1, 2, 3])],
    });
    assert_eq!(
        code(
            post(protocol::encode(&req(good, protocol::PROTOCOL_VERSION)).unwrap())
                .await
                .unwrap()
        )
        .await
        .0,
        400
    );
    assert_eq!(server.state.store().change_count(territory).unwrap(), 0);
    let r = http
        .get(format!("{}/api/v1/inspections/{id}", server.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http
        .get(format!("{}/api/v1/inspections/not-an-id", server.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, (400, "bad_request".into()));
    let r = http
        .head(format!(
            "{}/api/v1/photos/..%2F..%2Fetc%2Fpasswd",
            server.url()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
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
    let store = server.state.store();
    let changes = store.change_count(territory).unwrap();
    let r = store.compact().unwrap();
    assert_eq!(r.documents, 1);
    assert!(r.rows_cleared >= 2, "{r:?}");
    assert_eq!(
        store.compact().unwrap(),
        bilan_server::store::CompactReport::default()
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
        let r = server.state.store().compact().unwrap();
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

/// Over HTTP, the sixth login attempt after five wrong passwords is refused
/// with 429 `too_many_attempts` and a French message, even with the right
/// password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_wrong_passwords_lock_the_login_with_a_stable_code() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("server")).await;
    let http = reqwest::Client::new();
    let login = |password: &'static str| {
        http.post(format!("{}/api/v1/login", server.url()))
            .json(&serde_json::json!({"username": "inspecteur2", "password": password}))
            .send()
    };
    for _ in 0..5 {
        let r = login("pas le bon").await.unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = login(DEMO_PASSWORD).await.unwrap();
    assert_eq!(r.status(), 429);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "too_many_attempts");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("réessayez dans 15 minute")
    );
}

/// Password spraying: 20 failed logins from one address, each on a
/// different name (so no name locks), lock that address for 15 minutes, for
/// the API and the review pages alike, even with a right password. Behind a
/// reverse proxy (`behind_proxy`), the address is the proxy's last
/// `X-Forwarded-For` entry, so another client still logs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_failed_logins_from_one_address_lock_that_address() {
    let tmp = tempfile::tempdir().unwrap();
    let server =
        TestServer::start_with(&tmp.path().join("server"), |c| c.behind_proxy = true).await;
    let http = bilan_e2e::http_without_redirects();
    let login = |from: &'static str, username: String, password: &'static str| {
        http.post(format!("{}/api/v1/login", server.url()))
            .header("x-forwarded-for", format!("198.51.100.1, {from}"))
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()
    };
    for i in 0..20 {
        let r = login("203.0.113.7", format!("nom{i}"), "devine")
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "attempt {i}");
    }
    let r = login("203.0.113.7", "responsable".into(), DEMO_PASSWORD)
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "too_many_attempts");
    let page = http
        .post(format!("{}/connexion", server.url()))
        .header("x-forwarded-for", "203.0.113.7")
        .form(&[("username", "responsable"), ("password", DEMO_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 429, "the review pages too");
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("réessayez dans 15 minute")
    );
    // Another client behind the same proxy is not locked out.
    let r = login("203.0.113.8", "responsable".into(), DEMO_PASSWORD)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The lock is in the audit log.
    let store = server.state.store();
    let entries = store.audit_log(None, 10).unwrap();
    assert!(
        entries.iter().any(|e| e.actor == "203.0.113.7"
            && e.action == bilan_server::audit::AuditAction::LoginLocked),
        "{entries:?}"
    );

    // Without a proxy, the connection's own address counts (the header is
    // ignored: a client cannot pick the address it is counted under).
    let direct = TestServer::start(&tmp.path().join("direct")).await;
    for i in 0..20 {
        let r = http
            .post(format!("{}/api/v1/login", direct.url()))
            .header("x-forwarded-for", format!("192.0.2.{i}"))
            .json(&serde_json::json!({"username": format!("nom{i}"), "password": "devine"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = http
        .post(format!("{}/api/v1/login", direct.url()))
        .json(&serde_json::json!({"username": "responsable", "password": DEMO_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "127.0.0.1 is locked");
}
