//! The works plan: recommended work by office and year against the budget
//! envelopes, chart, downloads, and moving a work to another year.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bilan_shared::fmt::money;
use bilan_shared::ids::RecommendationId;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{Sheet, download, page};

use super::session::{WebError, WebForm, WebUser, check_csrf};
use crate::AppState;
use crate::error::ApiError;
use crate::exports::{Column, Kind, Table};
use crate::http::{blocking, parse_inspection_id};

pub(super) async fn plan_lines(
    state: &AppState,
    u: &WebUser,
) -> Result<Vec<crate::reports::PlanLine>, WebError> {
    let user = u.user.clone();
    Ok(blocking(state, move |s| s.service.works_plan(&user)).await?)
}

pub(super) async fn plan_page(
    State(state): State<AppState>,
    u: WebUser,
) -> Result<Markup, WebError> {
    let lines = plan_lines(&state, &u).await?;
    let user = u.user.clone();
    let budgets = blocking(&state, move |s| s.service.budgets_by_office(&user)).await?;
    let totals = crate::reports::PlanTotals::of(&lines);
    let (years, offices) = (&totals.years, &totals.offices);
    let total = |o: Option<&str>, y: Option<i64>| totals.total(o, y);
    let max_year = totals.largest_year();
    let envelope = |o: &str, y: i64| budgets.get(&(o.to_string(), y)).copied();
    let manager = crate::service::access::require_manager(&u.user).is_ok();
    let year_envelope = |y: i64| {
        let e: Vec<f64> = offices.iter().filter_map(|o| envelope(o, y)).collect();
        (!e.is_empty()).then(|| e.iter().sum::<f64>())
    };
    let cell = |amount: f64, envelope: Option<f64>| {
        let over = envelope.is_some_and(|e| amount > e);
        html! {
            td.num.over[over] title=[over.then_some("Dépasse l'enveloppe")] {
                (money(amount))
                @if let Some(e) = envelope { br; span.muted { "enveloppe " (money(e)) } }
                @if over { br; strong { "dépassement" } }
            }
        }
    };
    Ok(page(
        Some(&u),
        "Plan de travaux",
        html! {
            h1 { "Plan pluriannuel d'intervention (ébauche)" }
            p.noprint { "Télécharger : " a href="/plan.xlsx" { "Excel (.xlsx)" } " · " a href="/plan.csv" { "CSV" } " — imprimez cette page pour une version papier." }
            h2 { "Totaux par organisme et par année" }
            p.muted { "Chaque année est comparée à l'enveloppe budgétaire de l'organisme (Paramètres) ; une année qui la dépasse est marquée." }
            table #totaux {
                thead { tr { th { "Organisme" } @for y in years { th.num { (y) } } th.num { "Total" } } }
                tbody {
                    @for o in offices { tr { td { (o) } @for y in years { (cell(total(Some(o), Some(*y)), envelope(o, *y))) } td.num { strong { (money(total(Some(o), None))) } } } }
                    tr { th { "Total" } @for y in years { (cell(total(None, Some(*y)), year_envelope(*y))) } th.num { (money(total(None, None))) } }
                }
            }
            h2 { "Coût par année" }
            svg width="560" height=(30 + 26 * years.len()) role="img" aria-label="Coût des travaux par année" {
                @for (i, y) in years.iter().enumerate() {
                    @let w = (400.0 * total(None, Some(*y)) / max_year) as i64;
                    text x="0" y=(20 + i * 26) font-size="14" { (y) }
                    rect x="50" y=(6 + i * 26) width=(w.max(1)) height="18" fill="#0b5394" {}
                    text x=(56 + w) y=(20 + i * 26) font-size="13" { (money(total(None, Some(*y)))) }
                }
            }
            h2 { "Travaux par ensemble" }
            @if manager { p.muted.noprint { "Pour déplacer des travaux à une autre année, changez l'année et validez : la modification est conservée dans l'inspection, journalisée et transmise aux appareils." } }
            table #travaux {
                thead { tr { th { "Organisme" } th { "Ensemble" } th { "Année" } th { "Travaux" } th { "Urgence" } th.num { "Coût estimé" } } }
                tbody { @for l in &lines { tr {
                    td { (l.office) } td { (l.complex) }
                    td {
                        @if manager {
                            form.inline method="post" action="/plan/deplacer" {
                                input type="hidden" name="csrf" value=(u.csrf);
                                input type="hidden" name="inspection" value=(l.doc_id);
                                input type="hidden" name="travaux" value=(l.rec_id);
                                input type="number" name="annee" value=(l.year) min="2000" max="2100" aria-label={ "Année de « " (l.work) " »" } style="width:6em";
                                " " button type="submit" { "Déplacer" }
                            }
                        } @else { (l.year) }
                        @if l.moved { br; span.muted { "déplacé par le CS" } }
                    }
                    td { (l.work) } td { (l.urgency) } td.num { (money(l.cost)) } } } }
            }
        },
    ))
}

/// The works plan's lines as a table to download.
async fn plan_table(state: &AppState, u: &WebUser) -> Result<Table, WebError> {
    let lines = plan_lines(state, u).await?;
    Ok(Table {
        file: "plan-de-travaux".into(),
        sheet: "Plan de travaux",
        columns: vec![
            Column::new("organisme", "Organisme", Kind::Text),
            Column::new("ensemble", "Ensemble", Kind::Text),
            Column::new("annee", "Année", Kind::Year).untotalled(),
            Column::new("travaux", "Travaux", Kind::Text),
            Column::new("urgence", "Urgence", Kind::Text),
            Column::new("cout_estime", "Coût estimé", Kind::Money),
        ],
        rows: lines
            .into_iter()
            .map(|l| {
                vec![
                    l.office.into(),
                    l.complex.into(),
                    l.year.into(),
                    l.work.into(),
                    l.urgency.into(),
                    l.cost.into(),
                ]
            })
            .collect(),
    })
}

pub(super) async fn plan_csv(
    State(state): State<AppState>,
    u: WebUser,
) -> Result<Response, WebError> {
    download(&plan_table(&state, &u).await?, Sheet::Csv)
}

pub(super) async fn plan_xlsx(
    State(state): State<AppState>,
    u: WebUser,
) -> Result<Response, WebError> {
    download(&plan_table(&state, &u).await?, Sheet::Xlsx)
}

#[derive(Deserialize)]
pub(super) struct MoveForm {
    csrf: String,
    inspection: String,
    travaux: String,
    annee: String,
}

/// Moves a work to another year (the manager), then back to the plan.
pub(super) async fn move_work(
    State(state): State<AppState>,
    u: WebUser,
    WebForm(f): WebForm<MoveForm>,
) -> Result<Response, WebError> {
    check_csrf(&u, &f.csrf)?;
    let id = parse_inspection_id(&f.inspection)?;
    let work: RecommendationId = f
        .travaux
        .parse()
        .map_err(|_| ApiError::bad_request("Travaux inconnus."))?;
    let year: i64 = f
        .annee
        .trim()
        .parse()
        .map_err(|_| ApiError::bad_request(format!("« {} » n'est pas une année.", f.annee)))?;
    let user = u.user.clone();
    blocking(&state, move |s| s.service.move_work(&user, id, work, year)).await?;
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, "/plan")]).into_response())
}
