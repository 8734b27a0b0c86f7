//! The administration page: accounts, session revocation, CSV imports,
//! the audit log.

use axum::extract::State;
use bilan_shared::calendar::iso_datetime;
use bilan_shared::domain::Role;
use bilan_shared::fmt::money;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::page;
use super::session::{WebError, WebForm, WebUser, check_csrf, require_manager};
use crate::AppState;
use crate::error::ApiError;
use crate::http::blocking;
use crate::imports::ImportError;
use crate::service::{Actor, NewUser};

pub(super) async fn admin_page(
    State(state): State<AppState>,
    u: WebUser,
) -> Result<Markup, WebError> {
    require_manager(&u)?;
    admin_view(&state, &u, None, html! {}).await
}

/// The administration page, with an optional message and an import preview.
pub(super) async fn admin_view(
    state: &AppState,
    u: &WebUser,
    msg: Option<Result<String, String>>,
    preview: Markup,
) -> Result<Markup, WebError> {
    let user = u.user.clone();
    let (users, offices, journal) = blocking(state, move |s| {
        Ok((
            s.service.territory_users(&user)?,
            s.service.my_offices(&user)?,
            s.service.audit_log(Some(&user), AUDIT_PAGE)?,
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
pub(super) const AUDIT_PAGE: u32 = 200;

#[derive(Deserialize)]
pub(super) struct NewUserForm {
    csrf: String,
    username: String,
    name: String,
    role: String,
    office: Option<String>,
    password: String,
}

pub(super) async fn admin_create_user(
    State(state): State<AppState>,
    u: WebUser,
    WebForm(f): WebForm<NewUserForm>,
) -> Result<Markup, WebError> {
    require_manager(&u)?;
    check_csrf(&u, &f.csrf)?;
    let role = Role::from_code(&f.role).ok_or_else(|| ApiError::bad_request("Rôle inconnu."))?;
    let user = u.user.clone();
    let username = f.username.trim().to_string();
    let result = blocking(&state, move |s| {
        let new = NewUser {
            username: f.username.trim().to_string(),
            display_name: f.name.trim().to_string(),
            role,
            territory_id: None,
            office_id: None,
            password: f.password,
        };
        s.service
            .add_user(Actor::User(&user), None, new, f.office.as_deref())
    })
    .await;
    let msg = match result {
        Ok(_) => Ok(format!("Utilisateur « {username} » créé.")),
        Err(e) => Err(e.message),
    };
    admin_view(&state, &u, Some(msg), html! {}).await
}

#[derive(Deserialize)]
pub(super) struct RevokeForm {
    csrf: String,
    username: String,
}

pub(super) async fn admin_revoke(
    State(state): State<AppState>,
    u: WebUser,
    WebForm(f): WebForm<RevokeForm>,
) -> Result<Markup, WebError> {
    require_manager(&u)?;
    check_csrf(&u, &f.csrf)?;
    let user = u.user.clone();
    let name = f.username.clone();
    let n = blocking(&state, move |s| {
        s.service.revoke_sessions(Actor::User(&user), &name)
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
pub(super) struct ImportForm {
    csrf: String,
    kind: String,
    csv: String,
    confirm: Option<String>,
}

pub(super) async fn admin_import(
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
    type Parsed = Result<(usize, Vec<Vec<String>>), ImportError>;
    let parsed: Parsed = blocking(&state, move |s| {
        let (by, t) = (Actor::User(&user), user.territory_id.unwrap_or_default());
        let svc = &s.service;
        Ok(match (kind.as_str(), confirm) {
            ("organismes", false) => crate::imports::parse_offices(&csv_text)
                .map(|r| (r.len(), r.into_iter().map(|(c, n)| vec![c, n]).collect())),
            ("organismes", true) => svc
                .import_offices(by, t, "CSV", &csv_text)
                .map(|n| (n, vec![])),
            (_, false) => svc.preview_complexes(by, t, &csv_text).map(|r| {
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
            (_, true) => svc
                .import_complexes(by, t, "CSV", &csv_text)
                .map(|n| (n, vec![])),
        })
    })
    .await?;
    let (msg, preview) = match parsed {
        Err(ImportError::Lines(errors)) => (
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
