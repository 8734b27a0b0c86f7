//! The BSI report of one inspection (rapport BSI), for the office's board:
//! the complex's facts, condition and IVP with the thresholds used, ratings
//! by component group, findings with their photos, recommended work with
//! urgency, year and cost, the comparison with the previous BSI, the CS's
//! approval. A page of its own, without the site's navigation, laid out
//! for printing (page breaks between sections, none inside a finding).

use axum::extract::{Path, State};
use bilan_shared::calendar::iso_date as date;
use bilan_shared::domain::Rating;
use bilan_shared::fmt::{money, percent};
use bilan_shared::{Catalogue, InspectionDoc};
use maud::{Markup, PreEscaped, html};

use super::layout::page;
use super::session::{WebError, WebUser};
use crate::AppState;
use crate::http::{blocking, parse_inspection_id};
use crate::reports::{due_year, ivp};

/// Print layout: letter paper, sections start on a new page, a finding or
/// a group of ratings never splits.
const REPORT_CSS: &str = "
@page{size:letter;margin:16mm}
.report h2{break-before:page;break-after:avoid}.report h2.first{break-before:auto}
.report .finding,.report .group{break-inside:avoid}
.report .thumbs img{width:200px;height:150px}
.report table{font-size:14px}
";

pub(super) async fn report(
    State(state): State<AppState>,
    u: WebUser,
    Path(id): Path<String>,
) -> Result<Markup, WebError> {
    let id = parse_inspection_id(&id)?;
    let user = u.user.clone();
    let (doc, complex, office, settings) = blocking(&state, move |s| {
        let doc = s.service.inspection(&user, id)?.read()?;
        let reference = s.service.reference(&user, 0)?;
        let complex = reference
            .complexes
            .into_iter()
            .find(|c| c.id == doc.complex_id);
        let office = reference
            .offices
            .into_iter()
            .find(|o| o.id == doc.office_id)
            .map(|o| o.name)
            .unwrap_or_default();
        Ok((doc, complex, office, s.service.settings(&user)?))
    })
    .await?;
    let tz = &u.tz;
    let (total, five) = doc.costs();
    let value = complex.as_ref().map_or(0.0, |c| c.replacement_value);
    let ivp = ivp(five, value);
    let condition = settings.thresholds.condition_for(ivp);
    let b = settings.thresholds.upper_bounds;
    let inspector = inspector_name(&doc);
    let name = complex
        .as_ref()
        .map_or("Ensemble inconnu".to_string(), |c| c.name.clone());
    Ok(page(
        None,
        &format!("Rapport BSI — {name}"),
        html! {
            style { (PreEscaped(REPORT_CSS)) }
            div.report {
                p.noprint { a href={ "/inspections/" (id) } { "‹ Retour à l'inspection" } " — imprimez cette page (Ctrl+P) pour le conseil d'administration." }
                h1 { "Rapport BSI — " (name) }
                @if let Some(c) = &complex {
                    p { (c.address) ", " (c.city) " — " (office) }
                    p { (c.dwellings) " logements — construit en " (c.year_built) " — valeur de remplacement " (money(c.replacement_value)) }
                }
                p { "Bilan de santé de l'immeuble du " strong { (date(doc.created_at, tz)) } " — inspecteur : " (inspector) }
                p #approbation {
                    @match &doc.review.approval {
                        Some(a) => { "Approuvé par " strong { (a.by_name) } " (CS) le " (date(a.at, tz)) "." },
                        None => { "Non approuvé : " (doc.status.label_fr()) ". L'état ci-dessous est provisoire." },
                    }
                }
                h2.first { "État de l'immeuble" }
                p { "État " span class={ "cond cond-" (condition.code()) } { (condition.code()) } " — " (condition.label_fr()) }
                p { "Indice de vétusté physique (IVP) : " strong { (percent(ivp)) } " = travaux requis d'ici 5 ans (" (money(five)) ") ÷ valeur de remplacement (" (money(value)) "). Travaux recommandés en tout : " (money(total)) "." }
                p.muted #seuils { "Seuils du CS : A jusqu'à " (percent(b[0])) ", B jusqu'à " (percent(b[1])) ", C jusqu'à " (percent(b[2])) ", D jusqu'à " (percent(b[3])) ", E au-delà." }
                h2 { "Cotes par groupe de composants" }
                (ratings(&doc))
                h2 { "Constats" }
                @if doc.findings.is_empty() { p.muted { "Aucun constat." } }
                @for f in &doc.findings {
                    div.finding {
                        h3 { (f.component) " — " (f.title) " (" (f.severity.label_fr()) ")" }
                        p.muted { (f.location) }
                        @if !f.description.is_empty() { p { (f.description) } }
                        div.thumbs { @for p in &f.photos { img src={ "/photos/" (p.hash) "/vignette" } alt=(p.caption); } }
                    }
                }
                h2 { "Travaux recommandés" }
                table #recommandations {
                    thead { tr { th { "Travaux" } th { "Composant" } th { "Urgence" } th.num { "Année" } th.num { "Coût estimé" } } }
                    tbody {
                        @for f in &doc.findings { @for r in &f.recommendations {
                            tr { td { (r.work) } td { (f.component) } td { (r.urgency.label_fr()) }
                                td.num { (r.planned_year.unwrap_or_else(|| due_year(doc.created_at, Some(r.urgency), tz))) }
                                td.num { (money(r.estimated_cost())) } }
                        } }
                        @for w in doc.previous.iter().flat_map(|p| p.open_works()) {
                            tr { td { (w.work) " " em { "(dernier BSI, " (w.status.map_or("statut à préciser", |s| s.label_fr())) ")" } } td { (w.component) } td { (w.urgency.label_fr()) }
                                td.num { (w.planned_year.unwrap_or_else(|| due_year(w.recommended_at, Some(w.urgency), tz).max(bilan_shared::calendar::year(doc.created_at, tz)))) }
                                td.num { (money(w.cost)) } }
                        }
                        tr { th colspan="4" { "Total" } th.num { (money(total)) } }
                    }
                }
                h2 { "Comparaison avec le BSI précédent" }
                (comparison(&doc, tz))
            }
        },
    ))
}

/// The name of who started the inspection, from the document's actors.
fn inspector_name(doc: &InspectionDoc) -> String {
    doc.actors
        .values()
        .find(|a| a.user_id == doc.created_by)
        .map_or_else(|| doc.created_by.to_string(), |a| a.user_name.clone())
}

/// Per group of the catalogue: how many components got each rating, and
/// the ones rated D or E with their note.
fn ratings(doc: &InspectionDoc) -> Markup {
    let scale = [
        Rating::A,
        Rating::B,
        Rating::C,
        Rating::D,
        Rating::E,
        Rating::NotApplicable,
        Rating::NotInspected,
    ];
    html! {
        table #cotes {
            thead { tr { th { "Groupe" } @for r in scale { th.num { (r.label_fr()) } } th.num { "Non cotés" } } }
            tbody {
                @for g in &Catalogue::current().groups {
                    @let of = |want: Option<Rating>| g.components.iter().filter(|c| doc.components.get(&c.code).and_then(|r| r.rating) == want).count();
                    tr.group { td { (g.code) " " (g.label) } @for r in scale { td.num { (of(Some(r))) } } td.num { (of(None)) } }
                }
            }
        }
        @let poor: Vec<_> = Catalogue::current().components().filter_map(|(_, c)| {
            let r = doc.components.get(&c.code)?;
            matches!(r.rating, Some(Rating::D | Rating::E)).then(|| (c, r))
        }).collect();
        @if !poor.is_empty() {
            h3 { "Composants en mauvais ou très mauvais état" }
            table { tbody { @for (c, r) in &poor { tr { td { (c.code) " " (c.label) } td { (r.rating.map(|x| x.label_fr()).unwrap_or("")) } td { (r.note) } } } } }
        }
    }
}

/// What changed since the previous BSI: each component whose rating
/// differs, and what became of the work it recommended.
fn comparison(doc: &InspectionDoc, tz: &bilan_shared::calendar::TimeZone) -> Markup {
    let Some(p) = &doc.previous else {
        return html! { p.muted { "Premier BSI de cet ensemble dans Bilan." } };
    };
    let label = |r: Option<Rating>| r.map_or("non coté", |r| r.label_fr());
    let changed: Vec<_> = Catalogue::current()
        .components()
        .filter_map(|(_, c)| {
            let before = p.components.get(&c.code).and_then(|x| x.rating);
            let now = doc.components.get(&c.code).and_then(|x| x.rating);
            (before.is_some() && before != now).then_some((c, before, now))
        })
        .collect();
    html! {
        p { "BSI précédent du " (date(p.date, tz)) "." }
        table #comparaison {
            thead { tr { th { "Composant" } th { "Cote au BSI précédent" } th { "Cote à ce BSI" } } }
            tbody { @for (c, before, now) in &changed { tr { td { (c.code) " " (c.label) } td { (label(*before)) } td { (label(*now)) } } } }
        }
        @if !p.works.is_empty() {
            h3 { "Travaux recommandés au BSI précédent" }
            table { tbody { @for w in &p.works {
                tr { td { (w.work) } td { (w.status.map_or("statut à préciser", |s| s.label_fr())) }
                    td { @if let Some(y) = w.done_year { (y) } } td.num { @if let Some(c) = w.done_cost { (money(c)) } } }
            } } }
        }
    }
}
