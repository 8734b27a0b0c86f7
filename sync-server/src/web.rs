//! The CS review pages, rendered on the server (maud, no front-end build, no
//! CDN), in French. Same accounts as the app: login sets an HttpOnly,
//! SameSite=Strict session cookie holding a bearer token (stored hashed);
//! every form carries a CSRF token derived from the session. Office readers
//! see their office only, managers their territory, nobody another territory.

use axum::Router;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use bilan_shared::Catalogue;
use bilan_shared::domain::{InspectionStatus, Role};
use bilan_shared::protocol::UserInfo;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::audit::{AuditAction, AuditEntry};
use crate::error::ApiError;
use crate::http::{blocking, parse_inspection_id};
use crate::queries::{InspectionFilter, PAGE_SIZE};

const COOKIE: &str = "bilan_session";

const CSS: &str = "
body{font:16px/1.45 system-ui,'DejaVu Sans',sans-serif;margin:0;color:#111}
header{background:#0b5394;color:#fff;padding:10px 16px;display:flex;gap:16px;align-items:center;flex-wrap:wrap}
header a{color:#fff}main{padding:16px;max-width:1200px;margin:auto}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}.num{text-align:right}.error{color:#a61c00;font-weight:600}.muted{color:#555}
.cond{display:inline-block;min-width:24px;text-align:center;border-radius:4px;color:#fff;font-weight:700}
.cond-A{background:#1e7b34}.cond-B{background:#6aa84f}.cond-C{background:#bf9000}.cond-D{background:#b45f06}.cond-E{background:#a61c00}
.badge{background:#a61c00;color:#fff;border-radius:10px;padding:0 8px}form.inline{display:inline}
fieldset{border:1px solid #ccc;margin:8px 0}button{padding:6px 12px;font-size:15px}
.thumbs img{width:160px;height:120px;object-fit:cover;margin:4px;border:1px solid #ccc}
@media print{header,form,.noprint{display:none}}
";

/// The review-page routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/connexion", get(login_page).post(login_submit))
        .route("/deconnexion", post(logout))
        .route("/", get(overview))
        .route("/inspections", get(inspections))
        .route("/inspections/{id}", get(inspection))
        .route("/inspections/{id}/revision", post(review))
        .route("/inspections/{id}/conflit", post(resolve))
        .route("/plan", get(plan_page))
        .route("/plan.csv", get(plan_csv))
        .route("/releve", get(activity_page))
        .route("/releve.csv", get(activity_csv))
        .route("/avancement", get(progress_page))
        .route("/avancement.csv", get(progress_csv))
        .route("/parametres", get(settings_page).post(settings_submit))
        .route("/admin", get(admin_page))
        .route("/admin/utilisateurs", post(admin_create_user))
        .route("/admin/revoquer", post(admin_revoke))
        .route("/admin/import", post(admin_import))
        .route("/photos/{hash}", get(photo))
        .route("/photos/{hash}/vignette", get(thumb))
        .layer(axum::middleware::map_response(security_headers))
}

async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'self'; img-src 'self' data:; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"),
    );
    resp
}

/// The signed-in person of a page request; pages without one redirect to the login.
pub struct WebUser {
    pub user: UserInfo,
    pub csrf: String,
    /// The territory's time zone: every date on the pages is in it.
    pub tz: bilan_shared::calendar::TimeZone,
    token: String,
}

fn csrf_for(token: &str) -> String {
    hex::encode(&Sha256::digest(format!("bilan-csrf:{token}").as_bytes())[..16])
}

fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| {
            cookie::Cookie::split_parse(v.to_string())
                .filter_map(Result::ok)
                .collect::<Vec<_>>()
        })
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_string())
        .filter(|t| !t.is_empty() && t.len() <= 128)
}

/// Why a page could not be shown.
pub enum WebError {
    Login,
    Api(ApiError),
}

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        WebError::Api(e)
    }
}

impl From<axum::extract::rejection::FormRejection> for WebError {
    fn from(e: axum::extract::rejection::FormRejection) -> Self {
        WebError::Api(e.into())
    }
}

impl From<axum::extract::rejection::QueryRejection> for WebError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        WebError::Api(e.into())
    }
}

/// A form whose rejection is a French error page (400).
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Form), rejection(WebError))]
struct WebForm<T>(T);

/// A query string whose rejection is a French error page (400).
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(WebError))]
struct WebQuery<T>(T);

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::Login => Redirect::to("/connexion").into_response(),
            WebError::Api(e) => {
                let status = e.status;
                let body = page(
                    None,
                    "Erreur",
                    html! {
                        h1 { "Impossible d'afficher cette page" }
                        p.error { (e.message) }
                        p { a href="/" { "Retour à l'aperçu" } }
                    },
                );
                (status, body).into_response()
            }
        }
    }
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = WebError;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = session_token(&parts.headers).ok_or(WebError::Login)?;
        let t2 = token.clone();
        let user = blocking(state, move |s| s.store.user_for_token(&t2)).await?;
        let user = user.ok_or(WebError::Login)?;
        if user.territory_id.is_none() {
            return Err(WebError::Api(ApiError::forbidden(
                "Ce compte n'est rattaché à aucun territoire.",
            )));
        }
        let u2 = user.clone();
        let tz = blocking(state, move |s| s.store.settings(&u2))
            .await?
            .zone();
        Ok(WebUser {
            csrf: csrf_for(&token),
            user,
            tz,
            token,
        })
    }
}

fn check_csrf(u: &WebUser, sent: &str) -> Result<(), WebError> {
    if sent == u.csrf {
        Ok(())
    } else {
        Err(WebError::Api(ApiError::forbidden(
            "Formulaire expiré ou forgé (jeton CSRF invalide) : rechargez la page et recommencez.",
        )))
    }
}

fn page(user: Option<&WebUser>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="fr" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — Bilan" }
                style { (PreEscaped(CSS)) }
            }
            body {
                @if let Some(u) = user {
                    header {
                        strong { "Bilan — révision du CS" }
                        a href="/" { "Aperçu" }
                        a href="/inspections" { "Inspections" }
                        a href="/plan" { "Plan de travaux" }
                        a href="/releve" { "Relevé des activités" }
                        a href="/avancement" { "Avancement BSI" }
                        @if u.user.role == Role::Manager { a href="/parametres" { "Paramètres" } a href="/admin" { "Administration" } }
                        span.grow {}
                        span { (u.user.display_name) " (" (u.user.role.label_fr()) ")" }
                        form.inline method="post" action="/deconnexion" {
                            input type="hidden" name="csrf" value=(u.csrf);
                            button type="submit" { "Se déconnecter" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

use bilan_shared::calendar::{iso_date as date, iso_datetime};
use bilan_shared::fmt::{decimal, money, percent};

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
}

async fn login_page() -> Markup {
    login_form(None)
}

fn login_form(error: Option<&str>) -> Markup {
    page(
        None,
        "Connexion",
        html! {
            h1 { "Bilan — révision du CS" }
            form method="post" action="/connexion" {
                p { label for="username" { "Utilisateur" } br; input id="username" name="username" autocomplete="username" required autofocus; }
                p { label for="password" { "Mot de passe" } br; input id="password" name="password" type="password" autocomplete="current-password" required; }
                p { button type="submit" { "Se connecter" } }
                @if let Some(e) = error { p.error role="alert" { (e) } }
            }
        },
    )
}

/// Whether the browser reached us over TLS, so the session cookie must be
/// `Secure`. The server speaks plain HTTP itself; TLS ends at a reverse
/// proxy, which says so in `X-Forwarded-Proto` (first hop) or `Forwarded:
/// proto=`. Believed even without `behind_proxy`: a forged header can only
/// make the cookie stricter, and a proxy set up without that setting must
/// not leave the cookie in clear.
fn came_over_tls(headers: &HeaderMap) -> bool {
    let first = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_ascii_lowercase())
    };
    let forwarded_proto = first("forwarded").and_then(|hop| {
        hop.split(';').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k.trim() == "proto").then(|| v.trim().trim_matches('"').to_string())
        })
    });
    first("x-forwarded-proto").or(forwarded_proto).as_deref() == Some("https")
}

async fn login_submit(
    State(state): State<AppState>,
    addr: crate::http::ClientAddr,
    headers: HeaderMap,
    WebForm(f): WebForm<LoginForm>,
) -> Response {
    let secure = came_over_tls(&headers);
    match crate::http::login_checked(&state, addr, f.username, f.password, None).await {
        Ok((token, _)) => {
            let cookie = cookie::Cookie::build((COOKIE, token))
                .http_only(true)
                .same_site(cookie::SameSite::Strict)
                .secure(secure)
                .path("/")
                .build();
            (
                [(header::SET_COOKIE, cookie.to_string())],
                Redirect::to("/"),
            )
                .into_response()
        }
        Err(e) => (e.status, login_form(Some(&e.message))).into_response(),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    u: WebUser,
    WebForm(f): WebForm<CsrfForm>,
) -> Result<Response, WebError> {
    check_csrf(&u, &f.csrf)?;
    let token = u.token.clone();
    blocking(&state, move |s| s.store.revoke_token(&token)).await?;
    tracing::info!(user = %u.user.username, "review logout");
    let gone = cookie::Cookie::build((COOKIE, ""))
        .path("/")
        .max_age(cookie::time::Duration::ZERO)
        .build();
    Ok((
        [(header::SET_COOKIE, gone.to_string())],
        Redirect::to("/connexion"),
    )
        .into_response())
}

/// Horizontal bar chart of the building-condition distribution, as inline SVG.
fn condition_chart(counts: [u32; 5]) -> Markup {
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    let colors = ["#1e7b34", "#6aa84f", "#bf9000", "#b45f06", "#a61c00"];
    html! {
        svg width="420" height="150" role="img" aria-label="Répartition de l'état des immeubles" {
            @for (i, n) in counts.iter().enumerate() {
                @let y = 10 + i * 27;
                @let w = 320 * n / max;
                text x="0" y=(y + 15) font-size="14" { (["A", "B", "C", "D", "E"][i]) }
                rect x="24" y=(y) width=(w.max(1)) height="20" fill=(colors[i]) {}
                text x=(30 + w) y=(y + 15) font-size="14" { (n) }
            }
        }
    }
}

/// Shown above a page whose figures use default settings because the CS's
/// stored ones did not decode.
fn unreadable_settings_notice(settings: &crate::queries::CsSettings) -> Markup {
    html! {
        @if settings.unreadable {
            p.error #parametres-illisibles role="alert" {
                "Les paramètres enregistrés du CS sont illisibles : les taux et seuils par défaut sont utilisés. "
                "Vérifiez-les et enregistrez-les dans « Paramètres » (responsable du CS)."
            }
        }
    }
}

async fn overview(State(state): State<AppState>, u: WebUser) -> Result<Markup, WebError> {
    let user = u.user.clone();
    let (rows, settings) = blocking(&state, move |s| {
        Ok((s.store.overview(&user)?, s.store.settings(&user)?))
    })
    .await?;
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
            (unreadable_settings_notice(&settings))
            table {
                thead { tr { th { "Organisme desservi" } th.num { "Ensembles" } th.num { "Inspectés (cycle de 5 ans)" } th.num { "Approuvés" } th.num { "En retard" }
                    @for c in ["A", "B", "C", "D", "E"] { th.num { "État " (c) } } } }
                tbody {
                    @for r in &rows {
                        tr { td { a href={ "/inspections?office=" (r.office_id) } { (r.office) } } td.num { (r.complexes) } td.num { (r.inspected) } td.num { (r.approved) } td.num { (r.overdue) }
                            @for c in r.conditions { td.num { (c) } } }
                    }
                }
            }
            h2 { "État des immeubles (dernier BSI)" }
            (condition_chart(total))
        },
    ))
}

fn qs(f: &InspectionFilter, page: u32, sort: Option<&str>) -> String {
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

async fn inspections(
    State(state): State<AppState>,
    u: WebUser,
    WebQuery(f): WebQuery<InspectionFilter>,
) -> Result<Markup, WebError> {
    let (user, f2) = (u.user.clone(), f.clone());
    let ((rows, total), (offices, inspectors)) = blocking(&state, move |s| {
        Ok((
            s.store.search_inspections(&user, &f2)?,
            s.store.filter_options(&user)?,
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

async fn inspection(
    State(state): State<AppState>,
    u: WebUser,
    Path(id): Path<String>,
) -> Result<Markup, WebError> {
    let id = parse_inspection_id(&id)?;
    let user = u.user.clone();
    let (doc, conflicts, history, complex, settings) = blocking(&state, move |s| {
        let insp = s.store.inspection(&user, id)?;
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
        let complex = s
            .store
            .reference(&user, 0)?
            .complexes
            .into_iter()
            .find(|c| c.id == doc.complex_id);
        let settings = s.store.settings(&user)?;
        Ok((doc, conflicts, history, complex, settings))
    })
    .await?;
    let cat = Catalogue::current();
    let (total, five) = doc.costs();
    let value = complex.as_ref().map(|c| c.replacement_value).unwrap_or(0.0);
    let ivp = if value > 0.0 { five / value } else { 0.0 };
    let condition = settings.thresholds.condition_for(ivp);
    let manager = u.user.role == Role::Manager;
    let (rated, present) = doc.progress();
    Ok(page(
        Some(&u),
        "Inspection",
        html! {
            h1 { @if let Some(c) = &complex { (c.name) } @else { "Inspection" } }
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
                        a href={ "/photos/" (p.hash) } { img src={ "/photos/" (p.hash) "/vignette" } alt=(p.caption) title=(p.caption); }
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
struct ReviewForm {
    csrf: String,
    status: Option<String>,
    comment: Option<String>,
}

async fn review(
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
struct ResolveForm {
    csrf: String,
    path: String,
    value_id: String,
}

async fn resolve(
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

async fn photo(
    State(state): State<AppState>,
    u: WebUser,
    Path(hash): Path<String>,
) -> Result<Response, WebError> {
    Ok(crate::http::serve_photo(state, u.user.clone(), hash, false).await?)
}

async fn thumb(
    State(state): State<AppState>,
    u: WebUser,
    Path(hash): Path<String>,
) -> Result<Response, WebError> {
    Ok(crate::http::serve_photo(state, u.user.clone(), hash, true).await?)
}

/// A number for French spreadsheets: comma decimal separator.
fn csv_num(v: f64) -> String {
    format!("{v:.2}").replace('.', ",")
}

/// A CSV download (`;`-separated, UTF-8 with BOM so spreadsheets read the accents).
fn csv_response(name: &str, header: &[&str], rows: Vec<Vec<String>>) -> Result<Response, WebError> {
    let mut w = csv::WriterBuilder::new()
        .delimiter(b';')
        .from_writer(vec![0xEF, 0xBB, 0xBF]);
    let internal = |_| WebError::Api(ApiError::internal());
    w.write_record(header).map_err(internal)?;
    for r in rows {
        w.write_record(&r).map_err(internal)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|_| WebError::Api(ApiError::internal()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

async fn plan_lines(
    state: &AppState,
    u: &WebUser,
) -> Result<Vec<crate::queries::PlanLine>, WebError> {
    let user = u.user.clone();
    Ok(blocking(state, move |s| s.store.works_plan(&user)).await?)
}

async fn plan_page(State(state): State<AppState>, u: WebUser) -> Result<Markup, WebError> {
    let lines = plan_lines(&state, &u).await?;
    let mut years: Vec<i64> = lines.iter().map(|l| l.year).collect();
    years.sort();
    years.dedup();
    let mut offices: Vec<String> = lines.iter().map(|l| l.office.clone()).collect();
    offices.dedup();
    let total = |o: Option<&str>, y: Option<i64>| -> f64 {
        lines
            .iter()
            .filter(|l| o.is_none_or(|o| l.office == o) && y.is_none_or(|y| l.year == y))
            .map(|l| l.cost)
            .sum()
    };
    let max_year = years
        .iter()
        .map(|y| total(None, Some(*y)))
        .fold(0.0, f64::max)
        .max(1.0);
    Ok(page(
        Some(&u),
        "Plan de travaux",
        html! {
            h1 { "Plan pluriannuel d'intervention (ébauche)" }
            p.noprint { a href="/plan.csv" { "Télécharger en CSV" } " — imprimez cette page pour une version papier." }
            h2 { "Totaux par organisme et par année" }
            table {
                thead { tr { th { "Organisme" } @for y in &years { th.num { (y) } } th.num { "Total" } } }
                tbody {
                    @for o in &offices { tr { td { (o) } @for y in &years { td.num { (money(total(Some(o), Some(*y)))) } } td.num { strong { (money(total(Some(o), None))) } } } }
                    tr { th { "Total" } @for y in &years { th.num { (money(total(None, Some(*y)))) } } th.num { (money(total(None, None))) } }
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
            table {
                thead { tr { th { "Organisme" } th { "Ensemble" } th { "Année" } th { "Travaux" } th { "Urgence" } th.num { "Coût estimé" } } }
                tbody { @for l in &lines { tr { td { (l.office) } td { (l.complex) } td { (l.year) } td { (l.work) } td { (l.urgency) } td.num { (money(l.cost)) } } } }
            }
        },
    ))
}

async fn plan_csv(State(state): State<AppState>, u: WebUser) -> Result<Response, WebError> {
    let lines = plan_lines(&state, &u).await?;
    let rows = lines
        .into_iter()
        .map(|l| {
            vec![
                l.office,
                l.complex,
                l.year.to_string(),
                l.work,
                l.urgency,
                csv_num(l.cost),
            ]
        })
        .collect();
    csv_response(
        "plan-de-travaux.csv",
        &[
            "organisme",
            "ensemble",
            "annee",
            "travaux",
            "urgence",
            "cout_estime",
        ],
        rows,
    )
}

#[derive(Deserialize)]
struct Period {
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
                    crate::queries::parse_day(d).map_err(|e| WebError::Api(e.into()))?;
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

async fn activity_data(
    state: &AppState,
    u: &WebUser,
    p: &Period,
) -> Result<
    (
        Vec<crate::queries::ActivityLine>,
        crate::queries::CsSettings,
        String,
        String,
    ),
    WebError,
> {
    let (from, to) = p.bounds(&u.tz)?;
    let (user, f2, t2) = (u.user.clone(), from.clone(), to.clone());
    let (lines, rates) = blocking(state, move |s| s.store.activity(&user, &f2, &t2)).await?;
    Ok((lines, rates, from, to))
}

async fn activity_page(
    State(state): State<AppState>,
    u: WebUser,
    WebQuery(p): WebQuery<Period>,
) -> Result<Markup, WebError> {
    let (lines, rates, from, to) = activity_data(&state, &u, &p).await?;
    let sum = |f: fn(&crate::queries::ActivityLine) -> f64| lines.iter().map(f).sum::<f64>();
    Ok(page(
        Some(&u),
        "Relevé des activités",
        html! {
            h1 { "Relevé des activités du " (from) " au " (to) }
            form.noprint method="get" action="/releve" {
                "Du " input type="date" name="from" value=(from); " au " input type="date" name="to" value=(to); " " button type="submit" { "Afficher" }
                " " a href={ "/releve.csv?from=" (from) "&to=" (to) } { "Télécharger en CSV" }
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

async fn activity_csv(
    State(state): State<AppState>,
    u: WebUser,
    WebQuery(p): WebQuery<Period>,
) -> Result<Response, WebError> {
    let (lines, _, from, to) = activity_data(&state, &u, &p).await?;
    let rows = lines
        .into_iter()
        .map(|l| {
            vec![
                l.office,
                l.visits.to_string(),
                csv_num(l.hours),
                csv_num(l.travel_hours),
                csv_num(l.km),
                csv_num(l.expenses),
                csv_num(l.fees),
                csv_num(l.travel_fees),
                csv_num(l.travel_costs),
                csv_num(l.compensation),
                csv_num(l.total),
            ]
        })
        .collect();
    csv_response(
        &format!("releve-des-activites-{from}-{to}.csv"),
        &[
            "organisme",
            "visites",
            "heures_service",
            "heures_deplacement",
            "km",
            "frais",
            "honoraires_services",
            "honoraires_deplacement",
            "frais_deplacement",
            "compensation",
            "total",
        ],
        rows,
    )
}

async fn progress_rows(
    state: &AppState,
    u: &WebUser,
) -> Result<Vec<crate::queries::OfficeOverview>, WebError> {
    let user = u.user.clone();
    Ok(blocking(state, move |s| s.store.overview(&user)).await?)
}

async fn progress_page(State(state): State<AppState>, u: WebUser) -> Result<Markup, WebError> {
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

async fn progress_csv(State(state): State<AppState>, u: WebUser) -> Result<Response, WebError> {
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

async fn settings_page(State(state): State<AppState>, u: WebUser) -> Result<Markup, WebError> {
    let user = u.user.clone();
    let r = blocking(&state, move |s| s.store.settings(&user)).await?;
    Ok(settings_form(&u, &r, None))
}

/// Names of the four IVP bounds in the settings form, bands A to D.
const THRESHOLD_FIELDS: [(&str, &str); 4] = [
    ("seuil_a", "A"),
    ("seuil_b", "B"),
    ("seuil_c", "C"),
    ("seuil_d", "D"),
];

fn settings_form(u: &WebUser, r: &crate::queries::CsSettings, msg: Option<&str>) -> Markup {
    page(
        Some(u),
        "Paramètres",
        html! {
            h1 { "Paramètres du CS" }
            (unreadable_settings_notice(r))
            form method="post" action="/parametres" {
                input type="hidden" name="csrf" value=(u.csrf);
                h2 { "Relevé des activités" }
                p { label { "Taux horaire de service ($/h) " input name="hourly" inputmode="decimal" value=(decimal(r.hourly, 2)); } }
                p { label { "Taux horaire de déplacement ($/h) " input name="travel_hourly" inputmode="decimal" value=(decimal(r.travel_hourly, 2)); } }
                p { label { "Frais par kilomètre ($/km) " input name="per_km" inputmode="decimal" value=(decimal(r.per_km, 2)); } }
                p { label { "Compensation (fraction des honoraires, 0,10 = 10 %) " input name="compensation" inputmode="decimal" value=(decimal(r.compensation, 4)); } }
                h2 { "État du bâtiment" }
                p.muted { "L'état A à E vient de l'indice de vétusté physique (IVP) : coût des travaux requis d'ici 5 ans ÷ valeur de remplacement. Au-delà du seuil D, l'état est E." }
                @for ((name, band), bound) in THRESHOLD_FIELDS.iter().zip(r.thresholds.upper_bounds) {
                    p { label { "État " (band) " si l'IVP ne dépasse pas (%) " input name=(name) inputmode="decimal" value=(decimal(bound * 100.0, 4)); } }
                }
                h2 { "Dates" }
                p.muted { "Les dates des pages, du relevé et du plan de travaux sont comptées dans ce fuseau horaire (nom IANA)." }
                p { label { "Fuseau horaire " input name="time_zone" value=(r.time_zone); } }
                button type="submit" { "Enregistrer" }
                @if let Some(m) = msg { p role="status" { (m) } }
            }
        },
    )
}

#[derive(Deserialize)]
struct SettingsForm {
    csrf: String,
    hourly: String,
    travel_hourly: String,
    per_km: String,
    compensation: String,
    /// Absent from forms of older pages: the thresholds then stay as they are.
    seuil_a: Option<String>,
    seuil_b: Option<String>,
    seuil_c: Option<String>,
    seuil_d: Option<String>,
    /// Absent from forms of older pages: the time zone then stays as it is.
    time_zone: Option<String>,
}

async fn settings_submit(
    State(state): State<AppState>,
    u: WebUser,
    WebForm(f): WebForm<SettingsForm>,
) -> Result<Markup, WebError> {
    check_csrf(&u, &f.csrf)?;
    let n = |s: &str| {
        s.trim()
            .replace(',', ".")
            .parse::<f64>()
            .map_err(|_| ApiError::bad_request(format!("« {s} » n'est pas un nombre.")))
    };
    let user = u.user.clone();
    let current = blocking(&state, move |s| s.store.settings(&user)).await?;
    let mut thresholds = current.thresholds;
    for (bound, field) in thresholds
        .upper_bounds
        .iter_mut()
        .zip([&f.seuil_a, &f.seuil_b, &f.seuil_c, &f.seuil_d])
    {
        if let Some(v) = field {
            *bound = n(v)? / 100.0;
        }
    }
    let settings = crate::queries::CsSettings {
        hourly: n(&f.hourly)?,
        travel_hourly: n(&f.travel_hourly)?,
        per_km: n(&f.per_km)?,
        compensation: n(&f.compensation)?,
        thresholds,
        time_zone: f
            .time_zone
            .as_deref()
            .map(str::trim)
            .filter(|z| !z.is_empty())
            .map_or(current.time_zone.clone(), str::to_string),
        unreadable: false,
    };
    let (user, s2) = (u.user.clone(), settings.clone());
    blocking(&state, move |s| s.store.set_settings(&user, &s2)).await?;
    Ok(settings_form(
        &u,
        &settings,
        Some("Paramètres enregistrés."),
    ))
}

fn require_manager(u: &WebUser) -> Result<(), WebError> {
    if u.user.role == Role::Manager {
        Ok(())
    } else {
        Err(WebError::Api(ApiError::forbidden(
            "Réservé au responsable du CS.",
        )))
    }
}

async fn admin_page(State(state): State<AppState>, u: WebUser) -> Result<Markup, WebError> {
    require_manager(&u)?;
    admin_view(&state, &u, None, html! {}).await
}

/// The administration page, with an optional message and an import preview.
async fn admin_view(
    state: &AppState,
    u: &WebUser,
    msg: Option<Result<String, String>>,
    preview: Markup,
) -> Result<Markup, WebError> {
    let user = u.user.clone();
    let (users, offices, journal) = blocking(state, move |s| {
        let t = user.territory_id.unwrap_or_default();
        Ok((
            s.store.territory_users(&user)?,
            s.store.offices(t)?,
            s.store.audit_log(Some(&user), AUDIT_PAGE)?,
        ))
    })
    .await?;
    Ok(page(
        Some(u),
        "Administration",
        html! {
            h1 { "Administration du territoire" }
            @match &msg { Some(Ok(m)) => p role="status" { strong { (m) } }, Some(Err(m)) => p.error role="alert" { (m) }, None => {} }
            h2 { "Utilisateurs" }
            table {
                thead { tr { th { "Utilisateur" } th { "Nom" } th { "Rôle" } th { "Organisme" } th {} } }
                tbody { @for x in &users { tr {
                    td { (x.username) } td { (x.display_name) } td { (x.role.label_fr()) }
                    td { (x.office_id.and_then(|o| offices.iter().find(|of| of.id == o)).map(|o| o.name.clone()).unwrap_or_default()) }
                    td { form.inline method="post" action="/admin/revoquer" {
                        input type="hidden" name="csrf" value=(u.csrf); input type="hidden" name="username" value=(x.username);
                        button type="submit" { "Révoquer ses sessions" } } }
                } } }
            }
            h2 { "Nouvel utilisateur" }
            form method="post" action="/admin/utilisateurs" {
                input type="hidden" name="csrf" value=(u.csrf);
                label { "Utilisateur " input name="username" required; } " "
                label { "Nom " input name="name" required; } " "
                label { "Rôle " select name="role" { @for r in [Role::Inspector, Role::Manager, Role::OfficeReader] { option value=(r.code()) { (r.label_fr()) } } } } " "
                label { "Organisme (lecteurs) " select name="office" { option value="" { "—" } @for o in &offices { option value=(o.code) { (o.name) } } } } " "
                label { "Mot de passe (8 caractères ou plus) " input name="password" type="password" required minlength="8"; } " "
                button type="submit" { "Créer" }
            }
            h2 { "Importer des organismes ou des ensembles (CSV)" }
            p.muted { "Organismes : en-têtes " code { "code,nom" } ". Ensembles : " code { "code,nom,organisme,adresse,ville,logements,annee_construction,valeur_remplacement" } ". Rien n'est écrit avant la confirmation, et rien du tout si une ligne est en erreur." }
            form method="post" action="/admin/import" {
                input type="hidden" name="csrf" value=(u.csrf);
                select name="kind" { option value="organismes" { "Organismes" } option value="ensembles" { "Ensembles" } }
                br; textarea name="csv" rows="8" cols="100" required {}
                br; button type="submit" { "Aperçu" }
            }
            (preview)
            h2 { "Journal des actions" }
            p.muted { "Les " (AUDIT_PAGE) " dernières révisions, résolutions de conflits et actions d'administration du territoire, les plus récentes d'abord." }
            table.audit {
                thead { tr { th { "Quand" } th { "Qui" } th { "Action" } th { "Sur" } th { "Détail" } } }
                tbody { @for e in &journal { tr {
                    td { (iso_datetime(e.at, &u.tz)) } td { (e.actor) } td { (e.action.label_fr()) } td { (e.target) } td { (e.detail) }
                } } }
            }
        },
    ))
}

/// How many audit entries the administration page shows.
const AUDIT_PAGE: u32 = 200;

#[derive(Deserialize)]
struct NewUserForm {
    csrf: String,
    username: String,
    name: String,
    role: String,
    office: Option<String>,
    password: String,
}

async fn admin_create_user(
    State(state): State<AppState>,
    u: WebUser,
    WebForm(f): WebForm<NewUserForm>,
) -> Result<Markup, WebError> {
    require_manager(&u)?;
    check_csrf(&u, &f.csrf)?;
    let role = Role::from_code(&f.role)
        .filter(|r| *r != Role::Admin)
        .ok_or_else(|| ApiError::bad_request("Rôle inconnu."))?;
    let user = u.user.clone();
    let username = f.username.trim().to_string();
    let result = blocking(&state, move |s| {
        let t = user.territory_id.unwrap_or_default();
        let office_id = match f.office.filter(|o| !o.is_empty()) {
            Some(code) => Some(
                s.store
                    .offices(t)?
                    .into_iter()
                    .find(|o| o.code == code)
                    .ok_or_else(|| {
                        crate::StoreError::BadRequest(format!("organisme {code} inconnu"))
                    })?
                    .id,
            ),
            None => None,
        };
        let id = s.store.create_user(&crate::store::NewUser {
            username: f.username.trim().to_string(),
            display_name: f.name.trim().to_string(),
            role,
            territory_id: Some(t),
            office_id,
            password: f.password,
        })?;
        let target = f.username.trim();
        s.store.audit(
            &AuditEntry::by(&user, AuditAction::CreateUser, target).with_detail(role.label_fr()),
        )?;
        Ok(id)
    })
    .await;
    let msg = match result {
        Ok(_) => Ok(format!("Utilisateur « {username} » créé.")),
        Err(e) => Err(e.message),
    };
    admin_view(&state, &u, Some(msg), html! {}).await
}

#[derive(Deserialize)]
struct RevokeForm {
    csrf: String,
    username: String,
}

async fn admin_revoke(
    State(state): State<AppState>,
    u: WebUser,
    WebForm(f): WebForm<RevokeForm>,
) -> Result<Markup, WebError> {
    require_manager(&u)?;
    check_csrf(&u, &f.csrf)?;
    let user = u.user.clone();
    let name = f.username.clone();
    let n = blocking(&state, move |s| {
        if !s
            .store
            .territory_users(&user)?
            .iter()
            .any(|x| x.username == name)
        {
            return Err(crate::StoreError::Forbidden(
                "cet utilisateur n'est pas de votre territoire".into(),
            ));
        }
        let n = s.store.revoke_user_tokens(&name)?;
        let entry = AuditEntry::by(&user, AuditAction::RevokeSessions, name.as_str());
        s.store
            .audit(&entry.with_detail(format!("{n} session(s)")))?;
        Ok(n)
    })
    .await?;
    admin_view(
        &state,
        &u,
        Some(Ok(format!(
            "{n} session(s) de « {} » révoquée(s).",
            f.username
        ))),
        html! {},
    )
    .await
}

#[derive(Deserialize)]
struct ImportForm {
    csrf: String,
    kind: String,
    csv: String,
    confirm: Option<String>,
}

async fn admin_import(
    State(state): State<AppState>,
    u: WebUser,
    WebForm(f): WebForm<ImportForm>,
) -> Result<Markup, WebError> {
    require_manager(&u)?;
    check_csrf(&u, &f.csrf)?;
    let user = u.user.clone();
    let (kind, csv_text, confirm) = (
        f.kind.clone(),
        f.csv.clone(),
        f.confirm.as_deref() == Some("1"),
    );
    type Parsed = Result<(usize, Vec<Vec<String>>), crate::admin::ImportError>;
    let parsed: Parsed = blocking(&state, move |s| {
        let t = user.territory_id.unwrap_or_default();
        let store = s.store.as_ref();
        let out = match (kind.as_str(), confirm) {
            ("organismes", false) => crate::admin::parse_offices(&csv_text)
                .map(|r| (r.len(), r.into_iter().map(|(c, n)| vec![c, n]).collect())),
            ("organismes", true) => {
                crate::admin::import_offices(store, t, &csv_text).map(|n| (n, vec![]))
            }
            (_, false) => crate::admin::parse_complexes(store, t, &csv_text).map(|r| {
                (
                    r.len(),
                    r.into_iter()
                        .map(|c| {
                            vec![
                                c.code,
                                c.name,
                                c.address,
                                c.city,
                                c.dwellings.to_string(),
                                c.year_built.to_string(),
                                money(c.replacement_value),
                            ]
                        })
                        .collect(),
                )
            }),
            (_, true) => crate::admin::import_complexes(store, t, &csv_text).map(|n| (n, vec![])),
        };
        if let (true, Ok((n, _))) = (confirm, &out) {
            let action = match kind.as_str() {
                "organismes" => AuditAction::ImportOffices,
                _ => AuditAction::ImportComplexes,
            };
            let entry = AuditEntry::by(&user, action, "CSV").with_detail(format!("{n} ligne(s)"));
            s.store.audit(&entry)?;
        }
        Ok(out)
    })
    .await?;
    let (msg, preview) = match parsed {
        Err(crate::admin::ImportError::Lines(errors)) => (
            Some(Err(format!(
                "{} ligne(s) en erreur : rien n'a été importé. Corrigez-les et recommencez.",
                errors.len()
            ))),
            html! { table.import-errors { thead { tr { th { "Ligne" } th { "Erreur" } } } tbody { @for e in &errors { tr { td { (e.line) } td { (e.message) } } } } } },
        ),
        Err(e) => (Some(Err(e.to_string())), html! {}),
        Ok((n, _)) if confirm => (Some(Ok(format!("{n} ligne(s) importée(s)."))), html! {}),
        Ok((n, rows)) => (
            Some(Ok(format!(
                "Aperçu : {n} ligne(s) valides. Vérifiez puis confirmez."
            ))),
            html! {
                table.import-preview { tbody { @for r in &rows { tr { @for c in r { td { (c) } } } } } }
                form method="post" action="/admin/import" {
                    input type="hidden" name="csrf" value=(u.csrf);
                    input type="hidden" name="kind" value=(f.kind);
                    input type="hidden" name="confirm" value="1";
                    textarea name="csv" hidden { (f.csv) }
                    button type="submit" { "Confirmer l'import" }
                }
            },
        ),
    };
    admin_view(&state, &u, msg, preview).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    /// Behind a TLS-ending proxy the cookie is `Secure` (either header, any
    /// case, first hop of a list); plain HTTP stays plain.
    #[test]
    fn the_session_cookie_is_secure_when_the_browser_came_over_tls() {
        let tls = [
            headers(&[("x-forwarded-proto", "https")]),
            headers(&[("x-forwarded-proto", "HTTPS, http")]),
            headers(&[("forwarded", "for=192.0.2.1;proto=https;by=203.0.113.4")]),
        ];
        for h in &tls {
            assert!(came_over_tls(h), "{h:?}");
        }
        assert!(!came_over_tls(&headers(&[("x-forwarded-proto", "http")])));
        assert!(!came_over_tls(&HeaderMap::new()));
    }
}
