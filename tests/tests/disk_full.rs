//! A full disk on a real file system: the server's data folder, and then a
//! device's, on a small tmpfs that fills up, then grows back. Needs the right
//! to mount (root, as in CI), so both tests are `#[ignore]`d for a plain
//! `cargo test` and run by `scripts/test.sh` with `--ignored` (always under
//! `CI=true`); once asked to run, a test that cannot mount fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use bilan_e2e::{TestServer, device};
use bilan_mobile::{MobileError, SyncEngine};
use bilan_shared::domain::Rating;
use bilan_shared::protocol::ErrorCode;

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `kib` KiB at `path`, or says why it cannot.
    fn mount(path: &Path, kib: u64) -> Result<Self, String> {
        std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    /// Gives the file system `kib` KiB in all (space coming back).
    fn resize(&self, kib: u64) {
        let options = format!("remount,size={kib}k");
        let ok = Command::new("mount")
            .args(["-o", &options])
            .arg(&self.path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount -o {options}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// `PRAGMA integrity_check` of a database, opened read-only.
fn integrity(db: &Path) -> String {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    c.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut seq = bilan_e2e::workload::Seq::new(seed);
    (0..len).map(|_| seq.next_u64() as u8).collect()
}

/// The server's disk fills up under a device that keeps adding inspections
/// and 300 KB photos: every refused sync or upload is a 503 `unavailable`
/// (never a 500), the database stays intact, nothing the device was told is
/// stored is lost, and once the file system grows again the device's next
/// sync sends everything, each edit exactly once, every photo byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "mounts a tmpfs (root only): scripts/test.sh runs it with --ignored"]
async fn a_full_server_disk_refuses_with_503_and_recovers_without_loss() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&tmp.path().join("server"), 3 * 1024).unwrap_or_else(|why| {
        panic!("cannot mount the tmpfs this test fills (run as root): {why}")
    });
    let server = TestServer::start(&disk.path).await;
    let d = device(&tmp.path().join("device"), &server.url(), "inspecteur1").await;
    let complexes = d.complexes().unwrap();
    let (mut edits, mut photos, mut refused_docs, mut refused_photos) = (0u64, Vec::new(), 0, 0);
    for round in 0..60u64 {
        let id = d
            .start_inspection(complexes[round as usize % complexes.len()].id)
            .unwrap();
        d.rate(id, "B3010", Rating::D).unwrap();
        let fid = d.add_finding(id, bilan_e2e::roof_finding()).unwrap();
        let bytes = random_bytes(300_000, round);
        photos.push((
            d.attach_photo(id, fid, &bytes, "image/jpeg", "").unwrap(),
            bytes,
        ));
        edits += 4;
        match SyncEngine::new(&d).sync().await {
            Ok(_) => {}
            Err(MobileError::Server {
                status: 503,
                code: ErrorCode::Unavailable,
                ..
            }) => {
                let s = d.status().unwrap();
                if s.pending_changes > 0 {
                    refused_docs += 1;
                } else if s.pending_photos > 0 {
                    refused_photos += 1;
                }
            }
            Err(e) => panic!("round {round}: a full disk must give 503 unavailable, got {e:?}"),
        }
        if refused_docs >= 2 && refused_photos >= 1 {
            break;
        }
    }
    assert!(
        refused_docs >= 2 && refused_photos >= 1,
        "the disk filled up ({refused_docs} pushes and {refused_photos} uploads refused)"
    );
    let db = disk.path.join("bilan.sqlite");
    assert_eq!(integrity(&db), "ok", "intact while full");
    let pending = d.status().unwrap();
    println!(
        "disk full: {edits} edits and {} photos made, {refused_docs} syncs and {refused_photos} photo uploads refused with 503; {} changes and {} photos waiting on the device",
        photos.len(),
        pending.pending_changes,
        pending.pending_photos
    );

    // Space comes back.
    disk.resize(64 * 1024);
    let engine = SyncEngine::new(&d);
    engine.sync().await.expect("sync once space is back");
    let mut report = bilan_mobile::SyncReport::default();
    engine
        .retry_photos_now(&mut report)
        .await
        .expect("photos once space is back");
    let s = d.status().unwrap();
    assert_eq!((s.pending_changes, s.pending_photos), (0, 0));
    let store = server.state.service();
    let (_, manager) = store
        .login("responsable", bilan_e2e::DEMO_PASSWORD, None)
        .unwrap();
    assert_eq!(
        store.change_count(manager.territory_id.unwrap()).unwrap(),
        edits,
        "each edit once"
    );
    for (hash, bytes) in &photos {
        let stored = server
            .state
            .0
            .photos
            .photo(hash)
            .await
            .unwrap()
            .expect("photo stored")
            .to_vec();
        assert!(stored == *bytes, "photo {hash} byte for byte");
    }
    assert_eq!(integrity(&db), "ok");

    server.stop().await;
}

/// The device's own storage fills up while the inspector types: the save
/// that does not fit is refused with a clear French message (nothing half
/// saved), every keystroke saved before is kept, a photo is refused the
/// same way, and typing works again once space is freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "mounts a tmpfs (root only): scripts/test.sh runs it with --ignored"]
async fn a_full_device_refuses_the_save_clearly_and_keeps_what_was_saved() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&tmp.path().join("device"), 2 * 1024).unwrap_or_else(|why| {
        panic!("cannot mount the tmpfs this test fills (run as root): {why}")
    });
    let server = TestServer::start(&tmp.path().join("server")).await;
    let d = device(&disk.path, &server.url(), "inspecteur1").await;
    let complex = d.complexes().unwrap()[0].id;
    let id = d.start_inspection(complex).unwrap();
    // Fill what is left with a ballast file.
    let ballast = disk.path.join("ballast");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&ballast).unwrap();
        let block = vec![7u8; 64 * 1024];
        while f.write_all(&block).and_then(|_| f.sync_all()).is_ok() {}
        // Room for a few keystrokes.
        let len = f.metadata().unwrap().len();
        f.set_len(len.saturating_sub(96 * 1024)).unwrap();
    }
    let text = "Bardeaux d'asphalte fissurés sur le versant nord, solins rouillés; ".repeat(40);
    let mut saved = String::new();
    let mut refused = None;
    for (i, ch) in text.chars().enumerate() {
        let mut next = saved.clone();
        next.push(ch);
        match d.set_component_note(id, "B3010", &next) {
            Ok(()) => saved = next,
            Err(e) => {
                refused = Some((i, e));
                break;
            }
        }
    }
    let (at, err) = refused.expect("the full disk refuses a save");
    assert!(at > 0, "some keystrokes fitted before the disk was full");
    assert!(matches!(err, MobileError::StorageFull), "{err:?}");
    assert!(err.to_string().contains("plus d'espace libre"), "{err}");
    let photo = d
        .add_finding(id, bilan_e2e::roof_finding())
        .map(|fid| d.attach_photo(id, fid, &random_bytes(500_000, 1), "image/jpeg", ""));
    assert!(
        matches!(
            photo,
            Err(MobileError::StorageFull) | Ok(Err(MobileError::StorageFull))
        ),
        "{photo:?}"
    );
    assert_eq!(
        d.inspection(id).unwrap().components["B3010"].note,
        saved,
        "every keystroke shown as saved is there"
    );
    println!(
        "device full: {} keystrokes saved, refused at keystroke {}",
        saved.chars().count(),
        at + 1
    );

    // Space is freed: typing goes on.
    std::fs::remove_file(&ballast).unwrap();
    let more = format!("{saved} (suite)");
    d.set_component_note(id, "B3010", &more).unwrap();
    drop(d);
    let reopened = bilan_mobile::DeviceStore::open(&disk.path).unwrap();
    assert_eq!(
        reopened.inspection(id).unwrap().components["B3010"].note,
        more
    );
    assert_eq!(integrity(&disk.path.join("device.sqlite")), "ok");
    server.stop().await;
}
