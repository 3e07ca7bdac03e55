//! The public site (main domain): landing page, sign-up, tenant directory.

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use serde::{Deserialize, Serialize};
use tenantry::axum::{HttpError, PublicDb, TenantryExt};
use tenantry::core::NameError;
use tenantry::{MAX_DISPLAY_NAME_CHARS, NewTenant};

use crate::{TenantData, api, no_nul};

#[derive(Clone)]
struct Site {
    domain_suffix: String,
}

/// Routes of the public site. `domain_suffix` is appended to sign-up subdomains.
pub fn router(domain_suffix: String) -> Router {
    Router::new()
        .route("/", get(landing))
        .route("/signup", post(signup))
        .route("/api/tenants", get(list_tenants))
        .with_state(Site { domain_suffix })
        .layer(middleware::from_fn(api::json_errors))
}

#[derive(sqlx::FromRow)]
struct Plan {
    name: String,
    monthly_price_cents: i32,
    note_limit: i32,
}

async fn landing(mut db: PublicDb) -> Result<Html<String>, HttpError> {
    let plans: Vec<Plan> = sqlx::query_as(PLANS).fetch_all(&mut *db).await?;
    Ok(Html(landing_page(&plans, None, &SignupForm::default())))
}

/// The shared plans, cheapest first.
const PLANS: &str =
    "SELECT name, monthly_price_cents, note_limit FROM plans ORDER BY monthly_price_cents";

/// The landing page; with `error`, the sign-up form shows it and keeps what was typed.
fn landing_page(plans: &[Plan], error: Option<&str>, form: &SignupForm) -> String {
    let plans: String = plans
        .iter()
        .map(|p| {
            format!(
                "<li><b>{}</b> ${}.{:02}/month<br><span class=\"muted\">up to {} notes</span></li>",
                escape(&p.name),
                p.monthly_price_cents / 100,
                p.monthly_price_cents % 100,
                p.note_limit
            )
        })
        .collect();
    let error = error
        .map(|e| {
            format!(
                r#"<p class="error" role="alert" id="signup-error">{}</p>"#,
                escape(e)
            )
        })
        .unwrap_or_default();
    let kind = |value: &str, label: &str| {
        let selected = if form.tenant_type == value {
            " selected"
        } else {
            ""
        };
        format!(r#"<option value="{value}"{selected}>{label}</option>"#)
    };
    let body = format!(
        r#"<section class="card">
<h1>Your team's notes, in a workspace of its own</h1>
<p class="muted">Every workspace gets its own PostgreSQL schema, served at <code>&lt;subdomain&gt;.localhost</code>.
A subdomain is letters, digits and hyphens (<code>my-co</code>), not starting or ending with a hyphen.</p>
</section>
<section class="card"><h2>Plans</h2><ul class="plans">{plans}</ul></section>
<section class="card" id="signup">
<h2>Create your workspace</h2>
{error}
<form method="post" action="/signup">
  <div class="row">
  <label>Name <input name="name" required value="{name}" placeholder="Acme Corp"></label>
  <label>Subdomain <input name="subdomain" required value="{subdomain}" placeholder="acme" pattern="[A-Za-z0-9]([A-Za-z0-9\-]{{0,61}}[A-Za-z0-9])?" title="letters, digits and hyphens"></label>
  </div>
  <label>Kind <select name="type">{notes}{clinic}{lab}</select></label>
  <button type="submit">Sign up</button>
</form>
</section>"#,
        name = escape(&form.name),
        subdomain = escape(&form.subdomain),
        notes = kind("", "Notes"),
        clinic = kind("clinic", "Clinic"),
        lab = kind("lab", "Lab"),
    );
    crate::layout::page("Notes SaaS", "a Tenantry demo", &body)
}

#[derive(Deserialize, Default)]
struct SignupForm {
    name: String,
    subdomain: String,
    /// Optional tenant type (`clinic`, `lab`); empty or absent: the default type.
    #[serde(default, rename = "type")]
    tenant_type: String,
}

/// Why a sign-up was not done.
enum SignupError {
    /// The visitor's input: shown to them (422, 409).
    Refused(StatusCode, String),
    /// Anything else (answered as Tenantry's errors are).
    Other(HttpError),
}

impl From<HttpError> for SignupError {
    fn from(e: HttpError) -> Self {
        Self::Other(e)
    }
}

/// `POST /signup`. A browser (`Accept: text/html`) gets a refusal inline in the landing page,
/// with what it typed; other clients the plain-text message, with the same status.
async fn signup(
    State(site): State<Site>,
    TenantryExt(tenantry): TenantryExt,
    headers: axum::http::HeaderMap,
    Form(form): Form<SignupForm>,
) -> Result<Response, HttpError> {
    match create(&site, &tenantry, &form).await {
        Ok(domain) => {
            // Keep the port the visitor used (e.g. :8000) in the redirect.
            let port = host_port(&headers);
            Ok(Redirect::to(&format!("http://{domain}{port}/")).into_response())
        }
        Err(SignupError::Refused(status, message)) if wants_html(&headers) => {
            let mut db = tenantry.begin_public().await?;
            let plans: Vec<Plan> = sqlx::query_as(PLANS).fetch_all(&mut *db).await?;
            Ok((status, Html(landing_page(&plans, Some(&message), &form))).into_response())
        }
        Err(SignupError::Refused(status, message)) => Err(HttpError::new(status, message)),
        Err(SignupError::Other(e)) => Err(e),
    }
}

/// Whether the client asked for HTML (a browser's form post).
fn wants_html(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// Creates the tenant of a sign-up; its primary domain.
async fn create(
    site: &Site,
    tenantry: &tenantry::Tenantry,
    form: &SignupForm,
) -> Result<String, SignupError> {
    let refuse = |message: String| SignupError::Refused(StatusCode::UNPROCESSABLE_ENTITY, message);
    let typed = form.subdomain.trim();
    let subdomain = Subdomain::parse(typed).map_err(refuse)?;
    let display_name = match form.name.trim() {
        "" => subdomain.label.clone(),
        name => name.to_owned(),
    };
    check_name(&display_name).map_err(refuse)?;
    let domain = format!("{}.{}", subdomain.label, site.domain_suffix);
    let mut new = NewTenant::new(&subdomain.schema, &domain).display_name(display_name);
    match form.tenant_type.trim() {
        "" => {}
        ty @ ("clinic" | "lab") => new = new.tenant_type(ty),
        other => return Err(refuse(format!("unknown kind {other:?}"))),
    }
    let new = new
        .data(&TenantData {
            plan: "free".into(),
        })
        .map_err(|e| HttpError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    // Tenantry's refusals, worded for what the user typed rather than for the schema.
    match tenantry.admin().create_tenant(new).await {
        Ok(_) => Ok(domain),
        Err(tenantry::Error::InvalidName(NameError::SchemaReserved(_))) => Err(refuse(format!(
            "subdomain {} is reserved; choose another",
            shown(typed)
        ))),
        // Its schema name or its domain is in use (a sign-up, or a tenant made another way).
        Err(tenantry::Error::TenantNameTaken { .. } | tenantry::Error::DomainTaken { .. }) => {
            Err(SignupError::Refused(
                StatusCode::CONFLICT,
                format!("subdomain {} is taken; choose another", shown(typed)),
            ))
        }
        Err(e) => Err(HttpError::from(e).into()),
    }
}

/// Checks the workspace name of the sign-up form: stored as text and shown in pages and tables.
fn check_name(name: &str) -> Result<(), String> {
    no_nul("name", name)?;
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(format!(
            "name must not contain control characters (U+{:04X})",
            u32::from(c)
        ));
    }
    let chars = name.chars().count();
    // Tenantry's own limit on display names, checked here to word the refusal for the form.
    if chars > MAX_DISPLAY_NAME_CHARS {
        return Err(format!(
            "name is {chars} characters long; at most {MAX_DISPLAY_NAME_CHARS} are allowed"
        ));
    }
    Ok(())
}

/// A sign-up subdomain: the host label the user typed (lowercased) and the schema name derived
/// from it. A host label allows hyphens and a leading digit, a schema name neither: `my-co` is
/// served at `my-co.<suffix>` from schema `my_co`, `2fast` from `_2fast`. The mapping is
/// one-to-one (a host label has no `_`), so two sign-ups never derive the same schema; a clash
/// with a schema made another way is refused by Tenantry as taken.
#[derive(Debug, PartialEq, Eq)]
pub struct Subdomain {
    /// The host label, lowercase.
    pub label: String,
    /// The tenant's schema name.
    pub schema: String,
}

impl Subdomain {
    /// Checks `typed` as one DNS label (RFC 1123: 1-63 letters, digits and hyphens, no hyphen
    /// at either end) and derives the schema name. Errors speak of what the user typed.
    pub fn parse(typed: &str) -> Result<Self, String> {
        let label = typed.to_ascii_lowercase();
        let what = || format!("subdomain {}", shown(typed));
        if label.is_empty() {
            return Err("choose a subdomain".into());
        }
        if label.contains('.') {
            return Err(format!("{} must be one name, without dots", what()));
        }
        if label.len() > 63 {
            return Err(format!("{} is too long: at most 63 characters", what()));
        }
        if label.contains('_') {
            let hyphens = label.replace('_', "-");
            return Err(format!(
                "{} is not a valid host name: \"_\" is not allowed in host names (try {hyphens:?})",
                what()
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!(
                "{} is not a valid host name: use only letters a-z, digits and hyphens",
                what()
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "{} is not a valid host name: it can't start or end with a hyphen",
                what()
            ));
        }
        let mut schema = label.replace('-', "_");
        if schema.starts_with(|c: char| c.is_ascii_digit()) {
            schema.insert(0, '_');
        }
        if schema.len() > 63 {
            return Err(format!(
                "{} is too long: at most 62 characters when it starts with a digit",
                what()
            ));
        }
        Ok(Self { label, schema })
    }
}

/// `typed`, quoted, cut to 64 characters: error messages echo what the user typed, but a
/// megabyte of it helps nobody.
fn shown(typed: &str) -> String {
    match typed.char_indices().nth(64) {
        Some((cut, _)) => format!("{:?}...", &typed[..cut]),
        None => format!("{typed:?}"),
    }
}

/// `:port` of the request's `Host` header, if it has one.
fn host_port(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.rsplit_once(':'))
        .filter(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
        .map(|(_, port)| format!(":{port}"))
        .unwrap_or_default()
}

#[derive(Serialize)]
struct TenantSummary {
    name: String,
    display_name: String,
    domain: Option<String>,
    status: String,
    plan: Option<String>,
    /// The tenant type (`default`, `clinic`, `lab`).
    tenant_type: String,
}

async fn list_tenants(
    TenantryExt(tenantry): TenantryExt,
) -> Result<Json<Vec<TenantSummary>>, HttpError> {
    let tenants = tenantry.admin().tenants().await?;
    Ok(Json(
        tenants
            .into_iter()
            .map(|t| TenantSummary {
                plan: t.data_as::<TenantData>().ok().map(|d| d.plan),
                name: t.schema,
                display_name: t.display_name,
                domain: t.primary_domain,
                status: t.status.to_string(),
                tenant_type: t.tenant_type,
            })
            .collect(),
    ))
}

/// Minimal HTML escaping for text inserted into pages.
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::Subdomain;

    fn schema(typed: &str) -> String {
        Subdomain::parse(typed).unwrap().schema
    }

    #[test]
    fn schema_names_derive_from_host_labels() {
        assert_eq!(
            Subdomain::parse("My-Co").unwrap(),
            Subdomain {
                label: "my-co".into(),
                schema: "my_co".into()
            }
        );
        assert_eq!(schema("acme2"), "acme2");
        assert_eq!(schema("a--b"), "a__b");
        assert_eq!(schema("2fast"), "_2fast");
        assert_eq!(schema("123"), "_123");
        assert_eq!(schema(&"x".repeat(63)), "x".repeat(63));
        assert!(Subdomain::parse(&format!("1{}", "x".repeat(62))).is_err());
    }

    #[test]
    fn refusals_quote_what_was_typed() {
        for (typed, says) in [
            ("", "choose a subdomain"),
            (
                "my_co",
                r#"subdomain "my_co" is not a valid host name: "_""#,
            ),
            ("My_Co", r#"(try "my-co")"#),
            ("a.b", "without dots"),
            ("-a", "start or end with a hyphen"),
            ("a-", "start or end with a hyphen"),
            ("a b", "letters a-z"),
            ("ünï", r#""ünï""#),
            ("a\0", "letters a-z"),
        ] {
            let err = Subdomain::parse(typed).unwrap_err();
            assert!(err.contains(says), "{typed:?}: {err}");
        }
        let err = Subdomain::parse(&"y".repeat(100_000)).unwrap_err();
        assert!(err.len() < 200 && err.contains("at most 63"), "{err}");
    }
}
