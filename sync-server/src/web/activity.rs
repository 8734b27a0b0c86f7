//! The activity statement (relevé des activités) for a period, and its CSV.

use axum::extract::State;
use axum::response::Response;
use bilan_shared::fmt::{decimal, money, percent};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{Sheet, download, page};
use super::session::{WebError, WebQuery, WebUser};
use crate::AppState;
use crate::exports::{Column, Kind, Table};
use crate::http::blocking;

#[derive(Deserialize)]
pub(super) struct Period {
    from: Option<String>,
    to: Option<String>,
}

impl Period {
    /// Defaults to the current calendar year; a date that is not
    /// `AAAA-MM-JJ` is a 400.
    fn bounds(&self, tz: &bilan_shared::calendar::TimeZone) -> Result<(String, String), WebError> {
        let year = bilan_shared::calendar::year(bilan_shared::doc::now_ms(), tz);
        let or = |d: &Option<String>, default: String| -> Result<String, WebError> {
            match d.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
                None => Ok(default),
                Some(d) => {
                    crate::service::reports::parse_day(d).map_err(|e| WebError::Api(e.into()))?;
                    Ok(d.to_string())
                }
            }
        };
        Ok((
            or(&self.from, format!("{year}-01-01"))?,
            or(&self.to, format!("{year}-12-31"))?,
        ))
    }
}

pub(super) async fn activity_data(
    state: &AppState,
    u: &WebUser,
    p: &Period,
) -> Result<
    (
        Vec<crate::reports::ActivityLine>,
        bilan_shared::domain::CsSettings,
        String,
        String,
    ),
    WebError,
> {
    let (from, to) = p.bounds(&u.tz)?;
    let (user, f2, t2) = (u.user.clone(), from.clone(), to.clone());
    let (lines, rates) = blocking(state, move |s| s.service.activity(&user, &f2, &t2)).await?;
    Ok((lines, rates, from, to))
}

pub(super) async fn activity_page(
    State(state): State<AppState>,
    u: WebUser,
    WebQuery(p): WebQuery<Period>,
) -> Result<Markup, WebError> {
    let (lines, rates, from, to) = activity_data(&state, &u, &p).await?;
    let sum = |f: fn(&crate::reports::ActivityLine) -> f64| lines.iter().map(f).sum::<f64>();
    Ok(page(
        Some(&u),
        "Relevé des activités",
        html! {
            h1 { "Relevé des activités du " (from) " au " (to) }
            form.noprint method="get" action="/releve" {
                "Du " input type="date" name="from" value=(from); " au " input type="date" name="to" value=(to); " " button type="submit" { "Afficher" }
                " Télécharger : " a href={ "/releve.xlsx?from=" (from) "&to=" (to) } { "Excel (.xlsx)" } " · " a href={ "/releve.csv?from=" (from) "&to=" (to) } { "CSV" }
            }
            p.muted { "Taux : " (money(rates.hourly)) "/h de service, " (money(rates.travel_hourly)) "/h de déplacement, " (decimal(rates.per_km, 2)) "\u{a0}$/km, compensation " (percent(rates.compensation)) "." }
            table {
                thead { tr { th { "Organisme" } th.num { "Visites" } th.num { "Heures de service" } th.num { "Heures de déplacement" } th.num { "km" } th.num { "Honoraires (services)" } th.num { "Honoraires (déplacement)" } th.num { "Frais de déplacement" } th.num { "Compensation" } th.num { "Total" } } }
                tbody {
                    @for l in &lines { tr { td { (l.office) } td.num { (l.visits) } td.num { (decimal(l.hours, 2)) } td.num { (decimal(l.travel_hours, 2)) } td.num { (decimal(l.km, 0)) }
                        td.num { (money(l.fees)) } td.num { (money(l.travel_fees)) } td.num { (money(l.travel_costs)) } td.num { (money(l.compensation)) } td.num { strong { (money(l.total)) } } } }
                    tr { th { "Total" } th {} th.num { (decimal(sum(|l| l.hours), 2)) } th.num { (decimal(sum(|l| l.travel_hours), 2)) } th.num { (decimal(sum(|l| l.km), 0)) }
                        th.num { (money(sum(|l| l.fees))) } th.num { (money(sum(|l| l.travel_fees))) } th.num { (money(sum(|l| l.travel_costs))) } th.num { (money(sum(|l| l.compensation))) } th.num { (money(sum(|l| l.total))) } }
                }
            }
        },
    ))
}

/// The statement's lines as a table to download.
async fn activity_table(state: &AppState, u: &WebUser, p: &Period) -> Result<Table, WebError> {
    let (lines, _, from, to) = activity_data(state, u, p).await?;
    Ok(Table {
        file: format!("releve-des-activites-{from}-{to}"),
        sheet: "Relevé des activités",
        columns: vec![
            Column::new("organisme", "Organisme", Kind::Text),
            Column::new("visites", "Visites", Kind::Count),
            Column::new("heures_service", "Heures de service", Kind::Hours),
            Column::new("heures_deplacement", "Heures de déplacement", Kind::Hours),
            Column::new("km", "Kilomètres", Kind::Km),
            Column::new("frais", "Frais engagés", Kind::Money),
            Column::new("honoraires_services", "Honoraires (services)", Kind::Money),
            Column::new(
                "honoraires_deplacement",
                "Honoraires (déplacement)",
                Kind::Money,
            ),
            Column::new("frais_deplacement", "Frais de déplacement", Kind::Money),
            Column::new("compensation", "Compensation", Kind::Money),
            Column::new("total", "Total", Kind::Money),
        ],
        rows: lines
            .into_iter()
            .map(|l| {
                vec![
                    l.office.into(),
                    l.visits.into(),
                    l.hours.into(),
                    l.travel_hours.into(),
                    l.km.into(),
                    l.expenses.into(),
                    l.fees.into(),
                    l.travel_fees.into(),
                    l.travel_costs.into(),
                    l.compensation.into(),
                    l.total.into(),
                ]
            })
            .collect(),
    })
}

pub(super) async fn activity_csv(
    State(state): State<AppState>,
    u: WebUser,
    WebQuery(p): WebQuery<Period>,
) -> Result<Response, WebError> {
    download(&activity_table(&state, &u, &p).await?, Sheet::Csv)
}

pub(super) async fn activity_xlsx(
    State(state): State<AppState>,
    u: WebUser,
    WebQuery(p): WebQuery<Period>,
) -> Result<Response, WebError> {
    download(&activity_table(&state, &u, &p).await?, Sheet::Xlsx)
}
