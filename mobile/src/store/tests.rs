//! Unit tests of the device store.

use std::path::Path;
use std::sync::Mutex;

use bilan_shared::Catalogue;
use bilan_shared::domain::{Complex, Rating};
use bilan_shared::ids::*;

use super::outbox::id_runs;
use super::*;

pub(super) fn logged_in(dir: &Path) -> (DeviceStore, ComplexId) {
    let store = DeviceStore::open(dir).unwrap();
    let territory = TerritoryId::new();
    let office = OfficeId::new();
    let complex = Complex {
        id: ComplexId::new(),
        territory_id: territory,
        office_id: office,
        code: "C1".into(),
        name: "Les Pins".into(),
        address: "1 rue A".into(),
        city: "Trois-Rivières".into(),
        dwellings: 24,
        year_built: 1975,
        replacement_value: 4_000_000.0,
    };
    store
        .sign_in_offline(
            "j",
            "Julie",
            bilan_shared::domain::Territory {
                id: territory,
                name: "T".into(),
            },
            vec![],
            vec![complex.clone()],
        )
        .unwrap();
    (store, complex.id)
}

#[test]
fn every_edit_is_in_the_outbox_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let (store, complex) = logged_in(dir.path());
    let id = store.start_inspection(complex).unwrap();
    store.rate(id, "B3010", Rating::D).unwrap();
    let fid = store
        .add_finding(
            id,
            NewFinding {
                component: "B3010".into(),
                title: "Membrane fissurée".into(),
                location: "Toit, côté nord".into(),
                severity: Severity::Major,
                description: String::new(),
            },
        )
        .unwrap();
    store
        .add_recommendation(
            id,
            fid,
            NewRecommendation {
                work: "Réfection de la membrane".into(),
                urgency: Urgency::WithinYear,
                quantity: 120.0,
                unit: "m²".into(),
                unit_cost: 95.0,
            },
        )
        .unwrap();
    let hash = store
        .attach_photo(id, fid, b"jpeg bytes", "image/jpeg", "Vue du toit")
        .unwrap();
    assert_eq!(store.status().unwrap().pending_changes, 5);
    assert_eq!(store.status().unwrap().pending_photo_bytes, 10);
    drop(store);
    let store = DeviceStore::open(dir.path()).unwrap();
    let d = store.inspection(id).unwrap();
    assert_eq!(d.components["B3010"].rating, Some(Rating::D));
    assert_eq!(d.findings[0].recommendations[0].estimated_cost(), 11_400.0);
    assert_eq!(d.findings[0].photos[0].hash, hash);
    assert_eq!(store.photo_bytes(&hash).unwrap(), b"jpeg bytes");
    let (outbox, ids) = store.outbox().unwrap();
    assert_eq!((outbox.len(), ids.len()), (1, 5));
    store.apply_sync(&ids, vec![], 7).unwrap();
    assert_eq!(store.status().unwrap().pending_changes, 0);
    assert_eq!(store.cursor().unwrap(), 7);
}

/// A schema-1 device database (the `acked` column was the queue) opens
/// with its unsent changes still queued.
#[test]
fn a_schema_1_device_keeps_its_unsent_changes_queued() {
    let dir = tempfile::tempdir().unwrap();
    let (store, complex) = logged_in(dir.path());
    let id = store.start_inspection(complex).unwrap();
    store.rate(id, "B3010", Rating::D).unwrap();
    drop(store);
    {
        let conn = Connection::open(dir.path().join("device.sqlite")).unwrap();
        conn.execute_batch("DELETE FROM outbox; PRAGMA user_version = 1;")
            .unwrap();
    }
    let store = DeviceStore::open(dir.path()).unwrap();
    assert_eq!(store.status().unwrap().pending_changes, 2);
}

#[test]
fn acknowledged_ids_collapse_into_runs() {
    assert_eq!(id_runs(&[7, 3, 4, 5, 9, 8, 4]), vec![(3, 5), (7, 9)]);
    assert!(id_runs(&[]).is_empty());
}

/// The changes a document's outbox entry carries, however they travel.
fn changes_in(d: &bilan_shared::protocol::DocChanges) -> usize {
    let raw: Vec<u8> = d.changes.iter().flat_map(|c| c.iter().copied()).collect();
    bilan_shared::doc::changes_of_chunks(&raw).unwrap().len()
}

/// A document the server never had goes as its saved form (one chunk,
/// smaller than its changes, the same changes inside); once acknowledged,
/// its next edit goes as a change.
#[test]
fn a_never_synced_inspection_goes_as_its_saved_document_and_later_edits_as_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (store, complex) = logged_in(dir.path());
    let id = store.start_inspection(complex).unwrap();
    let codes: Vec<String> = Catalogue::current()
        .components()
        .map(|(_, c)| c.code.clone())
        .take(40)
        .collect();
    for code in &codes {
        store.rate(id, code, Rating::B).unwrap();
    }
    store.set_push_saved_documents(false).unwrap();
    let page = store.outbox_page(100, u64::MAX).unwrap();
    assert_eq!(page.docs[0].changes.len(), 41, "as changes when asked");
    store.set_push_saved_documents(true).unwrap();
    let page = store.outbox_page(100, u64::MAX).unwrap();
    let d = &page.docs[0];
    assert_eq!(d.changes.len(), 1, "one saved document");
    assert!(bilan_shared::doc::is_saved_document(&d.changes[0]));
    assert_eq!(changes_in(d), 41, "every change inside");
    let raw: i64 = {
        let conn = Connection::open(dir.path().join("device.sqlite")).unwrap();
        conn.query_row("SELECT SUM(LENGTH(bytes)) FROM changes", [], |r| r.get(0))
            .unwrap()
    };
    assert!(
        (d.changes[0].len() as i64) < raw / 2,
        "{} bytes saved, {raw} bytes of changes",
        d.changes[0].len()
    );
    // Rated past the compaction threshold, the device's own snapshot is
    // its saved form: it goes as is.
    let more: Vec<String> = Catalogue::current()
        .components()
        .map(|(_, c)| c.code.clone())
        .skip(40)
        .take(23)
        .collect();
    for code in &more {
        store.rate(id, code, Rating::C).unwrap();
        store.compact_if_due(id).unwrap();
    }
    let total = 1 + codes.len() + more.len();
    let in_snapshot: i64 = Connection::open(dir.path().join("device.sqlite"))
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM changes WHERE in_snapshot = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(in_snapshot as usize, total, "compacted on the device");
    let page = store.outbox_page(100, u64::MAX).unwrap();
    let d = &page.docs[0];
    assert_eq!(d.changes.len(), 1, "one saved document");
    assert!(bilan_shared::doc::is_saved_document(&d.changes[0]));
    assert_eq!(changes_in(d), total, "every change inside");
    store.apply_sync(&page.ids, vec![], 0).unwrap();
    store.rate(id, &codes[0], Rating::C).unwrap();
    let page = store.outbox_page(100, u64::MAX).unwrap();
    assert_eq!(page.docs[0].changes.len(), 1);
    assert!(
        !bilan_shared::doc::is_saved_document(&page.docs[0].changes[0]),
        "a change"
    );
}

#[test]
fn the_outbox_pages_by_whole_documents_within_the_limits() {
    let dir = tempfile::tempdir().unwrap();
    let (store, complex) = logged_in(dir.path());
    let ids: Vec<_> = (0..3)
        .map(|_| {
            let id = store.start_inspection(complex).unwrap();
            store.rate(id, "B3010", Rating::C).unwrap();
            id
        })
        .collect();
    let page = store.outbox_page(2, u64::MAX).unwrap();
    assert_eq!(page.docs.len(), 2);
    assert!(page.more);
    assert_eq!(page.ids.len(), 4, "whole documents");
    assert!(
        page.docs.iter().all(|d| changes_in(d) == 2),
        "whole documents"
    );
    // A byte budget smaller than one document still sends that document.
    let page = store.outbox_page(100, 1).unwrap();
    assert_eq!((page.docs.len(), page.ids.len(), page.more), (1, 2, true));
    let all = store.outbox_page(100, u64::MAX).unwrap();
    assert_eq!((all.docs.len(), all.ids.len(), all.more), (3, 6, false));
    assert_eq!(ids.len(), 3);
}

#[test]
fn many_edits_compact_into_a_snapshot_without_losing_any() {
    let dir = tempfile::tempdir().unwrap();
    let (store, complex) = logged_in(dir.path());
    let id = store.start_inspection(complex).unwrap();
    let codes: Vec<String> = Catalogue::current()
        .components()
        .map(|(_, c)| c.code.clone())
        .collect();
    for (i, code) in codes.iter().cycle().take(150).enumerate() {
        store
            .rate(id, code, [Rating::A, Rating::B, Rating::C][i % 3])
            .unwrap();
        // As the app does after an edit, off its window's thread.
        store.compact_if_due(id).unwrap();
    }
    let expected = store.inspection(id).unwrap();
    drop(store);
    let store = DeviceStore::open(dir.path()).unwrap();
    assert_eq!(store.inspection(id).unwrap(), expected);
    assert_eq!(store.integrity_check().unwrap(), "ok");
}

/// A cached row that no longer decodes (damaged file, buggy version) is
/// left out of the list, not silently: a `warn` line names the table and
/// the row; a row of SQL that cannot be read at all fails the call.
#[test]
fn a_stored_row_that_does_not_decode_is_logged_with_the_row_and_left_out() {
    #[derive(Clone, Default)]
    struct Lines(std::sync::Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Lines {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = logged_in(dir.path());
    store
        .lock()
        .execute(
            "INSERT INTO complexes (id, json) VALUES ('abîmé', '{\"name\": 3}')",
            [],
        )
        .unwrap();
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let complexes = tracing::subscriber::with_default(subscriber, || store.complexes()).unwrap();
    assert_eq!(complexes.len(), 1, "the good row is still listed");
    let logged = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("WARN")
            && logged.contains(r#"table="complexes""#)
            && logged.contains(r#"row="{\"name\": 3}""#),
        "{logged}"
    );
}

/// Leaving an inspection folds its changes into the snapshot at once (the
/// compaction threshold is for edits): a never-synced inspection then
/// goes as that snapshot, with every change inside, and reads the same
/// after reopening.
#[test]
fn an_inspection_put_away_goes_as_its_snapshot_with_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let (store, complex) = logged_in(dir.path());
    let id = store.start_inspection(complex).unwrap();
    let codes: Vec<String> = Catalogue::current()
        .components()
        .map(|(_, c)| c.code.clone())
        .take(10)
        .collect();
    for code in &codes {
        store.rate(id, code, Rating::B).unwrap();
    }
    let expected = store.inspection(id).unwrap();
    store.put_away(id).unwrap();
    let db = Connection::open(dir.path().join("device.sqlite")).unwrap();
    let (folded, snapshot): (i64, Vec<u8>) = db
        .query_row(
            "SELECT (SELECT COUNT(*) FROM changes WHERE in_snapshot = 1), snapshot FROM docs",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(folded as usize, codes.len() + 1, "every change folded in");
    let page = store.outbox_page(100, u64::MAX).unwrap();
    assert_eq!(page.ids.len(), codes.len() + 1, "all still to send");
    assert_eq!(page.docs[0].changes.len(), 1);
    assert_eq!(page.docs[0].changes[0].as_slice(), snapshot.as_slice());
    assert_eq!(changes_in(&page.docs[0]), codes.len() + 1);
    drop(store);
    let store = DeviceStore::open(dir.path()).unwrap();
    assert_eq!(store.inspection(id).unwrap(), expected);
}

/// A sync commits the changes it received before it hands them to the
/// open document: a compaction in between (the inspector leaving the
/// inspection on another thread) must still keep them. Built from the
/// document in memory, the snapshot would lack them and their rows would
/// be deleted as folded in.
#[test]
fn a_compaction_keeps_received_rows_the_open_document_has_not_taken_yet() {
    let dir_a = tempfile::tempdir().unwrap();
    let (a, complex) = logged_in(dir_a.path());
    let dir_b = tempfile::tempdir().unwrap();
    let b = DeviceStore::open(dir_b.path()).unwrap();
    b.sign_in_offline(
        "k",
        "Karim",
        a.territory().unwrap().unwrap(),
        vec![],
        a.complexes().unwrap(),
    )
    .unwrap();
    let id = a.start_inspection(complex).unwrap();
    a.rate(id, "B3010", Rating::A).unwrap();
    let first = a.outbox_page(100, u64::MAX).unwrap();
    b.apply_sync(&[], first.docs, 0).unwrap();
    b.rate(id, "B2010", Rating::D).unwrap();
    let theirs = b.outbox_page(100, u64::MAX).unwrap();
    assert_eq!(theirs.docs.len(), 1);
    // The document is open on A; the sync's transaction has committed the
    // colleague's change, and has not given it to the open document yet.
    assert_eq!(
        a.inspection(id).unwrap().components["B3010"].rating,
        Some(Rating::A)
    );
    for chunk in &theirs.docs[0].changes {
        a.lock()
            .execute(
                "INSERT INTO changes (doc_id, hash, bytes, local, acked) VALUES (?1, ?2, ?3, 0, 1)",
                params![id.to_string(), b"received".as_slice(), chunk.as_slice()],
            )
            .unwrap();
    }
    a.put_away(id).unwrap();
    drop(a);
    let a = DeviceStore::open(dir_a.path()).unwrap();
    let doc = a.inspection(id).unwrap();
    assert_eq!(
        doc.components["B2010"].rating,
        Some(Rating::D),
        "received change kept"
    );
    assert_eq!(
        doc.components["B3010"].rating,
        Some(Rating::A),
        "own change kept"
    );
}

/// A textured camera-like JPEG of `w` × `h` (quality 95, like a phone's).
fn camera_jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let n = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) >> 7;
        image::Rgb([
            (x / 7 + (n & 31)) as u8,
            (y / 5 + ((n >> 5) & 31)) as u8,
            ((x + y) / 9 + ((n >> 10) & 31)) as u8,
        ])
    });
    let mut out = Vec::new();
    img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
        &mut out, 95,
    ))
    .unwrap();
    out
}

fn finding_on(store: &DeviceStore, complex: ComplexId) -> (InspectionId, FindingId) {
    let id = store.start_inspection(complex).unwrap();
    let fid = store
        .add_finding(
            id,
            NewFinding {
                component: "B3010".into(),
                title: "Membrane fissurée".into(),
                location: "Toit".into(),
                severity: Severity::Major,
                description: String::new(),
            },
        )
        .unwrap();
    (id, fid)
}

/// A camera photo is reduced before it is queued: the finding references
/// the reduced copy (what the server gets); the original stays on the
/// device until that copy is acknowledged, then its space is freed.
#[test]
fn a_camera_photo_is_reduced_and_its_original_freed_once_the_copy_is_on_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let (store, complex) = logged_in(dir.path());
    let (id, fid) = finding_on(&store, complex);
    let original = camera_jpeg(3200, 2400);
    let hash = store
        .attach_photo(id, fid, &original, "image/jpeg", "Toit")
        .unwrap();
    assert_ne!(
        hash,
        PhotoHash::of(&original),
        "the reduced copy is referenced"
    );
    let queued = store.photos_to_upload(i64::MAX).unwrap();
    assert_eq!(queued.len(), 1);
    let sent = std::fs::read(&queued[0].path).unwrap();
    assert!(
        sent.len() < original.len() / 2,
        "{} of {}",
        sent.len(),
        original.len()
    );
    let img = image::load_from_memory(&sent).unwrap();
    assert_eq!((img.width(), img.height()), (2560, 1920));
    let doc = store.inspection(id).unwrap();
    assert_eq!(doc.findings[0].photos[0].hash, hash);
    assert_eq!(doc.findings[0].photos[0].size, sent.len() as u64);
    let kept = store.original_of(&hash).unwrap().expect("original kept");
    assert_eq!(std::fs::read(&kept).unwrap(), original);
    store.photo_outcome(&hash, Err("coupé".into())).unwrap();
    assert!(kept.exists(), "kept while the copy is not on the server");
    store.photo_outcome(&hash, Ok(())).unwrap();
    assert!(!kept.exists(), "freed once it is");
    assert_eq!(store.original_of(&hash).unwrap(), None);
}

/// When the CS keeps originals, the device keeps them after the upload.
#[test]
fn a_cs_that_keeps_originals_keeps_them_on_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let (store, complex) = logged_in(dir.path());
    let mut settings = store.cs_settings().unwrap();
    settings.photos.keep_originals = true;
    store
        .set_setting("cs_settings", &serde_json::to_string(&settings).unwrap())
        .unwrap();
    let (id, fid) = finding_on(&store, complex);
    let hash = store
        .attach_photo(id, fid, &camera_jpeg(3000, 2000), "image/jpeg", "")
        .unwrap();
    store.photo_outcome(&hash, Ok(())).unwrap();
    let kept = store.original_of(&hash).unwrap().expect("original kept");
    assert!(kept.exists());
}

/// Annotating draws the marks on a new photo, queued for upload and
/// recorded under the photo it annotates, which stays byte for byte as it
/// was; annotating again starts from that photo, and the latest is shown.
#[test]
fn an_annotation_is_a_new_queued_photo_linked_to_the_photo_it_annotates_which_is_unchanged() {
    use bilan_shared::annotate::Mark;
    let dir = tempfile::tempdir().unwrap();
    let (store, complex) = logged_in(dir.path());
    let (id, fid) = finding_on(&store, complex);
    let photo = store
        .attach_photo(id, fid, &camera_jpeg(1600, 1200), "image/jpeg", "Toit")
        .unwrap();
    let before = store.photo_bytes(&photo).unwrap();
    store.photo_outcome(&photo, Ok(())).unwrap();
    let marks = vec![
        Mark::arrow(0.2, 0.2, 0.5, 0.5),
        Mark::text(0.1, 0.9, "Fissure"),
    ];
    let annotated = store.annotate_photo(id, fid, &photo, &marks).unwrap();
    assert_ne!(annotated, photo);
    assert_eq!(store.photo_bytes(&photo).unwrap(), before, "never altered");
    let drawn = store.photo_bytes(&annotated).unwrap();
    assert_eq!(PhotoHash::of(&drawn), annotated, "hash-addressed");
    let img = image::load_from_memory(&drawn).unwrap();
    assert_eq!((img.width(), img.height()), (1600, 1200));
    let queued: Vec<_> = store
        .photos_to_upload(i64::MAX)
        .unwrap()
        .into_iter()
        .map(|p| p.hash)
        .collect();
    assert_eq!(queued, vec![annotated.clone()]);
    assert!(store.thumbnail_data_url(&annotated).is_some());
    let doc = store.inspection(id).unwrap();
    let p = &doc.findings[0].photos[0];
    assert_eq!((p.hash.clone(), p.annotations.len()), (photo.clone(), 1));
    assert_eq!(p.annotations[0].marks, marks);
    assert_eq!(p.shown(), &annotated);
    // Again, with one more mark: drawn from the photo, shown instead.
    let mut more = marks.clone();
    more.push(Mark::circle(0.7, 0.3, 0.8, 0.3));
    let again = store.annotate_photo(id, fid, &photo, &more).unwrap();
    let doc = store.inspection(id).unwrap();
    assert_eq!(doc.findings[0].photos[0].annotations.len(), 2);
    assert_eq!(doc.findings[0].photos[0].shown(), &again);
}

/// Marks that cannot be drawn, or a photo the device does not hold, are
/// refused in French and change nothing: no photo stored, no edit.
#[test]
fn bad_marks_or_a_photo_this_device_does_not_hold_change_nothing() {
    use bilan_shared::annotate::Mark;
    let dir = tempfile::tempdir().unwrap();
    let (store, complex) = logged_in(dir.path());
    let (id, fid) = finding_on(&store, complex);
    let photo = store
        .attach_photo(id, fid, &camera_jpeg(800, 600), "image/jpeg", "")
        .unwrap();
    let pending = store.status().unwrap();
    let files = std::fs::read_dir(dir.path().join("photos"))
        .unwrap()
        .count();
    let err = store
        .annotate_photo(id, fid, &photo, &[Mark::text(0.5, 0.5, " ")])
        .unwrap_err();
    assert!(err.to_string().contains("texte"), "{err}");
    let err = store.annotate_photo(id, fid, &photo, &[]).unwrap_err();
    assert!(err.to_string().contains("aucune marque"), "{err}");
    std::fs::remove_file(dir.path().join("photos").join(photo.as_str())).unwrap();
    let err = store
        .annotate_photo(id, fid, &photo, &[Mark::arrow(0.1, 0.1, 0.6, 0.6)])
        .unwrap_err();
    assert!(err.to_string().contains("autre appareil"), "{err}");
    let after = store.status().unwrap();
    assert_eq!(after.pending_changes, pending.pending_changes);
    assert_eq!(
        std::fs::read_dir(dir.path().join("photos"))
            .unwrap()
            .count(),
        files - 1,
        "nothing stored but the file this test removed"
    );
    assert!(
        store.inspection(id).unwrap().findings[0].photos[0]
            .annotations
            .is_empty()
    );
}
