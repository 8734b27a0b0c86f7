//! One complex: its facts, the inspections of it on this device, and
//! "Commencer une inspection".

use bilan_shared::ids::*;
use dioxus::prelude::*;

use super::state::{ReadError, Screen, Ui, services, use_last_good};
use super::strings as t;

#[component]
pub(super) fn ComplexScreen(id: ComplexId) -> Element {
    let svc = services();
    let ui = use_context::<Ui>();
    let _ = (ui.version)();
    let tz = (ui.settings)().zone();
    let Ok(c) = svc.store.complex(id) else {
        return rsx! { p { class: "error", "Ensemble introuvable." } };
    };
    let (history, history_error) = use_last_good(svc.store.summaries(Some(id)));
    let history = history.unwrap_or_default();
    let store = svc.store.clone();
    rsx! {
        button { onclick: move |_| ui.go(Screen::Territory), "{t::BACK}" }
        h1 { "{c.name}" }
        div { class: "card two",
            div { "{c.address}, {c.city}" }
            div { "{t::DWELLINGS} : {c.dwellings}" }
            div { "{t::YEAR_BUILT} : {c.year_built}" }
            div { "{t::REPLACEMENT_VALUE} : {t::money(c.replacement_value)}" }
        }
        button { id: "start", class: "primary",
            onclick: move |_| match store.start_inspection(id) {
                Ok(new) => { *ui.version.clone().write() += 1; ui.go(Screen::Inspection(new)) }
                Err(e) => ui.changed(Err(e)),
            },
            "{t::START_INSPECTION}"
        }
        h2 { "{t::HISTORY}" }
        ReadError { message: history_error }
        if history.is_empty() { p { class: "muted", "{t::NO_INSPECTION}" } }
        for s in history {
            button { id: "inspection-{s.id}", class: "list-item", onclick: move |_| ui.go(Screen::Inspection(s.id)),
                span { class: "grow", strong { "{t::date(s.created_at, &tz)}" } " — {s.status.label_fr()}" br {}
                    span { class: "muted", "{s.rated}/{s.present} {t::RATED}, {s.findings} constat(s)" } }
                if s.conflicts > 0 { span { class: "badge", title: "{t::CONFLICTS}", "{s.conflicts}" } }
            }
        }
    }
}
