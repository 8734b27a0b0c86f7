//! The sync bar, always visible once logged in: online state, what waits
//! to be sent, the last sync and its error, the "Synchroniser" button.

use bilan_shared::doc::now_ms;
use dioxus::prelude::*;

use super::state::{Ui, services, sync_soon, use_last_good};
use super::strings as t;
use crate::progress::{Progress, Stage};

/// A fraction as the `progress` element's value out of 1,000.
fn permille(fraction: f64) -> i64 {
    (fraction * 1000.0).round() as i64
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
    let retry = (ui.retry_at)()
        .filter(|_| !online)
        .map(|at| t::retry_at(&bilan_shared::calendar::clock(at, &(ui.settings)().zone())));
    let progress = syncing.then(|| (ui.progress)());
    rsx! {
        footer { class: "syncbar", id: "syncbar",
            if let Some(progress) = progress { SyncProgressView { progress } }
            span { span { class: if online { "dot on" } else { "dot off" } } if online { "{t::ONLINE}" } else { "{t::OFFLINE}" } }
            span { id: "pending", "{status.pending_changes} {t::PENDING_CHANGES}" }
            span { "{bilan_shared::fmt::decimal(mb, 1)} {t::PENDING_PHOTOS}" }
            span { class: "muted", "{t::LAST_SYNC} : {last}" }
            if let Some(e) = status.last_error { span { class: "error", "{e}" } }
            if let Some(r) = retry { span { id: "retry-at", class: "muted", "{r}" } }
            if let Some(e) = read_error { span { class: "error", role: "alert", "{e}" } }
            button { id: "sync", class: "primary", disabled: syncing,
                onclick: move |_| sync_soon(&svc, ui),
                if syncing { "{t::SYNCING}" } else { "{t::SYNC_NOW}" }
            }
        }
    }
}

/// A running sync's progress: what it is doing, the photo queue's and the
/// current photo's bars, the speed and the time left.
#[component]
pub fn SyncProgressView(progress: Progress) -> Element {
    let photo = matches!(progress.stage, Stage::Photos { .. });
    let stage = t::sync_stage(progress.stage);
    let queue = permille(progress.queue_fraction());
    let current = photo.then(|| permille(progress.photo_fraction()));
    let speed = progress.bytes_per_sec.map(t::speed);
    let left = progress.left.filter(|_| photo).map(t::time_left);
    rsx! {
        div { class: "sync-progress", id: "sync-progress", role: "status",
            span { id: "sync-stage", "{stage}" }
            label { class: "muted", r#for: "queue-progress", "{t::PHOTO_QUEUE}" }
            progress { id: "queue-progress", max: "1000", value: "{queue}" }
            if let Some(p) = current {
                label { class: "muted", r#for: "photo-progress", "{t::CURRENT_PHOTO}" }
                progress { id: "photo-progress", max: "1000", value: "{p}" }
            }
            if let Some(s) = speed { span { id: "sync-speed", class: "muted", "{s}" } }
            if let Some(l) = left { span { id: "sync-left", class: "muted", "{l}" } }
        }
    }
}
