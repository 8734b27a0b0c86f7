//! A finding: new (component, title, location, severity) or existing, with
//! its photos (the French photo button) and its recommendations.

use bilan_shared::Catalogue;
use bilan_shared::domain::{Severity, Urgency};
use bilan_shared::ids::*;
use dioxus::prelude::*;

use super::state::{Screen, Ui, services};
use super::strings as t;
use crate::store::{NewFinding, NewRecommendation};

#[component]
pub(super) fn FindingScreen(id: InspectionId, finding: Option<FindingId>) -> Element {
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
    let num = |s: String| bilan_shared::fmt::parse_decimal(&s).unwrap_or(0.0);
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
                div { class: "thumb",
                    if let Some(src) = store2.thumbnail_data_url(p.shown()) { img { src: "{src}", alt: "{p.caption}" } } else { span { class: "muted", "{p.caption}" } }
                    if p.latest_annotation().is_some() { span { class: "muted", "{t::ANNOTATED}" } }
                    if store2.holds_photo(&p.hash) {
                        button { id: "annotate-{p.hash}", onclick: { let h = p.hash.clone(); move |_| ui.go(Screen::Annotate(id, fid, h.clone())) }, "{t::ANNOTATE}" }
                    }
                }
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
