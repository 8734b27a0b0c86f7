//! BSI progress per complex in the five-year cycle, and its CSV.

use axum::extract::State;
use axum::response::Response;
use maud::{Markup, html};

use super::layout::{Sheet, download, page};
use super::session::{WebError, WebUser};
use crate::AppState;
use crate::exports::{Column, Kind, Table};
use crate::http::blocking;

pub(super) async fn progress_rows(
    state: &AppState,
    u: &WebUser,
) -> Result<Vec<crate::reports::OfficeOverview>, WebError> {
    let user = u.user.clone();
    Ok(blocking(state, move |s| s.service.overview(&user)).await?)
}

pub(super) async fn progress_page(
    State(state): State<AppState>,
    u: WebUser,
) -> Result<Markup, WebError> {
    let rows = progress_rows(&state, &u).await?;
    Ok(page(
        Some(&u),
        "Avancement des BSI",
        html! {
            h1 { "Avancement des BSI (cycle de 5 ans)" }
            p.noprint { "Télécharger pour la SHQ : " a href="/avancement.xlsx" { "Excel (.xlsx)" } " · " a href="/avancement.csv" { "CSV" } }
            table {
                thead { tr { th { "Organisme" } th.num { "Ensembles à inspecter" } th.num { "Inspectés" } th.num { "Approuvés" } th.num { "% approuvés" } } }
                tbody { @for r in &rows { tr { td { (r.office) } td.num { (r.complexes) } td.num { (r.inspected) } td.num { (r.approved) }
                    td.num { (format!("{:.0}", 100.0 * f64::from(r.approved) / f64::from(r.complexes.max(1)))) " %" } } } }
            }
        },
    ))
}

/// Progress per office as a table to download.
async fn progress_table(state: &AppState, u: &WebUser) -> Result<Table, WebError> {
    Ok(Table {
        file: "avancement-bsi".into(),
        sheet: "Avancement des BSI",
        columns: vec![
            Column::new("organisme", "Organisme", Kind::Text),
            Column::new(
                "ensembles_a_inspecter",
                "Ensembles à inspecter",
                Kind::Count,
            ),
            Column::new("inspectes", "Inspectés (cycle)", Kind::Count),
            Column::new("approuves", "Approuvés (cycle)", Kind::Count),
        ],
        rows: progress_rows(state, u)
            .await?
            .into_iter()
            .map(|r| {
                vec![
                    r.office.into(),
                    r.complexes.into(),
                    r.inspected.into(),
                    r.approved.into(),
                ]
            })
            .collect(),
    })
}

pub(super) async fn progress_csv(
    State(state): State<AppState>,
    u: WebUser,
) -> Result<Response, WebError> {
    download(&progress_table(&state, &u).await?, Sheet::Csv)
}

pub(super) async fn progress_xlsx(
    State(state): State<AppState>,
    u: WebUser,
) -> Result<Response, WebError> {
    download(&progress_table(&state, &u).await?, Sheet::Xlsx)
}
