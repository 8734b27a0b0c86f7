//! "Travaux recommandés au dernier BSI": each work the last approved BSI
//! recommended (or carried, still open), with the status the inspector
//! sets (réalisés with year and cost, en cours, reportés, abandonnés),
//! saved at each change.

use bilan_shared::domain::WorkStatus;
use bilan_shared::ids::InspectionId;
use bilan_shared::previous::CarriedWork;
use dioxus::prelude::*;

use super::state::{Ui, services};
use super::strings as t;
use crate::WorkUpdate;

#[component]
pub(super) fn CarriedWorks(id: InspectionId, works: Vec<CarriedWork>) -> Element {
    rsx! {
        h2 { "{t::CARRIED_WORKS}" }
        for w in works {
            CarriedWorkRow { key: "{w.id}", id, work: w.clone() }
        }
    }
}

#[component]
fn CarriedWorkRow(id: InspectionId, work: CarriedWork) -> Element {
    let svc = services();
    let ui = use_context::<Ui>();
    let wid = work.id;
    let mut year = use_signal(|| work.done_year.map(|y| y.to_string()).unwrap_or_default());
    let mut cost = use_signal(|| work.done_cost.map(|c| c.to_string()).unwrap_or_default());
    let current = work.status.map(|s| s.code()).unwrap_or("");
    let store = svc.store.clone();
    let store2 = svc.store.clone();
    let save_done = move |_| {
        let update = WorkUpdate::done(&year(), &cost());
        ui.changed(update.and_then(|u| store2.set_work_status(id, wid, u)));
    };
    rsx! {
        div { class: "card work", id: "work-{wid}",
            div { strong { "{work.work}" } }
            div { class: "muted", "{work.component} — {work.finding} — {work.urgency.label_fr()} — {t::money(work.cost)}" }
            select { id: "work-status-{wid}", "aria-label": "Statut des travaux",
                onchange: move |e| {
                    let status = WorkStatus::from_code(&e.value());
                    ui.changed(store.set_work_status(id, wid, WorkUpdate { status, done_year: None, done_cost: None }));
                },
                option { value: "", selected: current.is_empty(), "{t::WORK_STATUS_UNSET}" }
                for s in WorkStatus::ALL.iter() {
                    option { value: "{s.code()}", selected: current == s.code(), "{s.label_fr()}" }
                }
            }
            if work.status == Some(WorkStatus::Done) {
                div { class: "two",
                    div { label { "{t::DONE_YEAR}" } input { id: "work-year-{wid}", r#type: "number", initial_value: "{year}", oninput: move |e| year.set(e.value()) } }
                    div { label { "{t::DONE_COST}" } input { id: "work-cost-{wid}", r#type: "number", step: "0.01", initial_value: "{cost}", oninput: move |e| cost.set(e.value()) } }
                }
                button { id: "work-save-{wid}", onclick: save_done, "{t::SAVE}" }
            }
        }
    }
}
