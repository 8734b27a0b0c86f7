//! The territory overview: per office progress in the cycle and building
//! conditions.

use axum::extract::State;
use maud::{Markup, html};

use super::layout::{condition_chart, page, unreadable_settings_notice};
use super::session::{WebError, WebUser};
use crate::AppState;
use crate::http::blocking;

pub(super) async fn overview(
    State(state): State<AppState>,
    u: WebUser,
) -> Result<Markup, WebError> {
    let user = u.user.clone();
    let rows = blocking(&state, move |s| s.service.overview(&user)).await?;
    let mut total = [0u32; 5];
    for r in &rows {
        for (t, c) in total.iter_mut().zip(r.conditions) {
            *t += c;
        }
    }
    Ok(page(
        Some(&u),
        "Aperçu du territoire",
        html! {
            h1 { "Aperçu du territoire" }
            (unreadable_settings_notice(&u.settings))
            table {
                thead { tr { th { "Organisme desservi" } th.num { "Ensembles" } th.num { "Inspectés (cycle de 5 ans)" } th.num { "Approuvés (cycle)" } th.num { "En retard" }
                    @for c in ["A", "B", "C", "D", "E"] { th.num { "État " (c) } } } }
                tbody {
                    @for r in &rows {
                        tr { td { a href={ "/inspections?office=" (r.office_id) } { (r.office) } } td.num { (r.complexes) } td.num { (r.inspected) } td.num { (r.approved) } td.num { (r.overdue) }
                            @for c in r.conditions { td.num { (c) } } }
                    }
                }
            }
            h2 { "État des immeubles (dernier BSI approuvé)" }
            (condition_chart(total))
        },
    ))
}
