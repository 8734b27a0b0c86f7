//! The CS review pages over a real server: login with a session cookie, CSRF
//! on every form, territory and office scoping, review decisions reaching the
//! inspector's device.

use bilan_e2e::{Browser, TestServer, device};
use bilan_mobile::{NewFinding, NewRecommendation, SyncEngine};
use bilan_shared::domain::{InspectionStatus, Rating, Severity, Urgency};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manager_reviews_a_synced_inspection_in_the_browser_and_the_device_gets_the_comment() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("server")).await;
    let a = device(&tmp.path().join("a"), &server.url(), "inspecteur1").await;
    let b = device(&tmp.path().join("b"), &server.url(), "inspecteur2").await;
    let tr = a
        .complexes()
        .unwrap()
        .into_iter()
        .find(|c| c.code.starts_with("OH-TR"))
        .unwrap();
    let sh = a
        .complexes()
        .unwrap()
        .into_iter()
        .find(|c| c.code.starts_with("OMH-SH"))
        .unwrap();
    let id = a.start_inspection(tr.id).unwrap();
    let other = a.start_inspection(sh.id).unwrap();
    let fid = a
        .add_finding(
            id,
            NewFinding {
                component: "B3010".into(),
                title: "Membrane fissurée".into(),
                location: "Toit".into(),
                severity: Severity::Major,
                description: String::new(),
            },
        )
        .unwrap();
    a.add_recommendation(
        id,
        fid,
        NewRecommendation {
            work: "Réfection de la toiture".into(),
            urgency: Urgency::WithinYear,
            quantity: 100.0,
            unit: "m²".into(),
            unit_cost: 150.0,
        },
    )
    .unwrap();
    SyncEngine::new(&a).sync().await.unwrap();
    SyncEngine::new(&b).sync().await.unwrap();
    a.rate(id, "B3010", Rating::D).unwrap();
    b.rate(id, "B3010", Rating::C).unwrap();
    SyncEngine::new(&a).sync().await.unwrap();
    SyncEngine::new(&b).sync().await.unwrap();

    // Not signed in: redirected to the login page.
    let anon = bilan_e2e::http_without_redirects();
    let r = anon
        .get(format!("{}/inspections", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = anon
        .post(format!("{}/connexion", server.url()))
        .form(&[("username", "responsable"), ("password", "faux")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("mot de passe incorrect"));

    let m = Browser::login(&server.url(), "responsable").await;
    let (st, home) = m.get("/").await;
    assert_eq!(st, 200);
    assert!(
        home.contains("Office d'habitation de Trois-Rivières") && home.contains("<svg"),
        "overview with chart"
    );
    let (_, list) = m.get("/inspections?conflicts=oui").await;
    assert!(
        list.contains("Inspections (1)") && list.contains(&id.to_string()),
        "conflict filter"
    );
    let (_, list) = m
        .get(&format!("/inspections?office={}", tr.office_id))
        .await;
    assert!(
        list.contains(&id.to_string()) && !list.contains(&other.to_string()),
        "office filter"
    );
    let (st, detail) = m.get(&format!("/inspections/{id}")).await;
    assert_eq!(st, 200);
    assert!(
        detail.contains("Membrane fissurée") && detail.contains("15\u{202f}000\u{a0}$"),
        "findings and cost"
    );
    assert!(
        detail.contains("Conflits (1)")
            && detail.contains("Julie Tremblay")
            && detail.contains("Marc Gagnon")
    );
    let csrf = Browser::csrf(&detail);

    // A form without the CSRF token changes nothing.
    let (st, _) = m
        .post(
            &format!("/inspections/{id}/revision"),
            &[("csrf", "00"), ("status", "approuvee")],
        )
        .await;
    assert_eq!(st, 403);
    // Resolve the conflict with Marc's value, then return with a comment.
    let i = detail.find("name=\"value_id\" value=\"").unwrap() + 23;
    let value_id = &detail[i..detail[i..].find('"').unwrap() + i];
    let (st, _) = m
        .post(
            &format!("/inspections/{id}/conflit"),
            &[
                ("csrf", &csrf),
                ("path", "components/B3010/rating"),
                ("value_id", value_id),
            ],
        )
        .await;
    assert_eq!(st, 303);
    let (st, _) = m
        .post(
            &format!("/inspections/{id}/revision"),
            &[
                ("csrf", &csrf),
                ("status", "retournee"),
                ("comment", "Ajoutez une photo du toit."),
            ],
        )
        .await;
    assert_eq!(st, 303);
    let (_, detail) = m.get(&format!("/inspections/{id}")).await;
    assert!(!detail.contains("Conflits (") && detail.contains("Retournée par le CS"));

    SyncEngine::new(&a).sync().await.unwrap();
    let d = a.inspection(id).unwrap();
    assert_eq!(d.status, InspectionStatus::Returned);
    assert_eq!(
        d.review.comments.last().unwrap().text,
        "Ajoutez une photo du toit."
    );
    assert!(a.conflicts(id).unwrap().is_empty());

    // Office reader: their office only, whatever URL they type; no review forms.
    let reader = Browser::login(&server.url(), "lecteur-tr").await;
    let (st, own) = reader.get(&format!("/inspections/{id}")).await;
    assert_eq!(st, 200);
    assert!(!own.contains("/revision"), "read-only");
    let (st, _) = reader.get(&format!("/inspections/{other}")).await;
    assert_eq!(st, 403);
    let (_, list) = reader.get("/inspections").await;
    assert!(!list.contains(&other.to_string()));
    let csrf = Browser::csrf(&own);
    let (st, _) = reader
        .post(
            &format!("/inspections/{id}/revision"),
            &[("csrf", &csrf), ("status", "approuvee")],
        )
        .await;
    assert_eq!(st, 403, "readers cannot review");

    // Reports: works plan, activity statement and BSI progress, checked against the data.
    a.add_visit(
        id,
        bilan_shared::doc::SiteVisit {
            id: bilan_shared::ids::VisitId::new(),
            date: "2026-06-01".into(),
            inspector: a.user().unwrap().unwrap().id,
            hours_on_site: 2.5,
            travel_hours: 1.0,
            km: 80.0,
            expenses: 20.0,
        },
    )
    .unwrap();
    SyncEngine::new(&a).sync().await.unwrap();
    let (st, plan) = m.get("/plan").await;
    assert_eq!(st, 200);
    assert!(plan.contains("Réfection de la toiture") && plan.contains("<svg"));
    let (_, csv) = m.get("/plan.csv").await;
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(
        lines[0],
        "organisme;ensemble;annee;travaux;urgence;cout_estime"
    );
    assert_eq!(lines.len(), 2);
    assert!(lines[1].ends_with(";15000,00"), "{}", lines[1]);
    let (_, csv) = m.get("/releve.csv?from=2026-01-01&to=2026-12-31").await;
    let row: Vec<&str> = csv.lines().nth(1).unwrap().split(';').collect();
    // 2.5 h × 75 + 1 h × 45 + (80 km × 0.55 + 20) + 10 % of the fees.
    assert_eq!(
        &row[1..],
        [
            "1", "2,50", "1,00", "80,00", "20,00", "187,50", "45,00", "64,00", "23,25", "319,75"
        ]
    );
    // Budget envelopes (Parametres, a CSV): the plan holds each year against
    // its office's envelope and marks the year over it; a bad line saves
    // nothing.
    let year = lines[1].split(';').nth(2).unwrap().to_string();
    let (_, html) = m.get("/parametres").await;
    let csrf = Browser::csrf(&html);
    let tight = format!("organisme;annee;montant\nOH-TR;{year};10 000,00\n");
    let (st, page) = m
        .post("/parametres/budgets", &[("csrf", &csrf), ("csv", &tight)])
        .await;
    assert_eq!(st, 200, "{page}");
    assert!(page.contains("1 enveloppe(s) enregistrée(s)."), "{page}");
    let (st, page) = m
        .post(
            "/parametres/budgets",
            &[
                ("csrf", &csrf),
                ("csv", "organisme;annee;montant\nOH-XX;2027;5\n"),
            ],
        )
        .await;
    assert_eq!(st, 400);
    assert!(
        page.contains("Rien n'a été enregistré") && page.contains("OH-XX"),
        "{page}"
    );
    let (_, plan) = m.get("/plan").await;
    let totals = &plan[plan.find("id=\"totaux\"").unwrap()..];
    assert!(
        totals.contains("enveloppe 10\u{202f}000\u{a0}$") && totals.contains("dépassement"),
        "15 000 $ of work against 10 000 $: {totals}"
    );
    let (st, _) = m
        .post(
            "/parametres/budgets",
            &[
                ("csrf", &csrf),
                ("csv", &tight.replace("10 000,00", "20 000")),
            ],
        )
        .await;
    assert_eq!(st, 200);
    let (_, plan) = m.get("/plan").await;
    let totals = &plan[plan.find("id=\"totaux\"").unwrap()..];
    assert!(
        totals.contains("enveloppe 20\u{202f}000\u{a0}$") && !totals.contains("dépassement"),
        "{totals}"
    );

    // The manager moves the roof work two years later: a review edit,
    // audited, that reaches the device; a year out of range changes nothing.
    let work = a.inspection(id).unwrap().findings[0].recommendations[0].id;
    let later = (year.parse::<i64>().unwrap() + 2).to_string();
    let (_, plan) = m.get("/plan").await;
    let csrf = Browser::csrf(&plan);
    let move_to = |y: &str| -> Vec<(&'static str, String)> {
        vec![
            ("csrf", csrf.clone()),
            ("inspection", id.to_string()),
            ("travaux", work.to_string()),
            ("annee", y.to_string()),
        ]
    };
    let browser = &m;
    let post = |v: Vec<(&'static str, String)>| async move {
        let form: Vec<(&str, &str)> = v.iter().map(|(k, v)| (*k, v.as_str())).collect();
        browser.post("/plan/deplacer", &form).await.0
    };
    assert_eq!(post(move_to("1850")).await, 400);
    assert_eq!(post(move_to(&later)).await, 303);
    let (_, plan) = m.get("/plan").await;
    let works = &plan[plan.find("id=\"travaux\"").unwrap()..];
    assert!(
        works.contains(&format!("value=\"{later}\"")) && works.contains("déplacé par le CS"),
        "{works}"
    );
    let totals = &plan[plan.find("id=\"totaux\"").unwrap()..plan.find("id=\"travaux\"").unwrap()];
    assert!(
        totals.contains(&format!("<th class=\"num\">{later}</th>")),
        "{totals}"
    );
    SyncEngine::new(&a).sync().await.unwrap();
    assert_eq!(
        a.inspection(id).unwrap().findings[0].recommendations[0].planned_year,
        Some(later.parse().unwrap()),
        "the move reaches the device"
    );
    let (_, audit) = m.get("/admin").await;
    assert!(
        audit.contains("Travaux déplacés à une autre année"),
        "audited"
    );

    // The same tables as Excel workbooks, read back: French headers, money
    // as numbers, a total row of SUM formulas whose values are the sums.
    let plan = workbook(&m, "/plan.xlsx", "Plan de travaux").await;
    assert_eq!(plan.text(0, 0), "Organisme");
    assert_eq!(plan.text(0, 5), "Coût estimé");
    assert_eq!(plan.number(1, 5), 15_000.0);
    assert_eq!(plan.text(2, 0), "Total");
    assert_eq!(
        (plan.formula(2, 5), plan.number(2, 5)),
        ("SUM(F2:F2)".into(), 15_000.0)
    );
    let releve = workbook(
        &m,
        "/releve.xlsx?from=2026-01-01&to=2026-12-31",
        "Relevé des activités",
    )
    .await;
    assert_eq!(
        (releve.text(0, 2), releve.text(0, 10)),
        ("Heures de service".into(), "Total".into())
    );
    assert_eq!((releve.number(1, 2), releve.number(1, 10)), (2.5, 319.75));
    assert_eq!(releve.formula(2, 10), "SUM(K2:K2)");
    assert_eq!(releve.number(2, 10), 319.75);

    let (_, html) = m.get("/parametres").await;
    let (st, _) = m
        .post(
            "/parametres",
            &[
                ("csrf", &Browser::csrf(&html)),
                ("hourly", "80"),
                ("travel_hourly", "45"),
                ("per_km", "0,55"),
                ("compensation", "0,10"),
            ],
        )
        .await;
    assert_eq!(st, 200);
    let (_, csv) = m.get("/releve.csv?from=2026-01-01&to=2026-12-31").await;
    assert!(
        csv.lines().nth(1).unwrap().contains(";200,00;"),
        "rates come from the settings"
    );
    // The IVP bands are settings too: with tiny thresholds this inspection's
    // building turns E on its page and in the list; a bad order is refused.
    let (_, before) = m.get(&format!("/inspections/{id}")).await;
    assert!(before.contains("provisoire"), "few components rated");
    assert!(!before.contains("cond cond-E"), "{before}");
    let (_, html) = m.get("/parametres").await;
    let seuils = |a: &'static str, d: &'static str| {
        [
            ("hourly", "80"),
            ("travel_hourly", "45"),
            ("per_km", "0,55"),
            ("compensation", "0,10"),
            ("seuil_a", a),
            ("seuil_b", "0,002"),
            ("seuil_c", "0,003"),
            ("seuil_d", d),
        ]
    };
    let csrf_settings = Browser::csrf(&html);
    let with_csrf = |f: [(&'static str, &'static str); 8]| {
        let mut v = vec![("csrf", csrf_settings.as_str())];
        v.extend(f);
        v
    };
    let (st, _) = m
        .post("/parametres", &with_csrf(seuils("0,5", "0,004")))
        .await;
    assert_eq!(st, 400, "thresholds must increase");
    let (st, _) = m
        .post("/parametres", &with_csrf(seuils("0,001", "0,004")))
        .await;
    assert_eq!(st, 200);
    let (_, after) = m.get(&format!("/inspections/{id}")).await;
    assert!(
        after.contains("cond cond-E"),
        "condition from the CS thresholds"
    );
    let (_, list) = m.get("/inspections?condition=E").await;
    assert!(list.contains(&id.to_string()), "list filter uses them too");
    let (_, csv) = m.get("/avancement.csv").await;
    let tr_line = csv
        .lines()
        .find(|l| l.starts_with("Office d'habitation de Trois-Rivières"))
        .unwrap();
    assert_eq!(tr_line, "Office d'habitation de Trois-Rivières;8;1;0");
    let progress = workbook(&m, "/avancement.xlsx", "Avancement des BSI").await;
    let offices = progress.rows() - 2;
    let complexes: f64 = (1..=offices).map(|r| progress.number(r, 1)).sum();
    assert!(
        offices >= 2 && complexes >= 8.0,
        "{offices} offices, {complexes}"
    );
    assert_eq!(progress.text(offices + 1, 0), "Total");
    assert_eq!(progress.number(offices + 1, 1), complexes);
    assert_eq!(
        progress.formula(offices + 1, 1),
        format!("SUM(B2:B{})", offices + 1)
    );
    // The planning as a workbook: a line per complex of the territory, the
    // count of visits planned after their cycle's end totalled by formula.
    let planning = workbook(&m, "/planification.xlsx", "Planification").await;
    assert_eq!(
        (planning.text(0, 0), planning.text(0, 8)),
        ("Organisme".into(), "Mois prévu".into())
    );
    let lines = planning.rows() - 2;
    assert_eq!(lines, 20, "every complex of the territory");
    assert_eq!(planning.text(lines + 1, 0), "Total");
    assert_eq!(
        planning.formula(lines + 1, 9),
        format!("SUM(J2:J{})", lines + 1)
    );
    let (st, _) = reader
        .post(
            "/parametres",
            &[
                ("csrf", &csrf),
                ("hourly", "1"),
                ("travel_hourly", "1"),
                ("per_km", "1"),
                ("compensation", "0"),
            ],
        )
        .await;
    assert_eq!(st, 403, "readers cannot change the rates");

    // Administration: accounts, session revocation, CSV import with a preview.
    let (st, admin) = m.get("/admin").await;
    assert_eq!(st, 200);
    assert!(admin.contains("inspecteur1") && admin.contains("Conseil de l'OH de Trois-Rivières"));
    let csrf = Browser::csrf(&admin);
    let (_, page) = m
        .post(
            "/admin/utilisateurs",
            &[
                ("csrf", &csrf),
                ("username", "inspecteur3"),
                ("name", "Luc Côté"),
                ("role", "inspecteur"),
                ("office", ""),
                ("password", "motdepasse3"),
            ],
        )
        .await;
    assert!(page.contains("Utilisateur « inspecteur3 » créé."), "{page}");
    let (_, page) = m
        .post(
            "/admin/revoquer",
            &[("csrf", &csrf), ("username", "inspecteur1")],
        )
        .await;
    assert!(page.contains("session(s) de « inspecteur1 » révoquée(s)"));
    assert!(
        SyncEngine::new(&a).sync().await.is_err(),
        "the revoked device must log in again"
    );
    let bad = "code,nom,organisme,adresse,ville,logements,annee_construction,valeur_remplacement\n\
               N1,Neuf,OH-TR,1 rue A,Trois-Rivières,12,1990,2000000\n\
               N2,Deux,OH-XX,2 rue B,Trois-Rivières,douze,1990,2000000\n";
    let (_, page) = m
        .post(
            "/admin/import",
            &[("csrf", &csrf), ("kind", "ensembles"), ("csv", bad)],
        )
        .await;
    assert!(
        page.contains("1 ligne(s) en erreur")
            && page.contains("OH-XX")
            && page.contains("<td>3</td>"),
        "{page}"
    );
    let good = "code,nom,organisme,adresse,ville,logements,annee_construction,valeur_remplacement\n\
                N1,Les Neufs,OH-TR,1 rue A,Trois-Rivières,12,1990,2000000\n";
    let (_, page) = m
        .post(
            "/admin/import",
            &[("csrf", &csrf), ("kind", "ensembles"), ("csv", good)],
        )
        .await;
    assert!(page.contains("Aperçu : 1 ligne(s) valides") && page.contains("Les Neufs"));
    let (_, home) = m.get("/").await;
    assert!(
        home.contains("<td class=\"num\">8</td>"),
        "nothing written before confirmation"
    );
    let (_, page) = m
        .post(
            "/admin/import",
            &[
                ("csrf", &csrf),
                ("kind", "ensembles"),
                ("csv", good),
                ("confirm", "1"),
            ],
        )
        .await;
    assert!(page.contains("1 ligne(s) importée(s)."));
    // The journal lists each decision and administrative action, newest first.
    let journal = &page[page.find("Journal des actions").expect("journal")..];
    let order: Vec<usize> = [
        "Import d'ensembles",
        "Sessions révoquées",
        "Utilisateur créé",
        "Révision d'une inspection",
        "Conflit résolu",
    ]
    .iter()
    .map(|label| {
        journal
            .find(label)
            .unwrap_or_else(|| panic!("{label}: {journal}"))
    })
    .collect();
    assert!(order.is_sorted(), "newest first: {order:?}");
    assert!(journal.contains("Ajoutez une photo du toit.") && journal.contains("inspecteur3"));
    assert_eq!(
        journal.matches("Import d'ensembles").count(),
        1,
        "previews are not logged"
    );
    let (_, home) = m.get("/").await;
    assert!(
        home.contains("<td class=\"num\">9</td>"),
        "the new complex counts"
    );
    let (st, _) = reader.get("/admin").await;
    assert_eq!(st, 403);

    // Logging out revokes the session.
    let (st, _) = m
        .post(
            "/deconnexion",
            &[("csrf", &Browser::csrf(&m.get("/").await.1))],
        )
        .await;
    assert_eq!(st, 303);
    let (st, _) = m.get("/").await;
    assert_eq!(st, 303);
}

/// Stored CS settings that no longer decode: the pages go on with the
/// defaults, and the manager sees a notice on the overview and on the
/// settings page telling what to do; saving the form clears it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_cs_settings_are_shown_to_the_manager_until_saved_again() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("server")).await;
    let d = device(&tmp.path().join("d"), &server.url(), "inspecteur1").await;
    let territory = d.user().unwrap().unwrap().territory_id.unwrap();
    bilan_e2e::backend::execute_sql(
        &server.state.0.config,
        &format!(
            "INSERT INTO meta (key, value) VALUES ('rates:{territory}', '{{\"hourly\": \"beaucoup\"}}')
             ON CONFLICT(key) DO UPDATE SET value = excluded.value"
        ),
    );
    let b = Browser::login(&server.url(), "responsable").await;
    for page in ["/", "/parametres"] {
        let (status, html) = b.get(page).await;
        assert_eq!(status, 200, "{page}");
        assert!(
            html.contains("id=\"parametres-illisibles\"")
                && html.contains("paramètres enregistrés du CS sont illisibles"),
            "{page} shows the notice: {html}"
        );
    }
    let (_, form) = b.get("/parametres").await;
    let csrf = Browser::csrf(&form);
    let (status, _) = b
        .post(
            "/parametres",
            &[
                ("csrf", csrf.as_str()),
                ("hourly", "80"),
                ("travel_hourly", "45"),
                ("per_km", "0,55"),
                ("compensation", "0,1"),
            ],
        )
        .await;
    assert_eq!(status, 200);
    let (_, html) = b.get("/").await;
    assert!(
        !html.contains("parametres-illisibles"),
        "saved again: no notice"
    );
}

/// The CS's time zone is a setting: an unknown name is refused in French
/// and changes nothing; a valid one reaches the devices with the reference
/// data, with the thresholds, so the app dates and grades as the pages do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cs_time_zone_and_thresholds_are_checked_and_reach_the_devices() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("server")).await;
    let d = device(&tmp.path().join("d"), &server.url(), "inspecteur1").await;
    assert_eq!(d.cs_settings().unwrap().time_zone, "America/Montreal");
    let b = Browser::login(&server.url(), "responsable").await;
    let (_, form) = b.get("/parametres").await;
    assert!(
        form.contains("name=\"time_zone\" value=\"America/Montreal\""),
        "{form}"
    );
    let csrf = Browser::csrf(&form);
    let form = |zone: &'static str| {
        [
            ("csrf", csrf.clone()),
            ("hourly", "75".into()),
            ("travel_hourly", "45".into()),
            ("per_km", "0,55".into()),
            ("compensation", "0,1".into()),
            ("seuil_a", "5".into()),
            ("seuil_b", "15".into()),
            ("seuil_c", "20".into()),
            ("seuil_d", "30".into()),
            ("time_zone", zone.to_string()),
        ]
    };
    let post = |zone: &'static str| {
        let fields = form(zone);
        let b = &b;
        async move {
            let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            b.post("/parametres", &refs).await
        }
    };
    let (status, html) = post("Mars/Olympus").await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("fuseau horaire inconnu"), "{html}");
    let (status, _) = post("America/Halifax").await;
    assert_eq!(status, 200);
    SyncEngine::new(&d).refresh_reference().await.unwrap();
    let settings = d.cs_settings().unwrap();
    assert_eq!(settings.time_zone, "America/Halifax");
    assert_eq!(settings.thresholds.upper_bounds[1], 0.15);
}

/// The photo size the CS chooses (largest side, JPEG quality, keep the
/// originals) is on the settings page, checked, and reaches the devices
/// with the reference data; out of bounds it changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_photo_size_setting_is_checked_and_reaches_the_devices() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("server")).await;
    let d = device(&tmp.path().join("d"), &server.url(), "inspecteur1").await;
    assert_eq!(d.cs_settings().unwrap().photos.max_px, 2560, "the default");
    let b = Browser::login(&server.url(), "responsable").await;
    let (_, form) = b.get("/parametres").await;
    assert!(
        form.contains("name=\"photo_max_px\" inputmode=\"numeric\" value=\"2560\""),
        "{form}"
    );
    let csrf = Browser::csrf(&form);
    let post = |px: &'static str, keep: bool| {
        let b = &b;
        let csrf = csrf.clone();
        async move {
            let mut f = vec![
                ("csrf", csrf.as_str()),
                ("hourly", "75"),
                ("travel_hourly", "45"),
                ("per_km", "0,55"),
                ("compensation", "0,1"),
                ("photo_max_px", px),
                ("photo_quality", "80"),
            ];
            if keep {
                f.push(("keep_originals", "1"));
            }
            b.post("/parametres", &f).await
        }
    };
    let (status, html) = post("100", true).await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("taille des photos invalide"), "{html}");
    SyncEngine::new(&d).refresh_reference().await.unwrap();
    assert_eq!(
        d.cs_settings().unwrap().photos.max_px,
        2560,
        "nothing changed"
    );
    let (status, _) = post("1600", true).await;
    assert_eq!(status, 200);
    SyncEngine::new(&d).refresh_reference().await.unwrap();
    let photos = d.cs_settings().unwrap().photos;
    assert_eq!(
        (photos.max_px, photos.quality, photos.keep_originals),
        (1600, 80, true)
    );
    let (status, _) = post("1600", false).await;
    assert_eq!(status, 200);
    SyncEngine::new(&d).refresh_reference().await.unwrap();
    assert!(!d.cs_settings().unwrap().photos.keep_originals, "unchecked");
}

/// Behind a reverse proxy that ends TLS (it says so with
/// `X-Forwarded-Proto: https`), the session cookie is `Secure`; over plain
/// HTTP to this machine it cannot be, or the browser would drop it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_is_secure_when_the_browser_came_over_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let server =
        TestServer::start_with(&tmp.path().join("server"), |c| c.behind_proxy = true).await;
    let http = bilan_e2e::http_without_redirects();
    for (proto, secure) in [(Some("https"), true), (None, false)] {
        let mut req = http.post(format!("{}/connexion", server.url())).form(&[
            ("username", "responsable"),
            ("password", bilan_e2e::DEMO_PASSWORD),
        ]);
        if let Some(p) = proto {
            req = req.header("x-forwarded-proto", p);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 303);
        let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
        assert_eq!(cookie.contains("; Secure"), secure, "{proto:?}: {cookie}");
    }
}

/// A downloaded workbook's first sheet, values and formulas.
struct Sheet {
    values: calamine::Range<calamine::Data>,
    formulas: calamine::Range<String>,
}

impl Sheet {
    fn rows(&self) -> usize {
        self.values.get_size().0
    }
    fn text(&self, row: usize, col: usize) -> String {
        match self.values.get((row, col)) {
            Some(calamine::Data::String(s)) => s.clone(),
            other => panic!("text expected at ({row}, {col}): {other:?}"),
        }
    }
    fn number(&self, row: usize, col: usize) -> f64 {
        match self.values.get((row, col)) {
            Some(calamine::Data::Float(n)) => *n,
            Some(calamine::Data::Int(n)) => *n as f64,
            other => panic!("number expected at ({row}, {col}): {other:?}"),
        }
    }
    fn formula(&self, row: usize, col: usize) -> String {
        let (r0, c0) = self.formulas.start().expect("formulas");
        self.formulas
            .get((row - r0 as usize, col - c0 as usize))
            .cloned()
            .unwrap_or_default()
    }
}

/// Downloads `path` as the manager and reads its sheet `name` back.
async fn workbook(m: &Browser, path: &str, name: &str) -> Sheet {
    use calamine::Reader;
    let (status, kind, bytes) = m.download(path).await;
    assert_eq!(status, 200, "{path}");
    assert_eq!(
        kind, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "{path}"
    );
    let mut book: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).expect("an .xlsx workbook");
    Sheet {
        values: book.worksheet_range(name).expect("the sheet"),
        formulas: book.worksheet_formula(name).expect("its formulas"),
    }
}
