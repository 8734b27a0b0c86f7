//! The BSI over time, end to end with real devices: an approved inspection
//! carried into the next one of the same complex, started on another
//! device with no network, and the statuses set there reaching the server.

use bilan_e2e::{
    Browser, DEMO_PASSWORD, TestServer, device, fingerprint, first_complex, roof_finding,
    server_doc, sync,
};
use bilan_mobile::{DeviceStore, NewRecommendation, SyncEngine, WorkUpdate};
use bilan_shared::domain::{InspectionStatus, Rating, Urgency, WorkStatus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_inspection_starts_offline_from_the_approved_one_and_its_statuses_reach_the_server()
 {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("server")).await;
    // Julie's BSI: foundations C with a note, elevator absent, a roof finding
    // with its recommended work; submitted and approved by the manager.
    let a = device(&tmp.path().join("a"), &server.url(), "inspecteur1").await;
    let complex = first_complex(&a);
    let before = a.start_inspection(complex).unwrap();
    a.rate(before, "A1010", Rating::C).unwrap();
    a.set_component_note(before, "A1010", "Fissures capillaires")
        .unwrap();
    a.rate(before, "D1010", Rating::NotApplicable).unwrap();
    let finding = a.add_finding(before, roof_finding()).unwrap();
    a.add_recommendation(
        before,
        finding,
        NewRecommendation {
            work: "Réfection de la toiture".into(),
            urgency: Urgency::WithinYear,
            quantity: 1.0,
            unit: "forfait".into(),
            unit_cost: 15_000.0,
        },
    )
    .unwrap();
    let photo = roof_photo();
    a.attach_photo(before, finding, &photo, "image/jpeg", "Membrane du toit")
        .unwrap();
    a.submit(before).unwrap();
    sync(&a).await;
    let manager = SyncEngine::new(&DeviceStore::open(&tmp.path().join("m")).unwrap())
        .login(&server.url(), "responsable", DEMO_PASSWORD)
        .await
        .unwrap();
    let r = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/inspections/{before}/review",
            server.url()
        ))
        .bearer_auth(&manager.token)
        .json(&serde_json::json!({"status": "approuvee"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    // Marc's tablet syncs once, then works with no network: it cannot reach
    // this address any more.
    let b = device(&tmp.path().join("b"), &server.url(), "inspecteur2").await;
    sync(&b).await;
    assert_eq!(
        b.inspection(before).unwrap().status,
        InspectionStatus::Approved
    );
    b.set_setting("server_url", "http://127.0.0.1:9").unwrap();
    let next = b.start_inspection(complex).unwrap();
    let d = b.inspection(next).unwrap();
    assert_eq!(
        d.components["A1010"].present,
        Some(true),
        "inventory carried"
    );
    assert_eq!(
        d.components["D1010"].present,
        Some(false),
        "sans objet carried"
    );
    assert!(
        d.components.values().all(|c| c.rating.is_none()),
        "no rating copied"
    );
    let p = d.previous.expect("the approved BSI carried over");
    assert_eq!(p.inspection_id, before);
    assert_eq!(
        (
            p.components["A1010"].rating,
            p.components["A1010"].note.as_str()
        ),
        (Some(Rating::C), "Fissures capillaires")
    );
    assert_eq!(p.works.len(), 1);
    assert_eq!(p.works[0].work, "Réfection de la toiture");
    b.rate(next, "A1010", Rating::C).unwrap();
    let postponed = WorkUpdate {
        status: Some(WorkStatus::Postponed),
        done_year: None,
        done_cost: None,
    };
    b.set_work_status(next, p.works[0].id, postponed).unwrap();
    assert!(
        SyncEngine::new(&b).sync().await.is_err(),
        "offline: the sync fails and the edits wait"
    );

    // Back in coverage: the statuses reach the server and its works plan,
    // which follows each complex's latest inspection: postponed work stays
    // in it, work done leaves it.
    assert_eq!(roof_in_plan(&server), 1, "recommended by the approved BSI");
    b.set_setting("server_url", &server.url()).unwrap();
    sync(&b).await;
    assert_eq!(roof_in_plan(&server), 1, "postponed: still to do");
    b.set_work_status(
        next,
        p.works[0].id,
        WorkUpdate::done("2026", "14 200").unwrap(),
    )
    .unwrap();
    sync(&b).await;
    assert_eq!(roof_in_plan(&server), 0, "done: out of the plan");
    let on_server = server_doc(&server, "responsable", next);
    let w = &on_server.previous.as_ref().unwrap().works[0];
    assert_eq!(
        (w.status, w.done_year, w.done_cost),
        (Some(WorkStatus::Done), Some(2026), Some(14_200.0))
    );
    assert_eq!(on_server.components["A1010"].rating, Some(Rating::C));

    // The complex's page: both BSIs, the approved one's condition, the
    // other provisional, the work reported done.
    let m = Browser::login(&server.url(), "responsable").await;
    let (status, page) = m.get(&format!("/ensembles/{complex}")).await;
    assert_eq!(status, 200);
    assert_eq!(page.matches("/inspections/").count(), 2, "{page}");
    assert!(page.contains("dernier BSI approuvé du"), "{page}");
    assert!(page.contains("(provisoire)"), "{page}");
    let done = &page[page.find("travaux-realises").expect("work done")..];
    assert!(
        done.contains("Réfection de la toiture") && done.contains("2026"),
        "{done}"
    );
    assert!(done.contains("14\u{202f}200\u{a0}$"), "{done}");

    // The BSI reports, for the office's board: no site navigation, the
    // approval, the thresholds used, the work, the comparison.
    let (status, first) = m.get(&format!("/inspections/{before}/rapport")).await;
    assert_eq!(status, 200);
    assert!(!first.contains("<header>"), "no navigation on a report");
    assert!(
        first.contains("Approuvé par Sophie Bergeron (CS) le"),
        "{first}"
    );
    assert!(first.contains("Seuils du CS : A jusqu'à 5"), "{first}");
    assert!(
        first.contains("Réfection de la toiture") && first.contains("Premier BSI"),
        "{first}"
    );
    // The same report as a PDF made on the server: its text reads back
    // (French letters included) and its first page renders.
    let (status, kind, pdf) = m
        .download(&format!("/inspections/{before}/rapport.pdf"))
        .await;
    assert_eq!((status, kind.as_str()), (200, "application/pdf"));
    let dir = tmp.path().join("pdf");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rapport.pdf");
    std::fs::write(&file, &pdf).unwrap();
    let text = std::process::Command::new("pdftotext")
        .args(["-layout", file.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext (poppler-utils)");
    let text = String::from_utf8_lossy(&text.stdout);
    for expected in [
        "Rapport BSI",
        "Approuvé par Sophie Bergeron",
        "Réfection de la toiture",
        "Indice de vétusté physique",
        "Cotes par groupe de composants",
    ] {
        assert!(
            text.contains(expected),
            "{expected} missing from the PDF:\n{text}"
        );
    }
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screens");
    std::fs::create_dir_all(&shots).unwrap();
    let rendered = std::process::Command::new("pdftoppm")
        .args(["-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile"])
        .arg(&file)
        .arg(shots.join("rapport-bsi-page1"))
        .status()
        .expect("pdftoppm (poppler-utils)");
    assert!(rendered.success());
    let png = std::fs::read(shots.join("rapport-bsi-page1.png")).unwrap();
    assert!(png.len() > 5_000, "a first page with content");
    let photo_page = std::process::Command::new("pdfimages")
        .args(["-list", file.to_str().unwrap()])
        .output()
        .expect("pdfimages (poppler-utils)");
    assert!(
        String::from_utf8_lossy(&photo_page.stdout).lines().count() > 2,
        "the finding's photo is in the PDF"
    );
    // (Who may download it: the access walker, tests/tests/access.rs.)

    let (_, second) = m.get(&format!("/inspections/{next}/rapport")).await;
    assert!(second.contains("Non approuvé : En cours"), "{second}");
    let compared = &second[second.find("id=\"comparaison\"").expect("comparison")..];
    assert!(
        compared.contains("Réalisés") && compared.contains("2026"),
        "{compared}"
    );
}

/// How many lines of the manager's works plan are the roof work.
fn roof_in_plan(server: &TestServer) -> usize {
    let service = server.state.service();
    let (_, manager) = service.login("responsable", DEMO_PASSWORD, None).unwrap();
    service
        .works_plan(&manager)
        .unwrap()
        .iter()
        .filter(|l| l.work == "Réfection de la toiture")
        .count()
}

/// A camera-like photo of the roof (a gradient, 320 × 240).
fn roof_photo() -> Vec<u8> {
    let img = image::RgbImage::from_fn(320, 240, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 120])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// The manager plans two complexes for Julie in March 2027 on the planning
/// page (bad input changes nothing), sees them counted for her, downloads
/// the plan; Julie's device lists them in "Mes visites" after one sync and
/// keeps them offline; a visit withdrawn on the page leaves the device at
/// its next sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manager_plans_visits_and_the_inspectors_device_lists_them_and_their_withdrawal() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("server")).await;
    let julie = device(&tmp.path().join("a"), &server.url(), "inspecteur1").await;
    let me = julie.user().unwrap().unwrap();
    let complexes = julie.complexes().unwrap();
    let (c1, c2) = (&complexes[0], &complexes[1]);
    let m = Browser::login(&server.url(), "responsable").await;
    let (status, page) = m.get("/planification").await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("value=\"{}\"", me.id)),
        "Julie can be chosen: {page}"
    );
    let csrf = Browser::csrf(&page);
    let (id, c1s, c2s) = (me.id.to_string(), c1.id.to_string(), c2.id.to_string());
    let assign = |month: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("ensemble", c1s.clone()),
            ("ensemble", c2s.clone()),
            ("inspecteur", id.clone()),
            ("mois", month.to_string()),
            ("action", "assigner".to_string()),
        ]
    };
    let post = |f: Vec<(&'static str, String)>| {
        let m = &m;
        async move {
            let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            m.post("/planification", &f).await
        }
    };
    // A month that does not exist: refused in words, nothing planned.
    let manager = SyncEngine::new(&DeviceStore::open(&tmp.path().join("m")).unwrap())
        .login(&server.url(), "responsable", DEMO_PASSWORD)
        .await
        .unwrap()
        .user;
    let before = fingerprint(&server, std::slice::from_ref(&manager));
    let (status, body) = post(assign("2027-13")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("AAAA-MM"), "{body}");
    assert_eq!(fingerprint(&server, std::slice::from_ref(&manager)), before);
    let (status, _) = post(assign("2027-03")).await;
    assert_eq!(status, 303);
    let (_, page) = m.get("/planification").await;
    let mine = &page[page.find("par-inspecteur").unwrap()..];
    let row = &mine[mine.find(&me.display_name).expect("Julie's line")..];
    let row = &row[..row.find("</tr>").unwrap()];
    // Ensembles, en retard, à faire, en cours, faits, planifiés.
    assert_eq!(row.matches("<td class=\"num").count(), 6, "{row}");
    assert!(
        row.ends_with("<td class=\"num\">2</td>"),
        "two planned for Julie: {row}"
    );
    assert_eq!(page.matches("mars 2027").count(), 2, "{page}");
    let (status, _, csv) = m
        .download(&format!("/planification.csv?inspecteur={id}"))
        .await;
    assert_eq!(status, 200);
    let csv = String::from_utf8(csv).unwrap();
    assert_eq!(csv.matches("2027-03").count(), 2, "{csv}");
    assert!(csv.contains(&c1.code) && csv.contains(&c2.code), "{csv}");

    // Julie's device: one sync (reference data, then changes, as the app's
    // sync does) brings both visits; they stay offline.
    SyncEngine::new(&julie).refresh_reference().await.unwrap();
    sync(&julie).await;
    let visits = julie.assignments_of(me.id).unwrap();
    assert_eq!(visits.len(), 2);
    assert!(
        visits
            .iter()
            .all(|v| v.planned.map(|p| p.to_string()) == Some("2027-03".into()))
    );
    julie
        .set_setting("server_url", "http://127.0.0.1:9")
        .unwrap();
    let rows = bilan_mobile::ui::visit_rows(&julie, &julie.cs_settings().unwrap()).unwrap();
    assert_eq!(rows.len(), 2, "listed offline");
    julie.set_setting("server_url", &server.url()).unwrap();

    // Withdrawn from the plan on the page: gone from the device.
    let (status, _) = post(vec![
        ("csrf", csrf.clone()),
        ("ensemble", c2s.clone()),
        ("action", "retirer".to_string()),
    ])
    .await;
    assert_eq!(status, 303);
    SyncEngine::new(&julie).refresh_reference().await.unwrap();
    let visits = julie.assignments_of(me.id).unwrap();
    assert_eq!(
        visits.iter().map(|v| v.complex_id).collect::<Vec<_>>(),
        [c1.id]
    );
    let journal = server.state.service().audit_log(None, 100).unwrap();
    assert_eq!(
        journal
            .iter()
            .filter(|e| e.action == bilan_server::audit::AuditAction::PlanVisits)
            .count(),
        2,
        "each planning audited once"
    );
}

/// A complex inspected twice, both BSIs approved: a new tablet's first
/// sync brings the latest approved one (the next inspection starts from
/// it) and not the older one, which the server keeps; a device that had
/// the older one keeps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_device_pulls_only_the_latest_approved_bsi_of_a_complex() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("server")).await;
    let a = device(&tmp.path().join("a"), &server.url(), "inspecteur1").await;
    let manager = SyncEngine::new(&DeviceStore::open(&tmp.path().join("m")).unwrap())
        .login(&server.url(), "responsable", DEMO_PASSWORD)
        .await
        .unwrap();
    let approve = |id: bilan_shared::ids::InspectionId| {
        let (url, token) = (server.url(), manager.token.clone());
        async move {
            let r = reqwest::Client::new()
                .post(format!("{url}/api/v1/inspections/{id}/review"))
                .bearer_auth(token)
                .json(&serde_json::json!({"status": "approuvee"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 204);
        }
    };
    let complex = first_complex(&a);
    let older = a.start_inspection(complex).unwrap();
    a.rate(older, "A1010", Rating::B).unwrap();
    a.submit(older).unwrap();
    sync(&a).await;
    approve(older).await;
    sync(&a).await;
    let latest = a.start_inspection(complex).unwrap();
    a.rate(latest, "A1010", Rating::C).unwrap();
    a.submit(latest).unwrap();
    sync(&a).await;
    approve(latest).await;
    sync(&a).await;

    let c = device(&tmp.path().join("c"), &server.url(), "inspecteur2").await;
    sync(&c).await;
    assert_eq!(
        c.inspection(latest).unwrap().status,
        InspectionStatus::Approved
    );
    assert!(
        c.inspection(older).is_err(),
        "the superseded BSI is not pulled"
    );
    let next = c.start_inspection(complex).unwrap();
    let previous = c.inspection(next).unwrap().previous.unwrap();
    assert_eq!(previous.inspection_id, latest);
    assert_eq!(previous.components["A1010"].rating, Some(Rating::C));
    // The server keeps the whole history; the first device keeps its copy.
    assert_eq!(
        server_doc(&server, "responsable", older).status,
        InspectionStatus::Approved
    );
    assert!(a.inspection(older).is_ok());
}
