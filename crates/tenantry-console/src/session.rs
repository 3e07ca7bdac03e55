//! The session cookie (encrypted and authenticated with the console's key) and the checks every
//! page and form goes through: [`Operator`] for pages, [`CheckedForm`] for actions (signed in
//! and the form's CSRF token equal to the session's).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use crate::config::Shared;
use crate::pages::layout;

/// The cookie's name.
const COOKIE: &str = "tenantry_console";
/// How long a sign-in lasts.
const SESSION_SECS: i64 = 12 * 3600;

/// What the cookie holds: signed in or not (a visitor of the sign-in page gets a session too,
/// for the sign-in form's CSRF token), the CSRF token, when it was issued (unix seconds).
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) signed_in: bool,
    pub(crate) csrf: String,
    issued: i64,
}

impl Session {
    /// A new session with a fresh random CSRF token.
    pub(crate) fn fresh(signed_in: bool) -> Self {
        let bytes: [u8; 32] = rand::random();
        Self {
            signed_in,
            csrf: bytes.iter().map(|b| format!("{b:02x}")).collect(),
            issued: chrono::Utc::now().timestamp(),
        }
    }

    fn encode(&self) -> String {
        format!(
            "v1:{}:{}:{}",
            u8::from(self.signed_in),
            self.csrf,
            self.issued
        )
    }

    fn decode(text: &str) -> Option<Self> {
        let mut parts = text.split(':');
        if parts.next()? != "v1" {
            return None;
        }
        let signed_in = parts.next()? == "1";
        let csrf = parts.next()?.to_owned();
        let issued: i64 = parts.next()?.parse().ok()?;
        let now = chrono::Utc::now().timestamp();
        if csrf.len() != 64 || issued > now + 60 || now - issued > SESSION_SECS {
            return None;
        }
        Some(Self {
            signed_in,
            csrf,
            issued,
        })
    }

    /// The session read from the request's cookies, if one is there, authentic and current.
    pub(crate) fn read(shared: &Shared, headers: &HeaderMap) -> Option<Self> {
        for value in headers.get_all(header::COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            for c in Cookie::split_parse(text.to_owned()).flatten() {
                if c.name() != COOKIE {
                    continue;
                }
                let mut jar = CookieJar::new();
                jar.add_original(c);
                if let Some(open) = jar.private(&shared.key).get(COOKIE) {
                    return Self::decode(open.value());
                }
            }
        }
        None
    }

    /// The `Set-Cookie` header that stores this session.
    pub(crate) fn set_cookie(&self, shared: &Shared, headers: &HeaderMap) -> HeaderValue {
        let cookie = Cookie::build((COOKIE, self.encode()))
            .path(cookie_path(shared))
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(secure(shared, headers))
            .max_age(cookie::time::Duration::seconds(SESSION_SECS));
        let mut jar = CookieJar::new();
        jar.private_mut(&shared.key).add(cookie);
        let sealed = jar.get(COOKIE).expect("just added").to_string();
        HeaderValue::from_str(&sealed).expect("an encoded cookie is a valid header value")
    }

    /// The `Set-Cookie` header that removes the session.
    pub(crate) fn clear_cookie(shared: &Shared, headers: &HeaderMap) -> HeaderValue {
        let cookie = Cookie::build((COOKIE, ""))
            .path(cookie_path(shared))
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(secure(shared, headers))
            .max_age(cookie::time::Duration::ZERO);
        HeaderValue::from_str(&cookie.build().to_string())
            .expect("an encoded cookie is a valid header value")
    }

    /// Whether `token` (from a form) is this session's CSRF token, in constant time.
    pub(crate) fn csrf_matches(&self, token: &str) -> bool {
        self.csrf.len() == token.len() && bool::from(self.csrf.as_bytes().ct_eq(token.as_bytes()))
    }
}

fn cookie_path(shared: &Shared) -> String {
    match shared.base.as_str() {
        "" => "/".to_owned(),
        base => base.to_owned(),
    }
}

/// `Secure` as configured, else when the request came over https.
fn secure(shared: &Shared, headers: &HeaderMap) -> bool {
    shared.secure.unwrap_or_else(|| {
        headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
    })
}

/// A signed-in operator (pages). Without a session: a redirect to the sign-in page.
#[derive(Debug)]
pub(crate) struct Operator(pub(crate) Session);

impl FromRequestParts<Arc<Shared>> for Operator {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        match Session::read(shared, &parts.headers) {
            Some(session) if session.signed_in => Ok(Self(session)),
            _ => Err(Redirect::to(&shared.link("/login")).into_response()),
        }
    }
}

/// A form posted by a signed-in operator with the session's CSRF token (field `csrf_token`).
/// Refused with 403 otherwise, before the handler runs: nothing is done.
#[derive(Debug)]
pub(crate) struct CheckedForm<T>(pub(crate) Session, pub(crate) T);

#[derive(Deserialize)]
struct CsrfOnly {
    csrf_token: Option<String>,
}

impl<T: DeserializeOwned + Send> FromRequest<Arc<Shared>> for CheckedForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, shared: &Arc<Shared>) -> Result<Self, Self::Rejection> {
        let session = Session::read(shared, req.headers());
        let body = Bytes::from_request(req, shared)
            .await
            .map_err(IntoResponse::into_response)?;
        let Some(session) = session.filter(|s| s.signed_in) else {
            return Err(refusal(
                shared,
                "You are not signed in (or your session expired). Sign in, then try again.",
            ));
        };
        let token = serde_urlencoded::from_bytes::<CsrfOnly>(&body)
            .ok()
            .and_then(|f| f.csrf_token);
        if !token.is_some_and(|t| session.csrf_matches(&t)) {
            return Err(refusal(
                shared,
                "The form's security token is missing or out of date. Reload the page and try again.",
            ));
        }
        serde_urlencoded::from_bytes::<T>(&body)
            .map(|form| CheckedForm(session, form))
            .map_err(|e| {
                layout::message_page(
                    shared,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Incomplete form",
                    &e.to_string(),
                )
            })
    }
}

/// 403 with an explanation and a link to the sign-in page.
pub(crate) fn refusal(shared: &Shared, why: &str) -> Response {
    layout::message_page(shared, StatusCode::FORBIDDEN, "Refused", why)
}
