//! Who is signed in on the review pages: the session cookie and its user,
//! CSRF tokens, the page error type, the role check (the service's rule).
//! The login and logout pages are `login.rs`; how errors render, `layout.rs`.

use axum::extract::FromRequestParts;
use axum::http::{HeaderMap, header, request::Parts};
use bilan_shared::protocol::UserInfo;
use sha2::{Digest, Sha256};

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
    pub settings: bilan_shared::domain::CsSettings,
    pub(super) token: String,
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
            let Some(user) = s.service.user_for_token(&t2)? else {
                return Ok(None);
            };
            if user.territory_id.is_none() {
                return Ok(Some((user, None)));
            }
            let settings = s.service.settings(&user)?;
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

/// The manager rule of [`crate::service`], as a page error.
pub(super) fn require_manager(u: &WebUser) -> Result<(), WebError> {
    Ok(crate::service::access::require_manager(&u.user).map_err(ApiError::from)?)
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
