//! Tests of the SQLite backend: migrations from every older schema, the
//! covering index of pulls, group commit, the merger, faults of the disk,
//! and the service's rules as they run over this backend.

use std::sync::Arc;

use bilan_shared::catalogue::Catalogue;
use bilan_shared::doc::{bundle, changes_of_chunks};
use bilan_shared::domain::{InspectionStatus, Rating, Role};
use bilan_shared::ids::*;
use bilan_shared::protocol::{DocChanges, ErrorCode, PROTOCOL_VERSION, SyncRequest, UserInfo};
use bilan_shared::{Author, Inspection, NewInspection};
use rusqlite::{Connection, params};
use serde_bytes::ByteBuf;

use super::SqliteStore;
use super::migrate::DB_SCHEMA_VERSION;
use super::pull::PULL_WALK;
use crate::audit::{AuditAction, AuditEntry};
use crate::error::StoreError;
use crate::service::{DEFAULT_TOKEN_TTL, NewUser, Service, SyncLimits};
use crate::storage::DocumentStore;

/// The backend and the service over it.
struct Db {
    db: Arc<SqliteStore>,
    svc: Service,
}

impl Db {
    fn wrap(store: SqliteStore) -> Self {
        let db = Arc::new(store);
        Self {
            svc: Service::new(db.clone()),
            db,
        }
    }
    fn mem() -> Self {
        Self::wrap(SqliteStore::in_memory().unwrap())
    }
    fn open(path: &std::path::Path) -> Result<Self, StoreError> {
        Ok(Self::wrap(SqliteStore::open(path)?))
    }
}

impl std::ops::Deref for Db {
    type Target = Service;
    fn deref(&self) -> &Service {
        &self.svc
    }
}

/// A schema-1 database (one log row per change, snapshots required,
/// projection tables with rowids) opens migrated: its changes are still
/// counted and served to devices, its projection rows are kept, and a
/// push on top of it works.
#[test]
fn a_schema_1_database_is_migrated_and_keeps_serving_its_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bilan.sqlite");
    let (territory, office, complex) = (TerritoryId::new(), OfficeId::new(), ComplexId::new());
    let author = Author::device(DeviceId::new(), UserId::new(), "Julie");
    let (mut insp, _) = Inspection::create(
        &author,
        NewInspection {
            inspection_id: InspectionId::new(),
            territory_id: territory,
            office_id: office,
            complex_id: complex,
        },
        Catalogue::current(),
    )
    .unwrap();
    insp.edit(&author, |d| d.rate("B3010", Rating::D)).unwrap();
    let doc_id = insp.read().unwrap().inspection_id;
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("testdata/schema_v1.sql"))
            .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        let (t, o, c, d) = (
            territory.to_string(),
            office.to_string(),
            complex.to_string(),
            doc_id.to_string(),
        );
        conn.execute("INSERT INTO territories VALUES (?1, 'CS test', 0)", [&t])
            .unwrap();
        conn.execute(
            "INSERT INTO offices VALUES (?1, ?2, 'O1', 'Office', 1)",
            [&o, &t],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO complexes VALUES (?1, ?2, ?3, 'C1', 'Complexe', '1 rue', 'Québec', 10, 1980, 1000000.0, 1)",
            [&c, &t, &o],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO documents VALUES (?1, ?2, ?3, 0)",
            params![d, t, insp.save()],
        )
        .unwrap();
        for ch in insp.changes_since(&[]) {
            conn.execute(
                "INSERT INTO changes (territory_id, doc_id, hash, device_id, bytes) VALUES (?1, ?2, ?3, 'dev', ?4)",
                params![t, d, ch.hash().0.as_slice(), ch.raw_bytes()],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO component_ratings VALUES (?1, ?2, 'B3010', 'D', 1, '')",
            [&d, &t],
        )
        .unwrap();
    }

    let store = Db::open(&path).unwrap();
    let version: i64 = store
        .db
        .with_conn(|c| Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?))
        .unwrap();
    assert_eq!(version, DB_SCHEMA_VERSION);
    assert_eq!(store.change_count(territory).unwrap(), 2);
    let ratings = |store: &Db| -> i64 {
        store
            .db
            .with_conn(|c| {
                Ok(c.query_row("SELECT COUNT(*) FROM component_ratings", [], |r| r.get(0))?)
            })
            .unwrap()
    };
    assert_eq!(ratings(&store), 1, "projection rows kept");

    let user = UserInfo {
        id: UserId::new(),
        username: "inspecteur".into(),
        display_name: "Inspecteur".into(),
        role: Role::Inspector,
        territory_id: Some(territory),
        office_id: None,
    };
    let limits = SyncLimits {
        max_docs: 10,
        page_bytes: 1 << 20,
    };
    let request = |docs| SyncRequest {
        protocol: PROTOCOL_VERSION,
        device_id: DeviceId::new(),
        cursor: 0,
        docs,
    };
    let pulled = store.sync(&user, request(vec![]), limits).unwrap();
    let mut copy = Inspection::empty();
    for item in &pulled.changes[0].changes {
        copy.apply_changes(changes_of_chunks(item).unwrap())
            .unwrap();
    }
    assert_eq!(copy.automerge().get_heads(), insp.automerge().get_heads());

    let heads = insp.automerge().get_heads();
    insp.edit(&author, |d| d.rate("B2020", Rating::C)).unwrap();
    let new = insp.changes_since(&heads);
    let pushed = store
        .sync(
            &user,
            request(vec![DocChanges {
                doc_id,
                changes: vec![ByteBuf::from(bundle(&new))],
            }]),
            limits,
        )
        .unwrap();
    assert_eq!(pushed.accepted, 1);
    store.db.settle();
    assert_eq!(
        ratings(&store),
        2,
        "projection rewritten from the merged document"
    );
}

/// An in-memory store with the demo territory, an inspector and a complex.
fn demo_store() -> (Db, UserInfo, bilan_shared::domain::Complex) {
    let store = Db::mem();
    crate::admin::seed_demo(&store.svc).unwrap();
    let (_, user) = store
        .login("inspecteur1", crate::admin::DEMO_PASSWORD, None)
        .unwrap();
    let complex = store.reference(&user, 0).unwrap().complexes[0].clone();
    (store, user, complex)
}

/// An inspection started at 20:00 on 31 December in Quebec (01:00 on
/// 1 January in UTC) belongs to that year and that day: its work due
/// within a year is planned in that year, and a filter ending on
/// 31 December lists it (both were counted in UTC before).
#[test]
fn dates_are_grouped_in_the_territory_time_zone_at_the_year_boundary() {
    let (store, _, complex) = demo_store();
    let (_, manager) = store
        .login("responsable", crate::admin::DEMO_PASSWORD, None)
        .unwrap();
    let new_years_eve_evening: i64 = 1_798_765_200_000; // 2027-01-01T01:00:00Z
    let doc = InspectionId::new().to_string();
    store
        .db
        .with_conn(|c| {
            c.execute(
                "INSERT INTO inspection_summary (doc_id, territory_id, office_id, complex_id, status, created_by,
                   created_at, updated_at, rated, present, findings, total_cost, cost_5y, conflicts)
                 VALUES (?1, ?2, ?3, ?4, 'soumise', ?5, ?6, ?6, 1, 1, 1, 1000.0, 1000.0, 0)",
                params![doc, complex.territory_id.to_string(), complex.office_id.to_string(),
                    complex.id.to_string(), manager.id.to_string(), new_years_eve_evening],
            )?;
            c.execute(
                "INSERT INTO recommendations (doc_id, territory_id, finding_id, rec_id, work, urgency, quantity, unit, unit_cost, cost)
                 VALUES (?1, ?2, 'f', 'r', 'Réfection', 'moins_1_an', 1, 'u', 1000, 1000)",
                params![doc, complex.territory_id.to_string()],
            )?;
            Ok(())
        })
        .unwrap();
    let plan = store.works_plan(&manager).unwrap();
    assert_eq!(plan.iter().map(|l| l.year).collect::<Vec<_>>(), vec![2026]);
    let day = |from: &str, to: &str| crate::service::InspectionFilter {
        from: Some(from.into()),
        to: Some(to.into()),
        ..Default::default()
    };
    let (rows, _) = store
        .search_inspections(&manager, &day("2026-12-31", "2026-12-31"))
        .unwrap();
    assert_eq!(rows.len(), 1, "listed on 31 December");
    let (rows, _) = store
        .search_inspections(&manager, &day("2027-01-01", "2027-01-01"))
        .unwrap();
    assert!(rows.is_empty(), "not on 1 January");
}

/// A new inspection of `complex`, claiming `territory`, as a push sends it.
fn new_doc(
    user: &UserInfo,
    complex: &bilan_shared::domain::Complex,
    territory: TerritoryId,
) -> DocChanges {
    let author = Author::device(DeviceId::new(), user.id, "Julie");
    let id = InspectionId::new();
    let (insp, _) = Inspection::create(
        &author,
        NewInspection {
            inspection_id: id,
            territory_id: territory,
            office_id: complex.office_id,
            complex_id: complex.id,
        },
        Catalogue::current(),
    )
    .unwrap();
    DocChanges::whole(id, &insp)
}

const LIMITS: SyncLimits = SyncLimits {
    max_docs: 10,
    page_bytes: 1 << 20,
};

/// A pull walks the log on the covering index alone: rows it skips (the
/// device's own, others' refused ones) cost no read of their bundle.
#[test]
fn a_pull_walks_the_log_on_its_covering_index() {
    let (store, _, _) = demo_store();
    let plan: String = store
        .db
        .with_conn(|c| {
            Ok(c.query_row(
                &format!("EXPLAIN QUERY PLAN {PULL_WALK}"),
                params!["t", 0, 1],
                |r| r.get(3),
            )?)
        })
        .unwrap();
    assert!(plan.contains("COVERING INDEX log_pull"), "{plan}");
}

/// A push is answered while the merger is busy merging: with every
/// thread of the merge pool held, a second push still commits and
/// answers (the merger holds no lock while it computes), and both
/// inspections are listed once the pool is free.
#[test]
fn a_push_commits_while_the_merger_is_computing() {
    let (store, user, complex) = demo_store();
    let push = |store: &Db| {
        let req = SyncRequest {
            protocol: PROTOCOL_VERSION,
            device_id: DeviceId::new(),
            cursor: 0,
            docs: vec![new_doc(&user, &complex, complex.territory_id)],
        };
        store.sync(&user, req, LIMITS).map(|r| r.accepted)
    };
    let gate = std::sync::Arc::new(std::sync::RwLock::new(()));
    let held = gate.write().unwrap();
    let (started, running) = std::sync::mpsc::channel();
    let threads = store.db.merge_pool.current_num_threads();
    for _ in 0..threads {
        let (gate, started) = (gate.clone(), started.clone());
        store.db.merge_pool.spawn(move || {
            started.send(()).unwrap();
            drop(gate.read());
        });
    }
    for _ in 0..threads {
        running.recv().unwrap();
    }
    assert_eq!(push(&store).unwrap(), 1);
    let (done, answered) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| done.send(push(&store)).unwrap());
        let second = answered
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the second push waited for the merger");
        assert_eq!(second.unwrap(), 1);
        assert_eq!(
            store.db.merged(),
            0,
            "nothing merged while the pool is held"
        );
        drop(held);
    });
    assert_eq!(store.summaries(&user).unwrap().len(), 2);
}

/// A full disk (SQLite's page limit reached) or a read-only database
/// refuses a push whole with an error the HTTP layer answers 503
/// `unavailable`; nothing of it is kept, and the same push is accepted
/// once space or write access is back.
#[test]
fn a_full_or_read_only_database_refuses_pushes_whole_and_recovers() {
    use crate::error::ApiError;
    use bilan_shared::protocol::ErrorCode;
    let (store, user, complex) = demo_store();
    let territory = complex.territory_id;
    let push = |store: &Db| {
        let req = SyncRequest {
            protocol: PROTOCOL_VERSION,
            device_id: DeviceId::new(),
            cursor: 0,
            docs: (0..5)
                .map(|_| new_doc(&user, &complex, territory))
                .collect(),
        };
        store.sync(&user, req, LIMITS)
    };
    let faults: [(&str, &str, &str); 2] = [
        ("disk full", "max_page_count", "1073741823"),
        ("read-only", "query_only", "0"),
    ];
    let mut stored = 0;
    for (what, pragma, healthy) in faults {
        store
            .db
            .with_conn(|c| {
                if pragma == "max_page_count" {
                    let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
                    c.pragma_update(None, pragma, pages)?;
                } else {
                    c.pragma_update(None, pragma, 1)?;
                }
                Ok(())
            })
            .unwrap();
        let err = push(&store).unwrap_err();
        assert!(err.is_unavailable(), "{what}: {err}");
        let api = ApiError::from(err);
        assert_eq!(
            (api.status.as_u16(), api.code),
            (503, ErrorCode::Unavailable),
            "{what}"
        );
        assert_eq!(
            store.change_count(territory).unwrap(),
            stored,
            "{what}: nothing kept"
        );
        assert_eq!(store.summaries(&user).unwrap().len() as u64, stored);
        store
            .db
            .with_conn(|c| Ok(c.pragma_update(None, pragma, healthy)?))
            .unwrap();
        assert_eq!(push(&store).unwrap().accepted, 5, "{what}: recovered");
        stored += 5;
        // Merged before the next fault is set.
        store.db.settle();
        assert_eq!(store.summaries(&user).unwrap().len() as u64, stored);
    }
}

/// Pushes that arrive while another holds the write lock are written
/// together, in one transaction with one commit; a document that is not
/// valid for the territory, and one whose bytes are whole chunks that do
/// not parse (a flipped byte: the push only checks the framing), are each
/// refused alone when merged, kept out of the projection and of other
/// devices' pulls, and reported to their device.
#[test]
fn concurrent_pushes_share_one_commit_and_a_bad_document_is_refused_alone() {
    let (store, user, complex) = demo_store();
    let doc = |territory| new_doc(&user, &complex, territory);
    let devices: Vec<DeviceId> = (0..6).map(|_| DeviceId::new()).collect();
    let held = store.db.lock();
    let outcomes = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let territory = if i == 3 {
                    TerritoryId::new()
                } else {
                    complex.territory_id
                };
                let mut d = doc(territory);
                if i == 4 {
                    let bytes = &mut d.changes[0];
                    let last = bytes.len() - 1;
                    bytes[last] ^= 0xff;
                }
                let req = SyncRequest {
                    protocol: PROTOCOL_VERSION,
                    device_id: devices[i],
                    cursor: 0,
                    docs: vec![d],
                };
                let (store, user) = (&store, &user);
                s.spawn(move || store.sync(user, req, LIMITS).map(|r| r.accepted))
            })
            .collect();
        // Every push is queued behind the held lock before it is released.
        while store.db.pushes.lock().unwrap().len() < 6 {
            std::thread::yield_now();
        }
        drop(held);
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    for outcome in &outcomes {
        assert_eq!(outcome.as_ref().unwrap(), &1, "stored for the merger");
    }
    assert_eq!(store.change_count(complex.territory_id).unwrap(), 4);
    assert_eq!(store.summaries(&user).unwrap().len(), 4);
    let pull = |device: DeviceId| {
        let req = SyncRequest {
            protocol: PROTOCOL_VERSION,
            device_id: device,
            cursor: 0,
            docs: vec![],
        };
        store.sync(&user, req, LIMITS).unwrap()
    };
    let bad = pull(devices[3]);
    assert_eq!(bad.changes.len(), 4, "the four good documents");
    assert_eq!(bad.rejected.len(), 1);
    assert_eq!(bad.rejected[0].code, ErrorCode::InvalidDocument);
    assert!(bad.rejected[0].message.contains("autre territoire"));
    let garbled = pull(devices[4]);
    assert_eq!(garbled.changes.len(), 4, "the four good documents");
    assert_eq!(garbled.rejected.len(), 1);
    assert_eq!(garbled.rejected[0].code, ErrorCode::MalformedChange);
    let good = pull(devices[0]);
    assert_eq!(
        good.changes.len(),
        3,
        "the refused documents are not served"
    );
    assert!(good.rejected.is_empty());
}

/// Five failed logins in a row lock a user name for 15 minutes, even
/// against the right password, and unknown names the same way (no
/// probing for accounts); once the lock is over the right password works
/// and the count starts again.
#[test]
fn five_failed_logins_lock_the_name_for_a_while() {
    let (store, _, _) = demo_store();
    let pw = crate::admin::DEMO_PASSWORD;
    for name in ["inspecteur1", "personne"] {
        for _ in 0..5 {
            assert!(matches!(
                store.login(name, "mauvais", None),
                Err(StoreError::InvalidCredentials)
            ));
        }
        assert!(matches!(
            store.login(name, pw, None),
            Err(StoreError::TooManyAttempts { minutes: 15 })
        ));
    }
    store
        .db
        .with_conn(|c| Ok(c.execute("UPDATE login_failures SET locked_until = 0", [])?))
        .unwrap();
    assert!(store.login("inspecteur1", pw, None).is_ok());
    let left: i64 = store
        .db
        .with_conn(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM login_failures WHERE username = 'inspecteur1'",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(left, 0);
}

/// A token stops working once older than the configured lifetime.
#[test]
fn tokens_expire_after_their_lifetime() {
    let (store, _, _) = demo_store();
    let (token, user) = store
        .login("responsable", crate::admin::DEMO_PASSWORD, None)
        .unwrap();
    assert_eq!(store.user_for_token(&token).unwrap(), Some(user.clone()));
    let expired = store.svc.clone().with_token_ttl(std::time::Duration::ZERO);
    assert_eq!(expired.user_for_token(&token).unwrap(), None);
    let fresh = expired.with_token_ttl(DEFAULT_TOKEN_TTL);
    assert_eq!(fresh.user_for_token(&token).unwrap(), Some(user));
}

/// A review decision is written to the audit log in the same
/// transaction as the edit: a refused edit leaves no entry, an accepted
/// one exactly one. Managers read their own territory's entries only,
/// other roles none; the console reads all of them, newest first.
#[test]
fn review_decisions_and_admin_actions_reach_the_audit_log_with_their_edit() {
    let (store, inspector, complex) = demo_store();
    let territory = complex.territory_id;
    let doc = new_doc(&inspector, &complex, territory);
    let id = doc.doc_id;
    let req = SyncRequest {
        protocol: PROTOCOL_VERSION,
        device_id: DeviceId::new(),
        cursor: 0,
        docs: vec![doc],
    };
    store.sync(&inspector, req, LIMITS).unwrap();
    let (_, manager) = store
        .login("responsable", crate::admin::DEMO_PASSWORD, None)
        .unwrap();
    let audit =
        AuditEntry::by(&manager, AuditAction::Review, id.to_string()).with_detail("Approuvée");
    // An edit that fails writes neither the change nor the entry.
    let author = Author::device(DeviceId::new(), manager.id, "Sophie");
    let failed = store
        .db
        .server_edit(territory, id, &author, &audit, &mut |_, _| {
            Err(bilan_shared::SharedError::UnknownComponent("X9999".into()))
        });
    assert!(failed.is_err());
    assert!(store.audit_log(Some(&manager), 10).unwrap().is_empty());
    let changes_before = store.change_count(territory).unwrap();
    store
        .review(&manager, id, Some(InspectionStatus::Approved), None)
        .unwrap();
    assert_eq!(store.change_count(territory).unwrap(), changes_before + 1);
    let settings = store.settings(&manager).unwrap();
    store.set_settings(&manager, &settings).unwrap();
    // Another territory's manager and its console action.
    let other = store.create_territory("CS ailleurs").unwrap();
    store
        .create_user(&NewUser {
            username: "autre".into(),
            display_name: "Autre".into(),
            role: Role::Manager,
            territory_id: Some(other),
            office_id: None,
            password: "motdepasse-long".into(),
        })
        .unwrap();
    store
        .audit(&AuditEntry::console(
            Some(other),
            AuditAction::CreateUser,
            "autre",
        ))
        .unwrap();
    let mine = store.audit_log(Some(&manager), 10).unwrap();
    let actions: Vec<_> = mine.iter().map(|e| e.action).collect();
    assert_eq!(actions, [AuditAction::ChangeSettings, AuditAction::Review]);
    assert_eq!(mine[1].actor, "responsable");
    assert_eq!(mine[1].target, id.to_string());
    assert_eq!(mine[1].detail, "Approuvée");
    assert!(mine[1].at > 0);
    let (_, theirs) = store.login("autre", "motdepasse-long", None).unwrap();
    let theirs = store.audit_log(Some(&theirs), 10).unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].actor, crate::audit::CONSOLE_ACTOR);
    assert!(matches!(
        store.audit_log(Some(&inspector), 10),
        Err(StoreError::Forbidden(_))
    ));
    assert_eq!(store.audit_log(None, 10).unwrap().len(), 3);
    // A lockout is an entry of the account's territory.
    for _ in 0..5 {
        let _ = store.login("inspecteur1", "mauvais", None);
    }
    let newest = &store.audit_log(Some(&manager), 1).unwrap()[0];
    assert_eq!(
        (newest.action, newest.actor.as_str()),
        (AuditAction::LoginLocked, "inspecteur1")
    );
}

/// A schema-2 database (log rows without a write time) opens migrated:
/// its rows count as old, so the next compaction clears them, and its
/// changes are still served.
#[test]
fn a_schema_2_database_is_migrated_with_old_rows_as_old() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bilan.sqlite");
    let (territory, changes) = {
        let store = Db::open(&path).unwrap();
        crate::admin::seed_demo(&store.svc).unwrap();
        let (_, user) = store
            .login("inspecteur1", crate::admin::DEMO_PASSWORD, None)
            .unwrap();
        let complex = store.reference(&user, 0).unwrap().complexes[0].clone();
        let req = SyncRequest {
            protocol: PROTOCOL_VERSION,
            device_id: DeviceId::new(),
            cursor: 0,
            docs: vec![new_doc(&user, &complex, complex.territory_id)],
        };
        store.sync(&user, req, LIMITS).unwrap();
        let changes = store.change_count(complex.territory_id).unwrap();
        // Back to schema 2: no write time, no merger (pushes were merged).
        store
            .db
            .with_conn(|c| {
                c.execute_batch(
                    "DROP INDEX log_pull; CREATE INDEX log_territory_seq ON log (territory_id, seq);
                     ALTER TABLE log DROP COLUMN at; ALTER TABLE log DROP COLUMN rejected;
                     ALTER TABLE log DROP COLUMN reason; DELETE FROM meta WHERE key = 'merged_seq';
                     PRAGMA user_version = 2;",
                )?;
                Ok(())
            })
            .unwrap();
        (complex.territory_id, changes)
    };
    let store = Db::open(&path).unwrap();
    let at: i64 = store
        .db
        .with_conn(|c| Ok(c.query_row("SELECT MAX(at) FROM log", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(at, 0);
    assert_eq!(store.change_count(territory).unwrap(), changes);
    let r = store.compact().unwrap();
    assert_eq!((r.documents, r.rows_cleared), (1, 1), "old rows cleared");
}

/// A database written by a newer server is refused, untouched.
#[test]
fn a_newer_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bilan.sqlite");
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", DB_SCHEMA_VERSION + 1)
        .unwrap();
    assert!(matches!(
        SqliteStore::open(&path),
        Err(StoreError::DatabaseTooNew { .. })
    ));
}

/// The SQL that filters the inspections page by condition gives the same
/// band as the pure function the pages show, at and around each bound and
/// for a complex without a replacement value.
#[test]
fn the_condition_filter_in_sql_agrees_with_the_ivp_function() {
    use bilan_shared::domain::ConditionThresholds;
    let db = Db::mem();
    let t = ConditionThresholds::default();
    let sql = crate::sql::condition_sql(crate::sql::IVP_SQL, &t);
    let mut cases = vec![(0.0, 1e6), (5.0, 0.0), (1e6, 1e6)];
    for b in t.upper_bounds {
        for v in [b - 1e-9, b, b + 1e-9] {
            cases.push((v * 1e6, 1e6));
        }
    }
    for (cost, value) in cases {
        let in_sql: String = db
            .db
            .with_conn(|c| {
                Ok(c.query_row(
                    &format!("SELECT {sql} FROM (SELECT ?1 AS cost_5y, ?2 AS replacement_value) AS s, (SELECT ?2 AS replacement_value) AS c"),
                    params![cost, value],
                    |r| r.get(0),
                )?)
            })
            .unwrap();
        let pure = t.condition_for(crate::reports::ivp(cost, value)).code();
        assert_eq!(in_sql, pure, "cost {cost}, value {value}");
    }
}
