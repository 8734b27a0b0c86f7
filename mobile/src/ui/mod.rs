//! The inspector's screens (Dioxus 0.7), in French, over the device store.
//! Everything here renders from the store on each change (bumping
//! [`Ui::version`]) so what the screen shows is what SQLite holds. No
//! desktop-only call lives here: the platform launch is in `main.rs`.

pub mod strings;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use bilan_shared::Catalogue;
use bilan_shared::calendar;
use bilan_shared::doc::{SiteVisit, now_ms};
use bilan_shared::domain::{Complex, CsSettings, InspectionStatus, Rating, Severity, Urgency};
use bilan_shared::ids::*;
use dioxus::prelude::*;

use crate::store::{InspectionSummary, NewFinding, NewRecommendation};
use crate::{DeviceStore, SyncEngine};
use strings as t;

/// The stylesheet, inlined so the app needs no asset server.
pub const CSS: &str = include_str!("style.css");

/// Services the screens use; provided once at launch.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<DeviceStore>,
    /// Server address proposed on first launch.
    pub default_server: String,
    /// Sync in the background (off in component tests).
    pub auto_sync: bool,
    /// Where to keep the ids and positions of what the window shows, for
    /// the desktop end-to-end test (`BILAN_UI_PROBE`); `None` otherwise.
    pub probe: Option<PathBuf>,
}

/// Optional context: the screen to open first (tests and deep links).
#[derive(Clone, Debug, PartialEq)]
pub struct StartScreen(pub Screen);

/// Where the user is.
#[derive(Clone, Debug, PartialEq)]
pub enum Screen {
    Login,
    Territory,
    Complex(ComplexId),
    Inspection(InspectionId),
    Finding(InspectionId, Option<FindingId>),
    Conflicts(InspectionId),
    Review(InspectionId),
}

/// Shared view state.
#[derive(Clone, Copy)]
pub struct Ui {
    pub screen: Signal<Screen>,
    /// Bumped after every write so screens re-read the store.
    pub version: Signal<u64>,
    pub online: Signal<bool>,
    pub syncing: Signal<bool>,
    /// Last confirmation ("Enregistré") or error, in French.
    pub flash: Signal<Option<Result<String, String>>>,
    /// The CS's settings from the reference data: the time zone every date
    /// is shown in, the condition thresholds.
    pub settings: Signal<CsSettings>,
}

impl Ui {
    fn go(mut self, s: Screen) {
        self.screen.set(s);
        self.flash.set(None);
    }
    fn changed(mut self, r: crate::Result<()>) {
        match r {
            Ok(()) => self.flash.set(Some(Ok(t::SAVED.to_string()))),
            Err(e) => self.flash.set(Some(Err(e.to_string()))),
        }
        *self.version.write() += 1;
    }
}

fn services() -> Services {
    use_context::<Services>()
}

/// A store read for a screen: the fresh value, or when the read fails the
/// last value this component read successfully (if any) and the error to
/// show, in French. A storage error never shows as an empty screen.
fn use_last_good<T: Clone + 'static>(read: crate::Result<T>) -> (Option<T>, Option<String>) {
    let cache = use_hook(|| Rc::new(RefCell::new(None::<T>)));
    match read {
        Ok(v) => {
            *cache.borrow_mut() = Some(v.clone());
            (Some(v), None)
        }
        Err(e) => {
            tracing::warn!(error = %e, "store read failed on a screen");
            (cache.borrow().clone(), Some(t::read_failed(&e.to_string())))
        }
    }
}

/// The error of a failed store read, above the last good data.
#[component]
fn ReadError(message: Option<String>) -> Element {
    match message {
        Some(m) => rsx! { p { class: "error", role: "alert", id: "read-error", "{m}" } },
        None => rsx! {},
    }
}

/// For the desktop end-to-end test: five times a second, every element with
/// an id that the window shows (centre, text), which one has the focus and
/// a write counter `n`, written whole to the probe file (a temp file renamed
/// over it), so the test finds what to tap by id instead of by coordinates.
async fn run_probe(path: PathBuf) {
    const JS: &str = r#"
        const items = [];
        for (const el of document.querySelectorAll('[id]')) {
            const r = el.getBoundingClientRect();
            if (r.width > 0 && r.height > 0) {
                items.push({ id: el.id, x: Math.round(r.left + r.width / 2), y: Math.round(r.top + r.height / 2),
                             text: (el.innerText || el.value || '').slice(0, 60) });
            }
        }
        const focus = document.activeElement && document.activeElement.id ? document.activeElement.id : '';
        return { focus, items };
    "#;
    let tmp = path.with_extension("tmp");
    // Counts the writes, so a test can wait for a view taken after its action.
    let mut n = 0u64;
    loop {
        match document::eval(JS).join::<serde_json::Value>().await {
            Ok(mut v) => {
                n += 1;
                if let Some(o) = v.as_object_mut() {
                    o.insert("n".into(), n.into());
                }
                let written =
                    std::fs::write(&tmp, v.to_string()).and_then(|_| std::fs::rename(&tmp, &path));
                if let Err(e) = written {
                    tracing::warn!(error = %e, path = %path.display(), "UI probe not written");
                }
            }
            Err(e) => tracing::warn!(error = %e, "UI probe script failed"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
/// The CS's settings on this device; the defaults (logged) if they cannot be read.
fn cs_settings(store: &DeviceStore) -> CsSettings {
    store.cs_settings().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "CS settings unreadable on the device; defaults used");
        CsSettings::default()
    })
}

/// Syncs once and updates the bar; errors stay in the store's status.
pub async fn sync_now(store: Arc<DeviceStore>, mut ui: Ui) {
    let logged_in = match store.user() {
        Ok(u) => u.is_some(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the session before syncing");
            false
        }
    };
    if *ui.syncing.peek() || !logged_in {
        return;
    }
    ui.syncing.set(true);
    let engine = SyncEngine::new(&store);
    if let Err(e) = engine.refresh_reference().await {
        tracing::warn!(error = %e, "reference data not refreshed");
    }
    ui.settings.set(cs_settings(&store));
    let result = engine.sync().await;
    ui.online
        .set(!matches!(&result, Err(e) if e.is_transient()));
    ui.syncing.set(false);
    *ui.version.write() += 1;
}

/// The root component.
#[allow(non_snake_case)]
pub fn App() -> Element {
    let svc = services();
    let logged_in = match svc.store.user() {
        Ok(u) => u.is_some(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the session; showing the login screen");
            false
        }
    };
    let start = try_use_context::<StartScreen>().map(|s| s.0);
    let ui = Ui {
        screen: use_signal(|| {
            start.unwrap_or(if logged_in {
                Screen::Territory
            } else {
                Screen::Login
            })
        }),
        version: use_signal(|| 0),
        online: use_signal(|| false),
        syncing: use_signal(|| false),
        flash: use_signal(|| None),
        settings: use_signal(|| cs_settings(&svc.store)),
    };
    use_context_provider(|| ui);
    // Automatic sync: at once, then every 15 s while the app runs.
    let store = svc.store.clone();
    let auto = svc.auto_sync;
    use_future(move || {
        let store = store.clone();
        async move {
            if !auto {
                return;
            }
            loop {
                sync_now(store.clone(), ui).await;
                tokio::time::sleep(std::time::Duration::from_secs(15)).await;
            }
        }
    });
    let probe = svc.probe.clone();
    use_future(move || {
        let probe = probe.clone();
        async move {
            if let Some(path) = probe {
                run_probe(path).await;
            }
        }
    });
    let screen = (ui.screen)();
    rsx! {
        style { {CSS} }
        main {
            match screen {
                Screen::Login => rsx! { LoginScreen {} },
                Screen::Territory => rsx! { TerritoryScreen {} },
                Screen::Complex(id) => rsx! { ComplexScreen { id } },
                Screen::Inspection(id) => rsx! { InspectionScreen { id } },
                Screen::Finding(id, finding) => rsx! { FindingScreen { id, finding } },
                Screen::Conflicts(id) => rsx! { ConflictsScreen { id } },
                Screen::Review(id) => rsx! { ReviewScreen { id } },
            }
            Flash {}
        }
        if !matches!(screen, Screen::Login) {
            SyncBar {}
        }
    }
}

#[component]
fn Flash() -> Element {
    let ui = use_context::<Ui>();
    match (ui.flash)() {
        Some(Ok(m)) => rsx! { p { class: "flash", role: "status", "✓ {m}" } },
        Some(Err(m)) => rsx! { p { class: "error", role: "alert", "{m}" } },
        None => rsx! {},
    }
}

/// The always-visible sync bar.
#[component]
pub fn SyncBar() -> Element {
    let svc = services();
    let ui = use_context::<Ui>();
    let _ = (ui.version)();
    let (status, read_error) = use_last_good(svc.store.status());
    let status = status.unwrap_or_default();
    let online = (ui.online)();
    let syncing = (ui.syncing)();
    let mb = status.pending_photo_bytes as f64 / 1_000_000.0;
    let last = status
        .last_sync_ms
        .map(|ms| t::ago(ms, now_ms()))
        .unwrap_or_else(|| t::NEVER.to_string());
    let store = svc.store.clone();
    rsx! {
        footer { class: "syncbar", id: "syncbar",
            span { span { class: if online { "dot on" } else { "dot off" } } if online { "{t::ONLINE}" } else { "{t::OFFLINE}" } }
            span { id: "pending", "{status.pending_changes} {t::PENDING_CHANGES}" }
            span { "{bilan_shared::fmt::decimal(mb, 1)} {t::PENDING_PHOTOS}" }
            span { class: "muted", "{t::LAST_SYNC} : {last}" }
            if let Some(e) = status.last_error { span { class: "error", "{e}" } }
            if let Some(e) = read_error { span { class: "error", role: "alert", "{e}" } }
            button { id: "sync", class: "primary", disabled: syncing,
                onclick: move |_| { spawn(sync_now(store.clone(), ui)); },
                if syncing { "{t::SYNCING}" } else { "{t::SYNC_NOW}" }
            }
        }
    }
}

#[component]
fn LoginScreen() -> Element {
    let svc = services();
    let ui = use_context::<Ui>();
    let initial = match svc.store.setting("server_url") {
        Ok(url) => url.unwrap_or(svc.default_server.clone()),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the last server address");
            svc.default_server.clone()
        }
    };
    let mut server = use_signal(|| initial);
    let mut user = use_signal(String::new);
    let mut password = use_signal(String::new);
    let mut busy = use_signal(|| false);
    let mut error = use_signal(|| None::<String>);
    let store = svc.store.clone();
    let submit = move |e: FormEvent| {
        e.prevent_default();
        let store = store.clone();
        busy.set(true);
        spawn(async move {
            let engine = SyncEngine::new(&store);
            let r = async {
                engine.login(&server(), &user(), &password()).await?;
                engine.refresh_reference().await?;
                Ok::<_, crate::MobileError>(())
            }
            .await;
            busy.set(false);
            match r {
                Ok(()) => {
                    ui.go(Screen::Territory);
                    // This screen unmounts now: run the first sync in the root scope.
                    dioxus::dioxus_core::spawn_forever(sync_now(store.clone(), ui));
                }
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    rsx! {
        h1 { "{t::APP_TITLE}" }
        h2 { "{t::LOGIN_TITLE}" }
        p { class: "muted", "{t::LOGIN_HELP}" }
        form { id: "login", onsubmit: submit,
            label { r#for: "username", "{t::USERNAME}" }
            input { id: "username", autofocus: true, initial_value: "{user}", autocomplete: "username", oninput: move |e| user.set(e.value()) }
            label { r#for: "password", "{t::PASSWORD}" }
            input { id: "password", r#type: "password", initial_value: "{password}", oninput: move |e| password.set(e.value()) }
            label { r#for: "server", "{t::SERVER}" }
            input { id: "server", r#type: "url", initial_value: "{server}", oninput: move |e| server.set(e.value()) }
            p { button { id: "login-submit", r#type: "submit", class: "primary", disabled: busy(), if busy() { "{t::LOGGING_IN}" } else { "{t::LOGIN}" } } }
            if let Some(e) = error() { p { class: "error", role: "alert", "{e}" } }
        }
    }
}

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
    pub last: Option<InspectionSummary>,
    pub condition: Option<bilan_shared::domain::Condition>,
}

/// Id of the logout button (formatted in, so tests find its element).
pub const LOGOUT_ID: &str = "logout";

/// Builds, filters and searches the territory list (the view state, testable without a window).
pub fn territory_rows(
    store: &DeviceStore,
    search: &str,
    filter: Filter,
) -> crate::Result<Vec<ComplexRow>> {
    let offices: HashMap<OfficeId, String> = store
        .offices()?
        .into_iter()
        .map(|o| (o.id, o.name))
        .collect();
    let mut latest: HashMap<ComplexId, InspectionSummary> = HashMap::new();
    for s in store.summaries(None)? {
        latest.entry(s.complex_id).or_insert(s);
    }
    let settings = store.cs_settings()?;
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
            let condition = last
                .as_ref()
                .filter(|s| s.rated > 0 && c.replacement_value > 0.0)
                .map(|s| thresholds.condition_for(s.cost_5y / c.replacement_value));
            ComplexRow {
                office: offices.get(&c.office_id).cloned().unwrap_or_default(),
                complex: c,
                last,
                condition,
            }
        })
        .filter(|r| {
            let st = r.last.as_ref().map(|s| s.status);
            match filter {
                Filter::All => true,
                Filter::Due => calendar::is_due(r.last.as_ref().map(|s| s.created_at), now, &tz),
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
fn TerritoryScreen() -> Element {
    let svc = services();
    let ui = use_context::<Ui>();
    let _ = (ui.version)();
    let mut search = use_signal(String::new);
    let mut filter = use_signal(|| Filter::All);
    let (rows, rows_error) = use_last_good(territory_rows(&svc.store, &search(), filter()));
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

#[component]
fn ComplexListItem(row: ComplexRow) -> Element {
    let ui = use_context::<Ui>();
    let tz = (ui.settings)().zone();
    let id = row.complex.id;
    let last = row
        .last
        .as_ref()
        .map(|s| t::date(s.created_at, &tz))
        .unwrap_or_else(|| t::NEVER.to_string());
    let (cond_class, cond_text) = match row.condition {
        Some(c) => (format!("cond cond-{}", c.code()), c.code().to_string()),
        None => ("cond cond-none".to_string(), "–".to_string()),
    };
    let status = row.last.as_ref().map(|s| s.status.label_fr()).unwrap_or("");
    rsx! {
        button { id: "complex-{row.complex.code}", class: "list-item complex", onclick: move |_| ui.go(Screen::Complex(id)),
            span { class: "grow",
                strong { "{row.complex.name}" } br {}
                span { class: "muted", "{row.complex.address}, {row.complex.city}" } br {}
                span { class: "muted", "{t::LAST_BSI} : {last} {status}" }
            }
            span { class: "{cond_class}", title: "{t::CONDITION}", "{cond_text}" }
        }
    }
}

#[component]
fn ComplexScreen(id: ComplexId) -> Element {
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

#[component]
fn InspectionScreen(id: InspectionId) -> Element {
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
        VisitCard { id }
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
            ComponentRow { id, code: comp.code.clone(), label: comp.label.clone(), rating: doc.components.get(&comp.code).and_then(|c| c.rating), note: doc.components.get(&comp.code).map(|c| c.note.clone()).unwrap_or_default() }
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

/// One component: rating buttons and a note. Each tap is saved at once.
#[component]
pub fn ComponentRow(
    id: InspectionId,
    code: String,
    label: String,
    rating: Option<Rating>,
    note: String,
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

#[component]
fn VisitCard(id: InspectionId) -> Element {
    let svc = services();
    let ui = use_context::<Ui>();
    let _ = (ui.version)();
    let key = format!("visit_started:{id}");
    let (started, started_error) = use_last_good(svc.store.setting(&key));
    let started: Option<i64> = started.flatten().and_then(|s| s.parse().ok());
    let mut travel = use_signal(|| "0".to_string());
    let mut km = use_signal(|| "0".to_string());
    let mut expenses = use_signal(|| "0".to_string());
    let (visits, visits_error) = use_last_good(svc.store.inspection(id).map(|d| d.visits));
    let visits = visits.unwrap_or_default();
    let store = svc.store.clone();
    let (user, user_error) = use_last_good(store.user());
    let user = user.flatten();
    rsx! {
        div { class: "card",
            strong { "{t::VISIT}" }
            ReadError { message: started_error.or(visits_error).or(user_error) }
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
                        let n = |s: String| s.replace(',', ".").parse::<f64>().unwrap_or(0.0).max(0.0);
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

#[component]
fn FindingScreen(id: InspectionId, finding: Option<FindingId>) -> Element {
    let svc = services();
    let ui = use_context::<Ui>();
    let _ = (ui.version)();
    let cat = Catalogue::current();
    let mut component = use_signal(|| cat.groups[0].components[0].code.clone());
    let mut title = use_signal(String::new);
    let mut location = use_signal(String::new);
    let mut severity = use_signal(|| Severity::Moderate);
    let store = svc.store.clone();
    let Some(fid) = finding else {
        return rsx! {
            button { onclick: move |_| ui.go(Screen::Inspection(id)), "{t::BACK}" }
            h1 { "{t::ADD_FINDING}" }
            label { "{t::COMPONENT}" }
            select { id: "finding-component", onchange: move |e| component.set(e.value()),
                for (g, c) in cat.components() { option { value: "{c.code}", selected: c.code == component(), "{g.code} — {c.code} {c.label}" } }
            }
            label { r#for: "finding-title", "{t::TITLE}" }
            input { id: "finding-title", initial_value: "{title}", oninput: move |e| title.set(e.value()) }
            label { r#for: "finding-location", "{t::LOCATION}" }
            input { id: "finding-location", initial_value: "{location}", oninput: move |e| location.set(e.value()) }
            label { "{t::SEVERITY}" }
            div { class: "row",
                for s in Severity::ALL.iter().copied() { button { id: "severity-{s.code()}", class: if severity() == s { "sel" } else { "" }, onclick: move |_| severity.set(s), "{s.label_fr()}" } }
            }
            p { button { id: "finding-save", class: "primary", disabled: title().trim().is_empty(), onclick: move |_| {
                let r = store.add_finding(id, NewFinding { component: component(), title: title(), location: location(), severity: severity(), description: String::new() });
                match r { Ok(fid) => { ui.changed(Ok(())); ui.screen.clone().set(Screen::Finding(id, Some(fid))) } Err(e) => ui.changed(Err(e)) }
            }, "{t::SAVE}" } }
        };
    };
    let doc = match svc.store.inspection(id) {
        Ok(d) => d,
        Err(e) => return rsx! { p { class: "error", "{e}" } },
    };
    let Some(f) = doc.findings.iter().find(|f| f.id == fid).cloned() else {
        return rsx! { p { class: "error", "Constat introuvable." } };
    };
    let mut caption = use_signal(String::new);
    let mut work = use_signal(String::new);
    let mut urgency = use_signal(|| Urgency::WithinYear);
    let mut quantity = use_signal(|| "1".to_string());
    let mut unit = use_signal(|| "u".to_string());
    let mut unit_cost = use_signal(|| "0".to_string());
    let num = |s: String| s.replace(',', ".").parse::<f64>().unwrap_or(0.0);
    let estimate = num(quantity()) * num(unit_cost());
    let store2 = svc.store.clone();
    let store3 = svc.store.clone();
    rsx! {
        button { onclick: move |_| ui.go(Screen::Inspection(id)), "{t::BACK}" }
        h1 { "{t::FINDING} : {f.title}" }
        p { class: "muted", "{f.component} — {f.location} — {f.severity.label_fr()}" }
        h2 { "{t::PHOTOS}" }
        div { class: "thumbs",
            for p in f.photos.iter() {
                if let Some(src) = store2.thumbnail_data_url(&p.hash) { img { src: "{src}", alt: "{p.caption}" } } else { span { class: "muted", "{p.caption}" } }
            }
        }
        label { "{t::CAPTION}" }
        input { initial_value: "{caption}", oninput: move |e| caption.set(e.value()) }
        label { r#for: "photo", id: "photo-button", class: "btn primary", role: "button", "{t::TAKE_PHOTO}" }
        input { id: "photo", class: "visually-hidden", r#type: "file", accept: "image/*", "capture": "environment",
            onchange: move |e| {
                let store = store3.clone();
                async move {
                    for file in e.files() {
                        let name = file.name().to_lowercase();
                        let mime = if name.ends_with(".png") { "image/png" } else if name.ends_with(".webp") { "image/webp" } else { "image/jpeg" };
                        match file.read_bytes().await {
                            Ok(bytes) => ui.changed(store.attach_photo(id, fid, &bytes, mime, &caption()).map(|_| ())),
                            Err(err) => {
                                tracing::warn!(error = %err, "photo file not read");
                                ui.changed(Err(crate::MobileError::Invalid(t::PHOTO_NOT_READ.to_string())))
                            }
                        }
                    }
                }
            }
        }
        h2 { "{t::RECOMMENDATION}" }
        for r in f.recommendations.iter() {
            div { class: "card", "{r.work} — {r.urgency.label_fr()} — {r.quantity} {r.unit} × {t::money(r.unit_cost)} = " strong { "{t::money(r.estimated_cost())}" } }
        }
        label { "{t::WORK}" }
        input { id: "rec-work", initial_value: "{work}", oninput: move |e| work.set(e.value()) }
        label { "{t::URGENCY}" }
        div { class: "row", for u in Urgency::ALL.iter().copied() { button { class: if urgency() == u { "sel" } else { "" }, onclick: move |_| urgency.set(u), "{u.label_fr()}" } } }
        div { class: "two",
            div { label { "{t::QUANTITY}" } input { id: "rec-qty", r#type: "number", initial_value: "{quantity}", oninput: move |e| quantity.set(e.value()) } }
            div { label { "{t::UNIT}" } input { initial_value: "{unit}", oninput: move |e| unit.set(e.value()) } }
            div { label { "{t::UNIT_COST}" } input { id: "rec-cost", r#type: "number", initial_value: "{unit_cost}", oninput: move |e| unit_cost.set(e.value()) } }
            div { label { "{t::ESTIMATED_COST}" } strong { "{t::money(estimate)}" } }
        }
        p { button { id: "rec-save", class: "primary", disabled: work().trim().is_empty(), onclick: move |_| {
            let r = svc.store.add_recommendation(id, fid, NewRecommendation { work: work(), urgency: urgency(), quantity: num(quantity()), unit: unit(), unit_cost: num(unit_cost()) });
            ui.changed(r.map(|_| ()));
        }, "{t::ADD_RECOMMENDATION}" } }
    }
}

#[component]
fn ConflictsScreen(id: InspectionId) -> Element {
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

#[component]
fn ReviewScreen(id: InspectionId) -> Element {
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

#[cfg(test)]
mod tests;
