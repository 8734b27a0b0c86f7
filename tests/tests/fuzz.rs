//! Fuzz targets, driven by proptest (stable Rust, runs in every CI): each
//! target replays its corpus in `tests/fuzz/corpus/<target>/`, then feeds
//! mutants of it (bit flips, overwrites, cuts, insertions, duplications,
//! splices of two inputs) and checks that nothing panics and that what is
//! accepted is sound. `BILAN_FUZZ_CASES` sets the number of mutants per
//! target (CI: the default, a few hundred; a longer local run:
//! `BILAN_FUZZ_CASES=200000 cargo test -p bilan-e2e --test fuzz --release`).
//! A failing mutant is shrunk and saved by proptest under
//! `tests/proptest-regressions/`: commit it, and add it to the corpus.
//! The seeds are written by `write_seed_corpus` (ignored; run it after a
//! wire or schema change).

use std::path::{Path, PathBuf};

use bilan_server::Service;
use bilan_server::imports::{COMPLEX_HEADERS, parse_complexes, parse_offices};
use bilan_server::photos::parse_content_range;
use bilan_server::service::{NewUser, SyncLimits};
use bilan_shared::doc::bundle;
use bilan_shared::domain::{Complex, Office, Rating, Territory};
use bilan_shared::ids::*;
use bilan_shared::protocol::{self, DocChanges, PROTOCOL_VERSION, SyncRequest, UserInfo};
use bilan_shared::{Author, Catalogue, Inspection, NewInspection};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let mut files: Vec<_> = std::fs::read_dir(corpus_dir(target))
        .unwrap_or_else(|e| panic!("corpus of {target}: {e}"))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(!seeds.is_empty(), "empty corpus for {target}");
    seeds
}

/// One edit of an input.
#[derive(Clone, Debug)]
enum Mutation {
    FlipBit(usize, u8),
    SetByte(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    Duplicate(usize, usize),
    /// The input's head followed by another seed's tail.
    Splice(usize, usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let pos = any::<usize>();
    prop_oneof![
        (pos, 0u8..8).prop_map(|(p, b)| Mutation::FlipBit(p, b)),
        (pos, any::<u8>()).prop_map(|(p, b)| Mutation::SetByte(p, b)),
        pos.prop_map(Mutation::Truncate),
        (
            pos,
            prop::collection::vec(
                prop_oneof![any::<u8>(), Just(b','), Just(b'\n'), Just(b'"'), Just(0xff)],
                1..16
            )
        )
            .prop_map(|(p, b)| Mutation::Insert(p, b)),
        (pos, 1usize..64).prop_map(|(p, n)| Mutation::Remove(p, n)),
        (pos, 1usize..256).prop_map(|(p, n)| Mutation::Duplicate(p, n)),
        (any::<usize>(), pos, pos).prop_map(|(o, a, b)| Mutation::Splice(o, a, b)),
    ]
}

fn apply(mut data: Vec<u8>, muts: &[Mutation], seeds: &[Vec<u8>]) -> Vec<u8> {
    for m in muts {
        let at = |p: usize, len: usize| if len == 0 { 0 } else { p % (len + 1) };
        match m {
            Mutation::FlipBit(p, b) if !data.is_empty() => {
                let i = p % data.len();
                data[i] ^= 1 << b;
            }
            Mutation::SetByte(p, v) if !data.is_empty() => {
                let i = p % data.len();
                data[i] = *v;
            }
            Mutation::Truncate(p) => data.truncate(at(*p, data.len())),
            Mutation::Insert(p, bytes) => {
                let i = at(*p, data.len());
                data.splice(i..i, bytes.iter().copied());
            }
            Mutation::Remove(p, n) => {
                let i = at(*p, data.len());
                let j = (i + n).min(data.len());
                data.drain(i..j);
            }
            Mutation::Duplicate(p, n) => {
                let i = at(*p, data.len());
                let j = (i + n).min(data.len());
                let copy = data[i..j].to_vec();
                data.splice(j..j, copy);
            }
            Mutation::Splice(o, a, b) => {
                let other = &seeds[o % seeds.len()];
                data.truncate(at(*a, data.len()));
                data.extend_from_slice(&other[at(*b, other.len())..]);
            }
            _ => {}
        }
    }
    data
}

fn cases() -> u32 {
    std::env::var("BILAN_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400)
}

/// automerge panics that `contain_panics` turns into errors would each
/// print a message (and a backtrace): keep the output for real failures.
fn quiet_contained_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_automerge = info
                .location()
                .is_some_and(|l| l.file().contains("/automerge-"));
            if !in_automerge {
                default(info);
            }
        }));
    });
}

/// Replays `target`'s corpus through `check` (which says whether the input
/// was accepted), then `cases()` mutants of it; prints how many were accepted.
fn fuzz(target: &str, check: impl Fn(&[u8]) -> bool) {
    quiet_contained_panics();
    let seeds = corpus(target);
    let accepted = std::sync::atomic::AtomicU64::new(0);
    let count = |ok: bool| {
        accepted.fetch_add(u64::from(ok), std::sync::atomic::Ordering::Relaxed);
    };
    for s in &seeds {
        let ok = check(s);
        if std::env::var_os("BILAN_FUZZ_VERBOSE").is_some() {
            println!("fuzz {target}: seed of {} bytes accepted: {ok}", s.len());
        }
        count(ok);
    }
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(Box::leak(
                format!(
                    "{}/proptest-regressions/fuzz-{target}.txt",
                    env!("CARGO_MANIFEST_DIR")
                )
                .into_boxed_str(),
            )),
        )),
        ..Config::default()
    });
    let strategy = (0..seeds.len(), prop::collection::vec(mutation(), 1..6));
    runner
        .run(&strategy, |(i, muts)| {
            count(check(&apply(seeds[i].clone(), &muts, &seeds)));
            Ok(())
        })
        .unwrap_or_else(|e| panic!("fuzz target {target}: {e}"));
    println!(
        "fuzz {target}: {} seeds and {} mutants, {} accepted",
        seeds.len(),
        cases(),
        accepted.into_inner()
    );
}

/// The sync request decoder (zstd, then MessagePack): any bytes give a
/// request or an error, never a panic, and a decoded request survives a
/// round trip unchanged.
#[test]
fn fuzz_sync_request_decoder() {
    fuzz("sync_request", |bytes| {
        // The seeds are raw MessagePack: mutants reach the decoder both as
        // they are (the zstd layer refuses most) and compressed again (so
        // the MessagePack layer sees them).
        let recompressed = zstd::bulk::compress(bytes, 1).unwrap();
        let mut ok = false;
        for body in [bytes, &recompressed] {
            if let Ok(req) = protocol::decode::<SyncRequest>(body, 1 << 24) {
                let again: SyncRequest =
                    protocol::decode(&protocol::encode(&req).unwrap(), 1 << 24).unwrap();
                assert_eq!(again, req);
                ok = true;
            }
        }
        ok
    });
}

/// A store holding the corpus's inspection (`seed-create.bin`), with its
/// territory, office and complex, and an inspector of that territory.
fn store_with_inspection() -> (Service, UserInfo, InspectionId) {
    let create = std::fs::read(corpus_dir("automerge_changes").join("seed-create.bin")).unwrap();
    let mut insp = Inspection::empty();
    insp.apply_changes(bilan_shared::doc::changes_of_chunks(&create).unwrap())
        .unwrap();
    let doc = insp.read().unwrap();
    let store = bilan_server::in_memory_service().unwrap();
    let db = store.backend();
    db.insert_territory(&Territory {
        id: doc.territory_id,
        name: "CS".into(),
    })
    .unwrap();
    db.upsert_office(&Office {
        id: doc.office_id,
        territory_id: doc.territory_id,
        code: "O1".into(),
        name: "Office".into(),
    })
    .unwrap();
    db.upsert_complex(&Complex {
        id: doc.complex_id,
        territory_id: doc.territory_id,
        office_id: doc.office_id,
        code: "C1".into(),
        name: "Ensemble".into(),
        address: "1 rue".into(),
        city: "Québec".into(),
        dwellings: 10,
        year_built: 1980,
        replacement_value: 1e6,
    })
    .unwrap();
    store
        .create_user(&NewUser {
            username: "inspecteur".into(),
            display_name: "Inspecteur".into(),
            role: bilan_shared::domain::Role::Inspector,
            territory_id: Some(doc.territory_id),
            office_id: None,
            password: "motdepasse".into(),
        })
        .unwrap();
    let (_, user) = store.login("inspecteur", "motdepasse", None).unwrap();
    push(&store, &user, doc.inspection_id, create).unwrap();
    (store, user, doc.inspection_id)
}

/// Rewrites the checksum of every automerge chunk header in `bytes`
/// (magic, 4-byte checksum, type, LEB128 length, data), so a mutant gets
/// past the checksum into the column decoders.
fn fix_checksums(mut bytes: Vec<u8>) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
    let mut at = 0;
    while bytes.len() >= at + 10 && bytes[at..at + 4] == MAGIC {
        let (mut len, mut shift, mut i) = (0u64, 0, at + 9);
        while i < bytes.len() && shift < 64 {
            len |= u64::from(bytes[i] & 0x7f) << shift;
            shift += 7;
            i += 1;
            if bytes[i - 1] & 0x80 == 0 {
                break;
            }
        }
        let Some(end) = (i as u64)
            .checked_add(len)
            .filter(|e| *e <= bytes.len() as u64)
        else {
            break;
        };
        let end = end as usize;
        let sum = Sha256::digest(&bytes[at + 8..end]);
        bytes[at + 4..at + 8].copy_from_slice(&sum[..4]);
        at = end;
    }
    bytes
}

fn base_inspection(store: &Service, user: &UserInfo) -> (Inspection, InspectionId) {
    let complex = store.reference(user, 0).unwrap().complexes[0].clone();
    let author = Author::device(DeviceId(uuid::Uuid::from_u128(7)), user.id, "Julie");
    let id = InspectionId(uuid::Uuid::from_u128(42));
    let (insp, _) = Inspection::create(
        &author,
        NewInspection {
            inspection_id: id,
            territory_id: complex.territory_id,
            office_id: complex.office_id,
            complex_id: complex.id,
        },
        Catalogue::current(),
    )
    .unwrap();
    (insp, id)
}

fn push(
    store: &Service,
    user: &UserInfo,
    id: InspectionId,
    bytes: Vec<u8>,
) -> Result<u32, bilan_server::StoreError> {
    let req = SyncRequest {
        protocol: PROTOCOL_VERSION,
        device_id: DeviceId(uuid::Uuid::from_u128(9)),
        cursor: 0,
        docs: vec![DocChanges {
            doc_id: id,
            changes: vec![serde_bytes::ByteBuf::from(bytes)],
        }],
    };
    let limits = SyncLimits {
        max_docs: 10,
        page_bytes: 1 << 20,
    };
    store.sync(user, req, limits).map(|r| r.accepted)
}

/// Automerge change ingestion, through the server's whole push path (chunk
/// splitting, checksum, apply, schema check, projection): bytes pushed onto
/// an existing inspection are accepted or refused whole, never panic, and a
/// refusal changes nothing; what is accepted still reads as an inspection.
#[test]
fn fuzz_automerge_change_ingestion() {
    let (store, user, id) = store_with_inspection();
    let territory = user.territory_id.unwrap();
    fuzz("automerge_changes", |bytes| {
        let mut ok = false;
        for input in [bytes.to_vec(), fix_checksums(bytes.to_vec())] {
            let before = store.change_count(territory).unwrap();
            match push(&store, &user, id, input) {
                Ok(_) => {
                    // Still loads, also from a snapshot once compacted.
                    store.inspection(&user, id).unwrap().read().unwrap();
                    store.compact().unwrap();
                    store.inspection(&user, id).unwrap().read().unwrap();
                    ok = true;
                }
                Err(_) => assert_eq!(store.change_count(territory).unwrap(), before),
            }
        }
        ok
    });
}

/// CSV import (offices, complexes): any text gives rows or line errors,
/// never a panic, and every accepted row is complete and sensible.
#[test]
fn fuzz_csv_import() {
    let store = bilan_server::in_memory_service().unwrap();
    bilan_server::admin::seed_demo(&store).unwrap();
    let (_, manager) = store
        .login("responsable", bilan_server::admin::DEMO_PASSWORD, None)
        .unwrap();
    let territory = manager.territory_id.unwrap();
    let offices = store.offices(territory).unwrap();
    fuzz("csv_import", |bytes| {
        let text = String::from_utf8_lossy(bytes);
        let mut ok = false;
        if let Ok(rows) = parse_offices(&text) {
            assert!(rows.iter().all(|(c, n)| !c.is_empty() && !n.is_empty()));
            ok = true;
        }
        if let Ok(rows) = parse_complexes(&offices, territory, &text) {
            ok = true;
            for c in rows {
                assert!(!c.code.is_empty() && !c.name.is_empty() && !c.city.is_empty());
                assert!((1800..=2100).contains(&c.year_built));
                assert!(
                    c.replacement_value.is_finite() && c.replacement_value > 0.0,
                    "{c:?}"
                );
            }
        }
        ok
    });
}

/// Photo upload headers: `Content-Range` and the photo hash in the path.
/// Anything parses to a sane range and a canonical hash, or is refused.
#[test]
fn fuzz_photo_upload_headers() {
    fuzz("photo_headers", |bytes| {
        let text = String::from_utf8_lossy(bytes);
        let mut ok = false;
        for line in text.lines() {
            if let Some((start, end, total)) = parse_content_range(line) {
                assert!(start <= end && end < total, "{line}");
                ok = true;
            }
            if let Ok(h) = line.parse::<PhotoHash>() {
                ok = true;
                assert_eq!(h.as_str().len(), 64);
                assert!(
                    h.as_str()
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                );
            }
        }
        ok
    });
}

/// Writes the seed corpora from real code (run after a wire or schema
/// change): `cargo test -p bilan-e2e --test fuzz -- --ignored`.
#[test]
#[ignore = "writes the seed corpus into the repository"]
fn write_seed_corpus() {
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    // Automerge: the base inspection's changes, an edit, a saved document,
    // and changes that break the inspection schema.
    let store = bilan_server::in_memory_service().unwrap();
    bilan_server::admin::seed_demo(&store).unwrap();
    let (_, user) = store
        .login("inspecteur1", bilan_server::admin::DEMO_PASSWORD, None)
        .unwrap();
    let (mut insp, id) = base_inspection(&store, &user);
    let author = Author::device(DeviceId(uuid::Uuid::from_u128(8)), user.id, "Marc");
    write(
        "automerge_changes",
        "seed-create.bin",
        &bundle(&insp.changes_since(&[])),
    );
    let heads = insp.automerge().get_heads();
    insp.edit(&author, |d| d.rate("B3010", Rating::D)).unwrap();
    insp.edit(&author, |d| {
        d.rate("C1010", Rating::B)?;
        Ok(())
    })
    .unwrap();
    write(
        "automerge_changes",
        "seed-edits.bin",
        &bundle(&insp.changes_since(&heads)),
    );
    write("automerge_changes", "seed-saved.bin", &insp.save());
    {
        use automerge::transaction::Transactable;
        let mut doc = insp.automerge().fork();
        let before = doc.get_heads();
        let mut tx = doc.transaction();
        tx.put(automerge::ROOT, "status", 42_i64).unwrap();
        tx.put(automerge::ROOT, "components", "pas une carte")
            .unwrap();
        tx.commit();
        let bad: Vec<_> = doc.get_changes(&before).into_iter().cloned().collect();
        write("automerge_changes", "seed-schema-broken.bin", &bundle(&bad));
    }
    // Sync requests: an empty pull, a push of the inspection.
    let req = |docs| SyncRequest {
        protocol: PROTOCOL_VERSION,
        device_id: DeviceId(uuid::Uuid::from_u128(9)),
        cursor: 3,
        docs,
    };
    // Raw MessagePack, as inside the zstd frame (the target compresses it).
    let raw = |r: &SyncRequest| rmp_serde::to_vec_named(r).unwrap();
    write("sync_request", "seed-pull.msgpack", &raw(&req(vec![])));
    let push = req(vec![DocChanges {
        doc_id: id,
        changes: vec![serde_bytes::ByteBuf::from(bundle(&insp.changes_since(&[])))],
    }]);
    write("sync_request", "seed-push.msgpack", &raw(&push));
    // CSV and headers are text: written once by hand, kept as they are.
    let _ = COMPLEX_HEADERS;
}
