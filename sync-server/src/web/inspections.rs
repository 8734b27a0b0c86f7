//! The inspections list (filters, sort, pages), one inspection (IVP,
//! findings, photos, conflicts, history), the review decision and conflict
//! resolution, the photos.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bilan_shared::Catalogue;
use bilan_shared::calendar::iso_date as date;
use bilan_shared::domain::InspectionStatus;
use bilan_shared::fmt::{decimal, money, percent};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{page, photo_thumb};
use super::session::{WebError, WebForm, WebQuery, WebUser, check_csrf};
use crate::AppState;
use crate::error::ApiError;
use crate::http::{blocking, parse_inspection_id};
use crate::service::InspectionFilter;
use crate::storage::PAGE_SIZE;

pub(super) fn qs(f: &InspectionFilter, page: u32, sort: Option<&str>) -> String {
    let pairs: Vec<(&str, String)> = [
        ("office", f.office.clone()),
        ("status", f.status.clone()),
        ("condition", f.condition.clone()),
        ("conflicts", f.conflicts.clone()),
        ("inspector", f.inspector.clone()),
        ("from", f.from.clone()),
        ("to", f.to.clone()),
        ("sort", sort.map(str::to_string).or(f.sort.clone())),
        ("page", Some(page.to_string())),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k, v)))
    .collect();
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

pub(super) async fn inspections(
    State(state): State<AppState>,
    u: WebUser,
    WebQuery(f): WebQuery<InspectionFilter>,
) -> Result<Markup, WebError> {
    let (user, f2) = (u.user.clone(), f.clone());
    let ((rows, total), (offices, inspectors)) = blocking(&state, move |s| {
        Ok((
            s.service.search_inspections(&user, &f2)?,
            s.service.filter_options(&user)?,
        ))
    })
    .await?;
    let page_n = f.page.unwrap_or(1).max(1);
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let sel = |v: &Option<String>, x: &str| v.as_deref() == Some(x);
    let sort_link = |key: &str| {
        let cur = f.sort.clone().unwrap_or_else(|| "-date".into());
        let next = if cur == key {
            format!("-{key}")
        } else {
            key.to_string()
        };
        format!("/inspections?{}", qs(&f, 1, Some(&next)))
    };
    Ok(page(
        Some(&u),
        "Inspections",
        html! {
            h1 { "Inspections (" (total) ")" }
            form method="get" action="/inspections" {
                select name="office" aria-label="Organisme" { option value="" { "Tous les organismes" } @for (id, n) in &offices { option value=(id) selected[sel(&f.office, id)] { (n) } } }
                select name="status" aria-label="Statut" { option value="" { "Tous les statuts" } @for s in InspectionStatus::ALL { option value=(s.code()) selected[sel(&f.status, s.code())] { (s.label_fr()) } } }
                select name="condition" aria-label="État" { option value="" { "Tous les états" } @for c in ["A", "B", "C", "D", "E"] { option value=(c) selected[sel(&f.condition, c)] { "État " (c) } } }
                select name="inspector" aria-label="Inspecteur" { option value="" { "Tous les inspecteurs" } @for (id, n) in &inspectors { option value=(id) selected[sel(&f.inspector, id)] { (n) } } }
                label { input type="checkbox" name="conflicts" value="oui" checked[sel(&f.conflicts, "oui")]; " avec conflits" }
                " du " input type="date" name="from" value=[f.from.as_deref()];
                " au " input type="date" name="to" value=[f.to.as_deref()];
                " " button type="submit" { "Filtrer" }
            }
            table {
                thead { tr {
                    th { a href=(sort_link("date")) { "Date" } } th { a href=(sort_link("complex")) { "Ensemble" } } th { a href=(sort_link("office")) { "Organisme" } }
                    th { a href=(sort_link("status")) { "Statut" } } th { "Inspecteur" } th.num { "Cotés" } th.num { "Constats" }
                    th.num { a href=(sort_link("cost")) { "Travaux ≤ 5 ans" } } th { "État" } th { a href=(sort_link("conflicts")) { "Conflits" } }
                } }
                tbody {
                    @for r in &rows {
                        tr {
                            td { (date(r.created_at, &u.tz)) }
                            td { a href={ "/inspections/" (r.id) } { (r.complex) } br; span.muted { (r.address) } }
                            td { (r.office) } td { (r.status.label_fr()) } td { (r.inspector) }
                            td.num { (r.rated) "/" (r.present) } td.num { (r.findings) } td.num { (money(r.cost_5y)) }
                            td { span class={ "cond cond-" (r.condition) } title={ "IVP " (percent(r.ivp)) } { (r.condition) } @if r.rated < r.present { "*" } }
                            td { @if r.conflicts > 0 { span.badge { (r.conflicts) } } }
                        }
                    }
                }
            }
            p.muted { "* état provisoire : inspection dont tous les composants présents ne sont pas encore cotés." }
            p.noprint {
                @if page_n > 1 { a href={ "/inspections?" (qs(&f, page_n - 1, None)) } { "‹ Précédente" } " " }
                "Page " (page_n) " sur " (pages)
                @if page_n < pages { " " a href={ "/inspections?" (qs(&f, page_n + 1, None)) } { "Suivante ›" } }
            }
        },
    ))
}

pub(super) async fn inspection(
    State(state): State<AppState>,
    u: WebUser,
    Path(id): Path<String>,
) -> Result<Markup, WebError> {
    let id = parse_inspection_id(&id)?;
    let user = u.user.clone();
    let (doc, conflicts, history, complex, settings) = blocking(&state, move |s| {
        let insp = s.service.inspection(&user, id)?;
        let doc = insp.read()?;
        let conflicts = bilan_shared::conflicts::list(&insp)?;
        let am = insp.automerge();
        let history: Vec<(i64, String, usize, Option<String>)> = am
            .get_changes(&[])
            .iter()
            .map(|c| {
                let who = doc
                    .actors
                    .get(&c.actor_id().to_hex_string())
                    .map(|a| a.user_name.clone())
                    .unwrap_or_else(|| "serveur".into());
                (c.timestamp(), who, c.len(), c.message().cloned())
            })
            .collect();
        let complex = s.service.complex(&user, doc.complex_id)?.map(|(c, _)| c);
        let settings = s.service.settings(&user)?;
        Ok((doc, conflicts, history, complex, settings))
    })
    .await?;
    let cat = Catalogue::current();
    let (total, five) = doc.costs();
    let value = complex.as_ref().map(|c| c.replacement_value).unwrap_or(0.0);
    let ivp = crate::reports::ivp(five, value);
    let condition = settings.thresholds.condition_for(ivp);
    let manager = crate::service::access::require_manager(&u.user).is_ok();
    let (rated, present) = doc.progress();
    Ok(page(
        Some(&u),
        "Inspection",
        html! {
            h1 { @if let Some(c) = &complex { (c.name) } @else { "Inspection" } }
            p.noprint {
                a href={ "/inspections/" (id) "/rapport" } { "Rapport BSI (à imprimer)" }
                @if let Some(c) = &complex { " · " a href={ "/ensembles/" (c.id) } { "Historique de l'ensemble" } }
            }
            p { @if let Some(c) = &complex { (c.address) ", " (c.city) " — " (c.dwellings) " logements, " (c.year_built) " — valeur de remplacement " (money(c.replacement_value)) } }
            p { strong { (doc.status.label_fr()) } " — commencée le " (date(doc.created_at, &u.tz)) " — " (rated) "/" (present) " composants cotés" }
            p { "Travaux recommandés : " (money(total)) " dont " (money(five)) " d'ici 5 ans — indice de vétusté physique (IVP) "
                strong { (percent(ivp)) } " — état " span class={ "cond cond-" (condition.code()) } { (condition.code()) }
                @if rated < present { " " em { "(provisoire : " (rated) @if rated > 1 { " composants cotés" } @else { " composant coté" } " sur " (present) ", les travaux des autres ne sont pas encore comptés)" } } }
            @if !conflicts.is_empty() {
                h2 { "Conflits (" (conflicts.len()) ")" }
                @for c in &conflicts {
                    fieldset { legend { (c.label_fr()) }
                        @for v in &c.values {
                            p { strong { (match &v.value { serde_json::Value::String(s) => s.clone(), o => o.to_string() }) } " — " (v.user_name) ", " (date(v.at_ms, &u.tz))
                                @if manager {
                                    " " form.inline method="post" action={ "/inspections/" (id) "/conflit" } {
                                        input type="hidden" name="csrf" value=(u.csrf);
                                        input type="hidden" name="path" value=(c.path_string());
                                        input type="hidden" name="value_id" value=(v.value_id);
                                        button type="submit" { "Garder cette valeur" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Composants" }
            @for g in &cat.groups {
                h3 { (g.code) " " (g.label) }
                table { tbody {
                    @for c in &g.components {
                        @let r = doc.components.get(&c.code);
                        tr { td { (c.code) } td { (c.label) }
                            td { @match r.and_then(|r| r.rating) { Some(x) => { (x.label_fr()) }, None => { span.muted { "non coté" } } } }
                            td { (r.map(|r| r.note.clone()).unwrap_or_default()) } }
                    }
                } }
            }
            h2 { "Constats et recommandations" }
            @for f in &doc.findings {
                fieldset { legend { (f.component) " — " (f.title) " (" (f.severity.label_fr()) ")" }
                    p.muted { (f.location) }
                    div.thumbs { @for p in &f.photos {
                        @let shown = p.shown();
                        (photo_thumb(shown, (shown != &p.hash).then_some(&p.hash), &p.caption))
                    } }
                    @if !f.recommendations.is_empty() { table { tbody { @for r in &f.recommendations {
                        tr { td { (r.work) } td { (r.urgency.label_fr()) } td.num { (r.quantity) " " (r.unit) } td.num { (money(r.unit_cost)) } td.num { strong { (money(r.estimated_cost())) } } }
                    } } } }
                }
            }
            h2 { "Visites" }
            table { tbody { @for v in &doc.visits { tr { td { (v.date) } td.num { (decimal(v.hours_on_site, 2)) " h sur place" } td.num { (decimal(v.travel_hours, 2)) " h de déplacement" } td.num { (v.km) " km" } td.num { (money(v.expenses)) } } } } }
            h2 { "Révision" }
            @for c in &doc.review.comments { p { strong { (c.author_name) } " (" (date(c.at, &u.tz)) ") : " (c.text) } }
            @if manager {
                form method="post" action={ "/inspections/" (id) "/revision" } {
                    input type="hidden" name="csrf" value=(u.csrf);
                    p { label for="comment" { "Commentaire pour l'inspecteur" } br; textarea id="comment" name="comment" rows="3" cols="60" {} }
                    button type="submit" name="status" value="approuvee" { "Approuver" } " "
                    button type="submit" name="status" value="retournee" { "Retourner à l'inspecteur" } " "
                    button type="submit" name="status" value="" { "Commenter seulement" }
                }
            }
            h2 { "Historique" }
            table { tbody { @for (at, who, ops, msg) in history.iter().rev().take(200) {
                tr { td { (date(*at, &u.tz)) } td { (who) } td.num { (ops) " modification(s)" } td { (msg.clone().unwrap_or_default()) } }
            } } }
        },
    ))
}

#[derive(Deserialize)]
pub(super) struct ReviewForm {
    csrf: String,
    status: Option<String>,
    comment: Option<String>,
}

pub(super) async fn review(
    State(state): State<AppState>,
    u: WebUser,
    Path(id): Path<String>,
    WebForm(f): WebForm<ReviewForm>,
) -> Result<Response, WebError> {
    check_csrf(&u, &f.csrf)?;
    let id = parse_inspection_id(&id)?;
    let status = match f.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            InspectionStatus::from_code(s)
                .ok_or_else(|| ApiError::bad_request("Statut inconnu."))?,
        ),
    };
    crate::http::review_inspection(&state, u.user.clone(), id, status, f.comment).await?;
    Ok((
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("/inspections/{id}"))],
    )
        .into_response())
}

#[derive(Deserialize)]
pub(super) struct ResolveForm {
    csrf: String,
    path: String,
    value_id: String,
}

pub(super) async fn resolve(
    State(state): State<AppState>,
    u: WebUser,
    Path(id): Path<String>,
    WebForm(f): WebForm<ResolveForm>,
) -> Result<Response, WebError> {
    check_csrf(&u, &f.csrf)?;
    let id = parse_inspection_id(&id)?;
    let path = f.path.split('/').map(str::to_string).collect();
    crate::http::resolve_conflict(&state, u.user.clone(), id, path, f.value_id).await?;
    Ok((
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("/inspections/{id}"))],
    )
        .into_response())
}

pub(super) async fn photo(
    State(state): State<AppState>,
    u: WebUser,
    Path(hash): Path<String>,
) -> Result<Response, WebError> {
    Ok(crate::http::serve_photo(state, u.user.clone(), hash, false).await?)
}

pub(super) async fn thumb(
    State(state): State<AppState>,
    u: WebUser,
    Path(hash): Path<String>,
) -> Result<Response, WebError> {
    Ok(crate::http::serve_photo(state, u.user.clone(), hash, true).await?)
}
