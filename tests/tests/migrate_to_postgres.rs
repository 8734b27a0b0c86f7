//! `migrate-to-postgres` end to end: a SQLite deployment (the demo territory
//! plus 1,000 generated inspections and a device's photo), moved while its
//! server keeps serving, to a throwaway PostgreSQL cluster and an
//! S3-compatible bucket. Every inspection's heads, the projection as the
//! review pages read it, the accounts (passwords and a device's session)
//! and the photos are the same after the move; a target that already holds
//! data, or a damaged photo, stops the move with nothing written.

use bilan_e2e::object_store::S3Server;
use bilan_e2e::postgres::PgCluster;
use bilan_e2e::{DEMO_PASSWORD, TestServer, device, generate_territory, roof_finding, sync};
use bilan_server::config::{PhotoBackend, Secret};
use bilan_server::transfer::{TransferError, migrate_to_postgres};
use bilan_shared::domain::Rating;
use bilan_shared::ids::{InspectionId, PhotoHash};

/// What the deployment's users can observe, as comparable text.
#[derive(Debug, PartialEq)]
struct Observed {
    heads: Vec<String>,
    summaries: String,
    plan: String,
    overview: String,
    users: String,
    changes: u64,
    photo: Option<Vec<u8>>,
}

async fn observe(server: &TestServer, ids: &[InspectionId], photo: &PhotoHash) -> Observed {
    let service = server.state.service();
    let mut users = Vec::new();
    for name in ["inspecteur1", "inspecteur2", "responsable"] {
        let (_, u) = service
            .login(name, DEMO_PASSWORD, None)
            .unwrap_or_else(|e| panic!("{name} logs in with their password: {e}"));
        users.push(u);
    }
    let manager = &users[2];
    let mut summaries = service.summaries(manager).unwrap();
    summaries.sort_by_key(|s| s.inspection_id);
    let heads = ids
        .iter()
        .map(|id| {
            let insp = service.inspection(manager, *id).unwrap();
            format!("{id} {:?}", insp.automerge().get_heads())
        })
        .collect();
    let mut territory_users = service.territory_users(manager).unwrap();
    territory_users.sort_by_key(|u| u.id);
    Observed {
        heads,
        summaries: format!("{summaries:?}"),
        plan: format!("{:?}", service.works_plan(manager).unwrap()),
        overview: format!("{:?}", service.overview(manager).unwrap()),
        users: format!("{users:?} {territory_users:?}"),
        changes: service.change_count(manager.territory_id.unwrap()).unwrap(),
        photo: server
            .state
            .0
            .photos
            .photo(photo)
            .await
            .unwrap()
            .map(|b| b.to_vec()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_deployment_moves_to_postgresql_and_s3_with_everything_equal() {
    let tmp = tempfile::tempdir().unwrap();
    // The source is SQLite whatever backend the suite runs on.
    let source = TestServer::start_with(&tmp.path().join("sqlite"), |c| {
        c.database_url = Secret::default();
    })
    .await;
    let d = device(&tmp.path().join("d"), &source.url(), "inspecteur1").await;
    let id = d.start_inspection(d.complexes().unwrap()[0].id).unwrap();
    d.rate(id, "B3010", Rating::D).unwrap();
    let finding = d.add_finding(id, roof_finding()).unwrap();
    let bytes: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(7919) >> 5) as u8)
        .collect();
    let photo = d
        .attach_photo(id, finding, &bytes, "image/jpeg", "Toit")
        .unwrap();
    sync(&d).await;
    assert_eq!(d.status().unwrap().pending_photos, 0);
    let mut ids = generate_territory(source.state.service(), 40, 1_000).unwrap();
    ids.push(id);
    let before = observe(&source, &ids, &photo).await;
    assert_eq!(before.photo.as_deref(), Some(bytes.as_slice()));

    let pg = PgCluster::start();
    let url = pg.create_database("moved");
    let s3 = S3Server::start("moved-photos").await;
    let mut target_config = bilan_server::Config::default();
    s3.configure(&mut target_config);
    let source_config = source.state.0.config.clone();
    // Moved while the source server keeps serving.
    let report = migrate_to_postgres(
        &source_config.db_path(),
        &source_config.photo_backend(),
        &url,
        &target_config.photo_backend(),
        tmp.path(),
    )
    .await
    .expect("the move succeeds");
    assert_eq!((report.photos, report.photo_bytes), (1, bytes.len() as u64));
    let summary_rows = report
        .tables
        .iter()
        .find(|t| t.0 == "inspection_summary")
        .map(|t| t.1);
    assert_eq!(summary_rows, Some(1_001));

    let moved = TestServer::start_with(&tmp.path().join("pg"), |c| {
        c.database_url = Secret(url.clone());
        s3.configure(c);
    })
    .await;
    assert_eq!(moved.state.service().backend().name(), "postgresql");
    let after = observe(&moved, &ids, &photo).await;
    assert_eq!(
        after, before,
        "everything observable is equal after the move"
    );
    // The device's session moved too: it syncs with the new server without
    // logging in again, and its next edit arrives there.
    d.set_setting("server_url", &moved.url()).unwrap();
    d.rate(id, "A1010", Rating::B).unwrap();
    sync(&d).await;
    let (_, manager) = moved
        .state
        .service()
        .login("responsable", DEMO_PASSWORD, None)
        .unwrap();
    let doc = moved
        .state
        .service()
        .inspection(&manager, id)
        .unwrap()
        .read()
        .unwrap();
    assert_eq!(doc.components["A1010"].rating, Some(Rating::B));

    // A second move into the same database is refused, and changes nothing.
    let changes = moved
        .state
        .service()
        .change_count(manager.territory_id.unwrap())
        .unwrap();
    let again = migrate_to_postgres(
        &source_config.db_path(),
        &source_config.photo_backend(),
        &url,
        &target_config.photo_backend(),
        tmp.path(),
    )
    .await;
    assert!(
        matches!(again, Err(TransferError::TargetNotEmpty(_))),
        "{again:?}"
    );
    assert_eq!(
        moved
            .state
            .service()
            .change_count(manager.territory_id.unwrap())
            .unwrap(),
        changes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_photo_stops_the_move_with_nothing_written_to_the_target() {
    let tmp = tempfile::tempdir().unwrap();
    let source = TestServer::start_with(&tmp.path().join("sqlite"), |c| {
        c.database_url = Secret::default();
    })
    .await;
    let d = device(&tmp.path().join("d"), &source.url(), "inspecteur1").await;
    let id = d.start_inspection(d.complexes().unwrap()[0].id).unwrap();
    let finding = d.add_finding(id, roof_finding()).unwrap();
    // Two photos; the one copied last (photos go in hash order) is damaged,
    // so the first is already in the target when the check fails.
    let photos: Vec<PhotoHash> = [[7u8; 50_000], [9u8; 50_000]]
        .iter()
        .map(|b| {
            d.attach_photo(id, finding, b, "image/jpeg", "Toit")
                .unwrap()
        })
        .collect();
    let photo = photos
        .iter()
        .max_by_key(|h| h.as_str().to_string())
        .unwrap()
        .clone();
    sync(&d).await;
    assert_eq!(d.status().unwrap().pending_photos, 0);
    let config = source.state.0.config.clone();
    let PhotoBackend::Local(root) = config.photo_backend() else {
        panic!("the source keeps its photos in its folder");
    };
    let file = root.join(&photo.as_str()[..2]).join(photo.as_str());
    std::fs::write(&file, b"not the photo any more").expect("damage the photo");

    let pg = PgCluster::start();
    let url = pg.create_database("moved");
    let target = PhotoBackend::Local(tmp.path().join("target-photos"));
    let result = migrate_to_postgres(
        &config.db_path(),
        &config.photo_backend(),
        &url,
        &target,
        tmp.path(),
    )
    .await;
    assert!(
        matches!(&result, Err(TransferError::Mismatch(m)) if m.contains(photo.as_str())),
        "{result:?}"
    );
    let tables = std::process::Command::new("psql")
        .args(["-At", &url, "-c"])
        .arg("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&tables.stdout).trim(),
        "0",
        "no table was created in the target"
    );
    let listed = bilan_server::photos::PhotoStore::open(&target)
        .unwrap()
        .list_photos()
        .await
        .unwrap();
    assert!(
        listed.is_empty(),
        "the photo copied before the failure was removed: {listed:?}"
    );
}
