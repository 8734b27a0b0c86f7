//! The inspector's screens (Dioxus 0.7), in French, over the device store:
//! here the root component, the shared view state and the helpers every
//! screen uses; each screen in its own file, the sync bar apart, the strings
//! in `strings.rs`. Everything renders from the store on each change
//! (bumping [`Ui::version`]) so what the screen shows is what SQLite holds.
//! No desktop-only call lives here: the platform launch is in `main.rs`.

mod annotate;
mod carried;
mod complex;
mod conflicts;
mod finding;
mod inspection;
mod login;
mod probe;
mod review;
mod state;
pub mod strings;
mod sync_bar;
mod territory;
mod visits;

pub use inspection::ComponentRow;
pub use state::{Screen, Services, StartScreen, Ui, sync_now};
pub use sync_bar::SyncBar;
pub use territory::{ComplexRow, Filter, LOGOUT_ID, territory_rows};
pub use visits::{VisitRow, visit_rows};

use dioxus::prelude::*;

use annotate::AnnotateScreen;
use complex::ComplexScreen;
use conflicts::ConflictsScreen;
use finding::FindingScreen;
use inspection::InspectionScreen;
use login::LoginScreen;
use review::ReviewScreen;
use state::{auto_sync, cs_settings, services};
use territory::TerritoryScreen;
use visits::VisitsScreen;

/// The stylesheet, inlined so the app needs no asset server.
pub const CSS: &str = include_str!("style.css");

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
                Screen::Visits
            } else {
                Screen::Login
            })
        }),
        version: use_signal(|| 0),
        online: use_signal(|| false),
        syncing: use_signal(|| false),
        retry_at: use_signal(|| None),
        progress: use_signal(Default::default),
        flash: use_signal(|| None),
        settings: use_signal(|| cs_settings(&svc.store)),
    };
    use_context_provider(|| ui);
    // Automatic sync: at once, then again after each wait (longer while
    // the server cannot be reached: see `retry`).
    let store = svc.store.clone();
    let wake = svc.wake.clone();
    let auto = svc.auto_sync;
    use_future(move || {
        let (store, wake) = (store.clone(), wake.clone());
        async move {
            if auto {
                auto_sync(store, wake, ui).await;
            }
        }
    });
    // The network back (where the platform's tables say so): sync at once.
    let wake = svc.wake.clone();
    use_future(move || {
        let wake = wake.clone();
        async move {
            if auto {
                crate::network::wake_when_back(
                    crate::network::has_default_route,
                    wake,
                    crate::network::CHECK_EVERY,
                )
                .await;
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
                Screen::Visits => rsx! { VisitsScreen {} },
                Screen::Territory => rsx! { TerritoryScreen {} },
                Screen::Complex(id) => rsx! { ComplexScreen { id } },
                Screen::Inspection(id) => rsx! { InspectionScreen { id } },
                Screen::Finding(id, finding) => rsx! { FindingScreen { id, finding } },
                Screen::Annotate(id, finding, ref photo) => rsx! { AnnotateScreen { id, finding, photo: photo.clone() } },
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
