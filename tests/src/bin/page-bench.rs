//! Prints the response time of each review page with a generated territory of
//! N inspections (default 10,000) on a real server. Figures only, no
//! assertion. Run: `cargo run --release -p bilan-e2e --bin page-bench -- [N]`.

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
    let pages = [
        "/".to_string(),
        "/inspections".into(),
        "/inspections?status=en_cours&condition=C&sort=cost".into(),
        "/inspections?conflicts=oui".into(),
        "/inspections?page=150".into(),
        format!("/inspections/{id}"),
        format!("/inspections/{id}/rapport"),
        format!("/inspections/{id}/rapport.pdf"),
        format!("/ensembles/{complex}"),
        "/plan".into(),
        "/plan.csv".into(),
        "/plan.xlsx".into(),
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
