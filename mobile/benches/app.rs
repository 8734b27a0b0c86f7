//! App benchmark: prints figures, asserts nothing. With 1,000 inspections in
//! the local store: launch to the territory list (open the store, compute the
//! list, render the screen), saving a rating (p50/p99 over 500 saves), and
//! opening an inspection of 150 components (cold: store reopened, document
//! loaded from SQLite and the checklist rendered).
//! Run: `cargo bench -p bilan-mobile --bench app [-- N]`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bilan_mobile::DeviceStore;
use bilan_mobile::ui::{App, Filter, Screen, Services, StartScreen, territory_rows};
use bilan_shared::doc::ComponentRecord;
use bilan_shared::domain::{Complex, Office, Rating, Territory};
use bilan_shared::ids::*;
use dioxus::prelude::*;

fn render(store: Arc<DeviceStore>, screen: Option<Screen>) -> String {
    let mut dom = VirtualDom::new(App).with_root_context(Services {
        store,
        default_server: String::new(),
        auto_sync: false,
        wake: Default::default(),
        probe: None,
    });
    if let Some(s) = screen {
        dom = dom.with_root_context(StartScreen(s));
    }
    dom.rebuild_in_place();
    dioxus_ssr::render(&dom)
}

fn pct(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let n: usize = std::env::args()
        .filter_map(|a| a.parse().ok())
        .next()
        .unwrap_or(1000);
    let dir = tempfile::tempdir().unwrap();
    let territory = TerritoryId::new();
    let office = Office {
        id: OfficeId::new(),
        territory_id: territory,
        name: "OH".into(),
        code: "OH".into(),
    };
    let complexes: Vec<Complex> = (0..300)
        .map(|i| Complex {
            id: ComplexId::new(),
            territory_id: territory,
            office_id: office.id,
            code: format!("C{i:03}"),
            name: format!("Habitations {i}"),
            address: format!("{i} rue des Forges"),
            city: "Trois-Rivières".into(),
            dwellings: 24,
            year_built: 1975,
            replacement_value: 4e6,
        })
        .collect();
    let big;
    {
        let store = DeviceStore::open(dir.path()).unwrap();
        store
            .sign_in_offline(
                "bench",
                "Banc d'essai",
                Territory {
                    id: territory,
                    name: "CS".into(),
                },
                vec![office],
                complexes.clone(),
            )
            .unwrap();
        let t = Instant::now();
        for i in 0..n {
            let id = store
                .start_inspection(complexes[i % complexes.len()].id)
                .unwrap();
            store.rate(id, "B3010", Rating::C).unwrap();
        }
        println!(
            "setup: {n} inspections created in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        // One inspection with 150 component records (catalogue + per-dwelling entries).
        big = store.start_inspection(complexes[0].id).unwrap();
        store
            .edit(big, |d| {
                let extra = 150 - d.components.len();
                for k in 0..extra {
                    d.components
                        .insert(format!("L1010-{k:03}"), ComponentRecord::default());
                }
                Ok(())
            })
            .unwrap();
        let codes: Vec<String> = store
            .inspection(big)
            .unwrap()
            .components
            .keys()
            .cloned()
            .collect();
        assert_eq!(codes.len(), 150);
        for (i, c) in codes.iter().enumerate() {
            store
                .rate_any(big, c, [Rating::A, Rating::B, Rating::C][i % 3])
                .unwrap();
        }
    }

    // 1. Launch to the territory list.
    let mut launches = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let store = Arc::new(DeviceStore::open(dir.path()).unwrap());
        let rows = territory_rows(&store, &store.cs_settings().unwrap(), "", Filter::All).unwrap();
        let html = render(store.clone(), None);
        launches.push(t.elapsed());
        assert!(rows.len() == 300 && html.contains("Habitations 0"));
    }
    println!(
        "launch to territory list ({n} inspections, 300 complexes): median {:?}, max {:?}",
        pct(launches.clone(), 0.5),
        pct(launches, 1.0)
    );

    // 2. Saving a rating (durable in SQLite before returning).
    let store = DeviceStore::open(dir.path()).unwrap();
    let id = store.summaries(None).unwrap()[5].id;
    let ratings = [Rating::A, Rating::B, Rating::C, Rating::D, Rating::E];
    let codes = ["A1010", "B2020", "B3010", "C1010", "D2021", "G2010"];
    store.rate(id, "A1010", Rating::A).unwrap(); // load the document once
    let mut saves = Vec::new();
    for i in 0..500 {
        let t = Instant::now();
        store
            .rate(id, codes[i % codes.len()], ratings[(i / codes.len()) % 5])
            .unwrap();
        saves.push(t.elapsed());
    }
    println!(
        "save a rating (500 saves): p50 {:?}, p99 {:?}, max {:?}",
        pct(saves.clone(), 0.5),
        pct(saves.clone(), 0.99),
        pct(saves, 1.0)
    );

    // 3. Opening an inspection of 150 components (cold).
    let mut opens = Vec::new();
    for _ in 0..10 {
        let store = Arc::new(DeviceStore::open(dir.path()).unwrap());
        let t = Instant::now();
        let doc = store.inspection(big).unwrap();
        let html = render(store.clone(), Some(Screen::Inspection(big)));
        opens.push(t.elapsed());
        assert!(doc.components.len() == 150 && html.contains("A1010"));
    }
    println!(
        "open an inspection of 150 components (cold, load + render): median {:?}, max {:?}",
        pct(opens.clone(), 0.5),
        pct(opens, 1.0)
    );
}
