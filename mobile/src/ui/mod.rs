//! The inspector's screens (Dioxus 0.7), in French, over the device store:
//! here the root component, the shared view state and the helpers every
//! screen uses; each screen in its own file, the sync bar apart, the strings
//! in `strings.rs`. Everything renders from the store on each change
//! (bumping [`Ui::version`]) so what the screen shows is what SQLite holds.
//! No desktop-only call lives here: the platform launch is in `main.rs`.

mod complex;
mod conflicts;
mod finding;
mod inspection;
mod login;
mod probe;
mod review;
pub mod strings;
mod sync_bar;
mod territory;

pub use inspection::ComponentRow;
pub use sync_bar::SyncBar;
pub use territory::{ComplexRow, Filter, LOGOUT_ID, territory_rows};

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use bilan_shared::domain::CsSettings;
use bilan_shared::ids::*;
use dioxus::prelude::*;

use crate::{DeviceStore, SyncEngine};
use complex::ComplexScreen;
use conflicts::ConflictsScreen;
use finding::FindingScreen;
use inspection::InspectionScreen;
use login::LoginScreen;
use review::ReviewScreen;
use strings as t;
use territory::TerritoryScreen;

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
                probe::run_probe(path).await;
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

#[cfg(test)]
mod tests;
