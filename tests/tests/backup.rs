//! Backups end to end: a backup taken while the server serves, restored into
//! an empty data folder, holds every account, inspection, change and photo
//! (photos in a local folder, or in an S3-compatible bucket restored into
//! another); a damaged backup restores nothing. On SQLite and, through the
//! suite's backend parameter, on PostgreSQL (`pg_dump`/`pg_restore`).

use std::path::Path;

use bilan_e2e::backend::{database_for, database_is_empty};
use bilan_e2e::object_store::S3Server;
use bilan_e2e::{DEMO_PASSWORD, TestServer, device, roof_finding};
use bilan_mobile::{DeviceStore, SyncEngine};
use bilan_server::backup::{self, BackupError};
use bilan_server::config::Secret;
use bilan_server::{AppState, Config};
use bilan_shared::domain::Rating;
use bilan_shared::ids::{InspectionId, PhotoHash};

/// A server whose territory holds three synced inspections, one with a
/// photo (in the bucket of `s3` when given).
async fn server_with_data(
    dir: &Path,
    s3: Option<&S3Server>,
) -> (
    TestServer,
    DeviceStore,
    Vec<InspectionId>,
    PhotoHash,
    Vec<u8>,
) {
    let server = TestServer::start_with(&dir.join("server"), |c| {
        if let Some(s3) = s3 {
            s3.configure(c)
        }
    })
    .await;
    let a = device(&dir.join("a"), &server.url(), "inspecteur1").await;
    let complex = a.complexes().unwrap()[0].id;
    let ids: Vec<InspectionId> = (0..3)
        .map(|_| {
            let id = a.start_inspection(complex).unwrap();
            a.rate(id, "B3010", Rating::C).unwrap();
            id
        })
        .collect();
    let fid = a.add_finding(ids[0], roof_finding()).unwrap();
    let photo: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let hash = a
        .attach_photo(ids[0], fid, &photo, "image/jpeg", "Toit")
        .unwrap();
    SyncEngine::new(&a).sync().await.unwrap();
    assert_eq!(a.status().unwrap().pending_photos, 0);
    (server, a, ids, hash, photo)
}

/// A backup taken while serving, restored into an empty data folder (and,
/// with `s3`, photos from one bucket into another), holds every account,
/// inspection, change and photo with its thumbnail.
async fn round_trip(s3: Option<&S3Server>) {
    let tmp = tempfile::tempdir().unwrap();
    let (server, _a, ids, hash, photo) = server_with_data(tmp.path(), s3).await;
    let config = server.state.0.config.clone();
    let dest = tmp.path().join("backup");
    let photos = &server.state.0.photos;
    // Everything pushed is merged before the copy (a copy taken earlier is
    // merged again when restored, with new projection times).
    let (_, manager) = server
        .state
        .service()
        .login("responsable", DEMO_PASSWORD, None)
        .unwrap();
    server.state.service().summaries(&manager).unwrap();
    let m = backup::backup(&config, photos, &dest).await.unwrap();
    assert_eq!((m.photos, m.photo_bytes), (1, photo.len() as u64));
    assert!(matches!(
        backup::backup(&config, photos, &dest).await,
        Err(BackupError::DestinationNotEmpty(_))
    ));

    let restored_dir = tmp.path().join("restored");
    let mut restored = Config {
        database_url: Secret(database_for(&restored_dir)),
        data_dir: restored_dir,
        ..config.clone()
    };
    if let Some(s3) = s3 {
        s3.add_bucket("restored").await;
        restored.s3_bucket = "restored".into();
    }
    // A backup restores into the engine it was taken from.
    let other_engine = Config {
        database_url: Secret(if restored.database_url.0.is_empty() {
            "host=/nonexistent dbname=bilan".into()
        } else {
            String::new()
        }),
        ..restored.clone()
    };
    assert!(matches!(
        backup::restore(&dest, &other_engine).await,
        Err(BackupError::WrongEngine(_))
    ));
    backup::restore(&dest, &restored).await.unwrap();
    assert!(matches!(
        backup::restore(&dest, &restored).await,
        Err(BackupError::DataNotEmpty(_) | BackupError::DatabaseNotEmpty)
    ));

    let copy_state = AppState::open(restored).unwrap();
    let (orig, copy) = (server.state.service(), copy_state.service());
    let (_, manager) = orig.login("responsable", DEMO_PASSWORD, None).unwrap();
    let (_, same) = copy.login("responsable", DEMO_PASSWORD, None).unwrap();
    assert_eq!(same, manager, "accounts are restored");
    assert_eq!(
        copy.summaries(&manager).unwrap(),
        orig.summaries(&manager).unwrap()
    );
    for id in &ids {
        assert_eq!(
            copy.inspection(&manager, *id)
                .unwrap()
                .automerge()
                .get_heads(),
            orig.inspection(&manager, *id)
                .unwrap()
                .automerge()
                .get_heads()
        );
    }
    let territory = manager.territory_id.unwrap();
    assert_eq!(
        copy.change_count(territory).unwrap(),
        orig.change_count(territory).unwrap()
    );
    assert_eq!(
        copy.photo_meta(&manager, &hash).unwrap().map(|m| m.0),
        Some(photo.len() as u64)
    );
    let restored_photos = &copy_state.0.photos;
    assert!(restored_photos.photo(&hash).await.unwrap().unwrap() == photo);
    assert!(
        restored_photos.thumbnail(&hash).await.unwrap().is_some()
            == server
                .state
                .0
                .photos
                .thumbnail(&hash)
                .await
                .unwrap()
                .is_some()
    );
    if s3.is_none() {
        let on_disk = tmp
            .path()
            .join("restored/photos")
            .join(&hash.as_str()[..2])
            .join(hash.as_str());
        assert_eq!(std::fs::read(on_disk).unwrap(), photo);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_serving_restores_every_account_change_and_photo() {
    round_trip(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_photos_in_a_bucket_restores_them_into_another_bucket() {
    let s3 = S3Server::start("bilan-photos").await;
    round_trip(Some(&s3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_backup_restores_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, _a, _ids, hash, _photo) = server_with_data(tmp.path(), None).await;
    let config = server.state.0.config.clone();
    let dest = tmp.path().join("backup");
    let m = backup::backup(&config, &server.state.0.photos, &dest)
        .await
        .unwrap();
    let restored_dir = tmp.path().join("restored");
    let restored = Config {
        database_url: Secret(database_for(&restored_dir)),
        data_dir: restored_dir,
        ..config
    };
    let nothing_written = || database_is_empty(&restored) && !restored.photo_dir().exists();

    let photo = dest
        .join("photos")
        .join(&hash.as_str()[..2])
        .join(hash.as_str());
    let good = std::fs::read(&photo).unwrap();
    let mut bad = good.clone();
    bad[1000] ^= 0x55;
    std::fs::write(&photo, &bad).unwrap();
    assert!(matches!(
        backup::restore(&dest, &restored).await,
        Err(BackupError::Corrupt(_))
    ));
    assert!(nothing_written());

    std::fs::write(&photo, &good).unwrap();
    let db = dest.join(m.db_file());
    let mut bytes = std::fs::read(&db).unwrap();
    bytes.push(0);
    std::fs::write(&db, &bytes).unwrap();
    assert!(matches!(
        backup::restore(&dest, &restored).await,
        Err(BackupError::Corrupt(_))
    ));
    assert!(nothing_written());
}
