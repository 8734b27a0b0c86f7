//! End-to-end on PostgreSQL: real servers whose storage is a throwaway
//! PostgreSQL cluster, real devices. Offline edits merge and page through
//! pulls; two server instances on one database answer for each other (a
//! push on one is pulled from the other; a review decision on one is seen
//! on the other); the review pages read the same projection.

use bilan_e2e::postgres::PgCluster;
use bilan_e2e::{Browser, TestServer, device, first_complex, sync};
use bilan_shared::domain::{InspectionStatus, Rating};
use bilan_shared::ids::InspectionId;

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
