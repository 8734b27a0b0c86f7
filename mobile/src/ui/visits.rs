//! "Mes visites", the screen the app opens on: the complexes the CS planned
//! for this inspector, by planned month, each with where it stands in the
//! five-year cycle (overdue, due this year, in progress, done) from what
//! the device holds, offline. The CS's changes arrive with the reference
//! data at each sync.

use bilan_shared::calendar;
use bilan_shared::doc::now_ms;
use bilan_shared::domain::CsSettings;
use bilan_shared::planning::{self, Assignment, CycleState};
use dioxus::prelude::*;

use super::state::{ReadError, Screen, Ui, services, use_last_good};
use super::strings as t;
use super::territory::{ComplexRow, Filter, condition_badge, territory_rows};
use crate::DeviceStore;

/// One planned visit, computed from the store.
#[derive(Clone, Debug, PartialEq)]
pub struct VisitRow {
    pub assignment: Assignment,
    pub row: ComplexRow,
    pub state: CycleState,
    /// When the complex's next BSI is due (none: never approved, due now).
    pub due: Option<calendar::Date>,
    /// Planned after the cycle's end.
    pub late: bool,
}

/// The signed-in inspector's planned visits, by planned month (those
/// without a month last); none before a login.
pub fn visit_rows(store: &DeviceStore, settings: &CsSettings) -> crate::Result<Vec<VisitRow>> {
    let Some(me) = store.user()? else {
        return Ok(Vec::new());
    };
    let assignments = store.assignments_of(me.id)?;
    if assignments.is_empty() {
        return Ok(Vec::new());
    }
    let complexes = territory_rows(store, settings, "", Filter::All)?;
    let (tz, now) = (settings.zone(), now_ms());
    Ok(assignments
        .into_iter()
        .filter_map(|a| {
            // A complex the device does not know (yet) is left out until
            // its reference row arrives.
            let row = complexes
                .iter()
                .find(|r| r.complex.id == a.complex_id)?
                .clone();
            let approved = row.approved.as_ref().map(|s| s.created_at);
            let due = planning::due_date(approved, &tz);
            Some(VisitRow {
                state: planning::cycle_state(
                    approved,
                    row.last.as_ref().map(|s| (s.created_at, s.status)),
                    now,
                    &tz,
                ),
                late: a.planned.is_some_and(|m| planning::planned_late(m, due)),
                due,
                assignment: a,
                row,
            })
        })
        .collect())
}

#[component]
pub(super) fn VisitsScreen() -> Element {
    let svc = services();
    let ui = use_context::<Ui>();
    let _ = (ui.version)();
    let (rows, error) = use_last_good(visit_rows(&svc.store, &(ui.settings).read()));
    let rows = rows.unwrap_or_default();
    rsx! {
        div { class: "row",
            h1 { class: "grow", "{t::MY_VISITS}" }
            button { id: "all-complexes", onclick: move |_| ui.go(Screen::Territory), "{t::ALL_COMPLEXES}" }
        }
        ReadError { message: error }
        if rows.is_empty() {
            p { id: "no-visits", class: "muted", "{t::NO_VISITS}" }
        }
        for v in rows {
            VisitItem { visit: v.clone() }
        }
    }
}

#[component]
fn VisitItem(visit: VisitRow) -> Element {
    let ui = use_context::<Ui>();
    let tz = (ui.settings)().zone();
    let c = &visit.row.complex;
    let id = c.id;
    let planned = visit
        .assignment
        .planned
        .map(|m| m.label_fr())
        .unwrap_or_else(|| t::MONTH_TO_SET.to_string());
    let approved = visit
        .row
        .approved
        .as_ref()
        .map(|s| t::date(s.created_at, &tz))
        .unwrap_or_else(|| t::NEVER.to_string());
    let due = visit
        .due
        .map(|d| format!(" · {} {d}", t::DUE_ON))
        .unwrap_or_default();
    let state_class = format!("state state-{}", visit.state.code());
    let (cond_class, cond_text) = condition_badge(visit.row.condition);
    rsx! {
        button { id: "visit-{c.code}", class: "list-item complex", onclick: move |_| ui.go(Screen::Complex(id)),
            span { class: "grow",
                strong { "{c.name}" } br {}
                span { class: "muted", "{c.address}, {c.city}" } br {}
                span { class: "planned", "{t::PLANNED_FOR} : {planned}" }
                if visit.late {
                    " "
                    span { class: "late", "({t::PLANNED_LATE})" }
                }
                br {}
                span { class: "{state_class}", "{visit.state.label_fr()}" }
                span { class: "muted", "{due}" } br {}
                span { class: "muted", "{t::LAST_APPROVED_BSI} : {approved}" }
            }
            span { class: "{cond_class}", title: "{t::CONDITION}", "{cond_text}" }
        }
    }
}
