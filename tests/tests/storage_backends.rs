//! The storage traits behave the same on both backends: one test body per
//! concern, run on the embedded SQLite store and on PostgreSQL (a throwaway
//! cluster). Accounts and lockout counters, reference data and its
//! revisions, settings with their audit entry, photos' metadata and scoping,
//! the audit log; the sync log, the merger, documents, server edits and
//! compaction; and PostgreSQL's schema versioning.

use bilan_e2e::backend::psql;
use bilan_e2e::postgres::PgCluster;
use bilan_server::SqliteStore;
use bilan_server::StoreError;
use bilan_server::audit::{AuditAction, AuditEntry};
use bilan_server::codec::prepare_push;
use bilan_server::postgres::{PG_SCHEMA_VERSION, PgStore};
use bilan_server::storage::{
    AccountStore, AuditLog, DocumentStore, InspectionQuery, LockKey, PhotoIndex, PullPage,
    ReferenceStore, ReportStore, Scope, SortKey, SyncLog,
};
use bilan_shared::doc::{bundle, changes_of_chunks};
use bilan_shared::domain::{
    Complex, ConditionThresholds, CsSettings, InspectionStatus, Office, Rating, Role, Territory,
};
use bilan_shared::ids::*;
use bilan_shared::protocol::{DocChanges, ErrorCode, UserInfo};
use bilan_shared::{Author, Catalogue, Inspection, NewInspection};
use serde_bytes::ByteBuf;

/// What this test needs of a backend (the traits both implement so far).
trait Stores: AccountStore + ReferenceStore + PhotoIndex + AuditLog {}
impl<T: AccountStore + ReferenceStore + PhotoIndex + AuditLog> Stores for T {}

fn office(territory: TerritoryId, code: &str, name: &str) -> Office {
    Office {
        id: OfficeId::new(),
        territory_id: territory,
        code: code.into(),
        name: name.into(),
    }
}

fn complex(territory: TerritoryId, office: OfficeId, code: &str) -> Complex {
    Complex {
        id: ComplexId::new(),
        territory_id: territory,
        office_id: office,
        code: code.into(),
        name: format!("Habitations {code}"),
        address: "1 rue des Forges".into(),
        city: "Trois-Rivières".into(),
        dwellings: 24,
        year_built: 1975,
        replacement_value: 4e6,
    }
}

/// Every behaviour of the traits, against `db`.
fn exercise(db: &dyn Stores) {
    // Reference data: territories, offices renamed in place, complexes,
    // revisions that only grow, scoped to an office.
    let t = Territory {
        id: TerritoryId::new(),
        name: "CS de la Mauricie".into(),
    };
    db.insert_territory(&t).unwrap();
    assert_eq!(db.territory_by_name(&t.name).unwrap(), Some(t.clone()));
    assert_eq!(db.territory(t.id).unwrap(), Some(t.clone()));
    assert_eq!(db.territory_by_name("ailleurs").unwrap(), None);
    let o1 = db
        .upsert_office(&office(t.id, "OH-TR", "OH de TR"))
        .unwrap();
    let again = db
        .upsert_office(&office(t.id, "OH-TR", "Office de Trois-Rivières"))
        .unwrap();
    assert_eq!(again, o1, "an office is renamed in place");
    let o2 = db
        .upsert_office(&office(t.id, "OMH-SH", "OMH de Shawinigan"))
        .unwrap();
    let names: Vec<String> = db
        .offices(t.id)
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(names, ["OMH de Shawinigan", "Office de Trois-Rivières"]);
    let c1 = complex(t.id, o1, "C1");
    db.upsert_complex(&c1).unwrap();
    db.upsert_complex(&complex(t.id, o2, "C2")).unwrap();
    let foreign = complex(t.id, OfficeId::new(), "C3");
    assert!(matches!(
        db.upsert_complex(&foreign),
        Err(StoreError::BadRequest(_))
    ));
    let all = Scope {
        territory: t.id,
        office: None,
    };
    let r = db.reference(&all, 0).unwrap();
    assert_eq!((r.offices.len(), r.complexes.len()), (2, 2));
    assert_eq!(r.territory, t);
    assert_eq!(db.reference(&all, r.revision).unwrap().complexes.len(), 0);
    let renamed = Complex {
        name: "Les Pins".into(),
        ..c1.clone()
    };
    db.upsert_complex(&renamed).unwrap();
    let later = db.reference(&all, r.revision).unwrap();
    assert_eq!(later.complexes, vec![renamed]);
    assert!(later.revision > r.revision);
    let reader_scope = Scope {
        territory: t.id,
        office: Some(o2),
    };
    let mine = db.reference(&reader_scope, 0).unwrap();
    assert_eq!(
        (mine.offices.len(), mine.complexes.len()),
        (1, 1),
        "an office's scope sees its office only"
    );
    assert!(matches!(
        db.reference(
            &Scope {
                territory: TerritoryId::new(),
                office: None
            },
            0
        ),
        Err(StoreError::NotFound(_))
    ));

    // Accounts and tokens.
    let user = UserInfo {
        id: UserId::new(),
        username: "inspecteur1".into(),
        display_name: "Julie Tremblay".into(),
        role: Role::Inspector,
        territory_id: Some(t.id),
        office_id: None,
    };
    db.insert_user(&user, "hash-1").unwrap();
    assert!(matches!(
        db.insert_user(
            &UserInfo {
                id: UserId::new(),
                ..user.clone()
            },
            "x"
        ),
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(
        db.user_with_hash("inspecteur1").unwrap(),
        Some((user.clone(), "hash-1".to_string()))
    );
    assert!(db.set_password_hash("inspecteur1", "hash-2").unwrap());
    assert!(!db.set_password_hash("personne", "hash-2").unwrap());
    assert_eq!(
        db.user_with_hash("inspecteur1").unwrap().unwrap().1,
        "hash-2"
    );
    assert_eq!(db.territory_users(t.id).unwrap(), vec![user.clone()]);
    db.insert_token("tok-a", user.id, Some(DeviceId::new()))
        .unwrap();
    db.insert_token("tok-b", user.id, None).unwrap();
    assert_eq!(db.user_for_token("tok-a", 0).unwrap(), Some(user.clone()));
    assert_eq!(
        db.user_for_token("tok-a", i64::MAX).unwrap(),
        None,
        "expired"
    );
    assert_eq!(db.user_for_token("nope", 0).unwrap(), None);
    db.revoke_token("tok-a").unwrap();
    assert_eq!(db.user_for_token("tok-a", 0).unwrap(), None);
    assert_eq!(db.revoke_user_tokens("inspecteur1").unwrap(), 1);
    assert_eq!(db.user_for_token("tok-b", 0).unwrap(), None);

    // Failed-login counters: in a row per name, within a window per address.
    let name = LockKey::User("inspecteur1");
    assert_eq!(db.locked_until(name).unwrap(), None);
    for n in 1..=3 {
        assert_eq!(db.count_failure(name, 1_000, i64::MAX).unwrap(), n);
    }
    db.lock_out(name, 1_000, 5_000).unwrap();
    assert_eq!(db.locked_until(name).unwrap(), Some(5_000));
    assert_eq!(
        db.count_failure(name, 2_000, i64::MAX).unwrap(),
        1,
        "restarted"
    );
    db.clear_failures(name).unwrap();
    assert_eq!(db.locked_until(name).unwrap(), None);
    let addr = LockKey::Address("10.0.0.9");
    assert_eq!(db.count_failure(addr, 1_000, 100).unwrap(), 1);
    assert_eq!(db.count_failure(addr, 1_050, 100).unwrap(), 2);
    assert_eq!(
        db.count_failure(addr, 2_000, 100).unwrap(),
        1,
        "a new window"
    );
    db.lock_out(addr, 2_000, 9_000).unwrap();
    assert_eq!(db.locked_until(addr).unwrap(), Some(9_000));

    // Settings, saved with their audit entry in one transaction.
    assert_eq!(db.settings(t.id).unwrap(), CsSettings::default());
    let s = CsSettings {
        hourly: 90.0,
        ..CsSettings::default()
    };
    let entry = AuditEntry::by(&user, AuditAction::ChangeSettings, "tarifs");
    db.set_settings(t.id, &s, &entry).unwrap();
    assert_eq!(db.settings(t.id).unwrap().hourly, 90.0);

    // Photos' metadata: seen by the territory that sent it only.
    let hash = PhotoHash::of(b"photo");
    db.photo_received(&hash, 5, "image/jpeg", t.id).unwrap();
    db.photo_received(&hash, 5, "image/jpeg", t.id).unwrap();
    assert_eq!(
        db.photo_meta(&all, &hash).unwrap(),
        Some((5, "image/jpeg".to_string()))
    );
    let other = Scope {
        territory: TerritoryId::new(),
        office: None,
    };
    assert_eq!(db.photo_meta(&other, &hash).unwrap(), None);
    assert_eq!(
        db.photo_meta(&reader_scope, &hash).unwrap(),
        None,
        "an office reader sees only photos its office's inspections name"
    );

    // The audit log: newest first, by territory or all.
    db.append_audit(&AuditEntry::console(
        None,
        AuditAction::Backup,
        "/sauvegarde",
    ))
    .unwrap();
    let mine = db.audit_entries(Some(t.id), 10).unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(
        (
            mine[0].action,
            mine[0].actor.as_str(),
            mine[0].target.as_str()
        ),
        (AuditAction::ChangeSettings, "inspecteur1", "tarifs")
    );
    assert!(mine[0].at > 0);
    let all_entries = db.audit_entries(None, 10).unwrap();
    assert_eq!(all_entries[0].action, AuditAction::Backup, "newest first");
    assert_eq!(db.audit_entries(None, 1).unwrap().len(), 1);
}

#[test]
fn the_sqlite_backend_keeps_accounts_reference_settings_photos_and_audit() {
    exercise(&SqliteStore::in_memory().unwrap());
}

#[test]
fn the_postgresql_backend_keeps_accounts_reference_settings_photos_and_audit() {
    let pg = PgCluster::start();
    let url = pg.create_database("bilan");
    exercise(&PgStore::open(&url).unwrap());
}

/// Opening applies the schema once (a second instance opening the same
/// database changes nothing) and a database newer than this build is
/// refused, untouched.
#[test]
fn a_postgresql_database_is_created_once_and_a_newer_one_is_refused() {
    let pg = PgCluster::start();
    let url = pg.create_database("bilan");
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| PgStore::open(&url));
        let b = s.spawn(|| PgStore::open(&url));
        (a.join().unwrap(), b.join().unwrap())
    });
    let (a, _b) = (a.unwrap(), b.unwrap());
    a.insert_territory(&Territory {
        id: TerritoryId::new(),
        name: "CS".into(),
    })
    .unwrap();
    drop(a);
    let reopened = PgStore::open(&url).unwrap();
    assert!(
        reopened.territory_by_name("CS").unwrap().is_some(),
        "data kept"
    );
    drop(reopened);
    psql(
        &url,
        &format!(
            "UPDATE schema_version SET version = {}",
            PG_SCHEMA_VERSION + 1
        ),
    );
    assert!(matches!(
        PgStore::open(&url),
        Err(StoreError::DatabaseTooNew { .. })
    ));
}

/// A database left at schema version 1 by an older build is brought to
/// the current version at start, its data kept: the step to 2 (the log's
/// and snapshots' bytes stored without PostgreSQL's compression), to 3
/// (the carried work of the works plan), to 4 (the year a work was moved
/// to) and to 5 (the visits planned).
#[test]
fn a_version_1_postgresql_database_is_migrated_at_start_with_its_data() {
    let pg = PgCluster::start();
    let url = pg.create_database("bilan");
    let store = PgStore::open(&url).unwrap();
    store
        .insert_territory(&Territory {
            id: TerritoryId::new(),
            name: "CS".into(),
        })
        .unwrap();
    drop(store);
    let storage = |column: &str| {
        psql(
            &url,
            &format!(
                "SELECT attstorage FROM pg_attribute WHERE attrelid = '{column}'::regclass AND attname = '{}'",
                if column == "log" { "bytes" } else { "snapshot" }
            ),
        )
        .trim()
        .to_string()
    };
    assert_eq!(
        (storage("log"), storage("documents")),
        ("e".into(), "e".into())
    );
    // What a version 1 database looks like.
    psql(
        &url,
        "ALTER TABLE log ALTER COLUMN bytes SET STORAGE EXTENDED;
         ALTER TABLE documents ALTER COLUMN snapshot SET STORAGE EXTENDED;
         DROP TABLE carried_works;
         ALTER TABLE recommendations DROP COLUMN planned_year;
         DROP INDEX summary_complex;
         DROP TABLE assignments;
         UPDATE schema_version SET version = 1",
    );
    assert_eq!(storage("log"), "x");
    let reopened = PgStore::open(&url).unwrap();
    assert_eq!(
        psql(&url, "SELECT version FROM schema_version").trim(),
        PG_SCHEMA_VERSION.to_string()
    );
    assert_eq!(
        (storage("log"), storage("documents")),
        ("e".into(), "e".into())
    );
    assert!(
        reopened.territory_by_name("CS").unwrap().is_some(),
        "data kept"
    );
    assert_eq!(
        psql(&url, "SELECT count(*) FROM carried_works").trim(),
        "0",
        "step 3 applied"
    );
    assert_eq!(
        psql(&url, "SELECT count(*) FROM assignments").trim(),
        "0",
        "step 5 applied"
    );
}

/// What the sync test needs of a backend.
trait SyncStores: ReferenceStore + SyncLog + DocumentStore + AuditLog + ReportStore {}
impl<T: ReferenceStore + SyncLog + DocumentStore + AuditLog + ReportStore> SyncStores for T {}

/// A new inspection of `complex` as a device pushes it, claiming `territory`.
fn new_inspection(complex: &Complex, territory: TerritoryId) -> (Inspection, DocChanges) {
    let author = Author::device(DeviceId::new(), UserId::new(), "Julie");
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
    let doc = DocChanges::whole(id, &insp);
    (insp, doc)
}

/// Applies a pull's changes to fresh documents, by id.
fn apply(page: &PullPage) -> std::collections::HashMap<InspectionId, Inspection> {
    let mut out = std::collections::HashMap::new();
    for d in &page.changes {
        let insp = out.entry(d.doc_id).or_insert_with(Inspection::empty);
        for item in &d.changes {
            insp.apply_changes(changes_of_chunks(item).unwrap())
                .unwrap();
        }
    }
    out
}

/// The sync log and documents: a push is durable and pulled by the other
/// devices (not its own), merged into the projection; a document invalid
/// for the territory is refused and reported to its device only; a document
/// of another territory is forbidden; a server edit is merged with its
/// audit entry; after compaction a new device still gets everything.
fn exercise_sync(db: &dyn SyncStores, forget_retention: &dyn Fn()) {
    let t = Territory {
        id: TerritoryId::new(),
        name: "CS".into(),
    };
    db.insert_territory(&t).unwrap();
    let o = db.upsert_office(&office(t.id, "OH", "OH")).unwrap();
    let c = complex(t.id, o, "C1");
    db.upsert_complex(&c).unwrap();
    let all = Scope {
        territory: t.id,
        office: None,
    };

    let (mut insp, doc) = new_inspection(&c, t.id);
    let id = doc.doc_id;
    let accepted = db
        .push(t.id, "dev-a", prepare_push(vec![doc]).unwrap())
        .unwrap();
    assert!(accepted > 0);
    let b = db.pull(t.id, "dev-b", 0, 1 << 20, true).unwrap();
    assert!(!b.more && b.rejected.is_empty());
    let got = apply(&b);
    assert_eq!(
        got[&id].automerge().get_heads(),
        insp.automerge().get_heads()
    );
    let own = db.pull(t.id, "dev-a", 0, 1 << 20, true).unwrap();
    assert!(
        own.changes.is_empty(),
        "a device does not get its own changes back"
    );
    assert_eq!(own.cursor, b.cursor);
    assert_eq!(db.place(id).unwrap(), Some((t.id, o)));
    assert_eq!(
        db.load(id).unwrap().unwrap().automerge().get_heads(),
        insp.automerge().get_heads()
    );
    let sums = db.summaries(&all).unwrap();
    assert_eq!(sums.len(), 1);
    assert_eq!(sums[0].status, InspectionStatus::InProgress);
    let other_office = Scope {
        territory: t.id,
        office: Some(OfficeId::new()),
    };
    assert!(db.summaries(&other_office).unwrap().is_empty());
    let count = db.change_count(t.id).unwrap();
    assert_eq!(count, u64::from(accepted));

    // An edit on a device, pushed: merged, pulled by the others from their cursor.
    let heads = insp.automerge().get_heads();
    let author = Author::device(DeviceId::new(), UserId::new(), "Julie");
    insp.edit(&author, |d| d.rate("B3010", Rating::D)).unwrap();
    let edit = DocChanges {
        doc_id: id,
        changes: vec![ByteBuf::from(bundle(&insp.changes_since(&heads)))],
    };
    db.push(t.id, "dev-a", prepare_push(vec![edit]).unwrap())
        .unwrap();
    let next = db.pull(t.id, "dev-b", b.cursor, 1 << 20, true).unwrap();
    assert_eq!(next.changes.len(), 1);
    assert!(next.cursor > b.cursor);

    // Invalid for this territory: stored, then refused by the merger,
    // reported to its device only; another territory's document: forbidden.
    let (_, bad) = new_inspection(&c, TerritoryId::new());
    db.push(t.id, "dev-c", prepare_push(vec![bad]).unwrap())
        .unwrap();
    let c_pull = db.pull(t.id, "dev-c", next.cursor, 1 << 20, true).unwrap();
    assert_eq!(c_pull.rejected.len(), 1);
    assert_eq!(c_pull.rejected[0].code, ErrorCode::InvalidDocument);
    let b_pull = db.pull(t.id, "dev-b", next.cursor, 1 << 20, true).unwrap();
    assert!(b_pull.changes.is_empty() && b_pull.rejected.is_empty());
    let elsewhere = TerritoryId::new();
    db.insert_territory(&Territory {
        id: elsewhere,
        name: "Ailleurs".into(),
    })
    .unwrap();
    let (_, again) = {
        let (i, mut d) = new_inspection(&c, t.id);
        d.doc_id = id;
        (i, d)
    };
    assert!(matches!(
        db.push(elsewhere, "dev-x", prepare_push(vec![again]).unwrap()),
        Err(StoreError::Forbidden(_))
    ));

    // A server edit: merged at once, with its audit entry.
    let manager = Author::device(DeviceId::new(), UserId::new(), "Sophie");
    let entry = AuditEntry::console(Some(t.id), AuditAction::Review, id.to_string());
    db.server_edit(t.id, id, &manager, &entry, &mut |insp, author| {
        let c = insp.edit(author, |d| {
            d.status = InspectionStatus::Approved;
            Ok(())
        })?;
        Ok(c.into_iter().collect())
    })
    .unwrap();
    assert_eq!(
        db.summaries(&all).unwrap()[0].status,
        InspectionStatus::Approved
    );
    assert_eq!(
        db.audit_entries(Some(t.id), 10).unwrap()[0].action,
        AuditAction::Review
    );
    let failed = db.server_edit(t.id, id, &manager, &entry, &mut |_, _| {
        Err(bilan_shared::SharedError::UnknownComponent("X".into()))
    });
    assert!(failed.is_err());
    assert_eq!(
        db.audit_entries(Some(t.id), 10).unwrap().len(),
        1,
        "no entry without its edit"
    );

    // The review pages' queries on the projection.
    let th = ConditionThresholds::default();
    let approved = InspectionQuery {
        status: Some(InspectionStatus::Approved),
        condition: Some('A'),
        from_ms: Some(0),
        before_ms: Some(i64::MAX),
        sort: SortKey::Cost,
        descending: true,
        page: 1,
        ..InspectionQuery::default()
    };
    let (rows, total) = db.search(&all, &approved, &th).unwrap();
    assert_eq!((rows.len(), total), (1, 1));
    assert_eq!(
        (rows[0].id.as_str(), rows[0].condition),
        (id.to_string().as_str(), "A")
    );
    let conflicts = InspectionQuery {
        conflicts_only: true,
        page: 1,
        ..InspectionQuery::default()
    };
    assert_eq!(db.search(&all, &conflicts, &th).unwrap().1, 0);
    let complexes = db.complex_rows(&all).unwrap();
    assert_eq!(complexes.len(), 1);
    assert_eq!(
        complexes[0].latest.as_ref().map(|l| l.status),
        Some(InspectionStatus::Approved)
    );
    let (offices, _) = db.filter_options(&all).unwrap();
    assert_eq!(offices.len(), 1);
    assert!(
        db.plan_rows(&all, None).unwrap().is_empty(),
        "no recommendation yet"
    );
    assert!(
        db.visit_totals(&all, "2000-01-01", "2100-01-01")
            .unwrap()
            .is_empty()
    );

    // A newer inspection of the complex, in progress: the latest, while
    // the building's condition stays its approved BSI's.
    let approved_at = db.load(id).unwrap().unwrap().read().unwrap().created_at;
    let (mut next, _) = new_inspection(&c, t.id);
    let author = Author::device(DeviceId::new(), UserId::new(), "Julie");
    next.edit(&author, |d| {
        d.created_at = approved_at + 86_400_000;
        Ok(())
    })
    .unwrap();
    let next_id = next.read().unwrap().inspection_id;
    db.push(
        t.id,
        "dev-a",
        prepare_push(vec![DocChanges::whole(next_id, &next)]).unwrap(),
    )
    .unwrap();
    let complexes = db.complex_rows(&all).unwrap();
    assert_eq!(
        complexes[0]
            .latest
            .as_ref()
            .map(|l| (l.status, l.created_at)),
        Some((InspectionStatus::InProgress, approved_at + 86_400_000))
    );
    assert_eq!(
        complexes[0]
            .approved
            .as_ref()
            .map(|l| (l.status, l.created_at)),
        Some((InspectionStatus::Approved, approved_at))
    );

    // Compaction: a new device still receives the whole inspection.
    forget_retention();
    let before = db.load(id).unwrap().unwrap().automerge().get_heads();
    let r = db.compact().unwrap();
    assert!(r.documents >= 1 && r.rows_cleared >= 1, "{r:?}");
    assert_eq!(db.compact().unwrap().documents, 0, "nothing left to fold");
    let fresh = db.pull(t.id, "dev-new", 0, 1 << 20, true).unwrap();
    assert_eq!(apply(&fresh)[&id].automerge().get_heads(), before);
}

#[test]
fn the_sqlite_log_merges_serves_refuses_edits_and_compacts() {
    let db = SqliteStore::in_memory().unwrap();
    let forget = || db.set_log_retention(std::time::Duration::ZERO);
    exercise_sync(&db, &forget);
}

#[test]
fn the_postgresql_log_merges_serves_refuses_edits_and_compacts() {
    let pg = PgCluster::start();
    let url = pg.create_database("bilan");
    let db = PgStore::open(&url).unwrap();
    let forget = || db.set_log_retention(std::time::Duration::ZERO);
    exercise_sync(&db, &forget);
}
