//! The territory list: complexes by served office with their last BSI and
//! condition, search and filters, and "Changer d'utilisateur".

use std::collections::HashMap;

use bilan_shared::calendar;
use bilan_shared::doc::now_ms;
use bilan_shared::domain::CsSettings;
use bilan_shared::domain::{Complex, Condition, InspectionStatus};
use bilan_shared::ids::*;
use dioxus::prelude::*;

use super::state::{ReadError, Screen, Ui, services, use_last_good};
use super::strings as t;
use crate::store::InspectionSummary;
use crate::{DeviceStore, SyncEngine};

/// Territory list filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    All,
    Due,
    InProgress,
    Done,
    Returned,
}

/// One row of the territory list, computed from the store.
#[derive(Clone, Debug, PartialEq)]
pub struct ComplexRow {
    pub complex: Complex,
    pub office: String,
    /// The latest inspection, whatever its status.
    pub last: Option<InspectionSummary>,
    /// The last approved BSI: the building's condition and cycle are its.
    pub approved: Option<InspectionSummary>,
    /// The building's condition: its last approved BSI's.
    pub condition: Option<Condition>,
    /// The grade of a later inspection not approved yet (with something
    /// rated), shown only as provisional.
    pub provisional: Option<Condition>,
}

/// Id of the logout button (formatted in, so tests find its element).
pub const LOGOUT_ID: &str = "logout";

/// Builds, filters and searches the territory list (the view state, testable
/// without a window), with the CS's `settings` the screen already holds.
pub fn territory_rows(
    store: &DeviceStore,
    settings: &CsSettings,
    search: &str,
    filter: Filter,
) -> crate::Result<Vec<ComplexRow>> {
    let offices: HashMap<OfficeId, String> = store
        .offices()?
        .into_iter()
        .map(|o| (o.id, o.name))
        .collect();
    // Newest first: the first of each complex is its latest.
    let mut latest: HashMap<ComplexId, InspectionSummary> = HashMap::new();
    let mut approved: HashMap<ComplexId, InspectionSummary> = HashMap::new();
    for s in store.summaries(None)? {
        if s.status == InspectionStatus::Approved {
            approved.entry(s.complex_id).or_insert_with(|| s.clone());
        }
        latest.entry(s.complex_id).or_insert(s);
    }
    let (thresholds, tz) = (&settings.thresholds, settings.zone());
    let needle = search.trim().to_lowercase();
    let now = now_ms();
    let mut rows: Vec<ComplexRow> = store
        .complexes()?
        .into_iter()
        .filter(|c| {
            needle.is_empty()
                || format!("{} {} {} {}", c.name, c.address, c.city, c.code)
                    .to_lowercase()
                    .contains(&needle)
        })
        .map(|c| {
            let last = latest.get(&c.id).cloned();
            let approved = approved.get(&c.id).cloned();
            let grade = |s: &InspectionSummary| {
                (c.replacement_value > 0.0)
                    .then(|| thresholds.condition_for(s.cost_5y / c.replacement_value))
            };
            let condition = approved.as_ref().and_then(grade);
            let provisional = last
                .as_ref()
                .filter(|s| s.status != InspectionStatus::Approved && s.rated > 0)
                .and_then(grade);
            ComplexRow {
                office: offices.get(&c.office_id).cloned().unwrap_or_default(),
                complex: c,
                last,
                approved,
                condition,
                provisional,
            }
        })
        .filter(|r| {
            let st = r.last.as_ref().map(|s| s.status);
            match filter {
                Filter::All => true,
                Filter::Due => {
                    calendar::is_due(r.approved.as_ref().map(|s| s.created_at), now, &tz)
                }
                Filter::InProgress => st == Some(InspectionStatus::InProgress),
                Filter::Done => matches!(
                    st,
                    Some(InspectionStatus::Submitted | InspectionStatus::Approved)
                ),
                Filter::Returned => st == Some(InspectionStatus::Returned),
            }
        })
        .collect();
    rows.sort_by(|a, b| (&a.office, &a.complex.name).cmp(&(&b.office, &b.complex.name)));
    Ok(rows)
}

#[component]
pub(super) fn TerritoryScreen() -> Element {
    let svc = services();
    let ui = use_context::<Ui>();
    let _ = (ui.version)();
    let mut search = use_signal(String::new);
    let mut filter = use_signal(|| Filter::All);
    let (rows, rows_error) = use_last_good(territory_rows(
        &svc.store,
        &(ui.settings).read(),
        &search(),
        filter(),
    ));
    let rows = rows.unwrap_or_default();
    let (territory, territory_error) = use_last_good(svc.store.territory());
    let territory = territory.flatten().map(|t| t.name).unwrap_or_default();
    let mut leaving = use_signal(|| false);
    let store = svc.store.clone();
    let logout = move |_| {
        let store = store.clone();
        leaving.set(true);
        spawn(async move {
            let r = SyncEngine::new(&store).logout().await;
            leaving.set(false);
            match r {
                Ok(()) => ui.go(Screen::Login),
                Err(e) => ui.changed(Err(e)),
            }
        });
    };
    let filters = [
        (Filter::All, t::FILTER_ALL),
        (Filter::Due, t::FILTER_DUE),
        (Filter::InProgress, t::FILTER_IN_PROGRESS),
        (Filter::Done, t::FILTER_DONE),
        (Filter::Returned, t::FILTER_RETURNED),
    ];
    let mut current_office = String::new();
    rsx! {
        div { class: "row",
            h1 { class: "grow", "{territory}" }
            button { id: "my-visits", onclick: move |_| ui.go(Screen::Visits), "{t::MY_VISITS}" }
            button { id: "{LOGOUT_ID}", disabled: leaving(), onclick: logout, "{t::LOGOUT}" }
        }
        ReadError { message: rows_error.or(territory_error) }
        input { id: "search", r#type: "search", placeholder: "{t::SEARCH}", initial_value: "{search}", oninput: move |e| search.set(e.value()) }
        div { class: "tabs", role: "tablist",
            for (i, (f, label)) in filters.into_iter().enumerate() {
                button { id: "filter-{i}", class: if filter() == f { "sel" } else { "" }, onclick: move |_| filter.set(f), "{label}" }
            }
        }
        for row in rows {
            if row.office != current_office {
                { current_office = row.office.clone(); rsx! { h2 { "{row.office}" } } }
            }
            ComplexListItem { row: row.clone() }
        }
    }
}

/// The class and text of a building's condition badge ("–" when none).
pub(super) fn condition_badge(c: Option<Condition>) -> (String, String) {
    match c {
        Some(c) => (format!("cond cond-{}", c.code()), c.code().to_string()),
        None => ("cond cond-none".to_string(), "–".to_string()),
    }
}

#[component]
fn ComplexListItem(row: ComplexRow) -> Element {
    let ui = use_context::<Ui>();
    let tz = (ui.settings)().zone();
    let id = row.complex.id;
    let approved = row
        .approved
        .as_ref()
        .map(|s| t::date(s.created_at, &tz))
        .unwrap_or_else(|| t::NEVER.to_string());
    let (cond_class, cond_text) = condition_badge(row.condition);
    // A later inspection than the approved one: its status, and its grade
    // only as provisional.
    let current = row
        .last
        .as_ref()
        .filter(|s| s.status != InspectionStatus::Approved)
        .map(|s| {
            let grade = row
                .provisional
                .map(|c| format!(" · {} {}", t::PROVISIONAL_GRADE, c.code()))
                .unwrap_or_default();
            format!(
                "{} ({}){grade}",
                s.status.label_fr(),
                t::date(s.created_at, &tz)
            )
        });
    rsx! {
        button { id: "complex-{row.complex.code}", class: "list-item complex", onclick: move |_| ui.go(Screen::Complex(id)),
            span { class: "grow",
                strong { "{row.complex.name}" } br {}
                span { class: "muted", "{row.complex.address}, {row.complex.city}" } br {}
                span { class: "muted", "{t::LAST_APPROVED_BSI} : {approved}" }
                if let Some(current) = current {
                    br {}
                    span { class: "muted provisional", "{current}" }
                }
            }
            span { class: "{cond_class}", title: "{t::CONDITION}", "{cond_text}" }
        }
    }
}
