//! Who is signed in on the review pages: the session cookie and its user,
//! CSRF tokens, login and logout, the page error type, the role check.

use axum::extract::{FromRequestParts, State};
use axum::http::{HeaderMap, header, request::Parts};
use axum::response::{IntoResponse, Redirect, Response};
use bilan_shared::protocol::UserInfo;
use maud::{Markup, html};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::layout::page;
use crate::AppState;
use crate::error::ApiError;
use crate::http::blocking;

pub(super) const COOKIE: &str = "bilan_session";

/// The signed-in person of a page request; pages without one redirect to the login.
pub struct WebUser {
    pub user: UserInfo,
    pub csrf: String,
    /// The territory's time zone: every date on the pages is in it.
    pub tz: bilan_shared::calendar::TimeZone,
    /// The territory's settings as read for this request (the pages' notice
    /// when they did not decode).
    pub settings: crate::queries::CsSettings,
    token: String,
}

pub(super) fn csrf_for(token: &str) -> String {
    hex::encode(&Sha256::digest(format!("bilan-csrf:{token}").as_bytes())[..16])
}

pub(super) fn session_token(headers: &HeaderMap) -> Option<String> {
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
pub(super) struct WebForm<T>(pub(super) T);

/// A query string whose rejection is a French error page (400).
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(WebError))]
pub(super) struct WebQuery<T>(pub(super) T);

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
        // The user and the territory's settings in one trip to the store.
        let found = blocking(state, move |s| {
            let Some(user) = s.store.user_for_token(&t2)? else {
                return Ok(None);
            };
            if user.territory_id.is_none() {
                return Ok(Some((user, None)));
            }
            let settings = s.store.settings(&user)?;
            Ok(Some((user, Some(settings))))
        })
        .await?;
        let (user, settings) = found.ok_or(WebError::Login)?;
        let Some(settings) = settings else {
            return Err(WebError::Api(ApiError::forbidden(
                "Ce compte n'est rattaché à aucun territoire.",
            )));
        };
        Ok(WebUser {
            csrf: csrf_for(&token),
            user,
            tz: settings.zone(),
            settings,
            token,
        })
    }
}

pub(super) fn check_csrf(u: &WebUser, sent: &str) -> Result<(), WebError> {
    if sent == u.csrf {
        Ok(())
    } else {
        Err(WebError::Api(ApiError::forbidden(
            "Formulaire expiré ou forgé (jeton CSRF invalide) : rechargez la page et recommencez.",
        )))
    }
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    username: String,
    password: String,
}

pub(super) async fn login_page() -> Markup {
    login_form(None)
}

pub(super) fn login_form(error: Option<&str>) -> Markup {
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
pub(super) fn came_over_tls(headers: &HeaderMap) -> bool {
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

pub(super) async fn login_submit(
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
pub(super) struct CsrfForm {
    csrf: String,
}

pub(super) async fn logout(
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

/// The manager rule of [`crate::service`], as a page error.
pub(super) fn require_manager(u: &WebUser) -> Result<(), WebError> {
    Ok(crate::service::require_manager(&u.user).map_err(ApiError::from)?)
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
