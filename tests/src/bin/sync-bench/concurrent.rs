//! Scenario 4 of the bench: fifty devices pushing at once, at the lowest
//! priority beside the server (they stand for phones with processors of
//! their own), the counting proxy at the server's (it stands for the
//! network and the load balancer).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::ensure;
use bilan_e2e::device;
use bilan_mobile::{DeviceStore, SyncEngine};

use super::{Line, Pg, generate, servers};

/// Name of the main runtime's threads, which carry the counting proxy: it
/// stands for the network and the load balancer in front of the instances,
/// which do not share the phones' processors.
pub(super) const NETWORK_THREADS: &str = "banc-reseau";

/// Sets the nice value of every thread of this process but the network's
/// (Linux keeps it per thread; threads started afterwards inherit it) with
/// `renice`. The server runs in its own process and keeps its priority.
/// False when not allowed.
fn renice_this_process(nice: i32) -> bool {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return false;
    };
    let tids: Vec<String> = tasks
        .filter_map(|t| {
            let t = t.ok()?;
            let name = std::fs::read_to_string(t.path().join("comm")).ok()?;
            (name.trim_end() != NETWORK_THREADS)
                .then(|| t.file_name().to_string_lossy().into_owned())
        })
        .collect();
    std::process::Command::new("renice")
        .args(["-n", &nice.to_string(), "-p"])
        .args(&tids)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Scenario 4: devices each push new inspections at the same moment, each
/// from its own thread and runtime, as separate phones would.
pub(super) async fn concurrent_push(
    root: &Path,
    devices: usize,
    per_device: usize,
    same_priority: bool,
    pg: Option<&Pg>,
    instances: usize,
) -> anyhow::Result<()> {
    let (servers, proxy) = servers(&root.join("server-4"), pg, instances).await?;
    let mut dirs = Vec::new();
    for i in 0..devices {
        let dir = root.join(format!("d4-{i}"));
        let user = if i % 2 == 0 {
            "inspecteur1"
        } else {
            "inspecteur2"
        };
        let d = device(&dir, &proxy.url(), user).await;
        generate(&d, per_device, 100 + i as u64)?;
        dirs.push(dir);
    }
    // Fifty phones have fifty processors: here the simulated devices share
    // the server's two cores, so they run at the lowest priority and the
    // server gets the CPU it would have. The counting proxy, standing for
    // the network and the load balancer, keeps its priority: among fifty
    // devices at the lowest one it forwarded answers 60 to 120 ms late.
    let niced = !same_priority && renice_this_process(19);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(devices));
    proxy.take_traffic();
    let t = Instant::now();
    let times: Vec<(Duration, Duration, Duration)> = std::thread::scope(|s| {
        let handles: Vec<_> = dirs
            .iter()
            .map(|dir| {
                let barrier = barrier.clone();
                s.spawn(move || -> anyhow::Result<(Duration, Duration, Duration)> {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    let store = DeviceStore::open(dir)?;
                    let engine = SyncEngine::new(&store);
                    barrier.wait();
                    let t = Instant::now();
                    // The first round carries the device's inspections: once it
                    // returns they are durable on the server.
                    let mut report = bilan_mobile::SyncReport::default();
                    rt.block_on(engine.sync_round(&mut report))?;
                    let pushed = t.elapsed();
                    // Then the rest: catching up with what the others pushed.
                    rt.block_on(engine.sync())?;
                    Ok((report.waited, pushed, t.elapsed()))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("device thread"))
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    let total = t.elapsed().as_secs_f64() * 1000.0;
    if niced && !renice_this_process(0) {
        eprintln!("  (priorité normale non rétablie : scénario 5 avec le banc en priorité basse)");
    }
    let (up, down, requests) = proxy.take_traffic();
    // The pushes' answers, timed at the load balancer: a push carries 20
    // inspections (about 135 KB), a pull a cursor (under 300 bytes).
    let answered: Vec<f64> = proxy
        .take_answers()
        .iter()
        .filter(|a| a.request_bytes >= 1024)
        .map(|a| a.waited.as_secs_f64() * 1000.0)
        .collect();
    ensure!(
        answered.len() == devices,
        "{} answers to pushes timed at the proxy for {devices} devices",
        answered.len()
    );
    let pct = |mut ms: Vec<f64>, p: f64| {
        ms.sort_by(f64::total_cmp);
        ms[((p * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1]
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let wait: Vec<f64> = times.iter().map(|t| ms(t.0)).collect();
    let push: Vec<f64> = times.iter().map(|t| ms(t.1)).collect();
    let whole: Vec<f64> = times.iter().map(|t| ms(t.2)).collect();
    Line {
        ms: total,
        up,
        down,
        requests,
    }
    .print(
        &format!(
            "4. {devices} appareils × {per_device} inspections en même temps{}",
            if instances > 1 {
                format!(", {instances} instances du serveur")
            } else {
                String::new()
            }
        ),
        &format!(
            "({}réponse du serveur à l'envoi, au répartiteur : p50 {:.0} ms, p99 {:.0} ms ; attente vue par l'appareil : p50 {:.0} ms, p99 {:.0} ms ; envoi avec intégration de la réponse : p50 {:.0} ms, p99 {:.0} ms ; synchro complète avec les inspections des autres : p50 {:.0} ms, p99 {:.0} ms)",
            if niced {
                "appareils simulés en priorité basse ; "
            } else {
                "appareils simulés à la priorité du serveur ; "
            },
            pct(answered.clone(), 0.50),
            pct(answered, 0.99),
            pct(wait.clone(), 0.50),
            pct(wait, 0.99),
            pct(push.clone(), 0.50),
            pct(push, 0.99),
            pct(whole.clone(), 0.50),
            pct(whole, 0.99),
        ),
    );
    for server in servers {
        server.kill().await;
    }
    Ok(())
}
