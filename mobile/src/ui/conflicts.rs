//! The conflicts of an inspection: each value with who wrote it and when,
//! "Garder" resolves.

use bilan_shared::doc::now_ms;
use bilan_shared::ids::*;
use dioxus::prelude::*;

use super::state::{ReadError, Screen, Ui, services, use_last_good};
use super::strings as t;

#[component]
pub(super) fn ConflictsScreen(id: InspectionId) -> Element {
    let svc = services();
    let ui = use_context::<Ui>();
    let _ = (ui.version)();
    let (conflicts, conflicts_error) = use_last_good(svc.store.conflicts(id));
    let conflicts = conflicts.unwrap_or_default();
    rsx! {
        button { onclick: move |_| ui.go(Screen::Inspection(id)), "{t::BACK}" }
        h1 { "{t::CONFLICTS}" }
        ReadError { message: conflicts_error }
        if conflicts.is_empty() { p { "{t::NO_CONFLICT}" } } else { p { class: "muted", "{t::CONFLICTS_HELP}" } }
        for c in conflicts {
            div { class: "card conflict",
                strong { "{c.label_fr()}" }
                for v in c.values.clone() {
                    {
                        let store = svc.store.clone();
                        let path = c.path.clone();
                        let shown = match &v.value { serde_json::Value::String(s) => s.clone(), other => other.to_string() };
                        rsx! { div { class: "row",
                            span { class: "grow", strong { "{shown}" } " — {v.user_name}, {t::ago(v.at_ms, now_ms())}" }
                            button { onclick: move |_| ui.changed(store.resolve(id, &path, &v.value_id)), "{t::KEEP}" }
                        } }
                    }
                }
            }
        }
    }
}
