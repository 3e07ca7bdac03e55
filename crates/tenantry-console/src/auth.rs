//! Sign-in and sign-out.
//!
//! The sign-in page gives the visitor a session that is not signed in, only to carry the CSRF
//! token its form must post back. A right password replaces it with a new signed-in session
//! (new token: a token seen before sign-in is worthless after). Sign-out clears the cookie.

use std::sync::Arc;

use argon2::PasswordVerifier;
use argon2::password_hash::PasswordHash;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use crate::config::Shared;
use crate::pages::layout::{self, Nav};
use crate::session::{CheckedForm, Session};

/// `GET /login`.
pub(crate) async fn login_page(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    match Session::read(&shared, &headers) {
        Some(s) if s.signed_in => Redirect::to(&shared.link("/")).into_response(),
        existing => form(&shared, &headers, existing, StatusCode::OK, None),
    }
}

/// The sign-in form, with `error` above it; sets the session cookie when it is new.
fn form(
    shared: &Shared,
    headers: &HeaderMap,
    existing: Option<Session>,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let (session, new) = match existing {
        Some(s) => (s, false),
        None => (Session::fresh(false), true),
    };
    let body = html! {
        section.card.signin {
            h1 { "Sign in" }
            @if let Some(error) = error { p.error role="alert" { (error) } }
            form method="post" action=(shared.link("/login")) {
                (layout::csrf(&session.csrf))
                label { "Password" input type="password" name="password" autocomplete="current-password" required autofocus; }
                button type="submit" { "Sign in" }
            }
        }
    };
    let page = layout::page(shared, None, Nav::None, "Sign in", body);
    let mut response = (status, Html(page.into_string())).into_response();
    if new {
        response
            .headers_mut()
            .insert(header::SET_COOKIE, session.set_cookie(shared, headers));
    }
    response
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    password: String,
    csrf_token: Option<String>,
}

/// `POST /login`: form `password` and `csrf_token`.
pub(crate) async fn login(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(login): Form<LoginForm>,
) -> Response {
    let session = Session::read(&shared, &headers);
    let token_ok = match (&session, &login.csrf_token) {
        (Some(s), Some(t)) => s.csrf_matches(t),
        _ => false,
    };
    if !token_ok {
        tracing::warn!(target: "tenantry::console", "sign-in refused: missing or wrong CSRF token");
        // The same session (or a new one when there was none): its token for the next try.
        return form(
            &shared,
            &headers,
            session,
            StatusCode::FORBIDDEN,
            Some("The form's security token is missing or out of date. Try again."),
        );
    }
    let hash = shared.password_hash.clone();
    // argon2 is slow on purpose: off the async workers.
    let right = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            argon2::Argon2::default()
                .verify_password(login.password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false);
    if !right {
        tracing::warn!(target: "tenantry::console", "sign-in refused: wrong password");
        return form(
            &shared,
            &headers,
            session,
            StatusCode::UNAUTHORIZED,
            Some("Wrong password."),
        );
    }
    tracing::info!(target: "tenantry::console", "operator signed in");
    let signed_in = Session::fresh(true);
    let mut response = Redirect::to(&shared.link("/")).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, signed_in.set_cookie(&shared, &headers));
    response
}

#[derive(Deserialize)]
pub(crate) struct Nothing {}

/// `POST /logout`.
pub(crate) async fn logout(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    CheckedForm(_, Nothing {}): CheckedForm<Nothing>,
) -> Response {
    tracing::info!(target: "tenantry::console", "operator signed out");
    let mut response = Redirect::to(&shared.link("/login")).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, Session::clear_cookie(&shared, &headers));
    response
}
