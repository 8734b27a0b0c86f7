//! The CS's review of an inspection: status, comments, and "Soumettre pour
//! révision" once every present component is rated.

use bilan_shared::domain::InspectionStatus;
use bilan_shared::ids::*;
use dioxus::prelude::*;

use super::state::{Screen, Ui, services};
use super::strings as t;

#[component]
pub(super) fn ReviewScreen(id: InspectionId) -> Element {
    let svc = services();
    let ui = use_context::<Ui>();
    let _ = (ui.version)();
    let tz = (ui.settings)().zone();
    let doc = match svc.store.inspection(id) {
        Ok(d) => d,
        Err(e) => return rsx! { p { class: "error", "{e}" } },
    };
    let (rated, present) = doc.progress();
    let complete = rated == present;
    let store = svc.store.clone();
    rsx! {
        button { onclick: move |_| ui.go(Screen::Inspection(id)), "{t::BACK}" }
        h1 { "{t::REVIEW}" }
        p { strong { "{doc.status.label_fr()}" } }
        if doc.review.comments.is_empty() { p { class: "muted", "{t::NO_COMMENT}" } }
        for c in doc.review.comments.iter() {
            div { class: "card comment", strong { "{c.author_name}" } span { class: "muted", " — {t::date(c.at, &tz)}" } p { "{c.text}" } }
        }
        if matches!(doc.status, InspectionStatus::Submitted) {
            p { class: "flash", "{t::SUBMITTED}" }
        } else if !matches!(doc.status, InspectionStatus::Approved) {
            button { id: "submit", class: "primary", disabled: !complete, onclick: move |_| ui.changed(store.submit(id)), "{t::SUBMIT}" }
            if !complete { p { class: "muted", "{t::INCOMPLETE} ({rated}/{present})" } }
        }
    }
}
