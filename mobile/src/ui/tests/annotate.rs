//! The annotation screen driven on the VirtualDom: a drag draws an arrow,
//! a tap places a text, saving makes the annotated photo.

use std::any::Any;
use std::rc::Rc;

use bilan_shared::annotate::MarkKind;
use dioxus::dioxus_core::{ElementId, Mutation};
use dioxus::html::geometry::PixelsSize;
use dioxus::html::{
    PlatformEventData, SerializedFormData, SerializedPointerData, SerializedResizeData,
};

use super::super::annotate::{PHOTO_ID, SAVE_ID, TEXT_ID};
use super::*;

/// Sends an event and renders, noting the ids of what appeared.
fn send(
    dom: &mut VirtualDom,
    seen: &mut Vec<(String, ElementId)>,
    name: &str,
    id: ElementId,
    data: impl Any,
) {
    let data = PlatformEventData::new(Box::new(data));
    let event = dioxus::dioxus_core::Event::new(Rc::new(data) as Rc<dyn Any>, true);
    dom.runtime().handle_event(name, event, id);
    ids(&dom.render_immediate_to_vec().edits, seen);
}

/// A pointer at `(x, y)` CSS pixels from the photo's top left corner.
fn pointer(x: f64, y: f64) -> SerializedPointerData {
    serde_json::from_value(serde_json::json!({
        "alt_key": false, "button": 0, "buttons": 1, "client_x": x, "client_y": y,
        "ctrl_key": false, "meta_key": false, "offset_x": x, "offset_y": y,
        "page_x": x, "page_y": y, "screen_x": x, "screen_y": y, "shift_key": false,
        "pointer_id": 1, "width": 1.0, "height": 1.0, "pressure": 0.5,
        "tangential_pressure": 0.0, "tilt_x": 0, "tilt_y": 0, "twist": 0,
        "pointer_type": "touch", "is_primary": true
    }))
    .unwrap()
}

/// Every element with an id the screen has built so far.
fn ids(edits: &[Mutation], into: &mut Vec<(String, ElementId)>) {
    for m in edits {
        if let Mutation::SetAttribute {
            name: "id",
            value: dioxus::dioxus_core::AttributeValue::Text(v),
            id,
            ..
        } = m
        {
            into.push((v.clone(), *id));
        }
    }
}

fn find(seen: &[(String, ElementId)], html_id: &str) -> ElementId {
    seen.iter()
        .rev()
        .find(|(v, _)| v == html_id)
        .map(|(_, id)| *id)
        .unwrap_or_else(|| panic!("no element with id {html_id} on the screen"))
}

#[tokio::test]
async fn a_drag_draws_an_arrow_a_tap_places_a_text_and_saving_makes_the_annotated_photo() {
    dioxus::html::set_event_converter(Box::new(dioxus::html::SerializedHtmlEventConverter));
    let f = fixture(true);
    let id = f.store.start_inspection(f.complexes[0]).unwrap();
    let fid = f
        .store
        .add_finding(
            id,
            crate::NewFinding {
                component: "B3010".into(),
                title: "Membrane".into(),
                location: "Toit".into(),
                severity: Severity::Major,
                description: String::new(),
            },
        )
        .unwrap();
    let mut jpeg = Vec::new();
    image::RgbImage::from_pixel(800, 600, image::Rgb([90, 90, 90]))
        .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut jpeg, 90,
        ))
        .unwrap();
    let photo = f
        .store
        .attach_photo(id, fid, &jpeg, "image/jpeg", "Toit")
        .unwrap();
    let mut d = dom(&f, Some(Screen::Annotate(id, fid, photo.clone())));
    let mut seen = Vec::new();
    ids(&d.rebuild_to_vec().edits, &mut seen);
    let html = dioxus_ssr::render(&d);
    assert!(
        html.contains("Annoter la photo") && html.contains("Aucune marque"),
        "{html}"
    );
    assert!(html.contains(r#"viewBox="0 0 800 600""#), "{html}");
    assert!(
        html.contains(r#"id="tool-fleche""#) && html.contains(r#"aria-pressed="true""#),
        "{html}"
    );

    // The photo shows at 400 × 300: a drag from (40, 30) to (200, 150)
    // is an arrow from 10 % to 50 % across and down.
    let img = find(&seen, PHOTO_ID);
    let size = PixelsSize::new(400.0, 300.0);
    send(
        &mut d,
        &mut seen,
        "resize",
        img,
        SerializedResizeData::new(size, size),
    );
    send(&mut d, &mut seen, "pointerdown", img, pointer(40.0, 30.0));
    send(&mut d, &mut seen, "pointermove", img, pointer(120.0, 90.0));
    send(&mut d, &mut seen, "pointerup", img, pointer(200.0, 150.0));
    // A tap that does not move is not a mark.
    send(&mut d, &mut seen, "pointerdown", img, pointer(300.0, 60.0));
    send(&mut d, &mut seen, "pointerup", img, pointer(300.0, 60.0));
    let html = dioxus_ssr::render(&d);
    assert!(html.contains("1 marque"), "{html}");
    assert!(
        html.contains(r#"x1="80" y1="60" x2="400" y2="300""#),
        "arrow in the photo's pixels: {html}"
    );

    // Text: written, then placed with a tap.
    let tool = find(&seen, "tool-texte");
    send(
        &mut d,
        &mut seen,
        "click",
        tool,
        dioxus::html::SerializedMouseData::default(),
    );
    let html = dioxus_ssr::render(&d);
    assert!(html.contains("Texte à placer"), "{html}");
    let input = find(&seen, TEXT_ID);
    send(&mut d, &mut seen, "pointerdown", img, pointer(40.0, 270.0));
    assert!(
        dioxus_ssr::render(&d).contains("écrivez d&#39;abord le texte"),
        "a tap without text is refused"
    );
    send(
        &mut d,
        &mut seen,
        "input",
        input,
        SerializedFormData::new("Fissure".into(), vec![]),
    );
    send(&mut d, &mut seen, "pointerdown", img, pointer(40.0, 270.0));
    let html = dioxus_ssr::render(&d);
    assert!(
        html.contains("2 marques") && html.contains(">Fissure</text>"),
        "{html}"
    );

    let save = find(&seen, SAVE_ID);
    send(
        &mut d,
        &mut seen,
        "click",
        save,
        dioxus::html::SerializedMouseData::default(),
    );
    assert!(
        dioxus_ssr::render(&d).contains("Enregistrement…"),
        "the button says it is saving"
    );
    // The drawing runs on a worker: wait (bounded) until the screen is back
    // on the finding.
    let back = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while !dioxus_ssr::render(&d).contains("annotée") {
            d.wait_for_work().await;
            d.render_immediate_to_vec();
        }
    })
    .await;
    assert!(back.is_ok(), "the annotation was not saved within 60 s");
    let doc = f.store.inspection(id).unwrap();
    let p = &doc.findings[0].photos[0];
    let a = p.latest_annotation().expect("annotation saved");
    assert_eq!(a.marks.len(), 2);
    assert_eq!(a.marks[0].kind, MarkKind::Arrow);
    assert_eq!(
        (a.marks[0].x1, a.marks[0].y1, a.marks[0].x2, a.marks[0].y2),
        (0.1, 0.1, 0.5, 0.5)
    );
    assert_eq!(
        (a.marks[1].kind, a.marks[1].text.as_str()),
        (MarkKind::Text, "Fissure")
    );
    assert_eq!(
        f.store.photos_to_upload(i64::MAX).unwrap().len(),
        2,
        "the photo and its annotated version"
    );
    let html = dioxus_ssr::render(&d);
    assert!(
        html.contains("Enregistré") && html.contains("annotée"),
        "back on the finding: {html}"
    );
    assert!(
        html.contains(&format!(r#"id="annotate-{photo}""#)),
        "annotate again: {html}"
    );
}
