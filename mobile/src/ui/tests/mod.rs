//! Component tests: each screen rendered with dioxus-ssr from a real store
//! (temp SQLite), and taps simulated on the VirtualDom.

use std::any::Any;
use std::rc::Rc;
use std::sync::Arc;

use bilan_shared::domain::{Complex, CsSettings, Office, Rating, Severity, Territory};
use bilan_shared::ids::*;
use bilan_shared::protocol::ReferenceResponse;
use dioxus::dioxus_core::{ElementId, Mutation};
use dioxus::prelude::*;

use super::*;
use crate::DeviceStore;

struct Fixture {
    dir: tempfile::TempDir,
    store: Arc<DeviceStore>,
    complexes: Vec<ComplexId>,
}

fn fixture(logged_in: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = DeviceStore::open(dir.path()).unwrap();
    let territory = TerritoryId::new();
    let office = Office {
        id: OfficeId::new(),
        territory_id: territory,
        name: "OH de Trois-Rivières".into(),
        code: "OH-TR".into(),
    };
    let complexes: Vec<Complex> = ["Les Pins", "Le Boisé"]
        .iter()
        .enumerate()
        .map(|(i, n)| Complex {
            id: ComplexId::new(),
            territory_id: territory,
            office_id: office.id,
            code: format!("OH-TR-{i}"),
            name: n.to_string(),
            address: format!("{} rue des Forges", 100 + i),
            city: "Trois-Rivières".into(),
            dwellings: 24,
            year_built: 1975,
            replacement_value: 1_000_000.0,
        })
        .collect();
    if logged_in {
        store
            .sign_in_offline(
                "inspecteur1",
                "Julie Tremblay",
                Territory {
                    id: territory,
                    name: "CS de la Mauricie".into(),
                },
                vec![office],
                complexes.clone(),
            )
            .unwrap();
    }
    Fixture {
        dir,
        store: Arc::new(store),
        complexes: complexes.iter().map(|c| c.id).collect(),
    }
}

fn dom(f: &Fixture, screen: Option<Screen>) -> VirtualDom {
    let mut dom = VirtualDom::new(App).with_root_context(Services {
        store: f.store.clone(),
        default_server: "http://127.0.0.1:8080".into(),
        auto_sync: false,
        wake: Default::default(),
        probe: None,
    });
    if let Some(s) = screen {
        dom = dom.with_root_context(StartScreen(s));
    }
    dom
}

fn render(f: &Fixture, screen: Option<Screen>) -> String {
    let mut d = dom(f, screen);
    d.rebuild_in_place();
    dioxus_ssr::render(&d)
}

#[test]
fn first_launch_shows_the_login_form_in_french_without_sync_bar() {
    let html = render(&fixture(false), None);
    assert!(
        html.contains("Connexion")
            && html.contains("Mot de passe")
            && html.contains("Se connecter")
    );
    assert!(html.contains("http://127.0.0.1:8080"));
    assert!(!html.contains("id=\"syncbar\""));
}

/// An inspection of the first complex whose IVP is 12 % (a 120,000 $ roof
/// on a 1,000,000 $ building).
fn inspection_with_ivp_12(f: &Fixture) -> InspectionId {
    let id = f.store.start_inspection(f.complexes[0]).unwrap();
    f.store.rate(id, "B3010", Rating::D).unwrap();
    let fid = f
        .store
        .add_finding(
            id,
            crate::NewFinding {
                component: "B3010".into(),
                title: "Membrane".into(),
                location: String::new(),
                severity: Severity::Major,
                description: String::new(),
            },
        )
        .unwrap();
    f.store
        .add_recommendation(
            id,
            fid,
            crate::NewRecommendation {
                work: "Réfection".into(),
                urgency: bilan_shared::domain::Urgency::WithinYear,
                quantity: 1.0,
                unit: "u".into(),
                unit_cost: 120_000.0,
            },
        )
        .unwrap();
    id
}

#[test]
fn territory_lists_complexes_by_office_with_last_approved_bsi_condition_and_sync_bar() {
    let f = fixture(true);
    let id = inspection_with_ivp_12(&f);
    let html = render(&f, Some(Screen::Territory));
    assert!(html.contains("CS de la Mauricie") && html.contains("OH de Trois-Rivières"));
    assert!(html.contains("Les Pins") && html.contains("Le Boisé"));
    // In progress, IVP 12 %: no condition yet, C only as a provisional grade.
    assert!(!html.contains("cond cond-C"), "{html}");
    assert!(html.contains("cote provisoire C"), "{html}");
    assert!(html.contains("Dernier BSI approuvé : jamais"));
    assert!(
        html.contains("4 modif. en attente")
            && html.contains("Hors ligne")
            && html.contains("Synchroniser")
    );
    // The view state filters and searches.
    let rows = territory_rows(
        &f.store,
        &f.store.cs_settings().unwrap(),
        "boisé",
        Filter::All,
    )
    .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        territory_rows(
            &f.store,
            &f.store.cs_settings().unwrap(),
            "",
            Filter::InProgress
        )
        .unwrap()
        .len(),
        1
    );
    assert_eq!(
        territory_rows(&f.store, &f.store.cs_settings().unwrap(), "", Filter::Due)
            .unwrap()
            .len(),
        2,
        "an inspection in progress does not take a complex out of the cycle's due list"
    );
    assert_eq!(
        territory_rows(
            &f.store,
            &f.store.cs_settings().unwrap(),
            "",
            Filter::Returned
        )
        .unwrap()
        .len(),
        0
    );
    // Once approved (as the CS's edit arrives by sync), C is the building's
    // condition, with the BSI's date, and it is no longer due.
    f.store
        .edit(id, |d| {
            d.status = bilan_shared::domain::InspectionStatus::Approved;
            Ok(())
        })
        .unwrap();
    let html = render(&f, Some(Screen::Territory));
    assert!(html.contains("cond cond-C"), "{html}");
    assert!(!html.contains("cote provisoire"), "{html}");
    let rows = territory_rows(&f.store, &f.store.cs_settings().unwrap(), "", Filter::All).unwrap();
    let pins = rows
        .iter()
        .find(|r| r.approved.is_some())
        .expect("the approved complex");
    assert_eq!(pins.condition.map(|c| c.code()), Some("C"));
    assert_eq!(pins.provisional, None);
    assert_eq!(
        territory_rows(&f.store, &f.store.cs_settings().unwrap(), "", Filter::Due)
            .unwrap()
            .len(),
        1,
        "only the complex never inspected is due"
    );
}

#[test]
fn complex_screen_shows_facts_history_and_start_button() {
    let f = fixture(true);
    f.store.start_inspection(f.complexes[0]).unwrap();
    let html = render(&f, Some(Screen::Complex(f.complexes[0])));
    assert!(html.contains("Logements : 24") && html.contains("Année de construction : 1975"));
    assert!(html.contains("1\u{202f}000\u{202f}000\u{a0}$"));
    assert!(html.contains("Commencer une inspection") && html.contains("En cours"));
}

#[test]
fn inspection_checklist_shows_groups_with_progress_ratings_and_visit() {
    let f = fixture(true);
    let id = f.store.start_inspection(f.complexes[0]).unwrap();
    f.store.rate(id, "A1010", Rating::B).unwrap();
    let html = render(&f, Some(Screen::Inspection(id)));
    assert!(html.contains("A Infrastructure (1/5)"), "{html}");
    assert!(html.contains("L Logement (0/9)"));
    assert!(html.contains("Fondations") && html.contains("S/O") && html.contains("N/I"));
    assert_eq!(
        pressed_ratings(&html, "A1010"),
        vec!["B"],
        "the chosen rating of the rated component, and only it, is highlighted"
    );
    assert!(
        pressed_ratings(&html, "A1020").is_empty(),
        "an unrated component highlights no rating"
    );
    assert!(html.contains("Arrivée sur place") && html.contains("Ajouter un constat"));
}

#[test]
fn finding_screen_offers_camera_input_and_computes_the_estimate() {
    let f = fixture(true);
    let id = f.store.start_inspection(f.complexes[0]).unwrap();
    let html = render(&f, Some(Screen::Finding(id, None)));
    assert!(html.contains("Désordre observé") && html.contains("Critique (sécurité)"));
    let fid = f
        .store
        .add_finding(
            id,
            crate::NewFinding {
                component: "B2020".into(),
                title: "Vitrage brisé".into(),
                location: "Logement 3".into(),
                severity: Severity::Moderate,
                description: String::new(),
            },
        )
        .unwrap();
    let mut png = Vec::new();
    image::RgbImage::new(64, 48)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    f.store
        .attach_photo(id, fid, &png, "image/png", "Fenêtre")
        .unwrap();
    let html = render(&f, Some(Screen::Finding(id, Some(fid))));
    assert!(
        html.contains("accept=\"image/*\"") && html.contains("capture=\"environment\""),
        "{html}"
    );
    assert!(html.contains("data:image/jpeg;base64,"), "thumbnail shown");
    assert!(html.contains("Coût estimé"));
}

#[test]
fn conflicts_and_review_screens_show_values_authors_and_comments() {
    let f = fixture(true);
    let id = f.store.start_inspection(f.complexes[0]).unwrap();
    let html = render(&f, Some(Screen::Conflicts(id)));
    assert!(html.contains("Aucun conflit."));
    let html = render(&f, Some(Screen::Review(id)));
    assert!(html.contains("Aucun commentaire du CS.") && html.contains("Soumettre pour révision"));
    assert!(
        html.contains("disabled"),
        "incomplete inspections cannot be submitted"
    );
}

/// The ratings shown as chosen (`aria-pressed="true"`) for one component,
/// read from the rendered HTML by the buttons' ids (`rate-{component}-{code}`).
fn pressed_ratings(html: &str, component: &str) -> Vec<String> {
    let prefix = format!("id=\"rate-{component}-");
    html.match_indices(&prefix)
        .filter_map(|(i, _)| {
            let rest = &html[i + prefix.len()..];
            let code = &rest[..rest.find('"')?];
            let tag_end = rest.find('>')?;
            rest[..tag_end]
                .contains("aria-pressed=\"true\"")
                .then(|| code.to_string())
        })
        .collect()
}

/// The element whose `id` attribute is `html_id`, from the mutations that
/// built the screen (ids set from data are dynamic attributes).
fn element_by_id(mutations: &[Mutation], html_id: &str) -> ElementId {
    mutations
        .iter()
        .find_map(|m| match m {
            Mutation::SetAttribute {
                name: "id",
                value: dioxus::dioxus_core::AttributeValue::Text(v),
                id,
                ..
            } if v == html_id => Some(*id),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no element with id {html_id} on the screen"))
}

fn click(dom: &mut VirtualDom, id: ElementId) {
    let data = dioxus::html::PlatformEventData::new(Box::new(
        dioxus::html::SerializedMouseData::default(),
    ));
    let event = dioxus::dioxus_core::Event::new(Rc::new(data) as Rc<dyn Any>, true);
    dom.runtime().handle_event("click", event, id);
}

#[test]
fn tapping_a_rating_saves_it_at_once_and_highlights_it() {
    dioxus::html::set_event_converter(Box::new(dioxus::html::SerializedHtmlEventConverter));
    let f = fixture(true);
    let id = f.store.start_inspection(f.complexes[0]).unwrap();
    let mut d = dom(&f, Some(Screen::Inspection(id)));
    let mutations = d.rebuild_to_vec();
    let d_button = element_by_id(&mutations.edits, "rate-A1010-D");
    click(&mut d, d_button);
    d.render_immediate_to_vec();
    assert_eq!(
        f.store.inspection(id).unwrap().components["A1010"].rating,
        Some(Rating::D),
        "saved before the screen updates"
    );
    assert_eq!(f.store.status().unwrap().pending_changes, 2);
    let html = dioxus_ssr::render(&d);
    assert!(html.contains("Enregistré"));
    assert_eq!(pressed_ratings(&html, "A1010"), vec!["D"]);
}

/// A store read that fails (here the list table is gone, as on a damaged
/// file) shows a French error saying what to do, and the screen keeps the
/// complexes it read before instead of going blank.
#[test]
fn a_failing_store_read_shows_a_french_error_and_keeps_the_last_good_rows() {
    dioxus::html::set_event_converter(Box::new(dioxus::html::SerializedHtmlEventConverter));
    let f = fixture(true);
    let mut d = dom(&f, Some(Screen::Territory));
    let mutations = d.rebuild_to_vec();
    assert!(!dioxus_ssr::render(&d).contains("read-error"));
    rusqlite::Connection::open(f.dir.path().join("device.sqlite"))
        .unwrap()
        .execute_batch("DROP TABLE summaries")
        .unwrap();
    // Re-render through the screen itself: tap the "Tous" filter.
    click(&mut d, element_by_id(&mutations.edits, "filter-0"));
    d.render_immediate_to_vec();
    let html = dioxus_ssr::render(&d);
    assert!(
        html.contains("id=\"read-error\"")
            && html.contains("Lecture impossible sur l&#39;appareil"),
        "{html}"
    );
    assert!(
        html.contains("Les Pins") && html.contains("Le Boisé"),
        "the last rows stay on screen: {html}"
    );
}

/// The territory screen offers "Changer d'utilisateur"; with an edit not yet
/// on the server, tapping it refuses in French, says to sync first, and
/// keeps the session and the edit.
#[test]
fn logout_is_offered_and_refused_while_an_edit_is_pending() {
    dioxus::html::set_event_converter(Box::new(dioxus::html::SerializedHtmlEventConverter));
    let f = fixture(true);
    f.store.start_inspection(f.complexes[0]).unwrap();
    let mut d = dom(&f, Some(Screen::Territory));
    let mutations = d.rebuild_to_vec();
    assert!(dioxus_ssr::render(&d).contains("Changer d&#39;utilisateur"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        click(&mut d, element_by_id(&mutations.edits, LOGOUT_ID));
        tokio::time::timeout(std::time::Duration::from_secs(10), d.wait_for_work())
            .await
            .expect("the logout task ends");
    });
    d.render_immediate_to_vec();
    let html = dioxus_ssr::render(&d);
    assert!(html.contains("synchronisez d&#39;abord"), "{html}");
    assert!(f.store.user().unwrap().is_some(), "still logged in");
    assert_eq!(f.store.status().unwrap().pending_changes, 1);
}

/// The app grades buildings with the CS's thresholds sent with the reference
/// data, as the review pages do: 12 % is C by default, B for a CS whose
/// band B goes up to 15 %.
#[test]
fn the_app_grades_with_the_thresholds_of_the_cs() {
    let f = fixture(true);
    inspection_with_ivp_12(&f);
    refresh(
        &f,
        2,
        CsSettings {
            thresholds: bilan_shared::domain::ConditionThresholds {
                upper_bounds: [0.05, 0.15, 0.20, 0.30],
            },
            ..CsSettings::default()
        },
        vec![],
    );
    let html = render(&f, Some(Screen::Territory));
    assert!(html.contains("cote provisoire B"), "{html}");
    assert!(!html.contains("cote provisoire C"), "{html}");
}

/// A new inspection of a complex with an approved BSI: each component shows
/// what that BSI said, its rating is not copied ("non évalué" until the
/// inspector acts), "Reprendre C" keeps it in one tap, and the work the BSI
/// recommended is listed with a status to set.
#[test]
fn a_new_inspection_shows_the_previous_bsi_and_keeps_a_rating_only_when_tapped() {
    dioxus::html::set_event_converter(Box::new(dioxus::html::SerializedHtmlEventConverter));
    let f = fixture(true);
    let before = inspection_with_ivp_12(&f);
    f.store.rate(before, "A1010", Rating::C).unwrap();
    f.store
        .set_component_note(before, "A1010", "Fissures capillaires")
        .unwrap();
    f.store
        .edit(before, |d| {
            d.status = bilan_shared::domain::InspectionStatus::Approved;
            Ok(())
        })
        .unwrap();
    let id = f.store.start_inspection(f.complexes[0]).unwrap();
    assert_eq!(
        f.store.inspection(id).unwrap().components["A1010"].rating,
        None
    );
    let mut d = dom(&f, Some(Screen::Inspection(id)));
    let mutations = d.rebuild_to_vec();
    let html = dioxus_ssr::render(&d);
    assert!(
        html.contains("C – Satisfaisant — Fissures capillaires"),
        "{html}"
    );
    assert!(pressed_ratings(&html, "A1010").is_empty(), "not rated yet");
    assert!(html.contains("Travaux recommandés au dernier BSI") && html.contains("Réfection"));
    let keep = element_by_id(&mutations.edits, "keep-A1010");
    click(&mut d, keep);
    d.render_immediate_to_vec();
    assert_eq!(
        f.store.inspection(id).unwrap().components["A1010"].rating,
        Some(Rating::C),
        "kept by the inspector's tap"
    );
    assert_eq!(pressed_ratings(&dioxus_ssr::render(&d), "A1010"), vec!["C"]);
}

/// A work's status: done with a year and a cost, or another status without
/// them; unreadable or impossible input is refused and changes nothing.
#[test]
fn a_recommended_works_status_is_saved_and_bad_input_changes_nothing() {
    use bilan_shared::domain::WorkStatus;
    let f = fixture(true);
    let before = inspection_with_ivp_12(&f);
    f.store
        .edit(before, |d| {
            d.status = bilan_shared::domain::InspectionStatus::Approved;
            Ok(())
        })
        .unwrap();
    let id = f.store.start_inspection(f.complexes[0]).unwrap();
    let work = f.store.inspection(id).unwrap().previous.unwrap().works[0].id;
    let done = crate::WorkUpdate::done("2025", "14 200,50").unwrap();
    f.store.set_work_status(id, work, done).unwrap();
    let w = &f.store.inspection(id).unwrap().previous.unwrap().works[0];
    assert_eq!(
        (w.status, w.done_year, w.done_cost),
        (Some(WorkStatus::Done), Some(2025), Some(14_200.5))
    );
    assert!(crate::WorkUpdate::done("20x5", "").is_err());
    let pending = f.store.status().unwrap().pending_changes;
    let refused = [
        crate::WorkUpdate {
            status: Some(WorkStatus::Postponed),
            done_year: Some(2025),
            done_cost: None,
        },
        crate::WorkUpdate {
            status: Some(WorkStatus::Done),
            done_year: Some(25),
            done_cost: None,
        },
        crate::WorkUpdate {
            status: Some(WorkStatus::Done),
            done_year: None,
            done_cost: Some(-1.0),
        },
    ];
    for bad in refused {
        assert!(f.store.set_work_status(id, work, bad).is_err());
    }
    assert!(
        f.store
            .set_work_status(
                id,
                RecommendationId::new(),
                crate::WorkUpdate::done("", "").unwrap()
            )
            .is_err()
    );
    assert_eq!(
        f.store.status().unwrap().pending_changes,
        pending,
        "nothing saved"
    );
    let w = &f.store.inspection(id).unwrap().previous.unwrap().works[0];
    assert_eq!(w.done_cost, Some(14_200.5));
}

/// Reference data as a sync brings it: no new office or complex, the CS's
/// `settings` and the visits planned since.
fn refresh(
    f: &Fixture,
    revision: u64,
    settings: CsSettings,
    assignments: Vec<bilan_shared::planning::Assignment>,
) {
    let territory = f.store.territory().unwrap().unwrap();
    f.store
        .apply_reference(&ReferenceResponse {
            territory,
            offices: vec![],
            complexes: vec![],
            revision,
            catalogue_version: "x".into(),
            settings,
            assignments,
        })
        .unwrap();
}

/// Reference data carrying only planned visits.
fn plan(f: &Fixture, revision: u64, assignments: Vec<bilan_shared::planning::Assignment>) {
    refresh(f, revision, CsSettings::default(), assignments);
}

fn visit(
    complex: ComplexId,
    inspector: Option<UserId>,
    month: Option<&str>,
) -> bilan_shared::planning::Assignment {
    bilan_shared::planning::Assignment {
        complex_id: complex,
        inspector_id: inspector,
        inspector_name: "Julie Tremblay".into(),
        planned: month.map(|m| bilan_shared::planning::Month::parse(m).unwrap()),
        at: 1,
    }
}

/// The app opens on "Mes visites": the visits the CS planned for this
/// inspector, by planned month, each with its cycle state (a complex never
/// approved is overdue); a colleague's visit is not listed, and a visit
/// the CS withdraws leaves the list at the next reference data.
#[test]
fn the_app_opens_on_my_visits_by_planned_month_and_drops_a_withdrawn_one() {
    let f = fixture(true);
    let me = f.store.user().unwrap().unwrap().id;
    let html = render(&f, None);
    assert!(
        html.contains("Mes visites") && html.contains("id=\"no-visits\""),
        "{html}"
    );
    plan(
        &f,
        2,
        vec![
            visit(f.complexes[0], Some(me), Some("2027-05")),
            visit(f.complexes[1], Some(me), Some("2027-02")),
        ],
    );
    let html = render(&f, None);
    let (first, second) = (
        html.find("id=\"visit-OH-TR-1\"").expect("Le Boisé listed"),
        html.find("id=\"visit-OH-TR-0\"").expect("Les Pins listed"),
    );
    assert!(first < second, "February before May: {html}");
    assert!(
        html.contains("Prévue : février 2027") && html.contains("Prévue : mai 2027"),
        "{html}"
    );
    assert_eq!(
        html.matches("En retard").count(),
        2,
        "never approved: overdue: {html}"
    );
    let rows = visit_rows(&f.store, &CsSettings::default()).unwrap();
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|r| r.state == bilan_shared::planning::CycleState::Overdue)
    );
    // Given to a colleague, then withdrawn: neither is mine any more.
    plan(
        &f,
        3,
        vec![
            visit(f.complexes[0], Some(UserId::new()), Some("2027-05")),
            visit(f.complexes[1], None, None),
        ],
    );
    let html = render(&f, None);
    assert!(!html.contains("visit-OH-TR"), "{html}");
    assert!(html.contains("id=\"no-visits\""), "{html}");
}

/// A visit started on the device shows "En cours" instead of overdue.
#[test]
fn a_started_visit_shows_in_progress_instead_of_overdue() {
    let f = fixture(true);
    let me = f.store.user().unwrap().unwrap().id;
    plan(
        &f,
        2,
        vec![visit(f.complexes[0], Some(me), Some("2030-01"))],
    );
    f.store.start_inspection(f.complexes[0]).unwrap();
    let rows = visit_rows(&f.store, &CsSettings::default()).unwrap();
    assert_eq!(
        rows[0].state,
        bilan_shared::planning::CycleState::InProgress
    );
    // Never approved: due now, so no planned month is "late" against a
    // due date; the state says it.
    assert!(!rows[0].late);
    let html = render(&f, None);
    assert!(
        html.contains("En cours") && html.contains("janvier 2030"),
        "{html}"
    );
}

/// The sync bar's live part: the stage in French, both bars at their
/// share, the speed and the time left; no photo bar while changes travel.
#[test]
fn the_sync_progress_shows_the_photo_k_of_n_both_bars_speed_and_time_left() {
    use crate::progress::{Progress, Stage};
    let render_progress = |progress: Progress| {
        let mut d = VirtualDom::new_with_props(
            sync_bar::SyncProgressView,
            sync_bar::SyncProgressViewProps { progress },
        );
        d.rebuild_in_place();
        dioxus_ssr::render(&d)
    };
    let html = render_progress(Progress {
        stage: Stage::Photos { index: 2, count: 3 },
        photo: (250, 1000),
        queue: (1500, 3000),
        bytes: 1600,
        bytes_per_sec: Some(125_000.0),
        left: Some(std::time::Duration::from_secs(65)),
    });
    assert!(html.contains("Photo 2 sur 3"), "{html}");
    assert!(
        html.contains(r#"id="queue-progress" max="1000" value="500""#),
        "{html}"
    );
    assert!(
        html.contains(r#"id="photo-progress" max="1000" value="250""#),
        "{html}"
    );
    assert!(html.contains("125 ko/s"), "{html}");
    assert!(html.contains("encore 1 min 5 s"), "{html}");
    let html = render_progress(Progress {
        stage: Stage::Sending { round: 1 },
        bytes_per_sec: Some(2_400_000.0),
        ..Default::default()
    });
    assert!(html.contains("Envoi des modifications"), "{html}");
    assert!(html.contains("2,4 Mo/s"), "{html}");
    assert!(!html.contains("photo-progress"), "{html}");
}

mod annotate;
