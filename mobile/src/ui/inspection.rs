//! The checklist of one inspection: groups with progress, each component's
//! rating and note (saved at each tap) beside what the last approved BSI
//! said of it, the work that BSI recommended with its status, the site
//! visit, the findings.

use bilan_shared::Catalogue;
use bilan_shared::doc::{SiteVisit, now_ms};
use bilan_shared::domain::Rating;
use bilan_shared::ids::*;
use dioxus::prelude::*;

use super::state::{ReadError, Screen, Ui, services, use_last_good};
use super::strings as t;

#[component]
pub(super) fn InspectionScreen(id: InspectionId) -> Element {
    let svc = services();
    let ui = use_context::<Ui>();
    let _ = (ui.version)();
    let mut group = use_signal(|| "A".to_string());
    let doc = match svc.store.inspection(id) {
        Ok(d) => d,
        Err(e) => return rsx! { p { class: "error", "{e}" } },
    };
    let (complex, complex_error) = use_last_good(svc.store.complex(doc.complex_id).map(|c| c.name));
    let complex = complex.unwrap_or_default();
    let (conflicts, conflicts_error) =
        use_last_good(svc.store.summaries(Some(doc.complex_id)).map(|all| {
            all.into_iter()
                .find(|s| s.id == id)
                .map(|s| s.conflicts)
                .unwrap_or(0)
        }));
    let conflicts = conflicts.unwrap_or(0);
    let (rated, present) = doc.progress();
    let cat = Catalogue::current();
    let current = group();
    let g = cat
        .groups
        .iter()
        .find(|g| g.code == current)
        .unwrap_or(&cat.groups[0]);
    let complex_id = doc.complex_id;
    let tz = (ui.settings)().zone();
    rsx! {
        button { onclick: move |_| ui.go(Screen::Complex(complex_id)), "{t::BACK}" }
        h1 { "{complex}" }
        ReadError { message: complex_error.or(conflicts_error) }
        p { "{doc.status.label_fr()} — {rated}/{present} {t::RATED}" }
        div { class: "row",
            button { id: "add-finding", class: "primary", onclick: move |_| ui.go(Screen::Finding(id, None)), "{t::ADD_FINDING}" }
            button { id: "conflicts", onclick: move |_| ui.go(Screen::Conflicts(id)), "{t::CONFLICTS} " if conflicts > 0 { span { class: "badge", "{conflicts}" } } }
            button { id: "review", onclick: move |_| ui.go(Screen::Review(id)), "{t::REVIEW}" }
        }
        VisitCard { id, visits: doc.visits.clone() }
        div { class: "tabs", role: "tablist",
            for grp in cat.groups.iter() {
                {
                    let code = grp.code.clone();
                    let codes: Vec<&String> = grp.components.iter().map(|c| &c.code).collect();
                    let present_n = codes.iter().filter(|c| doc.components.get(**c).is_none_or(|r| r.present != Some(false))).count();
                    let rated_n = codes.iter().filter(|c| doc.components.get(**c).is_some_and(|r| r.present != Some(false) && r.rating.is_some_and(|x| x != Rating::NotInspected))).count();
                    rsx! { button { class: if current == grp.code { "sel" } else { "" }, onclick: move |_| group.set(code.clone()), "{grp.code} {grp.label} ({rated_n}/{present_n})" } }
                }
            }
        }
        for comp in g.components.iter() {
            ComponentRow { id, code: comp.code.clone(), label: comp.label.clone(), rating: doc.components.get(&comp.code).and_then(|c| c.rating), note: doc.components.get(&comp.code).map(|c| c.note.clone()).unwrap_or_default(),
                previous: previous_line(&doc, &comp.code, &tz) }
        }
        if let Some(p) = doc.previous.clone().filter(|p| !p.works.is_empty()) {
            super::carried::CarriedWorks { id, works: p.works }
        }
        h2 { "{t::FINDINGS}" }
        for f in doc.findings.iter() {
            {
                let fid = f.id;
                let cost: f64 = f.recommendations.iter().map(|r| r.estimated_cost()).sum();
                rsx! { button { class: "list-item", onclick: move |_| ui.go(Screen::Finding(id, Some(fid))),
                    span { class: "grow", strong { "{f.title}" } br {} span { class: "muted", "{f.component} — {f.location} — {f.severity.label_fr()} — {f.photos.len()} photo(s)" } }
                    span { "{t::money(cost)}" }
                } }
            }
        }
    }
}

/// What the last approved BSI said of a component, as its row shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct PreviousLine {
    pub rating: Option<Rating>,
    /// "Dernier BSI (2021-06-14) : D – Mauvais — Membrane fissurée".
    pub text: String,
}

/// The line of `code` from the document's previous BSI, if it said anything.
fn previous_line(
    doc: &bilan_shared::InspectionDoc,
    code: &str,
    tz: &bilan_shared::calendar::TimeZone,
) -> Option<PreviousLine> {
    let p = doc.previous.as_ref()?;
    let c = p.components.get(code)?;
    let said = match (c.present, c.rating) {
        (Some(false), _) => Rating::NotApplicable.label_fr(),
        (_, Some(r)) => r.label_fr(),
        _ => Rating::NotInspected.label_fr(),
    };
    let note = if c.note.is_empty() {
        String::new()
    } else {
        format!(" — {}", c.note)
    };
    Some(PreviousLine {
        rating: c.rating.filter(|_| c.present != Some(false)),
        text: format!(
            "{} ({}) : {said}{note}",
            t::PREVIOUS_BSI,
            t::date(p.date, tz)
        ),
    })
}

/// One component: rating buttons and a note, and what the last approved
/// BSI said of it with a button to keep that rating (the inspector's act:
/// the previous rating is never copied silently). Each tap is saved at once.
#[component]
pub fn ComponentRow(
    id: InspectionId,
    code: String,
    label: String,
    rating: Option<Rating>,
    note: String,
    previous: Option<PreviousLine>,
) -> Element {
    let svc = services();
    let ui = use_context::<Ui>();
    let choices = [
        (Rating::A, "A"),
        (Rating::B, "B"),
        (Rating::C, "C"),
        (Rating::D, "D"),
        (Rating::E, "E"),
        (Rating::NotApplicable, t::NOT_APPLICABLE),
        (Rating::NotInspected, t::NOT_INSPECTED),
    ];
    let store = svc.store.clone();
    let code2 = code.clone();
    rsx! {
        div { class: "card component", id: "comp-{code}",
            div { strong { "{code} " } "{label}" }
            if let Some(p) = previous {
                div { class: "row previous",
                    span { class: "muted grow", id: "previous-{code}", "{p.text}" }
                    if let Some(r) = p.rating.filter(|r| rating != Some(*r)) {
                        {
                            let store = store.clone();
                            let code = code.clone();
                            rsx! { button { id: "keep-{code}", onclick: move |_| ui.changed(store.rate(id, &code, r)), "{t::KEEP_PREVIOUS} {r.code()}" } }
                        }
                    }
                }
            }
            div { class: "row ratings",
                for (r, text) in choices {
                    {
                        let store = store.clone();
                        let code = code.clone();
                        let chosen = rating == Some(r);
                        rsx! { button { id: "rate-{code}-{r.code()}", class: if chosen { "sel" } else { "" }, title: "{r.label_fr()}",
                            "aria-pressed": if chosen { "true" } else { "false" },
                            onclick: move |_| ui.changed(store.rate(id, &code, r)), "{text}" } }
                    }
                }
            }
            input { key: "{note}", placeholder: "{t::NOTE}", initial_value: "{note}", onchange: move |e| ui.changed(svc.store.set_component_note(id, &code2, &e.value())) }
        }
    }
}

/// The site visit: the on-site timer and the visits recorded, which the
/// checklist passes in from the document it already read.
#[component]
fn VisitCard(id: InspectionId, visits: Vec<SiteVisit>) -> Element {
    let svc = services();
    let ui = use_context::<Ui>();
    let _ = (ui.version)();
    let key = format!("visit_started:{id}");
    let (started, started_error) = use_last_good(svc.store.setting(&key));
    let started: Option<i64> = started.flatten().and_then(|s| s.parse().ok());
    let mut travel = use_signal(|| "0".to_string());
    let mut km = use_signal(|| "0".to_string());
    let mut expenses = use_signal(|| "0".to_string());
    let store = svc.store.clone();
    let (user, user_error) = use_last_good(store.user());
    let user = user.flatten();
    rsx! {
        div { class: "card",
            strong { "{t::VISIT}" }
            ReadError { message: started_error.or(user_error) }
            for v in visits.iter() {
                div { class: "muted", "{v.date} — {v.hours_on_site:.2} {t::HOURS_ON_SITE}, {v.travel_hours:.2} h de déplacement, {v.km:.0} km, {t::money(v.expenses)}" }
            }
            match started {
                None => rsx! { button { id: "visit-start", onclick: move |_| ui.changed(store.set_setting(&key, &now_ms().to_string())), "{t::START_ON_SITE}" } },
                Some(since) => rsx! {
                    p { "{t::ON_SITE_SINCE} {t::ago(since, now_ms())}" }
                    div { class: "two",
                        div { label { "{t::TRAVEL_HOURS}" } input { r#type: "number", step: "0.25", initial_value: "{travel}", oninput: move |e| travel.set(e.value()) } }
                        div { label { "{t::KM}" } input { r#type: "number", initial_value: "{km}", oninput: move |e| km.set(e.value()) } }
                        div { label { "{t::EXPENSES}" } input { r#type: "number", step: "0.01", initial_value: "{expenses}", oninput: move |e| expenses.set(e.value()) } }
                    }
                    button { id: "visit-stop", class: "primary", onclick: move |_| {
                        let n = |s: String| bilan_shared::fmt::parse_decimal(&s).unwrap_or(0.0).max(0.0);
                        let visit = SiteVisit {
                            id: VisitId::new(),
                            date: t::date(since, &(ui.settings)().zone()),
                            inspector: user.as_ref().map(|u| u.id).unwrap_or_default(),
                            hours_on_site: ((now_ms() - since) as f64 / 3_600_000.0).max(0.0),
                            travel_hours: n(travel()),
                            km: n(km()),
                            expenses: n(expenses()),
                        };
                        let r = store.add_visit(id, visit).and_then(|_| store.clear_setting(&key));
                        ui.changed(r);
                    }, "{t::STOP_ON_SITE}" }
                },
            }
        }
    }
}
