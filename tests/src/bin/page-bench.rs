//! Prints the response time of each review page with a generated territory of
//! N inspections (default 10,000) on a real server. Figures only, no
//! assertion. Run: `cargo run --release -p bilan-e2e --bin page-bench -- [N]`.

use std::time::Instant;

use bilan_e2e::{DEMO_PASSWORD, TestServer};
use bilan_server::service::SyncLimits;
use bilan_shared::doc::{Finding, Recommendation, now_ms};
use bilan_shared::domain::{Complex, Rating, Severity, Urgency};
use bilan_shared::ids::*;
use bilan_shared::protocol::{DocChanges, PROTOCOL_VERSION, SyncRequest};
use bilan_shared::{Author, Catalogue, Inspection, NewInspection};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let tmp = tempfile::tempdir()?;
    let server = TestServer::start(&tmp.path().join("server")).await;
    let store = server.state.service();
    let (_, inspector) = store.login("inspecteur1", DEMO_PASSWORD, None)?;
    let territory = inspector.territory_id.expect("territory");
    let offices = store.offices(territory)?;
    let mut complexes = Vec::new();
    for i in 0..300 {
        let c = Complex {
            id: ComplexId::new(),
            territory_id: territory,
            office_id: offices[i % offices.len()].id,
            code: format!("GEN-{i:04}"),
            name: format!("Ensemble généré {i}"),
            address: format!("{i} rue Générée"),
            city: "Trois-Rivières".into(),
            dwellings: 20,
            year_built: 1970 + (i as u32 % 40),
            replacement_value: 3e6,
        };
        store.upsert_complex(&c)?;
        complexes.push(c);
    }
    let author = Author::device(DeviceId::new(), inspector.id, &inspector.display_name);
    let t = Instant::now();
    let mut batch = Vec::new();
    let mut first = None;
    for i in 0..n {
        let c = &complexes[i % complexes.len()];
        let new = NewInspection {
            inspection_id: InspectionId::new(),
            territory_id: territory,
            office_id: c.office_id,
            complex_id: c.id,
        };
        let (mut insp, _) = Inspection::create(&author, new.clone(), Catalogue::current())?;
        insp.edit(&author, |d| {
            for (k, code) in ["A1010", "B2020", "B3010", "D2021", "G2010"]
                .iter()
                .enumerate()
            {
                d.rate(code, [Rating::B, Rating::C, Rating::D][(i + k) % 3])?;
            }
            d.findings.push(Finding {
                id: FindingId::new(),
                component: "B3010".into(),
                title: "Membrane usée".into(),
                location: "Toit".into(),
                severity: Severity::Moderate,
                description: String::new(),
                photos: vec![],
                recommendations: vec![Recommendation {
                    id: RecommendationId::new(),
                    work: "Réfection".into(),
                    urgency: Urgency::ALL[i % 5],
                    quantity: 100.0,
                    unit: "m²".into(),
                    unit_cost: 50.0 + (i % 200) as f64,
                }],
                created_by: inspector.id,
                created_at: now_ms(),
            });
            Ok(())
        })?;
        first.get_or_insert(new.inspection_id);
        let changes = insp
            .automerge()
            .get_changes(&[])
            .into_iter()
            .map(|c| serde_bytes::ByteBuf::from(c.raw_bytes().to_vec()))
            .collect();
        batch.push(DocChanges {
            doc_id: new.inspection_id,
            changes,
        });
        if batch.len() == 500 || i + 1 == n {
            let req = SyncRequest {
                protocol: PROTOCOL_VERSION,
                device_id: DeviceId::new(),
                cursor: u64::MAX >> 1,
                docs: std::mem::take(&mut batch),
            };
            store.sync(
                &inspector,
                req,
                SyncLimits {
                    max_docs: 1000,
                    page_bytes: 1,
                },
            )?;
        }
    }
    println!(
        "generated {n} inspections over 300 complexes in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let login = http
        .post(format!("{}/connexion", server.url()))
        .form(&[("username", "responsable"), ("password", DEMO_PASSWORD)])
        .send()
        .await?;
    let cookie = login.headers()["set-cookie"]
        .to_str()?
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    let id = first.expect("one inspection");
    let pages = [
        "/".to_string(),
        "/inspections".into(),
        "/inspections?status=en_cours&condition=C&sort=cost".into(),
        "/inspections?conflicts=oui".into(),
        "/inspections?page=150".into(),
        format!("/inspections/{id}"),
        "/plan".into(),
        "/plan.csv".into(),
        "/releve".into(),
        "/avancement.csv".into(),
    ];
    for p in pages {
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..5 {
            let t = Instant::now();
            let r = http
                .get(format!("{}{p}", server.url()))
                .header("cookie", &cookie)
                .send()
                .await?;
            let status = r.status();
            size = r.bytes().await?.len();
            times.push(t.elapsed());
            anyhow::ensure!(status == 200, "{p}: {status}");
        }
        times.sort();
        println!(
            "{p}: median {:.1} ms, max {:.1} ms, {size} bytes",
            times[2].as_secs_f64() * 1e3,
            times[4].as_secs_f64() * 1e3
        );
    }
    Ok(())
}
