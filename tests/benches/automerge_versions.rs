//! automerge 0.6 (pinned) against the current release, on our own
//! operations, in one binary (criterion): build a 60-component inspection
//! the way the app does (one commit per tap: a rating, a note, a finding
//! with its photo and costed work), save it, load it, hydrate it (read every
//! value into plain Rust, as autosurgeon does), make one edit and take its
//! change, and apply a cold push (every change of the inspection into an
//! empty document, as the server's merger does). The same code runs against
//! both crates (a macro); the document built by 0.6 is also loaded by the
//! current release, the binary format being shared.
//!
//! Run: `cargo bench -p bilan-e2e --bench automerge_versions`.
//! Figures and the decision: BENCHMARKS.md, "automerge 0.6 or the current
//! release".

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

/// Components of the inspection (the workload's size).
const COMPONENTS: usize = 60;

/// One version's operations, written once against the crate `$am`.
macro_rules! operations {
    ($module:ident, $am:ident) => {
        mod $module {
            use $am::transaction::Transactable;
            use $am::{AutoCommit, ObjType, ROOT, ReadDoc};

            /// What hydrating reads: every component's rating and note, and
            /// each finding's title, photo and cost.
            #[derive(Debug, Default, PartialEq)]
            pub struct Plain {
                pub ratings: Vec<(String, String, String)>,
                pub findings: Vec<(String, String, f64)>,
            }

            /// The inspection as the app makes it: one commit per tap.
            pub fn build() -> AutoCommit {
                let mut d = AutoCommit::new();
                let components = d.put_object(ROOT, "components", ObjType::Map).unwrap();
                let findings = d.put_object(ROOT, "findings", ObjType::List).unwrap();
                d.put(ROOT, "status", "en_cours").unwrap();
                d.commit();
                for i in 0..super::COMPONENTS {
                    let code = format!("C{i:04}");
                    let c = d
                        .put_object(&components, code.as_str(), ObjType::Map)
                        .unwrap();
                    d.put(&c, "present", true).unwrap();
                    d.commit();
                    d.put(&c, "rating", ["A", "B", "C", "D"][i % 4]).unwrap();
                    d.commit();
                    d.put(
                        &c,
                        "note",
                        format!(
                            "Note de l'inspecteur sur le composant {i}, état observé sur place."
                        ),
                    )
                    .unwrap();
                    d.commit();
                    let f = d.insert_object(&findings, i, ObjType::Map).unwrap();
                    d.put(&f, "component", code.as_str()).unwrap();
                    d.put(&f, "title", format!("Désordre {i}")).unwrap();
                    let photos = d.put_object(&f, "photos", ObjType::List).unwrap();
                    d.insert(&photos, 0, format!("{:064x}", i * 7919)).unwrap();
                    let r = d.put_object(&f, "recommendation", ObjType::Map).unwrap();
                    d.put(&r, "work", "Réfection").unwrap();
                    d.put(&r, "unit_cost", 1_000.0 + i as f64).unwrap();
                    d.commit();
                }
                d
            }

            fn text<D: ReadDoc>(d: &D, obj: &$am::ObjId, key: &str) -> String {
                match d.get(obj, key).unwrap() {
                    Some((v, _)) => as_text(&v),
                    None => String::new(),
                }
            }

            fn as_text(v: &$am::Value) -> String {
                match v {
                    $am::Value::Scalar(s) => match s.as_ref() {
                        $am::ScalarValue::Str(t) => t.to_string(),
                        _ => String::new(),
                    },
                    _ => String::new(),
                }
            }

            /// Reads every value into plain Rust.
            pub fn hydrate(d: &AutoCommit) -> Plain {
                let mut out = Plain::default();
                let Some((_, components)) = d.get(ROOT, "components").unwrap() else {
                    return out;
                };
                for code in d.keys(&components) {
                    let Some((_, c)) = d.get(&components, code.as_str()).unwrap() else {
                        continue;
                    };
                    out.ratings
                        .push((code.clone(), text(d, &c, "rating"), text(d, &c, "note")));
                }
                let Some((_, findings)) = d.get(ROOT, "findings").unwrap() else {
                    return out;
                };
                for i in 0..d.length(&findings) {
                    let Some((_, f)) = d.get(&findings, i).unwrap() else {
                        continue;
                    };
                    let photo = match d.get(&f, "photos").unwrap() {
                        Some((_, p)) => d
                            .get(&p, 0)
                            .unwrap()
                            .map(|(v, _)| as_text(&v))
                            .unwrap_or_default(),
                        None => String::new(),
                    };
                    let cost = match d.get(&f, "recommendation").unwrap() {
                        Some((_, r)) => match d.get(&r, "unit_cost").unwrap() {
                            Some(($am::Value::Scalar(s), _)) => match s.as_ref() {
                                $am::ScalarValue::F64(f) => *f,
                                _ => 0.0,
                            },
                            _ => 0.0,
                        },
                        None => 0.0,
                    };
                    out.findings.push((text(d, &f, "title"), photo, cost));
                }
                out
            }

            /// One tap on a loaded inspection, and the change it makes.
            pub fn one_edit(d: &mut AutoCommit) -> Vec<u8> {
                let (_, components) = d.get(ROOT, "components").unwrap().unwrap();
                let (_, c) = d.get(&components, "C0030").unwrap().unwrap();
                d.put(&c, "rating", "E").unwrap();
                d.commit();
                d.save_incremental()
            }

            /// Every change of the inspection, as a device pushes them.
            pub fn changes(d: &mut AutoCommit) -> Vec<u8> {
                let mut out = Vec::new();
                for c in d.get_changes(&[]) {
                    out.extend_from_slice(c.raw_bytes());
                }
                out
            }

            /// The merger's work on a cold push: the changes into an empty
            /// document, then read back.
            pub fn apply_push(bytes: &[u8]) -> AutoCommit {
                let mut d = AutoCommit::new();
                d.load_incremental(bytes).unwrap();
                d
            }

            pub fn load(bytes: &[u8]) -> AutoCommit {
                AutoCommit::load(bytes).unwrap()
            }
        }
    };
}

operations!(pinned, automerge);
operations!(current, automerge_current);

fn versions(c: &mut Criterion) {
    let mut old = pinned::build();
    let mut new = current::build();
    let (old_saved, new_saved) = (old.save(), new.save());
    let (old_changes, new_changes) = (pinned::changes(&mut old), current::changes(&mut new));
    // The format is shared: what 0.6 saved loads in the current release and
    // reads the same.
    let crossed = current::load(&old_saved);
    let (a, b) = (pinned::hydrate(&old), current::hydrate(&crossed));
    assert_eq!(
        a.ratings, b.ratings,
        "0.6's document read by the current release"
    );
    assert_eq!(a.findings, b.findings);
    eprintln!(
        "saved: 0.6 {} B, current {} B; changes: 0.6 {} B, current {} B",
        old_saved.len(),
        new_saved.len(),
        old_changes.len(),
        new_changes.len()
    );

    let mut g = c.benchmark_group("inspection");
    g.sample_size(20);
    g.bench_function(BenchmarkId::new("build", "0.6"), |b| b.iter(pinned::build));
    g.bench_function(BenchmarkId::new("build", "current"), |b| {
        b.iter(current::build)
    });
    g.bench_function(BenchmarkId::new("load", "0.6"), |b| {
        b.iter(|| pinned::load(&old_saved))
    });
    g.bench_function(BenchmarkId::new("load", "current"), |b| {
        b.iter(|| current::load(&new_saved))
    });
    let (old_loaded, new_loaded) = (pinned::load(&old_saved), current::load(&new_saved));
    g.bench_function(BenchmarkId::new("hydrate", "0.6"), |b| {
        b.iter(|| pinned::hydrate(&old_loaded))
    });
    g.bench_function(BenchmarkId::new("hydrate", "current"), |b| {
        b.iter(|| current::hydrate(&new_loaded))
    });
    g.bench_function(BenchmarkId::new("one edit", "0.6"), |b| {
        b.iter_batched(
            || pinned::load(&old_saved),
            |mut d| pinned::one_edit(&mut d),
            criterion::BatchSize::SmallInput,
        )
    });
    g.bench_function(BenchmarkId::new("one edit", "current"), |b| {
        b.iter_batched(
            || current::load(&new_saved),
            |mut d| current::one_edit(&mut d),
            criterion::BatchSize::SmallInput,
        )
    });
    g.bench_function(BenchmarkId::new("apply cold push", "0.6"), |b| {
        b.iter(|| pinned::apply_push(&old_changes))
    });
    g.bench_function(BenchmarkId::new("apply cold push", "current"), |b| {
        b.iter(|| current::apply_push(&new_changes))
    });
    g.bench_function(BenchmarkId::new("save", "0.6"), |b| {
        b.iter_batched(
            || old_loaded.clone(),
            |mut d| d.save(),
            criterion::BatchSize::SmallInput,
        )
    });
    g.bench_function(BenchmarkId::new("save", "current"), |b| {
        b.iter_batched(
            || new_loaded.clone(),
            |mut d| d.save(),
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, versions);
criterion_main!(benches);
