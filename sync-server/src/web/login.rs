//! The login and logout of the review pages: the form, the session cookie
//! set (HttpOnly, SameSite=Strict, Secure over TLS) and cleared.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::page;
use super::session::{COOKIE, WebError, WebForm, WebUser, came_over_tls, check_csrf};
use crate::AppState;
use crate::http::blocking;

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
    blocking(&state, move |s| s.service.revoke_token(&token)).await?;
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
