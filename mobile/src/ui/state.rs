//! What every screen shares: the services provided at launch, where the
//! user is ([`Screen`]), the view state ([`Ui`]), store reads that keep the
//! last good value, and a sync from the screens.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use bilan_shared::domain::CsSettings;
use bilan_shared::ids::*;
use dioxus::prelude::*;

use super::strings as t;
use crate::progress::Progress;
use crate::retry::Backoff;
use crate::{DeviceStore, SyncEngine};

/// Services the screens use; provided once at launch.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<DeviceStore>,
    /// Server address proposed on first launch.
    pub default_server: String,
    /// Sync in the background (off in component tests).
    pub auto_sync: bool,
    /// Wakes the automatic sync at once (a tap on "Synchroniser", the
    /// platform saying the network is back): it starts its waits over.
    pub wake: Arc<tokio::sync::Notify>,
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
    /// "Mes visites": what the CS planned for this inspector (the opening screen).
    Visits,
    Territory,
    Complex(ComplexId),
    Inspection(InspectionId),
    Finding(InspectionId, Option<FindingId>),
    /// Drawing on a photo of a finding.
    Annotate(InspectionId, FindingId, PhotoHash),
    Conflicts(InspectionId),
    Review(InspectionId),
}

impl Screen {
    /// The inspection this screen is about, if any.
    pub fn inspection(&self) -> Option<InspectionId> {
        match self {
            Screen::Inspection(id)
            | Screen::Finding(id, _)
            | Screen::Annotate(id, _, _)
            | Screen::Conflicts(id)
            | Screen::Review(id) => Some(*id),
            _ => None,
        }
    }
}

/// Shared view state.
#[derive(Clone, Copy)]
pub struct Ui {
    pub screen: Signal<Screen>,
    /// Bumped after every write so screens re-read the store.
    pub version: Signal<u64>,
    pub online: Signal<bool>,
    pub syncing: Signal<bool>,
    /// When the automatic sync tries again after failing to reach the
    /// server (ms); none while the server answers.
    pub retry_at: Signal<Option<i64>>,
    /// The running (or last) sync's progress, refreshed a few times a
    /// second while it runs.
    pub progress: Signal<Progress>,
    /// Last confirmation ("Enregistré") or error, in French.
    pub flash: Signal<Option<Result<String, String>>>,
    /// The CS's settings from the reference data: the time zone every date
    /// is shown in, the condition thresholds.
    pub settings: Signal<CsSettings>,
}

impl Ui {
    /// Goes to another screen. Leaving an inspection (for a screen that is
    /// not about it) puts it away on a thread of its own: its snapshot is
    /// brought up to date so the next sync has its saved form ready.
    pub(super) fn go(mut self, s: Screen) {
        let left = self.screen.peek().inspection();
        if let Some(id) = left.filter(|id| s.inspection() != Some(*id))
            && let Some(services) = try_consume_context::<Services>()
        {
            let store = services.store.clone();
            std::thread::spawn(move || {
                if let Err(error) = store.put_away(id) {
                    tracing::warn!(%id, %error, "inspection not put away");
                }
            });
        }
        self.screen.set(s);
        self.flash.set(None);
    }
    pub(super) fn changed(mut self, r: crate::Result<()>) {
        match r {
            Ok(()) => {
                self.flash.set(Some(Ok(t::SAVED.to_string())));
                self.compact_soon();
            }
            Err(e) => self.flash.set(Some(Err(e.to_string()))),
        }
        *self.version.write() += 1;
    }
}

impl Ui {
    /// After an edit: the inspection's snapshot is brought up to date on
    /// another thread when enough changes wait, so no tap waits for it.
    fn compact_soon(self) {
        if let Some(id) = self.screen.peek().inspection()
            && let Some(services) = try_consume_context::<Services>()
        {
            let store = services.store.clone();
            std::thread::spawn(move || {
                if let Err(error) = store.compact_if_due(id) {
                    tracing::warn!(%id, %error, "inspection not compacted");
                }
            });
        }
    }
}

pub(super) fn services() -> Services {
    use_context::<Services>()
}

/// A store read for a screen: the fresh value, or when the read fails the
/// last value this component read successfully (if any) and the error to
/// show, in French. A storage error never shows as an empty screen.
pub(super) fn use_last_good<T: Clone + 'static>(
    read: crate::Result<T>,
) -> (Option<T>, Option<String>) {
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
pub(super) fn ReadError(message: Option<String>) -> Element {
    match message {
        Some(m) => rsx! { p { class: "error", role: "alert", id: "read-error", "{m}" } },
        None => rsx! {},
    }
}

/// The CS's settings on this device; the defaults (logged) if they cannot be read.
pub(super) fn cs_settings(store: &DeviceStore) -> CsSettings {
    store.cs_settings().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "CS settings unreadable on the device; defaults used");
        CsSettings::default()
    })
}

/// How often the sync bar takes the running sync's progress.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Syncs once and updates the bar; errors stay in the store's status.
/// Whether the server was reached; none when no sync ran (nobody logged
/// in, or a sync already running).
pub async fn sync_now(store: Arc<DeviceStore>, mut ui: Ui) -> Option<bool> {
    let logged_in = match store.user() {
        Ok(u) => u.is_some(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the session before syncing");
            false
        }
    };
    if *ui.syncing.peek() || !logged_in {
        return None;
    }
    ui.syncing.set(true);
    let (tx, mut rx) = tokio::sync::watch::channel(Progress::default());
    // The sync runs on the runtime's workers, not in the window's task:
    // the screens keep answering, and the bar follows its progress.
    let sync = tokio::spawn(async move {
        let engine = SyncEngine::new(&store).with_progress(tx);
        if let Err(e) = engine.refresh_reference().await {
            tracing::warn!(error = %e, "reference data not refreshed");
        }
        let result = engine.sync().await;
        (result, engine.progress(), cs_settings(&store))
    });
    // The bar takes the engine's latest progress (at most four times a
    // second) until the sync ends.
    let follow = async {
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        loop {
            tick.tick().await;
            match rx.has_changed() {
                Ok(true) => ui.progress.set(rx.borrow_and_update().clone()),
                Ok(false) => {}
                Err(_) => break,
            }
        }
    };
    tokio::pin!(sync);
    let joined = tokio::select! {
        r = &mut sync => r,
        // The engine's channel closed: nothing more to show.
        () = follow => sync.await,
    };
    let result = match joined {
        Ok((result, progress, settings)) => {
            ui.progress.set(progress);
            ui.settings.set(settings);
            result
        }
        Err(e) => {
            tracing::error!(error = %e, "the sync task failed");
            Err(crate::MobileError::Invalid(t::SYNC_FAILED.into()))
        }
    };
    let reached = !matches!(&result, Err(e) if e.is_transient());
    ui.online.set(reached);
    ui.syncing.set(false);
    *ui.version.write() += 1;
    Some(reached)
}

/// The automatic sync: at once, then again after each [`Backoff`] wait,
/// or as soon as something wakes it ([`Services::wake`]).
pub async fn auto_sync(store: Arc<DeviceStore>, wake: Arc<tokio::sync::Notify>, mut ui: Ui) {
    let mut backoff = Backoff::default();
    loop {
        let reached = sync_now(store.clone(), ui).await.unwrap_or(true);
        let wait = backoff.after(reached);
        ui.retry_at
            .set((!reached).then(|| bilan_shared::doc::now_ms() + wait.as_millis() as i64));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = wake.notified() => {}
        }
    }
}

/// A sync asked for now (a tap on "Synchroniser", a login): the automatic
/// sync runs at once and starts its waits over; without one (component
/// tests), a sync here, in the root scope (the asking screen may unmount).
pub(super) fn sync_soon(svc: &Services, ui: Ui) {
    if svc.auto_sync {
        svc.wake.notify_one();
    } else {
        let store = svc.store.clone();
        dioxus::dioxus_core::spawn_forever(async move {
            sync_now(store, ui).await;
        });
    }
}
