//! The frame every page shares (head, navigation, sign-out), the stylesheet, message pages and
//! small formatting helpers.

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use crate::config::Shared;

/// The console's stylesheet, served by the router itself (`GET <mount>/style.css`).
const STYLE: &str = include_str!("../../assets/console.css");

/// `GET /style.css`.
pub(crate) async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        STYLE,
    )
        .into_response()
}

/// Which navigation entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Tenants,
    NewTenant,
    Fleet,
    Charts,
    None,
}

/// The form field that carries the CSRF token.
pub(crate) const CSRF_FIELD: &str = "csrf_token";

/// A full page: head, `body`, and for a signed-in operator (`token`: their session's CSRF
/// token) the navigation and the sign-out form.
pub(crate) fn page(
    shared: &Shared,
    token: Option<&str>,
    nav: Nav,
    title: &str,
    body: Markup,
) -> Markup {
    let item = |which: Nav, path: &str, label: &str| {
        html! {
            a href=(shared.link(path)) class=[(nav == which).then_some("current")] { (label) }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Tenantry console" }
                link rel="stylesheet" href=(shared.link("/style.css"));
            }
            body {
                header.top {
                    a.brand href=(shared.link("/")) { "Tenantry" span { "console" } }
                    @if let Some(token) = token {
                        nav {
                            (item(Nav::Tenants, "/", "Tenants"))
                            (item(Nav::NewTenant, "/tenants/new", "New tenant"))
                            (item(Nav::Fleet, "/fleet", "Fleet"))
                            (item(Nav::Charts, "/charts", "Charts"))
                        }
                        form.signout method="post" action=(shared.link("/logout")) {
                            (csrf(token))
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The hidden CSRF input every form carries (`token`: the session's).
pub(crate) fn csrf(token: &str) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(token); }
}

/// A page that only says something (refusals, errors), with `status`.
pub(crate) fn message_page(
    shared: &Shared,
    status: StatusCode,
    title: &str,
    text: &str,
) -> Response {
    let body = html! {
        section.card.message {
            h1 { (title) }
            p { (text) }
            p { a href=(shared.link("/")) { "Back to the console" } }
        }
    };
    (
        status,
        Html(page(shared, None, Nav::None, title, body).into_string()),
    )
        .into_response()
}

/// A page answered with 200.
pub(crate) fn ok(markup: Markup) -> Response {
    Html(markup.into_string()).into_response()
}

/// `bytes` for people: `8.0 KiB`, `1.2 MiB`.
pub(crate) fn size(bytes: Option<i64>) -> String {
    let Some(bytes) = bytes else {
        return "–".into();
    };
    let mut value = bytes as f64;
    for unit in ["B", "KiB", "MiB", "GiB"] {
        if value < 1024.0 || unit == "GiB" {
            return if unit == "B" {
                format!("{bytes} B")
            } else {
                format!("{value:.1} {unit}")
            };
        }
        value /= 1024.0;
    }
    unreachable!()
}

#[cfg(test)]
mod tests {
    use super::size;

    #[test]
    fn sizes_read_well() {
        assert_eq!(size(None), "–");
        assert_eq!(size(Some(512)), "512 B");
        assert_eq!(size(Some(8192)), "8.0 KiB");
        assert_eq!(size(Some(3 * 1024 * 1024 + 100_000)), "3.1 MiB");
    }
}
