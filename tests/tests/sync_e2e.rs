//! End-to-end sync: real server on loopback, real device stores on SQLite
//! files. Offline edits merge, pulls page, real conflicts show and resolve,
//! the CS's review reaches the device.

use bilan_e2e::{
    DEMO_PASSWORD, TestServer, device, first_complex, server_doc, sync,
    two_devices_with_one_inspection,
};
use bilan_mobile::{DeviceStore, NewFinding, SyncEngine};
use bilan_shared::domain::{Rating, Severity};
use bilan_shared::ids::*;

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
        .service()
        .login("responsable", DEMO_PASSWORD, None)
        .unwrap();
    let on_server =
        bilan_shared::conflicts::list(&server.state.service().inspection(&manager, id).unwrap())
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
    let summaries = server.state.service().summaries(&manager).unwrap();
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
    let insp = server.state.service().inspection(&manager, id).unwrap();
    assert!(bilan_shared::conflicts::list(&insp).unwrap().is_empty());
    assert_eq!(
        a.inspection(id).unwrap().components["B3010"].rating,
        Some(Rating::D)
    );
    assert_eq!(
        server.state.service().summaries(&manager).unwrap()[0].conflicts,
        0
    );
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

/// The suite runs on the backend it was asked for (`BILAN_E2E_BACKEND`):
/// a run meant for PostgreSQL that quietly used SQLite would prove nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_of_the_suite_run_on_the_backend_asked_for() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("server")).await;
    let expected = match bilan_e2e::backend::current() {
        bilan_e2e::backend::Backend::Sqlite => "sqlite",
        bilan_e2e::backend::Backend::Postgres { .. } => "postgresql",
    };
    assert_eq!(server.state.service().backend().name(), expected);
}

/// A note holding a NUL character (a bad paste on a phone) reaches the
/// other device byte for byte and does not stop the server's merging (on
/// PostgreSQL, whose text type cannot hold it, the review pages' copy shows
/// U+FFFD): the inspection's later edits still reach the manager.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_note_with_a_nul_character_syncs_and_merging_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, a, b, id) = two_devices_with_one_inspection(tmp.path()).await;
    a.set_component_note(id, "B3010", "membrane\0fissurée")
        .unwrap();
    sync(&a).await;
    a.rate(id, "B3010", Rating::E).unwrap();
    sync(&a).await;
    sync(&b).await;
    let doc = b.inspection(id).unwrap();
    assert_eq!(doc.components["B3010"].note, "membrane\0fissurée");
    assert_eq!(doc.components["B3010"].rating, Some(Rating::E));
    let (_, manager) = server
        .state
        .service()
        .login("responsable", DEMO_PASSWORD, None)
        .unwrap();
    let summary = server
        .state
        .service()
        .summaries(&manager)
        .unwrap()
        .into_iter()
        .find(|s| s.inspection_id == id)
        .expect("the inspection is on the review pages");
    assert!(
        summary.rated >= 1,
        "the rating after the note was merged: {summary:?}"
    );
}
