//! End-to-end on PostgreSQL: real servers whose storage is a throwaway
//! PostgreSQL cluster, real devices. Offline edits merge and page through
//! pulls; two server instances on one database answer for each other (a
//! push on one is pulled from the other; a review decision on one is seen
//! on the other); the review pages read the same projection.

use bilan_e2e::postgres::PgCluster;
use bilan_e2e::{Browser, TestServer, device, first_complex, sync};
use bilan_shared::domain::{InspectionStatus, Rating};
use bilan_shared::ids::InspectionId;
use std::time::Duration;

/// Server settings that keep everything in `url`.
fn on(url: &str) -> impl FnOnce(&mut bilan_server::Config) + '_ {
    move |c| c.database_url = bilan_server::config::Secret(url.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_sync_through_a_server_on_postgresql_and_pages_read_it() {
    let pg = PgCluster::start();
    let url = pg.create_database("bilan");
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(&tmp.path().join("server"), |c| {
        on(&url)(c);
        c.response_page_bytes = 1;
    })
    .await;
    let a = device(&tmp.path().join("a"), &server.url(), "inspecteur1").await;
    let complex = first_complex(&a);
    let ids: Vec<InspectionId> = (0..4)
        .map(|_| a.start_inspection(complex).unwrap())
        .collect();
    for id in &ids {
        a.rate(*id, "B3010", Rating::C).unwrap();
    }
    sync(&a).await;
    let b = device(&tmp.path().join("b"), &server.url(), "inspecteur2").await;
    let rb = sync(&b).await;
    assert_eq!(rb.round_trips, 4, "one page per inspection");
    for id in &ids {
        assert_eq!(b.inspection(*id).unwrap(), a.inspection(*id).unwrap());
    }
    // Both edit offline, different components: the union everywhere.
    a.rate(ids[0], "A1010", Rating::B).unwrap();
    b.rate(ids[0], "B2010", Rating::D).unwrap();
    sync(&a).await;
    sync(&b).await;
    sync(&a).await;
    let da = a.inspection(ids[0]).unwrap();
    assert_eq!(da, b.inspection(ids[0]).unwrap());
    assert_eq!(da.components["A1010"].rating, Some(Rating::B));
    assert_eq!(da.components["B2010"].rating, Some(Rating::D));
    // The review pages list them from PostgreSQL's projection.
    let manager = Browser::login(&server.url(), "responsable").await;
    let page = manager.get("/inspections").await;
    assert_eq!(page.0, 200);
    assert_eq!(
        page.1.matches("href=\"/inspections/").count(),
        4,
        "{}",
        page.1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgresql_database_answer_for_each_other() {
    let pg = PgCluster::start();
    let url = pg.create_database("bilan");
    let tmp = tempfile::tempdir().unwrap();
    let s1 = TestServer::start_with(&tmp.path().join("one"), on(&url)).await;
    let s2 = TestServer::start_with(&tmp.path().join("two"), on(&url)).await;
    let a = device(&tmp.path().join("a"), &s1.url(), "inspecteur1").await;
    let b = device(&tmp.path().join("b"), &s2.url(), "inspecteur2").await;
    let id = a.start_inspection(first_complex(&a)).unwrap();
    a.rate(id, "B3010", Rating::E).unwrap();
    sync(&a).await;
    let r = sync(&b).await;
    assert!(
        r.received_changes > 0,
        "a push on one instance is pulled from the other"
    );
    assert_eq!(b.inspection(id).unwrap(), a.inspection(id).unwrap());
    // A decision on instance two is read at once on instance one.
    let svc2 = s2.state.service();
    let (_, manager) = svc2
        .login("responsable", bilan_e2e::DEMO_PASSWORD, None)
        .unwrap();
    svc2.review(&manager, id, Some(InspectionStatus::Approved), None)
        .unwrap();
    let on_one = s1.state.service().summaries(&manager).unwrap();
    assert_eq!(on_one[0].status, InspectionStatus::Approved);
    sync(&a).await;
    assert_eq!(a.inspection(id).unwrap().status, InspectionStatus::Approved);
    s2.stop().await;
    s1.stop().await;
}

/// A psql session holding the merger's progress row (`FOR UPDATE`, in an
/// open transaction): no merge can commit until it ends.
struct MergeHeldUp(std::process::Child);

impl MergeHeldUp {
    fn hold(url: &str) -> Self {
        use std::io::Write;
        // Killed and waited for when dropped, even if the hold fails.
        let mut held = Self(
            std::process::Command::new("psql")
                .args(["-At", "-v", "ON_ERROR_STOP=1", url])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("psql"),
        );
        // The row is there once something was merged; before, this makes
        // it (and the merger's own insert of it waits).
        writeln!(
            held.0.stdin.as_mut().unwrap(),
            "BEGIN; INSERT INTO meta (key, value) VALUES ('merged_seq', '0')
               ON CONFLICT (key) DO UPDATE SET value = meta.value;"
        )
        .unwrap();
        // psql's output to a pipe comes at its end: ask the server instead.
        let started = std::time::Instant::now();
        loop {
            let out = std::process::Command::new("psql")
                .args(["-At", url, "-c"])
                .arg(
                    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                     WHERE a.state = 'idle in transaction' AND l.locktype = 'transactionid'
                       AND a.query LIKE 'INSERT INTO meta%'",
                )
                .output()
                .expect("psql");
            if String::from_utf8_lossy(&out.stdout).trim() == "1" {
                return held;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "row not held");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for MergeHeldUp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads that wait for the merger hold no connection while they wait:
/// with the merger held up, 24 pulls wait (more than the instance's 16
/// pooled connections) and another device's push is still answered; once
/// the merger goes on, the pulls get what was pushed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_is_answered_while_more_pulls_than_connections_wait_for_the_merger() {
    use bilan_shared::protocol::{self, PROTOCOL_VERSION, SyncRequest, SyncResponse};
    let pg = PgCluster::start();
    let url = pg.create_database("bilan");
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(&tmp.path().join("server"), on(&url)).await;
    let proxy = bilan_e2e::Proxy::start(server.addr).await;
    let a = device(&tmp.path().join("a"), &server.url(), "inspecteur1").await;
    let b = device(&tmp.path().join("b"), &server.url(), "inspecteur2").await;
    let id = a.start_inspection(first_complex(&a)).unwrap();
    a.rate(id, "B3010", Rating::E).unwrap();
    sync(&a).await;
    let held = MergeHeldUp::hold(&url);
    a.rate(id, "A1010", Rating::B).unwrap();
    let mut pushed = bilan_mobile::SyncReport::default();
    bilan_mobile::SyncEngine::new(&a)
        .sync_round(&mut pushed)
        .await
        .unwrap();
    assert!(pushed.accepted > 0, "a's edit is in the log, not merged");
    let token = a.setting("token").unwrap().unwrap();
    let http = reqwest::Client::new();
    let pulls: Vec<_> = (0..24)
        .map(|_| {
            let req = SyncRequest {
                protocol: PROTOCOL_VERSION,
                device_id: bilan_shared::ids::DeviceId::new(),
                cursor: 0,
                docs: Vec::new(),
            };
            let sent = http
                .post(format!("{}/api/v1/sync", proxy.url()))
                .bearer_auth(&token)
                .body(protocol::encode(&req).unwrap())
                .send();
            tokio::spawn(async move { sent.await.unwrap().bytes().await.unwrap() })
        })
        .collect();
    let started = std::time::Instant::now();
    while proxy.requests.load(std::sync::atomic::Ordering::SeqCst) < 24 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "pulls not sent"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let other = b.start_inspection(first_complex(&b)).unwrap();
    b.rate(other, "B3010", Rating::C).unwrap();
    let mut report = bilan_mobile::SyncReport::default();
    let answered = tokio::time::timeout(
        Duration::from_secs(10),
        bilan_mobile::SyncEngine::new(&b).sync_round(&mut report),
    )
    .await;
    assert!(
        matches!(answered, Ok(Ok(_))),
        "b's push waited for a connection the pulls held: {answered:?}"
    );
    assert!(report.accepted > 0);
    drop(held);
    for pull in pulls {
        let answer: SyncResponse = protocol::decode(&pull.await.unwrap(), 1 << 24).unwrap();
        assert!(
            answer.changes.iter().any(|c| c.doc_id == id),
            "each pull gets a's inspection once merged"
        );
    }
    server.stop().await;
}

/// The instance whose connection holds the merge lock, and that
/// connection's backend pid (a new pid: the merger moved).
fn merger_holder(url: &str) -> Option<(String, i32)> {
    let key = bilan_server::postgres::MERGE_LOCK;
    let sql = format!(
        "SELECT a.application_name || ' ' || l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
           AND l.classid = {} AND l.objid = {}",
        (key >> 32) as u32,
        (key & 0xffff_ffff) as u32
    );
    let out = std::process::Command::new("psql")
        .args(["-At", url, "-c", &sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let (name, pid) = text.trim().rsplit_once(' ')?;
    Some((name.to_string(), pid.parse().ok()?))
}

/// Waits (at most the 10 s a takeover may take) for a merger holding the
/// lock other than the connection `not`.
async fn wait_for_merger(url: &str, not: Option<i32>) -> (String, i32) {
    let started = std::time::Instant::now();
    loop {
        if let Some(h) = merger_holder(url)
            && Some(h.1) != not
        {
            return h;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no instance took the merger over within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two server processes on one PostgreSQL database and one S3-compatible
/// bucket, behind a proxy that balances between them and breaks 20 % of
/// the connections; 5 devices, 200 rounds of edits and photos. Every 20
/// rounds the instance holding the merger is SIGKILLed while a device
/// syncs, and restarted. At the end, every edit is in the log once, every
/// device and both instances hold the same documents, every photo is in
/// the bucket byte for byte, and the merger moved at every kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_behind_a_faulty_network_survive_their_merger_being_killed() {
    use bilan_e2e::chaos::{assert_devices_hold_the_servers_inspections, edit};
    use bilan_e2e::fault_proxy::FaultProxy;
    use bilan_e2e::object_store::S3Server;
    use bilan_e2e::workload::Seq;
    use bilan_e2e::{DEMO_PASSWORD, ProcessServer};
    use bilan_mobile::SyncEngine;
    const ROUNDS: usize = 200;
    let seed = std::env::var("BILAN_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261202u64);
    let mut seq = Seq::new(seed);
    let pg = PgCluster::start();
    let url = pg.create_database("bilan");
    let s3 = S3Server::start("photos").await;
    let tmp = tempfile::tempdir().unwrap();
    let names = ["bilan-a", "bilan-b"];
    let start = |i: usize| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_e2e-server"));
        cmd.arg(tmp.path().join(names[i]))
            .env(
                "BILAN_DATABASE_URL",
                format!("{url} application_name={}", names[i]),
            )
            .env("BILAN_LOG", "warn")
            .envs(s3.env());
        ProcessServer::spawn(cmd)
    };
    // One after the other: the first creates the schema and the demo.
    let mut servers = vec![start(0).await];
    servers.push(start(1).await);
    let proxy = FaultProxy::start_many(vec![servers[0].addr, servers[1].addr], seed).await;
    let mut devices = Vec::new();
    for i in 0..5 {
        let user = ["inspecteur1", "inspecteur2"][i % 2];
        devices.push(device(&tmp.path().join(format!("d{i}")), &proxy.url(), user).await);
    }
    let mut holder = wait_for_merger(&url, None).await;
    proxy.set_rate(20);
    let (mut edits, mut failed, mut moves, mut photos) = (0u64, 0u64, 0u32, Vec::new());
    for round in 0..ROUNDS {
        let d = &devices[(seq.next_u64() % devices.len() as u64) as usize];
        for _ in 0..=(seq.next_u64() % 3) {
            edit(d, &mut seq);
            edits += 1;
        }
        if round % 10 == 3 {
            let id = edit(d, &mut seq);
            let fid = d.add_finding(id, bilan_e2e::roof_finding()).unwrap();
            let len = 50_000 + (seq.next_u64() % 150_000) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| seq.next_u64() as u8).collect();
            photos.push(d.attach_photo(id, fid, &bytes, "image/jpeg", "").unwrap());
            edits += 3;
        }
        if round % 20 != 10 {
            if SyncEngine::new(d).sync().await.is_err() {
                failed += 1;
            }
            continue;
        }
        // The merger's instance dies in the middle of a sync.
        let i = names
            .iter()
            .position(|n| *n == holder.0)
            .expect("the merger runs on one of the instances");
        let delay = Duration::from_millis(seq.next_u64() % 40);
        let killed = &mut servers[i];
        let engine = SyncEngine::new(d);
        let (synced, ()) = tokio::join!(engine.sync(), async {
            tokio::time::sleep(delay).await;
            killed.kill_in_place().await;
        });
        if synced.is_err() {
            failed += 1;
        }
        servers[i] = start(i).await;
        proxy.set_upstream(i, servers[i].addr);
        let next = wait_for_merger(&url, Some(holder.1)).await;
        moves += 1;
        holder = next;
    }
    proxy.set_rate(0);
    for _ in 0..2 {
        for d in &devices {
            let engine = SyncEngine::new(d);
            engine.sync().await.expect("final sync");
            let mut report = bilan_mobile::SyncReport::default();
            engine.retry_photos_now(&mut report).await.expect("photos");
        }
    }
    let [connections, refused, delayed, cut_req, cut_resp, resets] = proxy.counts.snapshot();
    println!(
        "two instances: {edits} edits, {} photos, {failed} of {ROUNDS} syncs failed, merger moved {moves} times; {connections} connections: {refused} refused, {delayed} delayed, {cut_req} requests cut, {cut_resp} responses cut, {resets} reset",
        photos.len()
    );
    assert!(moves >= 3, "the merger moved {moves} times");
    assert!(failed > 0, "faults broke some syncs");

    // Both instances serve the same documents: a new device on each.
    for (i, s) in servers.iter().enumerate() {
        devices.push(
            device(
                &tmp.path().join(format!("fresh{i}")),
                &s.url(),
                "inspecteur1",
            )
            .await,
        );
        sync(devices.last().unwrap()).await;
    }
    let mut config = bilan_server::Config {
        data_dir: tmp.path().join("check"),
        database_url: bilan_server::config::Secret(url.clone()),
        ..Default::default()
    };
    s3.configure(&mut config);
    let state = bilan_server::AppState::open(config).unwrap();
    let service = state.service();
    let (_, manager) = service.login("responsable", DEMO_PASSWORD, None).unwrap();
    assert_eq!(
        service.change_count(manager.territory_id.unwrap()).unwrap(),
        edits,
        "the log holds each edit exactly once"
    );
    assert_devices_hold_the_servers_inspections(service, &manager, &devices);
    for hash in &photos {
        let bytes = state
            .0
            .photos
            .photo(hash)
            .await
            .unwrap()
            .expect("photo in the bucket");
        assert_eq!(&bilan_shared::ids::PhotoHash::of(&bytes), hash);
    }
}
