//! Prints what one-field sync costs with N inspections on the server (default
//! 1,000): a device makes N inspections and syncs them, restarts, edits one
//! field of one inspection and syncs again; bytes counted on the wire by a
//! proxy. Usage: `cargo run --release -p bilan-e2e --bin sync-bytes -- [N]`.

use std::time::Instant;

use bilan_e2e::{Proxy, TestServer, device};
use bilan_mobile::{DeviceStore, SyncEngine};
use bilan_shared::domain::Rating;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1000);
    let tmp = tempfile::tempdir()?;
    let server = TestServer::start(&tmp.path().join("server")).await;
    let proxy = Proxy::start(server.addr).await;
    let ddir = tmp.path().join("device");
    let a = device(&ddir, &proxy.url(), "inspecteur1").await;
    let complexes = a.complexes()?;
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let id = a.start_inspection(complexes[i % complexes.len()].id)?;
        for code in ["A1010", "B2020", "B3010", "D2021", "G2010"] {
            a.rate(id, code, Rating::C)?;
        }
        ids.push(id);
    }
    proxy.take_counts();
    let t = Instant::now();
    let r = SyncEngine::new(&a).sync().await?;
    let (up, down) = proxy.take_counts();
    println!(
        "cold push: {n} inspections, {} ms, {up} bytes up, {down} bytes down, {} round trip(s)",
        t.elapsed().as_millis(),
        r.round_trips
    );
    drop(a);
    let a = DeviceStore::open(&ddir)?;
    a.rate(ids[n / 2], "B3010", Rating::D)?;
    proxy.take_counts();
    let conns = proxy.connections.load(std::sync::atomic::Ordering::SeqCst);
    let t = Instant::now();
    let r = SyncEngine::new(&a).sync().await?;
    let (up, down) = proxy.take_counts();
    println!(
        "one field after restart: {} ms, {up} bytes up, {down} bytes down, {} sync request(s), {} connection(s)",
        t.elapsed().as_millis(),
        r.round_trips,
        proxy.connections.load(std::sync::atomic::Ordering::SeqCst) - conns
    );
    Ok(())
}
