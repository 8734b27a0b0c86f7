//! BSI progress per complex in the five-year cycle, and its CSV.

use axum::extract::State;
use axum::response::Response;
use maud::{Markup, html};

use super::layout::{csv_response, page};
use super::session::{WebError, WebUser};
use crate::AppState;
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
            p.noprint { a href="/avancement.csv" { "Télécharger en CSV pour la SHQ" } }
            table {
                thead { tr { th { "Organisme" } th.num { "Ensembles à inspecter" } th.num { "Inspectés" } th.num { "Approuvés" } th.num { "% approuvés" } } }
                tbody { @for r in &rows { tr { td { (r.office) } td.num { (r.complexes) } td.num { (r.inspected) } td.num { (r.approved) }
                    td.num { (format!("{:.0}", 100.0 * f64::from(r.approved) / f64::from(r.complexes.max(1)))) " %" } } } }
            }
        },
    ))
}

pub(super) async fn progress_csv(
    State(state): State<AppState>,
    u: WebUser,
) -> Result<Response, WebError> {
    let rows = progress_rows(&state, &u)
        .await?
        .into_iter()
        .map(|r| {
            vec![
                r.office,
                r.complexes.to_string(),
                r.inspected.to_string(),
                r.approved.to_string(),
            ]
        })
        .collect();
    csv_response(
        "avancement-bsi.csv",
        &[
            "organisme",
            "ensembles_a_inspecter",
            "inspectes",
            "approuves",
        ],
        rows,
    )
}
