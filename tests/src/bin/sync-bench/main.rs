//! The sync benchmark: the real server in its own process on loopback with a
//! fresh SQLite file, real device stores driven by the real sync engine, and a
//! counting proxy between them. Prints one line per scenario: wall
//! milliseconds, bytes up, bytes down, HTTP requests (counted on the wire).
//!
//! Per N: the information floor (the N inspections as one JSON array,
//! zstd -19) and each scenario's bytes as a ratio to it; (1) cold push of N
//! inspections, (2) one edit after a restart, (3) cold pull by a new
//! device, with the server's peak memory and its storage per inspection. Once: (4) 50 devices each pushing 20 new inspections at the
//! same time, (5) 200 photos of 2 MB, then 200 more with every upload cut at
//! half once. Workload: see `bilan_e2e::workload`.
//!
//! Usage: `cargo run --release -p bilan-e2e --bin sync-bench -- [N ...]`
//! (default 1000 10000); `--devices`, `--per-device`, `--photos`,
//! `--photo-mb` scale scenarios 4 and 5 (CI runs it small as a smoke test).
//! On PostgreSQL: `--postgres` (a throwaway cluster) or `--database URL`
//! (an existing server: the bench makes its databases there, named
//! `bilan_bench_*`); `--instances 2` runs scenario 4 against two server
//! instances on one database behind a round-robin proxy.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use bilan_e2e::postgres::PgCluster;
use bilan_e2e::{ProcessServer, Proxy, device, workload};
use bilan_mobile::{DeviceStore, NewFinding, SyncEngine};
use bilan_shared::doc::Author;
use bilan_shared::domain::{Rating, Severity};
use clap::Parser;

mod concurrent;
use concurrent::{NETWORK_THREADS, concurrent_push};

#[derive(Parser)]
#[command(about = "Banc d'essai de la synchronisation Bilan")]
struct Args {
    /// Numbers of inspections for scenarios 1 to 3.
    #[arg(default_values_t = [1000, 10000])]
    n: Vec<usize>,
    /// Devices of scenario 4 (0 skips it).
    #[arg(long, default_value_t = 50)]
    devices: usize,
    /// New inspections per device in scenario 4.
    #[arg(long, default_value_t = 20)]
    per_device: usize,
    /// Scenario 4 without lowering the simulated devices' priority: they
    /// then take the server's CPU, which phones would not.
    #[arg(long)]
    devices_same_priority: bool,
    /// Photos of scenario 5, each pass (0 skips it).
    #[arg(long, default_value_t = 200)]
    photos: usize,
    /// Size of each photo in MB.
    #[arg(long, default_value_t = 2)]
    photo_mb: usize,
    /// Photos (12 megapixels) of the slow-link scenario's day of work, at
    /// 1 Mbit/s and 300 ms (0 skips it; a real day is 60).
    #[arg(long, default_value_t = 6)]
    slow_photos: usize,
    /// Run the server on PostgreSQL: a throwaway cluster (Debian's
    /// postgresql), one database per scenario.
    #[arg(long)]
    postgres: bool,
    /// Run the server on this PostgreSQL server (`postgres://...` or
    /// `host=... user=...`): one database per scenario is made there,
    /// named `bilan_bench_*` (dropped first if it exists).
    #[arg(long, value_name = "URL", conflicts_with = "postgres")]
    database: Option<String>,
    /// Push never-synced inspections as their changes, not their saved
    /// documents (what builds before the fifth session did), to compare.
    #[arg(long)]
    changes_only: bool,
    /// Server instances of scenario 4, on one PostgreSQL database behind a
    /// round-robin proxy (more than 1 needs PostgreSQL).
    #[arg(long, default_value_t = 1)]
    instances: usize,
    /// Internal: serve this data folder (the server process of the bench).
    #[arg(long, hide = true)]
    serve: Option<PathBuf>,
    /// Internal: the server process's PostgreSQL database.
    #[arg(long, hide = true)]
    serve_database: Option<String>,
}

/// What one scenario measured.
struct Line {
    ms: f64,
    up: u64,
    down: u64,
    requests: u64,
}

impl Line {
    fn print(&self, label: &str, extra: &str) {
        println!(
            "{label:<44} {:>9.1} ms {:>12} B up {:>12} B down {:>5} req {extra}",
            self.ms,
            group(self.up),
            group(self.down),
            self.requests
        );
    }
}

fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Runs `f` and reads the proxy's counters around it.
async fn measured<T>(
    proxy: &Proxy,
    f: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<(T, Line)> {
    proxy.take_traffic();
    proxy.take_answers();
    let t = Instant::now();
    let v = f.await?;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    let (up, down, requests) = proxy.take_traffic();
    Ok((
        v,
        Line {
            ms,
            up,
            down,
            requests,
        },
    ))
}

/// A token of the demo territory's manager.
async fn manager_token(url: &str) -> anyhow::Result<String> {
    let login: serde_json::Value = reqwest::Client::new()
        .post(format!("{url}/api/v1/login"))
        .json(&serde_json::json!({
            "username": "responsable",
            "password": bilan_server::admin::DEMO_PASSWORD,
        }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    login["token"]
        .as_str()
        .map(str::to_string)
        .context("no token in the login answer")
}

/// How long until the server has merged everything it acknowledged: the
/// manager's list of inspections waits for its merger (read your writes).
async fn merged_within(url: &str, token: &str) -> anyhow::Result<Duration> {
    let t = Instant::now();
    reqwest::Client::new()
        .get(format!("{url}/api/v1/inspections"))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?;
    Ok(t.elapsed())
}

/// Where the bench's PostgreSQL databases are made.
enum Pg {
    /// A throwaway cluster (`--postgres`).
    Throwaway(PgCluster),
    /// An existing server (`--database URL`).
    Given(String),
}

impl Pg {
    /// The connection settings of database `name`.
    fn url(&self, name: &str) -> String {
        match self {
            Pg::Throwaway(c) => c.url(name),
            Pg::Given(base) => with_dbname(base, &format!("bilan_bench_{name}")),
        }
    }

    /// Makes database `name`, empty; its connection settings.
    fn create(&self, name: &str) -> anyhow::Result<String> {
        match self {
            Pg::Throwaway(c) => Ok(c.create_database(name)),
            Pg::Given(base) => {
                let db = format!("bilan_bench_{name}");
                for sql in [
                    format!("DROP DATABASE IF EXISTS \"{db}\""),
                    format!("CREATE DATABASE \"{db}\""),
                ] {
                    let out = std::process::Command::new("psql")
                        .args(["-q", "-v", "ON_ERROR_STOP=1", base, "-c", &sql])
                        .output()?;
                    ensure!(
                        out.status.success(),
                        "psql {sql}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                Ok(self.url(name))
            }
        }
    }
}

/// `base` (a URI or `key=value` settings) naming database `db` instead.
fn with_dbname(base: &str, db: &str) -> String {
    if base.starts_with("postgres://") || base.starts_with("postgresql://") {
        let (head, query) = base
            .split_once('?')
            .map_or((base, None), |(h, q)| (h, Some(q)));
        let scheme_end = head.find("://").map_or(0, |i| i + 3);
        let host_end = head[scheme_end..]
            .find('/')
            .map_or(head.len(), |i| scheme_end + i);
        let mut url = format!("{}/{db}", &head[..host_end]);
        if let Some(q) = query {
            url.push('?');
            url.push_str(q);
        }
        url
    } else {
        // libpq keeps the last value of a repeated setting.
        format!("{base} dbname={db}")
    }
}

/// The PostgreSQL database of the server on `dir` (one per scenario), when
/// the bench runs on PostgreSQL.
fn database_of(pg: Option<&Pg>, dir: &Path) -> Option<String> {
    let name = dir.file_name()?.to_string_lossy().replace('-', "_");
    pg.map(|c| c.url(&name))
}

/// A server process of this binary on `dir` (and its own database on `pg`),
/// and a counting proxy in front.
async fn server(dir: &Path, pg: Option<&Pg>) -> anyhow::Result<(ProcessServer, Proxy)> {
    let (mut servers, proxy) = servers(dir, pg, 1).await?;
    Ok((servers.remove(0), proxy))
}

/// `instances` server processes (each with its own folder, all on the
/// database of `dir` on `pg`), and a counting round-robin proxy in front.
async fn servers(
    dir: &Path,
    pg: Option<&Pg>,
    instances: usize,
) -> anyhow::Result<(Vec<ProcessServer>, Proxy)> {
    ensure!(
        instances == 1 || pg.is_some(),
        "several instances share one PostgreSQL database: add --postgres or --database"
    );
    let url = match (pg, dir.file_name()) {
        (Some(c), Some(name)) => Some(c.create(&name.to_string_lossy().replace('-', "_"))?),
        _ => None,
    };
    let mut started = Vec::new();
    for i in 0..instances {
        let mut cmd = tokio::process::Command::new(std::env::current_exe()?);
        let folder = if i == 0 {
            dir.to_path_buf()
        } else {
            dir.with_extension(format!("instance{i}"))
        };
        cmd.arg("--serve").arg(folder);
        if let Some(url) = &url {
            cmd.arg("--serve-database").arg(url);
        }
        // One after the other: the first makes the schema and the demo.
        started.push(ProcessServer::spawn(cmd).await);
    }
    let proxy = Proxy::start_many(started.iter().map(|s| s.addr).collect()).await;
    Ok((started, proxy))
}

/// Makes `count` workload inspections on the device (on both cores), recorded
/// as local changes not yet sent, each put away as the app does when the
/// inspector leaves it. Not measured.
fn generate(store: &DeviceStore, count: usize, seed: u64) -> anyhow::Result<()> {
    let user = store.user()?.context("not logged in")?;
    let author = Author::device(store.device_id()?, user.id, &user.display_name);
    let complexes = store.complexes()?;
    let batch = 250;
    let mut start = 0;
    while start < count {
        let end = (start + batch).min(count);
        let made: Vec<_> = std::thread::scope(|s| {
            let half = start + (end - start) / 2;
            let parts = [(start, half), (half, end)].map(|(a, b)| {
                let (author, complexes) = (&author, &complexes);
                s.spawn(move || {
                    (a..b)
                        .map(|i| {
                            workload::inspection(
                                author,
                                user.id,
                                &complexes[i % complexes.len()],
                                seed * 1_000_000 + i as u64,
                            )
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
            });
            parts
                .into_iter()
                .map(|h| h.join().expect("generator thread"))
                .collect::<Result<Vec<_>, _>>()
        })?
        .into_iter()
        .flatten()
        .collect();
        let refs: Vec<_> = made.iter().map(|(id, insp)| (*id, insp)).collect();
        store.import_local(&refs)?;
        // The inspector leaves each inspection when done with it: the app
        // puts it away then (its snapshot made while nobody waits).
        std::thread::scope(|s| {
            let half = made.len() / 2;
            let parts = [&made[..half], &made[half..]].map(|part| {
                s.spawn(move || part.iter().try_for_each(|(id, _)| store.put_away(*id)))
            });
            parts
                .into_iter()
                .try_for_each(|h| h.join().expect("put-away thread"))
        })?;
        start = end;
    }
    Ok(())
}

/// The information floor of the device's inspections: their content as
/// one JSON array (what a form tool would send), compressed with zstd at
/// level 19. No sync can be expected to send less.
fn information_floor(store: &DeviceStore) -> anyhow::Result<u64> {
    let docs = store
        .inspection_ids()?
        .into_iter()
        .map(|id| store.inspection(id))
        .collect::<Result<Vec<_>, _>>()?;
    let json = serde_json::to_vec(&docs)?;
    Ok(zstd::bulk::compress(&json, 19)?.len() as u64)
}

/// Bytes of the server's database per inspection, once its WAL is folded in:
/// document snapshots, the log and the projection tables; after a log
/// compaction when `compact` (run beside the live server, as the background
/// task or the `compact` command would).
fn storage_per_inspection(
    server_dir: &Path,
    n: usize,
    compact: bool,
    database: Option<&str>,
) -> anyhow::Result<u64> {
    if let Some(url) = database {
        if compact {
            let store = bilan_server::postgres::PgStore::open(url)?;
            store.set_log_retention(std::time::Duration::ZERO);
            bilan_server::storage::SyncLog::compact(&store)?;
        }
        // Tables, their indexes and TOAST (the catalog left out).
        let out = std::process::Command::new("psql")
            .arg(url)
            .args([
                "-tA",
                "-c",
                "VACUUM",
                "-c",
                "SELECT SUM(pg_total_relation_size(oid)) FROM pg_class
                 WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace",
            ])
            .output()?;
        ensure!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bytes: u64 = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or("0")
            .trim()
            .parse()?;
        return Ok(bytes / n.max(1) as u64);
    }
    let config = bilan_server::Config {
        data_dir: server_dir.to_path_buf(),
        ..bilan_server::Config::default()
    };
    // A second connection beside the running server's, as SQLite's WAL allows.
    if compact {
        // Storage once the retention window has passed: everything folded.
        let store = bilan_server::SqliteStore::open(&config.db_path())?;
        store.set_log_retention(std::time::Duration::ZERO);
        bilan_server::storage::SyncLog::compact(&store)?;
    }
    let c = rusqlite::Connection::open(config.db_path())?;
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free: i64 = c.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let size: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let bytes = ((pages - free) * size) as u64;
    Ok(bytes / n.max(1) as u64)
}

async fn cold_scenarios(
    root: &Path,
    n: usize,
    pg: Option<&Pg>,
    changes_only: bool,
) -> anyhow::Result<()> {
    let server_dir = root.join(format!("server-{n}"));
    let (server, proxy) = server(&server_dir, pg).await?;
    let database = database_of(pg, &server_dir);
    let a_dir = root.join(format!("a-{n}"));
    let a = device(&a_dir, &proxy.url(), "inspecteur1").await;
    a.set_push_saved_documents(!changes_only)?;
    let t = Instant::now();
    generate(&a, n, 1)?;
    eprintln!(
        "  ({n} inspections de {} composants générées en {:.1} s)",
        workload::COMPONENTS,
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let floor = information_floor(&a)?;
    println!(
        "N={n:<6}    plancher : {} octets (les {n} inspections en un tableau JSON, zstd -19 ; {:.1} s)",
        group(floor),
        t.elapsed().as_secs_f64()
    );

    let token = manager_token(&proxy.url()).await?;
    let (r, line) = measured(&proxy, async { Ok(SyncEngine::new(&a).sync().await?) }).await?;
    let merged = merged_within(&proxy.url(), &token).await?;
    ensure!(r.accepted > 0, "the server accepted nothing");
    ensure!(a.status()?.pending_changes == 0, "changes left unsent");
    line.print(
        &format!("N={n:<6} 1. envoi à froid"),
        &format!(
            "({:.2} × le plancher ; {} changements ; tout intégré côté serveur {:.0} ms après la réponse)",
            line.up as f64 / floor as f64,
            r.sent_changes,
            merged.as_secs_f64() * 1000.0
        ),
    );

    // 2. The app restarts (a new store and engine on the same files), one field changes.
    let some = a.inspection_ids()?[n / 2];
    drop(a);
    let a = DeviceStore::open(&a_dir)?;
    let now = a.inspection(some)?.components["B3010"].rating;
    let edited = if now == Some(Rating::A) {
        Rating::B
    } else {
        Rating::A
    };
    let (r, line) = measured(&proxy, async {
        a.rate(some, "B3010", edited)?;
        Ok(SyncEngine::new(&a).sync().await?)
    })
    .await?;
    ensure!(
        r.accepted == 1,
        "one change expected, {} accepted",
        r.accepted
    );
    line.print(
        &format!("N={n:<6} 2. une modification après redémarrage"),
        &format!(
            "({:.2} × le plancher d'une inspection)",
            (line.up + line.down) as f64 / (floor as f64 / n as f64)
        ),
    );

    // 3. A new device of the territory pulls everything.
    let b = device(&root.join(format!("b-{n}")), &proxy.url(), "inspecteur2").await;
    server.reset_peak_rss()?;
    let (r, line) = measured(&proxy, async { Ok(SyncEngine::new(&b).sync().await?) }).await?;
    let peak = server.peak_rss_kib().unwrap_or(0);
    let got = b.summaries(None)?.len();
    ensure!(got == n, "the new device lists {got} inspections, not {n}");
    ensure!(
        b.inspection(some)?.components["B3010"].rating == Some(edited),
        "the edit of scenario 2 did not arrive"
    );
    line.print(
        &format!("N={n:<6} 3. réception à froid (nouvel appareil)"),
        &format!(
            "({:.2} × le plancher ; {} changements, {} allers-retours, pic mémoire serveur {} Mo)",
            line.down as f64 / floor as f64,
            r.received_changes,
            r.round_trips,
            peak / 1024
        ),
    );
    let per = storage_per_inspection(&server_dir, n, false, database.as_deref())?;
    let t = Instant::now();
    let compacted = storage_per_inspection(&server_dir, n, true, database.as_deref())?;
    println!(
        "N={n:<6}    stockage serveur : {} octets par inspection, {} après compactage du journal ({:.1} s)",
        group(per),
        group(compacted),
        t.elapsed().as_secs_f64()
    );
    server.kill().await;
    Ok(())
}

/// Attaches `count` photos of random bytes to a new inspection of the device.
fn photos(store: &DeviceStore, count: usize, mb: usize, seed: u64) -> anyhow::Result<u64> {
    let complex = store.complexes()?[0].id;
    let id = store.start_inspection(complex)?;
    let finding = store.add_finding(
        id,
        NewFinding {
            component: "B2010".into(),
            title: "Parement fissuré".into(),
            location: "Façade".into(),
            severity: Severity::Moderate,
            description: String::new(),
        },
    )?;
    let mut seq = workload::Seq::new(seed);
    let mut total = 0;
    for _ in 0..count {
        let mut bytes = vec![0u8; mb * 1024 * 1024];
        for chunk in bytes.chunks_mut(8) {
            let v = seq.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        total += bytes.len() as u64;
        store.attach_photo(id, finding, &bytes, "image/jpeg", "")?;
    }
    Ok(total)
}

async fn photo_scenarios(
    root: &Path,
    count: usize,
    mb: usize,
    pg: Option<&Pg>,
) -> anyhow::Result<()> {
    let (server, proxy) = server(&root.join("server-5"), pg).await?;
    let mut lines = Vec::new();
    for (pass, cut) in [(0u64, false), (1, true)] {
        let store = device(
            &root.join(format!("p5-{pass}")),
            &proxy.url(),
            "inspecteur1",
        )
        .await;
        let bytes = photos(&store, count, mb, 500 + pass)?;
        proxy.cut_uploads_at_half.store(cut, Ordering::SeqCst);
        proxy.cuts.store(0, Ordering::SeqCst);
        let (r, line) =
            measured(&proxy, async { Ok(SyncEngine::new(&store).sync().await?) }).await?;
        proxy.cut_uploads_at_half.store(false, Ordering::SeqCst);
        let status = store.status()?;
        if status.pending_photos != 0 || r.photos_uploaded as usize != count {
            bail!(
                "{} photos left to send ({} sent)",
                status.pending_photos,
                r.photos_uploaded
            );
        }
        let cuts = proxy.cuts.load(Ordering::SeqCst);
        let label = if cut {
            format!("5. {count} photos de {mb} Mo, chaque envoi coupé à 50 %")
        } else {
            format!("5. {count} photos de {mb} Mo")
        };
        line.print(
            &label,
            &format!("({} Mo de photos, {cuts} coupures)", bytes / (1024 * 1024)),
        );
        lines.push(line.up);
    }
    let extra = lines[1] as f64 / lines[0] as f64 - 1.0;
    println!(
        "   octets envoyés en plus après les coupures : {:+.2} %",
        extra * 100.0
    );
    server.kill().await;
    Ok(())
}

/// Scenario 6 (`bilan_e2e::slow_day`): a day's work over a rural link.
async fn slow_link(root: &Path, photos: usize, pg: Option<&Pg>) -> anyhow::Result<()> {
    let (server, _proxy) = server(&root.join("server-6"), pg).await?;
    bilan_e2e::slow_day::scenario(root, server.addr, photos).await?;
    server.kill().await;
    Ok(())
}

/// The allocator the server binary uses (its server runs in this process).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    bilan_e2e::init_logs();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name(NETWORK_THREADS)
        .build()?;
    if let Some(dir) = args.serve {
        return rt.block_on(bilan_e2e::serve_demo_announced_with(bilan_server::Config {
            data_dir: dir,
            database_url: bilan_server::config::Secret(args.serve_database.unwrap_or_default()),
            ..Default::default()
        }));
    }
    let tmp = tempfile::tempdir()?;
    let pg = match (args.postgres, args.database) {
        (true, _) => Some(Pg::Throwaway(PgCluster::start())),
        (false, Some(url)) => Some(Pg::Given(url)),
        (false, None) => None,
    };
    let pg = pg.as_ref();
    if pg.is_some() {
        eprintln!("  (serveur sur PostgreSQL : une base par scénario)");
    }
    rt.block_on(async {
        for &n in &args.n {
            cold_scenarios(tmp.path(), n, pg, args.changes_only).await?;
        }
        if args.devices > 0 {
            concurrent_push(
                tmp.path(),
                args.devices,
                args.per_device,
                args.devices_same_priority,
                pg,
                args.instances,
            )
            .await?;
        }
        if args.photos > 0 {
            photo_scenarios(tmp.path(), args.photos, args.photo_mb, pg).await?;
        }
        if args.slow_photos > 0 {
            slow_link(tmp.path(), args.slow_photos, pg).await?;
        }
        Ok(())
    })
}
