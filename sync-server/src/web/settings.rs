//! The CS settings forms: rates, condition thresholds, time zone; the RAM
//! budget envelopes (a CSV the manager edits or pastes).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bilan_shared::fmt::decimal;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{page, unreadable_settings_notice};
use super::session::{WebError, WebForm, WebUser, check_csrf};
use crate::AppState;
use crate::error::ApiError;
use crate::http::blocking;
use crate::imports::ImportError;

pub(super) async fn settings_page(
    State(state): State<AppState>,
    u: WebUser,
) -> Result<Markup, WebError> {
    let user = u.user.clone();
    let (r, budgets) = blocking(&state, move |s| {
        Ok((s.service.settings(&user)?, s.service.budgets_csv(&user)?))
    })
    .await?;
    Ok(settings_form(&u, &r, &budgets, None))
}

/// Names of the four IVP bounds in the settings form, bands A to D.
pub(super) const THRESHOLD_FIELDS: [(&str, &str); 4] = [
    ("seuil_a", "A"),
    ("seuil_b", "B"),
    ("seuil_c", "C"),
    ("seuil_d", "D"),
];

/// The settings page; `msg` is what the last submission gave (an error
/// for the budgets form is shown beside it).
pub(super) fn settings_form(
    u: &WebUser,
    r: &bilan_shared::domain::CsSettings,
    budgets: &str,
    msg: Option<Result<&str, &str>>,
) -> Markup {
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
                h2 { "Photos" }
                p.muted { "Les tablettes réduisent les photos avant de les envoyer (redressées, heure et position GPS conservées) : sur un lien rural, une photo de 8 Mo en devient une de quelques centaines de ko." }
                p { label { "Plus grand côté (pixels) " input name="photo_max_px" inputmode="numeric" value=(r.photos.max_px); } }
                p { label { "Qualité JPEG (40 à 100) " input name="photo_quality" inputmode="numeric" value=(r.photos.quality); } }
                p { label { input type="checkbox" name="keep_originals" value="1" checked[r.photos.keep_originals]; " Garder les originaux sur les tablettes après l'envoi" } }
                button type="submit" { "Enregistrer" }
            }
            @match msg {
                Some(Ok(m)) => p role="status" { (m) },
                Some(Err(m)) => p.error role="alert" { (m) },
                None => {},
            }
            form #enveloppes method="post" action="/parametres/budgets" {
                input type="hidden" name="csrf" value=(u.csrf);
                h2 { "Enveloppes budgétaires (RAM)" }
                p.muted { "Une ligne par organisme et par année : organisme (code) ; année ; montant. Collez un fichier CSV ou modifiez les lignes ; le plan de travaux compare chaque année à son enveloppe." }
                textarea name="csv" rows="8" cols="60" { (budgets) }
                br;
                button type="submit" { "Enregistrer les enveloppes" }
            }
        },
    )
}

#[derive(Deserialize)]
pub(super) struct BudgetsForm {
    csrf: String,
    csv: String,
}

pub(super) async fn budgets_submit(
    State(state): State<AppState>,
    u: WebUser,
    WebForm(f): WebForm<BudgetsForm>,
) -> Result<Response, WebError> {
    check_csrf(&u, &f.csrf)?;
    let (user, text) = (u.user.clone(), f.csv.clone());
    let (saved, settings) = blocking(&state, move |s| {
        let saved = s.service.set_budgets(&user, &text);
        Ok((saved, s.service.settings(&user)?))
    })
    .await?;
    Ok(match saved {
        Ok(n) => {
            let msg = format!("{n} enveloppe(s) enregistrée(s).");
            let user = u.user.clone();
            let budgets = blocking(&state, move |s| s.service.budgets_csv(&user)).await?;
            settings_form(&u, &settings, &budgets, Some(Ok(&msg))).into_response()
        }
        Err(ImportError::Store(e)) => return Err(WebError::Api(e.into())),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            settings_form(
                &u,
                &settings,
                &f.csv,
                Some(Err(&format!("Rien n'a été enregistré. {e}"))),
            ),
        )
            .into_response(),
    })
}

#[derive(Deserialize)]
pub(super) struct SettingsForm {
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
    /// Absent from forms of older pages: the photo settings then stay as
    /// they are.
    photo_max_px: Option<String>,
    photo_quality: Option<String>,
    /// A checkbox: present when checked.
    keep_originals: Option<String>,
}

pub(super) async fn settings_submit(
    State(state): State<AppState>,
    u: WebUser,
    WebForm(f): WebForm<SettingsForm>,
) -> Result<Markup, WebError> {
    check_csrf(&u, &f.csrf)?;
    let n = |s: &str| {
        bilan_shared::fmt::parse_decimal(s)
            .ok_or_else(|| ApiError::bad_request(format!("« {s} » n'est pas un nombre.")))
    };
    let user = u.user.clone();
    let current = blocking(&state, move |s| s.service.settings(&user)).await?;
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
    let whole = |s: &str, what: &str| {
        s.trim().parse::<u32>().map_err(|_| {
            ApiError::bad_request(format!("{what} : « {s} » n'est pas un nombre entier."))
        })
    };
    let photos = match (&f.photo_max_px, &f.photo_quality) {
        (Some(px), Some(q)) => bilan_shared::photo_size::PhotoSettings {
            max_px: whole(px, "plus grand côté des photos")?,
            quality: u8::try_from(whole(q, "qualité JPEG")?).unwrap_or(u8::MAX),
            keep_originals: f.keep_originals.is_some(),
        },
        _ => current.photos,
    };
    let settings = bilan_shared::domain::CsSettings {
        hourly: n(&f.hourly)?,
        travel_hourly: n(&f.travel_hourly)?,
        per_km: n(&f.per_km)?,
        compensation: n(&f.compensation)?,
        thresholds,
        budgets: current.budgets.clone(),
        time_zone: f
            .time_zone
            .as_deref()
            .map(str::trim)
            .filter(|z| !z.is_empty())
            .map_or(current.time_zone.clone(), str::to_string),
        photos,
        unreadable: false,
    };
    let (user, s2) = (u.user.clone(), settings.clone());
    let budgets = blocking(&state, move |s| {
        s.service.set_settings(&user, &s2)?;
        s.service.budgets_csv(&user)
    })
    .await?;
    Ok(settings_form(
        &u,
        &settings,
        &budgets,
        Some(Ok("Paramètres enregistrés.")),
    ))
}
