//! Prints the response time of each review page with a generated territory of
//! N inspections (default 10,000) on a real server, every complex planned
//! for an inspector, and one inspection with 60 real photos (camera-like
//! JPEGs, `bilan_server::demo_photos`, uploaded by a device) whose report is rendered as a PDF. Figures
//! only, no assertion. Run:
//! `cargo run --release -p bilan-e2e --bin page-bench -- [N]`.

use std::time::Instant;

use bilan_e2e::{DEMO_PASSWORD, TestServer};

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
    let t = Instant::now();
    let ids = bilan_e2e::generate_territory(store, 300, n)?;
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
    let id = *ids.first().expect("one inspection");
    let (_, manager) = store.login("responsable", DEMO_PASSWORD, None)?;
    let complex = store.inspection(&manager, id)?.read()?.complex_id;
    // Every complex planned for Julie, in one assignment.
    let reference = store.reference(&manager, 0)?;
    let julie = store
        .territory_users(&manager)?
        .into_iter()
        .find(|u| u.username == "inspecteur1")
        .expect("the demo's inspector");
    let all: Vec<_> = reference.complexes.iter().map(|c| c.id).collect();
    let t = Instant::now();
    store.plan_visits(
        &manager,
        &all,
        Some(julie.id),
        Some(bilan_shared::planning::Month::parse("2027-03").map_err(anyhow::Error::msg)?),
    )?;
    println!(
        "planned {} complexes in {:.1} ms",
        all.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    let with_photos = inspection_with_photos(&server, &tmp.path().join("device"), 60).await?;
    let pages = [
        "/".to_string(),
        "/inspections".into(),
        "/inspections?status=en_cours&condition=C&sort=cost".into(),
        "/inspections?conflicts=oui".into(),
        "/inspections?page=150".into(),
        format!("/inspections/{id}"),
        format!("/inspections/{id}/rapport"),
        format!("/inspections/{id}/rapport.pdf"),
        format!("/inspections/{with_photos}/rapport"),
        format!("/inspections/{with_photos}/rapport.pdf"),
        format!("/ensembles/{complex}"),
        "/plan".into(),
        "/plan.csv".into(),
        "/plan.xlsx".into(),
        "/planification".into(),
        "/planification?etat=en_retard".into(),
        "/planification.xlsx".into(),
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

/// An inspection of `n` findings with one camera-like photo each (2 MP,
/// quality 85), made and synced by a real device: the photos' thumbnails
/// are what the report embeds.
async fn inspection_with_photos(
    server: &TestServer,
    dir: &std::path::Path,
    n: usize,
) -> anyhow::Result<bilan_shared::ids::InspectionId> {
    let d = bilan_e2e::device(dir, &server.url(), "inspecteur1").await;
    let complex = bilan_e2e::first_complex(&d);
    let id = d.start_inspection(complex)?;
    let t = Instant::now();
    let mut bytes = 0;
    for i in 0..n {
        let finding = d.add_finding(id, bilan_e2e::roof_finding())?;
        let photo = bilan_server::demo_photos::photo(i as u64, 1600, 1200, 85);
        bytes += photo.len();
        d.attach_photo(
            id,
            finding,
            &photo,
            "image/jpeg",
            &format!("Photo {}", i + 1),
        )?;
    }
    let report = bilan_e2e::sync(&d).await;
    anyhow::ensure!(
        report.photos_uploaded as usize == n,
        "{} photos uploaded of {n}",
        report.photos_uploaded
    );
    println!(
        "an inspection with {n} photos ({:.1} MB) made and synced in {:.1} s",
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    Ok(id)
}
