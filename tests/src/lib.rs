//! Harness of the end-to-end tests: a real server on 127.0.0.1:0 (in-process
//! or as its own process), devices on real SQLite files in temp folders, and a
//! TCP proxy that counts bytes and can cut connections ([`proxy`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use bilan_mobile::{DeviceStore, SyncEngine};
use bilan_server::{AppState, Config};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use bilan_server::admin::DEMO_PASSWORD;
pub use proxy::{Proxy, ProxyMode};

pub mod backend;
pub mod chaos;
pub mod fault_proxy;
pub mod object_store;
pub mod postgres;
pub mod proxy;
pub mod slow_day;
pub mod workload;

/// A server running in this process on a loopback port.
pub struct TestServer {
    pub addr: SocketAddr,
    pub dir: PathBuf,
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Opens (or reopens) the data in `dir`, seeds the demo, serves on a fresh port.
    pub async fn start(dir: &Path) -> Self {
        Self::start_with(dir, |_| {}).await
    }

    /// Same, with settings changed by `tweak`.
    pub async fn start_with(dir: &Path, tweak: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config {
            data_dir: dir.to_path_buf(),
            database_url: bilan_server::config::Secret(backend::database_for(dir)),
            ..Config::default()
        };
        tweak(&mut config);
        let state = AppState::open(config).expect("open server store");
        bilan_server::admin::seed_demo(state.service()).expect("seed demo");
        Self::serve(dir, state).await
    }

    /// A second instance beside this one: the same database (one service),
    /// its own photo-store handle and port, settings changed by `tweak`.
    pub async fn start_beside(&self, tweak: impl FnOnce(&mut Config)) -> Self {
        let mut config = self.state.0.config.clone();
        tweak(&mut config);
        let state =
            AppState::beside(config, self.state.service().clone()).expect("second instance");
        Self::serve(&self.dir, state).await
    }

    async fn serve(dir: &Path, state: AppState) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let s2 = state.clone();
        let task = tokio::spawn(async move {
            bilan_server::launch(listener, s2, async {
                let _ = rx.await;
            })
            .await
            .expect("server");
        });
        Self {
            addr,
            dir: dir.to_path_buf(),
            state,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server abruptly (connections dropped, nothing flushed beyond
    /// what SQLite already committed) and releases its files.
    pub async fn kill(mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
        drop(self.stop.take());
    }

    /// Graceful stop.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// A server in its own OS process (the `e2e-server` binary), so tests can SIGKILL it.
pub struct ProcessServer {
    pub child: tokio::process::Child,
    pub addr: SocketAddr,
}

impl ProcessServer {
    /// Starts the binary on `dir` and waits for the line announcing its port.
    pub async fn start(bin: &str, dir: &Path) -> Self {
        let mut cmd = tokio::process::Command::new(bin);
        cmd.arg(dir);
        Self::spawn(cmd).await
    }

    /// Starts a command that serves like [`serve_demo_announced`] and waits for
    /// the line announcing its port.
    pub async fn spawn(mut cmd: tokio::process::Command) -> Self {
        use tokio::io::AsyncBufReadExt;
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn e2e-server");
        let stdout = child.stdout.take().unwrap();
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let addr = loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("server exited before listening");
            if let Some(a) = line.strip_prefix("LISTENING ") {
                break a.parse().unwrap();
            }
        };
        Self { child, addr }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGKILL and wait.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("kill");
    }

    /// SIGKILL and wait, keeping the handle (killing it again is harmless).
    pub async fn kill_in_place(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Resets the process's peak resident memory (Linux `clear_refs`), so that
    /// [`Self::peak_rss_kib`] measures from now on.
    pub fn reset_peak_rss(&self) -> std::io::Result<()> {
        let pid = self
            .child
            .id()
            .ok_or_else(|| std::io::Error::other("exited"))?;
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
    }

    /// Peak resident memory in KiB (`VmHWM`), Linux only.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

/// Logs to stderr when `BILAN_LOG` is set (`BILAN_LOG=debug` shows each
/// sync's phases on the server and on the devices).
pub fn init_logs() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("BILAN_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
}

/// Serves `dir` (seeded with the demo) on 127.0.0.1:0 and prints
/// `LISTENING <addr>` once it accepts connections; what server processes of
/// the tests and benchmarks run. Settings come from the `BILAN_<SETTING>`
/// variables, as for `bilan-server`; without `BILAN_DATABASE_URL` the
/// records are in the suite's backend ([`backend::current`]).
pub async fn serve_demo_announced(dir: &Path) -> anyhow::Result<()> {
    let mut config = bilan_server::config::Layers::defaults()
        .env(|k| std::env::var(k).ok())?
        .build()?;
    config.data_dir = dir.to_path_buf();
    if config.database_url.0.is_empty() {
        config.database_url = bilan_server::config::Secret(backend::database_for(dir));
    }
    serve_demo_announced_with(config).await
}

/// The same with these settings.
pub async fn serve_demo_announced_with(config: Config) -> anyhow::Result<()> {
    init_logs();
    let state = AppState::open(config)?;
    bilan_server::admin::seed_demo(state.service())?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("LISTENING {}", listener.local_addr()?);
    bilan_server::launch(listener, state, std::future::pending()).await?;
    Ok(())
}

/// Adds `complexes` generated complexes to the demo territory and `n` light
/// inspections of them ([`workload::light_inspection`]) pushed by
/// `inspecteur1` as a device would, 500 per request; their ids.
pub fn generate_territory(
    service: &bilan_server::service::Service,
    complexes: usize,
    n: usize,
) -> anyhow::Result<Vec<bilan_shared::ids::InspectionId>> {
    use bilan_shared::ids::{ComplexId, DeviceId};
    use bilan_shared::protocol::{DocChanges, PROTOCOL_VERSION, SyncRequest};
    let (_, inspector) = service.login("inspecteur1", DEMO_PASSWORD, None)?;
    let territory = inspector.territory_id.context("inspector's territory")?;
    let offices = service.offices(territory)?;
    let mut made = Vec::new();
    for i in 0..complexes {
        let c = bilan_shared::domain::Complex {
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
        service.upsert_complex(&c)?;
        made.push(c);
    }
    let author =
        bilan_shared::Author::device(DeviceId::new(), inspector.id, &inspector.display_name);
    let (mut ids, mut batch) = (Vec::new(), Vec::new());
    for i in 0..n {
        let (id, insp) =
            workload::light_inspection(&author, inspector.id, &made[i % made.len()], i)?;
        ids.push(id);
        let changes = insp
            .automerge()
            .get_changes(&[])
            .into_iter()
            .map(|c| serde_bytes::ByteBuf::from(c.raw_bytes().to_vec()))
            .collect();
        batch.push(DocChanges {
            doc_id: id,
            changes,
        });
        if batch.len() == 500 || i + 1 == n {
            let req = SyncRequest {
                protocol: PROTOCOL_VERSION,
                device_id: DeviceId::new(),
                cursor: u64::MAX >> 1,
                docs: std::mem::take(&mut batch),
            };
            let limits = bilan_server::service::SyncLimits {
                max_docs: 1000,
                page_bytes: 1,
            };
            service.sync(&inspector, req, limits)?;
        }
    }
    Ok(ids)
}

/// A major finding on the roof membrane (B3010), for tests that need one.
pub fn roof_finding() -> bilan_mobile::NewFinding {
    bilan_mobile::NewFinding {
        component: "B3010".into(),
        title: "Membrane soulevée".into(),
        location: "Toit".into(),
        severity: bilan_shared::domain::Severity::Major,
        description: String::new(),
    }
}

/// A logged-in device on its own folder.
pub async fn device(dir: &Path, server_url: &str, user: &str) -> DeviceStore {
    let store = DeviceStore::open(dir).expect("open device");
    {
        let engine = SyncEngine::new(&store);
        engine
            .login(server_url, user, DEMO_PASSWORD)
            .await
            .expect("login");
        engine.refresh_reference().await.expect("reference");
    }
    store
}

/// The first complex a device knows.
pub fn first_complex(d: &DeviceStore) -> bilan_shared::ids::ComplexId {
    d.complexes().unwrap()[0].id
}

/// One sync of a device, which must succeed.
pub async fn sync(d: &DeviceStore) -> bilan_mobile::SyncReport {
    SyncEngine::new(d).sync().await.expect("sync")
}

/// An inspection as the server holds it, read as `user`.
pub fn server_doc(
    server: &TestServer,
    user: &str,
    id: bilan_shared::ids::InspectionId,
) -> bilan_shared::InspectionDoc {
    let (_, u) = server
        .state
        .service()
        .login(user, DEMO_PASSWORD, None)
        .unwrap();
    server
        .state
        .service()
        .inspection(&u, id)
        .unwrap()
        .read()
        .unwrap()
}

/// A server, two inspectors' devices, and one inspection both hold.
pub async fn two_devices_with_one_inspection(
    dir: &std::path::Path,
) -> (
    TestServer,
    DeviceStore,
    DeviceStore,
    bilan_shared::ids::InspectionId,
) {
    two_devices_with_one_inspection_on(TestServer::start(&dir.join("server")).await, dir).await
}

/// The same on a server already started.
pub async fn two_devices_with_one_inspection_on(
    server: TestServer,
    dir: &std::path::Path,
) -> (
    TestServer,
    DeviceStore,
    DeviceStore,
    bilan_shared::ids::InspectionId,
) {
    let a = device(&dir.join("a"), &server.url(), "inspecteur1").await;
    let b = device(&dir.join("b"), &server.url(), "inspecteur2").await;
    let id = a.start_inspection(first_complex(&a)).unwrap();
    sync(&a).await;
    sync(&b).await;
    (server, a, b, id)
}

/// Sends bytes under a photo name they do not hash to, as `token`; returns
/// the name and the server's status and JSON body (which must refuse them).
pub async fn put_photo_under_a_wrong_name(
    server: &TestServer,
    token: &str,
) -> (bilan_shared::ids::PhotoHash, u16, serde_json::Value) {
    let fake = bilan_shared::ids::PhotoHash::of(b"the real photo");
    let resp = reqwest::Client::new()
        .put(format!("{}/api/v1/photos/{fake}", server.url()))
        .bearer_auth(token)
        .header("content-type", "image/jpeg")
        .body(b"something else entirely".to_vec())
        .send()
        .await
        .expect("a photo upload");
    let status = resp.status().as_u16();
    (fake, status, resp.json().await.unwrap_or_default())
}

/// A second territory ("CS de l'Estrie") with one office (`OH-SHE`) and one
/// complex (`SHE-1`, named `complex_name`), for tests of what crosses
/// territories.
pub fn second_territory(
    store: &bilan_server::Service,
    complex_name: &str,
) -> bilan_shared::ids::TerritoryId {
    let tb = store.create_territory("CS de l'Estrie").unwrap();
    let ob = store
        .create_office(tb, "OH-SHE", "OH de Sherbrooke")
        .unwrap();
    store
        .upsert_complex(&bilan_shared::domain::Complex {
            id: bilan_shared::ids::ComplexId::new(),
            territory_id: tb,
            office_id: ob,
            code: "SHE-1".into(),
            name: complex_name.into(),
            address: "1 rue King".into(),
            city: "Sherbrooke".into(),
            dwellings: 30,
            year_built: 1980,
            replacement_value: 5e6,
        })
        .unwrap();
    tb
}

/// What can be counted of everything a write could change, in the
/// territories of `managers`: change log, audit log, accounts, settings,
/// complexes, planned visits, the reference revision. Equal before and after a refused request: nothing changed.
pub fn fingerprint(server: &TestServer, managers: &[bilan_shared::protocol::UserInfo]) -> String {
    let store = server.state.service();
    let mut out = format!("audit {};", store.audit_log(None, 100_000).unwrap().len());
    for m in managers {
        let mut users: Vec<String> = store
            .territory_users(m)
            .unwrap()
            .into_iter()
            .map(|u| u.username)
            .collect();
        users.sort();
        let reference = store.reference(m, 0).unwrap();
        out += &format!(
            " changes {}; users {users:?}; settings {:?}; complexes {}; planned {:?}; revision {};",
            store.change_count(m.territory_id.unwrap()).unwrap(),
            store.settings(m).unwrap(),
            reference.complexes.len(),
            reference.assignments,
            reference.revision,
        );
    }
    out
}

/// A browser session of the review pages: a cookie jar of one, no redirects
/// followed, so tests see the 303s.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    pub cookie: String,
}

/// An HTTP client that shows redirects instead of following them (the
/// review pages answer a login or a logout with 303).
pub fn http_without_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client")
}

impl Browser {
    /// Logs in through the login form (the session cookie must be HttpOnly
    /// and SameSite=Strict).
    pub async fn login(base: &str, user: &str) -> Browser {
        let http = http_without_redirects();
        let r = http
            .post(format!("{base}/connexion"))
            .form(&[("username", user), ("password", DEMO_PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "login redirects");
        let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict"),
            "{set}"
        );
        let cookie = set.split(';').next().unwrap().to_string();
        Browser {
            http,
            base: base.to_string(),
            cookie,
        }
    }
    pub async fn get(&self, path: &str) -> (u16, String) {
        let (status, _, body) = self.download(path).await;
        (status, String::from_utf8_lossy(&body).into_owned())
    }
    /// A GET's status, content type and bytes (a download).
    pub async fn download(&self, path: &str) -> (u16, String, Vec<u8>) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        let kind = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (r.status().as_u16(), kind, r.bytes().await.unwrap().to_vec())
    }
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .form(form)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
    /// The CSRF token of the first form on a page.
    pub fn csrf(html: &str) -> String {
        let i = html.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
        html[i..i + 32].to_string()
    }
}
