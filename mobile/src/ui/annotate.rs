//! Drawing on a photo with one finger: pick a tool (arrow, circle, text),
//! drag on the photo; the marks show over it as they are drawn. Saving
//! hands them to the store, which draws them into a new photo
//! ([`crate::DeviceStore::annotate_photo`]); the photo as taken is never
//! altered. Annotating again starts from the latest marks.

use bilan_shared::annotate::{MIN_SPAN, Mark, MarkKind, arrow_wings, stroke_radius, text_size};
use bilan_shared::ids::*;
use dioxus::prelude::*;

use super::state::{Screen, Ui, services};
use super::strings as t;
use crate::DeviceStore;

/// Ids of the screen's controls (the desktop test and the component tests
/// find them by these).
pub(super) const PHOTO_ID: &str = "annotate-photo";
pub(super) const SAVE_ID: &str = "annotate-save";
pub(super) const UNDO_ID: &str = "annotate-undo";
pub(super) const TEXT_ID: &str = "annotate-text";

#[component]
pub(super) fn AnnotateScreen(id: InspectionId, finding: FindingId, photo: PhotoHash) -> Element {
    let svc = services();
    let ui = use_context::<Ui>();
    let store = svc.store.clone();
    let mut marks = use_signal({
        let (store, photo) = (store.clone(), photo.clone());
        move || latest_marks(&store, id, finding, &photo)
    });
    let mut tool = use_signal(|| MarkKind::Arrow);
    let mut words = use_signal(String::new);
    let mut placed = use_signal(|| 0u32);
    let mut draft = use_signal(|| None::<Mark>);
    let mut surface = use_signal(|| (0.0f64, 0.0f64));
    let back = move |_| ui.go(Screen::Finding(id, Some(finding)));
    // Read and encoded once, not at each move of the finger.
    let view = use_hook({
        let (store, photo) = (store.clone(), photo.clone());
        move || std::rc::Rc::new(store.photo_view(&photo).map_err(|e| e.to_string()))
    });
    let view = match view.as_ref() {
        Ok(v) => v,
        Err(e) => {
            return rsx! {
                button { onclick: back, "{t::BACK_TO_FINDING}" }
                p { class: "error", role: "alert", "{e}" }
            };
        }
    };
    let (w, h) = (f64::from(view.width), f64::from(view.height));
    // Where on the photo (0 to 1 across and down) the finger is.
    let at = move |e: &PointerEvent| {
        let (sw, sh) = surface();
        let p = e.element_coordinates();
        (sw > 0.0 && sh > 0.0).then(|| ((p.x / sw).clamp(0.0, 1.0), (p.y / sh).clamp(0.0, 1.0)))
    };
    let mut finish = move || {
        if let Some(m) = draft.take()
            && (m.x2 - m.x1).hypot(m.y2 - m.y1) >= MIN_SPAN
        {
            marks.write().push(m);
        }
    };
    let mut saving = use_signal(|| false);
    // Drawing the marks into a 2,560-pixel photo takes a moment on a
    // phone: it runs off the window's thread, the button says so.
    let save = {
        let (store, photo) = (store.clone(), photo.clone());
        move |_| {
            let (store, photo, drawn) = (store.clone(), photo.clone(), marks());
            saving.set(true);
            async move {
                let made = tokio::task::spawn_blocking(move || {
                    store.annotate_photo(id, finding, &photo, &drawn)
                })
                .await;
                saving.set(false);
                match made {
                    Ok(Ok(_)) => {
                        ui.go(Screen::Finding(id, Some(finding)));
                        // `go` clears the confirmation: say it on the finding.
                        ui.changed(Ok(()));
                    }
                    Ok(Err(e)) => ui.changed(Err(e)),
                    Err(e) => {
                        tracing::error!(error = %e, "annotation task failed");
                        ui.changed(Err(crate::MobileError::Invalid(
                            t::ANNOTATION_FAILED.into(),
                        )));
                    }
                }
            }
        }
    };
    let shown: Vec<Mark> = marks().into_iter().chain(draft()).collect();
    rsx! {
        button { id: "annotate-back", onclick: back, "{t::BACK_TO_FINDING}" }
        h1 { "{t::ANNOTATE_TITLE}" }
        p { class: "muted", "{t::ANNOTATE_HELP}" }
        div { class: "row", role: "toolbar",
            for k in MarkKind::ALL.iter().copied() {
                button { id: "tool-{k.code()}", class: if tool() == k { "sel" } else { "" }, "aria-pressed": if tool() == k { "true" } else { "false" },
                    onclick: move |_| tool.set(k), "{k.label_fr()}" }
            }
        }
        // The actions above the photo: within reach without scrolling.
        p { id: "annotate-count", class: "muted", "{t::marks(marks().len())}" }
        div { class: "row",
            button { id: UNDO_ID, disabled: marks().is_empty(), onclick: move |_| { marks.write().pop(); }, "{t::UNDO_MARK}" }
            button { id: SAVE_ID, class: "primary", disabled: marks().is_empty() || saving(), onclick: save,
                if saving() { "{t::SAVING_ANNOTATION}" } else { "{t::SAVE_ANNOTATION}" }
            }
        }
        if tool() == MarkKind::Text {
            // Not bound to `words` (a bound field loses keystrokes typed
            // fast); a new field, empty, after each text placed.
            div { key: "{placed}",
                label { r#for: TEXT_ID, "{t::TEXT_TO_PLACE}" }
                input { id: TEXT_ID, maxlength: bilan_shared::annotate::MAX_TEXT as i64,
                    oninput: move |e| words.set(e.value()) }
            }
        }
        div { id: "annotate-surface", class: "annotate",
            img { id: PHOTO_ID, src: "{view.data_url}", draggable: "false", alt: "{t::ANNOTATE_TITLE}",
                onresize: move |e| {
                    if let Ok(s) = e.get_content_box_size() {
                        surface.set((s.width, s.height));
                    }
                },
                onpointerdown: move |e| {
                    e.prevent_default();
                    let Some((x, y)) = at(&e) else { return };
                    match tool() {
                        MarkKind::Text if words().trim().is_empty() => {
                            ui.changed(Err(crate::MobileError::Invalid(t::WRITE_TEXT_FIRST.into())));
                        }
                        MarkKind::Text => {
                            marks.write().push(Mark::text(x, y, &words()));
                            words.set(String::new());
                            placed += 1;
                        }
                        MarkKind::Arrow => draft.set(Some(Mark::arrow(x, y, x, y))),
                        MarkKind::Circle => draft.set(Some(Mark::circle(x, y, x, y))),
                    }
                },
                onpointermove: move |e| {
                    if draft.peek().is_some() && let Some((x, y)) = at(&e) && let Some(m) = draft.write().as_mut() {
                        (m.x2, m.y2) = (x, y);
                    }
                },
                onpointerup: move |e| {
                    if let Some((x, y)) = at(&e) && let Some(m) = draft.write().as_mut() {
                        (m.x2, m.y2) = (x, y);
                    }
                    finish();
                },
                onpointerleave: move |_| finish(),
            }
            svg { class: "marks", view_box: "0 0 {w} {h}", "aria-hidden": "true",
                for m in shown.iter() { {mark_svg(m, w, h)} }
            }
        }
    }
}

/// The marks of the photo's latest annotation (none if it has none or the
/// inspection cannot be read: the screen then starts blank).
fn latest_marks(
    store: &DeviceStore,
    id: InspectionId,
    finding: FindingId,
    photo: &PhotoHash,
) -> Vec<Mark> {
    match store.inspection(id) {
        Ok(doc) => doc
            .findings
            .iter()
            .filter(|f| f.id == finding)
            .flat_map(|f| &f.photos)
            .find(|p| &p.hash == photo)
            .and_then(|p| p.latest_annotation())
            .map(|a| a.marks.clone())
            .unwrap_or_default(),
        Err(e) => {
            tracing::warn!(%id, error = %e, "inspection unreadable; annotation starts blank");
            Vec::new()
        }
    }
}

/// One mark over a `w` × `h` photo, as the store will draw it (same
/// stroke, head and letter sizes, in the photo's pixels).
fn mark_svg(m: &Mark, w: f64, h: f64) -> Element {
    let r = stroke_radius(w, h);
    let (a, b) = ((m.x1 * w, m.y1 * h), (m.x2 * w, m.y2 * h));
    let stroke = 2.0 * r;
    match m.kind {
        MarkKind::Arrow => {
            let wings = arrow_wings(a, b, r);
            rsx! {
                g { class: "mark", stroke_width: "{stroke}",
                    line { x1: "{a.0}", y1: "{a.1}", x2: "{b.0}", y2: "{b.1}" }
                    for (x, y) in wings { line { x1: "{b.0}", y1: "{b.1}", x2: "{x}", y2: "{y}" } }
                }
            }
        }
        MarkKind::Circle => {
            let radius = (b.0 - a.0).hypot(b.1 - a.1);
            rsx! { circle { class: "mark", stroke_width: "{stroke}", fill: "none", cx: "{a.0}", cy: "{a.1}", r: "{radius}" } }
        }
        MarkKind::Text => {
            let size = text_size(w, h);
            rsx! { text { class: "mark-text", x: "{a.0}", y: "{a.1}", font_size: "{size}", dominant_baseline: "middle", "{m.text}" } }
        }
    }
}
