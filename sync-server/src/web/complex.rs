//! A complex's page: facts, every BSI with its date, inspector, IVP and
//! condition, the IVP's trend over the approved BSIs (inline SVG), the
//! work still open and the work done.

use axum::extract::{Path, State};
use bilan_shared::calendar::iso_date as date;
use bilan_shared::fmt::{money, percent};
use bilan_shared::ids::ComplexId;
use maud::{Markup, html};

use super::layout::page;
use super::session::{WebError, WebUser};
use crate::AppState;
use crate::http::blocking;
use crate::service::complexes::HistoryLine;

pub(super) async fn complex_page(
    State(state): State<AppState>,
    u: WebUser,
    Path(id): Path<String>,
) -> Result<Markup, WebError> {
    let id: ComplexId = id.parse().map_err(|_| {
        WebError::Api(crate::error::StoreError::NotFound(format!("ensemble {id}")).into())
    })?;
    let user = u.user.clone();
    let p = blocking(&state, move |s| s.service.complex_page(&user, id)).await?;
    let c = &p.complex;
    let approved: Vec<&HistoryLine> = p.inspections.iter().filter(|h| h.approved()).collect();
    Ok(page(
        Some(&u),
        &c.name,
        html! {
            h1 { (c.name) }
            p { (c.address) ", " (c.city) " — " (p.office) " — " (c.dwellings) " logements, construit en " (c.year_built)
                " — valeur de remplacement " (money(c.replacement_value)) }
            @match approved.first() {
                Some(h) => p #etat { "État : " span class={ "cond cond-" (h.condition.code()) } { (h.condition.code()) }
                    " — dernier BSI approuvé du " (date(h.date, &u.tz)) ", IVP " (percent(h.ivp)) },
                None => p #etat.muted { "Aucun BSI approuvé : pas d'état établi." },
            }
            h2 { "BSI de l'ensemble" }
            table #historique {
                thead { tr { th { "Date" } th { "Statut" } th { "Inspecteur" } th.num { "Constats" } th.num { "Travaux ≤ 5 ans" } th.num { "IVP" } th { "État" } } }
                tbody {
                    @for h in &p.inspections {
                        tr {
                            td { a href={ "/inspections/" (h.doc_id) } { (date(h.date, &u.tz)) } }
                            td { (h.status.map(|s| s.label_fr()).unwrap_or("?")) }
                            td { (h.inspector) } td.num { (h.findings) } td.num { (money(h.cost_5y)) } td.num { (percent(h.ivp)) }
                            td { @if h.approved() { span class={ "cond cond-" (h.condition.code()) } { (h.condition.code()) } }
                                 @else { span.muted { (h.condition.code()) " (provisoire)" } } }
                        }
                    }
                }
            }
            @if approved.len() > 1 {
                h2 { "Évolution de l'IVP (BSI approuvés)" }
                (trend(&approved, &u.tz, p.thresholds.upper_bounds[2]))
            }
            h2 { "Travaux à faire" }
            @if p.open_work.is_empty() { p.muted { "Aucun travail recommandé en cours." } }
            @else {
                table #travaux-ouverts {
                    thead { tr { th { "Année" } th { "Travaux" } th { "Urgence" } th.num { "Coût estimé" } } }
                    tbody { @for l in &p.open_work { tr { td { (l.year) } td { (l.work) } td { (l.urgency) } td.num { (money(l.cost)) } } } }
                }
            }
            h2 { "Travaux réalisés" }
            @if p.done.is_empty() { p.muted { "Aucun travail signalé comme réalisé." } }
            @else {
                table #travaux-realises {
                    thead { tr { th { "Année" } th { "Travaux" } th.num { "Coût réel" } th { "Signalé au BSI du" } } }
                    tbody { @for d in &p.done { tr {
                        td { (d.year.map(|y| y.to_string()).unwrap_or_default()) } td { (d.work) }
                        td.num { (d.cost.map(money).unwrap_or_default()) } td { (date(d.reported_at, &u.tz)) } } } }
                }
            }
        },
    ))
}

/// The IVP of the approved BSIs over time (oldest left), with the line of
/// the poor-condition threshold (the upper bound of band C).
fn trend(approved: &[&HistoryLine], tz: &bilan_shared::calendar::TimeZone, poor: f64) -> Markup {
    let points: Vec<&&HistoryLine> = approved.iter().rev().collect();
    let top = points.iter().map(|h| h.ivp).fold(poor * 1.5, f64::max);
    let (w, h, left, bottom) = (560.0, 220.0, 50.0, 30.0);
    let x = |i: usize| left + (w - left - 20.0) * i as f64 / (points.len() - 1).max(1) as f64;
    let y = |v: f64| (h - bottom) - (h - bottom - 10.0) * v / top;
    let line: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(p.ivp)))
        .collect();
    html! {
        svg #tendance width=(w) height=(h) role="img" aria-label="Évolution de l'IVP des BSI approuvés" {
            line x1=(left) x2=(w - 10.0) y1=(y(poor)) y2=(y(poor)) stroke="#a61c00" stroke-dasharray="4 4" {}
            text x=(left + 4.0) y=(y(poor) - 4.0) font-size="12" fill="#a61c00" { "seuil mauvais état " (percent(poor)) }
            polyline points=(line.join(" ")) fill="none" stroke="#0b5394" stroke-width="2" {}
            @for (i, p) in points.iter().enumerate() {
                circle cx=(x(i)) cy=(y(p.ivp)) r="4" fill="#0b5394" {}
                text x=(x(i)) y=(y(p.ivp) - 8.0) font-size="12" text-anchor="middle" { (percent(p.ivp)) }
                text x=(x(i)) y=(h - 8.0) font-size="12" text-anchor="middle" { (date(p.date, tz)) }
            }
        }
    }
}
