//! End-to-end refusals: nobody reads or writes beyond their territory,
//! office or token; bad sync input gets stable codes and changes nothing;
//! repeated failed logins lock the name or the address.

use bilan_e2e::{DEMO_PASSWORD, TestServer, device, first_complex, sync};
use bilan_mobile::{DeviceStore, SyncEngine};
use bilan_server::service::NewUser;
use bilan_shared::domain::Role;
use bilan_shared::ids::*;
use bilan_shared::protocol::{
    self, DocChanges, ErrorCode, PROTOCOL_VERSION, SyncRequest, SyncResponse,
};

/// Territory and office isolation, and revoked tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_reads_or_writes_beyond_their_territory_office_or_token() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("server")).await;
    let store = server.state.service();
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
    assert_eq!(server.state.service().change_count(territory).unwrap(), 0);
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
    let store = server.state.service();
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
