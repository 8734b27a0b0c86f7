//! The cycle's planning: per office and per inspector what is overdue,
//! due, in progress, done and planned; every complex with its state, its
//! due date and its planned visit; the manager assigns complexes (one or
//! many, checked in the table) to an inspector and a month; downloads.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bilan_shared::calendar;
use bilan_shared::ids::{ComplexId, OfficeId, UserId};
use bilan_shared::planning::{CycleState, Month};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{Sheet, download, page};
use super::session::{WebError, WebForm, WebQuery, WebUser, check_csrf};
use crate::AppState;
use crate::error::ApiError;
use crate::exports::{Column, Kind, Table};
use crate::http::blocking;
use crate::service::planning::{PlanningFilter, PlanningView, Tally};

/// The page's filters as the query string carries them.
#[derive(Debug, Default, Deserialize)]
pub(super) struct PlanningQuery {
    organisme: Option<String>,
    /// A user id, or `aucun` for the complexes planned for nobody.
    inspecteur: Option<String>,
    etat: Option<String>,
}

impl PlanningQuery {
    fn filter(&self) -> Result<PlanningFilter, ApiError> {
        let blank = |s: &Option<String>| {
            s.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let bad = |what: &str| ApiError::bad_request(format!("Filtre invalide : {what}."));
        Ok(PlanningFilter {
            office: blank(&self.organisme)
                .map(|o| o.parse::<OfficeId>().map_err(|_| bad("organisme")))
                .transpose()?,
            inspector: blank(&self.inspecteur)
                .map(|i| match i.as_str() {
                    "aucun" => Ok(None),
                    _ => i.parse::<UserId>().map(Some).map_err(|_| bad("inspecteur")),
                })
                .transpose()?,
            state: blank(&self.etat)
                .map(|e| CycleState::from_code(&e).ok_or_else(|| bad("état")))
                .transpose()?,
        })
    }
}

async fn planning_view(
    state: &AppState,
    u: &WebUser,
    q: &PlanningQuery,
) -> Result<PlanningView, WebError> {
    let filter = q.filter()?;
    let user = u.user.clone();
    Ok(blocking(state, move |s| s.service.planning(&user, &filter)).await?)
}

fn tally_table(id: &str, first: &str, rows: &[Tally]) -> Markup {
    html! {
        table id=(id) {
            thead { tr { th { (first) } th.num { "Ensembles" } th.num { "En retard" } th.num { "À faire cette année" }
                th.num { "En cours" } th.num { "Faits cette année" } th.num { "Planifiés" } } }
            tbody { @for t in rows { tr { td { (t.label) } td.num { (t.complexes) } td.num.over[t.overdue > 0] { (t.overdue) }
                td.num { (t.due) } td.num { (t.in_progress) } td.num { (t.done) } td.num { (t.planned) } } } }
        }
    }
}

pub(super) async fn planning_page(
    State(state): State<AppState>,
    u: WebUser,
    WebQuery(q): WebQuery<PlanningQuery>,
) -> Result<Markup, WebError> {
    let v = planning_view(&state, &u, &q).await?;
    let manager = crate::service::access::require_manager(&u.user).is_ok();
    let sel = |a: &Option<String>, b: &str| a.as_deref() == Some(b);
    let query = serde_urlencoded::to_string([
        ("organisme", q.organisme.clone().unwrap_or_default()),
        ("inspecteur", q.inspecteur.clone().unwrap_or_default()),
        ("etat", q.etat.clone().unwrap_or_default()),
    ])
    .unwrap_or_default();
    let this_month = Month::of_ms(bilan_shared::doc::now_ms(), &v.tz);
    Ok(page(
        Some(&u),
        "Planification",
        html! {
            h1 { "Planification du cycle de 5 ans" }
            p.muted { "L'échéance d'un ensemble est cinq ans après son dernier BSI approuvé (un ensemble jamais approuvé est en retard). « À faire » et « faits » comptent l'année " (v.year) "." }
            p.noprint { "Télécharger : " a href={ "/planification.xlsx?" (query) } { "Excel (.xlsx)" } " · " a href={ "/planification.csv?" (query) } { "CSV" } }
            h2 { "Par organisme" }
            (tally_table("par-organisme", "Organisme", &v.by_office))
            h2 { "Par inspecteur" }
            (tally_table("par-inspecteur", "Inspecteur", &v.by_inspector))
            h2 { "Ensembles" }
            form.noprint method="get" action="/planification" {
                label { "Organisme " select name="organisme" { option value="" { "Tous" }
                    @for (id, name) in &v.offices { option value=(id) selected[sel(&q.organisme, &id.to_string())] { (name) } } } }
                " "
                label { "Inspecteur " select name="inspecteur" { option value="" { "Tous" } option value="aucun" selected[sel(&q.inspecteur, "aucun")] { "Personne" }
                    @for (id, name) in &v.inspectors { option value=(id) selected[sel(&q.inspecteur, &id.to_string())] { (name) } } } }
                " "
                label { "Cycle " select name="etat" { option value="" { "Tous" }
                    @for s in CycleState::ALL { option value=(s.code()) selected[sel(&q.etat, s.code())] { (s.label_fr()) } } } }
                " " button type="submit" { "Filtrer" }
            }
            form #planifier method="post" action="/planification" {
                @if manager {
                    input type="hidden" name="csrf" value=(u.csrf);
                    fieldset.noprint {
                        legend { "Planifier les ensembles cochés" }
                        label { "Inspecteur " select #inspecteur name="inspecteur" {
                            @for (id, name) in &v.inspectors { option value=(id) { (name) } } } }
                        " "
                        label { "Mois prévu " input #mois type="month" name="mois" min="2000-01" value=(this_month) placeholder="AAAA-MM"; }
                        " " button #assigner type="submit" name="action" value="assigner" { "Assigner" }
                        " " button #retirer type="submit" name="action" value="retirer" { "Retirer du plan" }
                    }
                }
                table #ensembles {
                    thead { tr { @if manager { th { "Choisir" } } th { "Organisme" } th { "Ensemble" } th { "Dernier BSI approuvé" } th { "État de l'immeuble" } th { "Échéance" } th { "Cycle" } th { "Inspecteur" } th { "Mois prévu" } } }
                    tbody { @for l in &v.lines { tr data-code=(l.code) {
                        @if manager { td { input type="checkbox" name="ensemble" value=(l.complex_id) aria-label={ "Choisir " (l.code) }; } }
                        td { (l.office) }
                        td { a href={ "/ensembles/" (l.complex_id) } { (l.code) " — " (l.name) } }
                        td { (l.last_approved.map(|a| calendar::iso_date(a, &v.tz)).unwrap_or_else(|| "jamais".into())) }
                        td { @if let Some(c) = l.condition { span class={ "cond cond-" (c.code()) } { (c.code()) } } }
                        td { (l.due.map(|d| d.to_string()).unwrap_or_else(|| "maintenant".into())) }
                        td.state { (l.state.label_fr()) }
                        td { (l.inspector) }
                        td { @if let Some(m) = l.planned { (m.label_fr()) } @else if l.inspector_id.is_some() { span.muted { "à fixer" } }
                             @if l.late { br; strong.over { "après l'échéance" } } }
                    } } }
                }
            }
        },
    ))
}

/// The planning's lines as a table to download (with the page's filters).
async fn planning_table(
    state: &AppState,
    u: &WebUser,
    q: &PlanningQuery,
) -> Result<Table, WebError> {
    let v = planning_view(state, u, q).await?;
    Ok(Table {
        file: "planification".into(),
        sheet: "Planification",
        columns: vec![
            Column::new("organisme", "Organisme", Kind::Text),
            Column::new("code", "Code", Kind::Text),
            Column::new("ensemble", "Ensemble", Kind::Text),
            Column::new("dernier_bsi_approuve", "Dernier BSI approuvé", Kind::Text),
            Column::new("etat_immeuble", "État de l'immeuble", Kind::Text),
            Column::new("echeance", "Échéance", Kind::Text),
            Column::new("cycle", "Cycle", Kind::Text),
            Column::new("inspecteur", "Inspecteur", Kind::Text),
            Column::new("mois_prevu", "Mois prévu", Kind::Text),
            Column::new("apres_echeance", "Après l'échéance", Kind::Count),
        ],
        rows: v
            .lines
            .into_iter()
            .map(|l| {
                vec![
                    l.office.into(),
                    l.code.into(),
                    l.name.into(),
                    l.last_approved
                        .map(|a| calendar::iso_date(a, &v.tz))
                        .unwrap_or_default()
                        .into(),
                    l.condition
                        .map(|c| c.code().to_string())
                        .unwrap_or_default()
                        .into(),
                    l.due.map(|d| d.to_string()).unwrap_or_default().into(),
                    l.state.label_fr().to_string().into(),
                    l.inspector.into(),
                    l.planned.map(|m| m.to_string()).unwrap_or_default().into(),
                    u32::from(l.late).into(),
                ]
            })
            .collect(),
    })
}

pub(super) async fn planning_csv(
    State(state): State<AppState>,
    u: WebUser,
    WebQuery(q): WebQuery<PlanningQuery>,
) -> Result<Response, WebError> {
    download(&planning_table(&state, &u, &q).await?, Sheet::Csv)
}

pub(super) async fn planning_xlsx(
    State(state): State<AppState>,
    u: WebUser,
    WebQuery(q): WebQuery<PlanningQuery>,
) -> Result<Response, WebError> {
    download(&planning_table(&state, &u, &q).await?, Sheet::Xlsx)
}

/// Assigns (or withdraws) the checked complexes, then back to the page.
/// The form repeats `ensemble` once per checked complex.
pub(super) async fn planning_submit(
    State(state): State<AppState>,
    u: WebUser,
    WebForm(fields): WebForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let field = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim());
    check_csrf(&u, field("csrf").unwrap_or_default())?;
    let complexes = fields
        .iter()
        .filter(|(n, _)| n == "ensemble")
        .map(|(_, v)| v.parse::<ComplexId>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ApiError::bad_request("Ensemble inconnu."))?;
    let (inspector, month) = match field("action") {
        Some("retirer") => (None, None),
        Some("assigner") => {
            let inspector = field("inspecteur")
                .unwrap_or_default()
                .parse::<UserId>()
                .map_err(|_| ApiError::bad_request("Choisissez un inspecteur."))?;
            let month = field("mois")
                .filter(|m| !m.is_empty())
                .map(Month::parse)
                .transpose()
                .map_err(ApiError::bad_request)?;
            (Some(inspector), month)
        }
        _ => {
            return Err(ApiError::bad_request(
                "Action inconnue : « Assigner » ou « Retirer du plan ».",
            )
            .into());
        }
    };
    let user = u.user.clone();
    blocking(&state, move |s| {
        s.service.plan_visits(&user, &complexes, inspector, month)
    })
    .await?;
    Ok((
        StatusCode::SEE_OTHER,
        [(header::LOCATION, "/planification")],
    )
        .into_response())
}
