//! The public site (main domain): landing page, sign-up, tenant directory.

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use serde::{Deserialize, Serialize};
use tenantry::NewTenant;
use tenantry::axum::{HttpError, PublicDb, TenantryExt};

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
    let plans: Vec<Plan> = sqlx::query_as(
        "SELECT name, monthly_price_cents, note_limit FROM plans ORDER BY monthly_price_cents",
    )
    .fetch_all(&mut *db)
    .await?;
    let plans: String = plans
        .iter()
        .map(|p| {
            format!(
                "<li>{} - ${}.{:02}/month, up to {} notes</li>",
                escape(&p.name),
                p.monthly_price_cents / 100,
                p.monthly_price_cents % 100,
                p.note_limit
            )
        })
        .collect();
    Ok(Html(format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Notes SaaS (Tenantry demo)</title></head>
<body>
<h1>Notes SaaS</h1>
<p>Every workspace gets its own PostgreSQL schema, served at <code>&lt;subdomain&gt;.localhost</code>.</p>
<h2>Plans</h2><ul>{plans}</ul>
<h2>Create your workspace</h2>
<form method="post" action="/signup">
  <label>Name <input name="name" required></label>
  <label>Subdomain <input name="subdomain" required pattern="[a-z_][a-z0-9_]{{0,62}}"></label>
  <label>Kind <select name="type"><option value="">Notes</option><option value="clinic">Clinic</option><option value="lab">Lab</option></select></label>
  <button type="submit">Sign up</button>
</form>
</body></html>"#
    )))
}

#[derive(Deserialize)]
struct SignupForm {
    name: String,
    subdomain: String,
    /// Optional tenant type (`clinic`, `lab`); empty or absent: the default type.
    #[serde(default, rename = "type")]
    tenant_type: String,
}

async fn signup(
    State(site): State<Site>,
    TenantryExt(tenantry): TenantryExt,
    headers: axum::http::HeaderMap,
    Form(form): Form<SignupForm>,
) -> Result<Response, HttpError> {
    let subdomain = form.subdomain.trim();
    let display_name = match form.name.trim() {
        "" => subdomain.to_owned(),
        name => name.to_owned(),
    };
    check_name(&display_name)
        .map_err(|message| HttpError::new(StatusCode::UNPROCESSABLE_ENTITY, message))?;
    // The subdomain is validated by Tenantry as a schema name before anything runs.
    let domain = format!("{subdomain}.{}", site.domain_suffix);
    let mut new = NewTenant::new(subdomain, &domain).display_name(display_name);
    match form.tenant_type.trim() {
        "" => {}
        ty @ ("clinic" | "lab") => new = new.tenant_type(ty),
        other => {
            return Err(HttpError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("unknown kind {other:?}"),
            ));
        }
    }
    let new = new
        .data(&TenantData {
            plan: "free".into(),
        })
        .map_err(|e| HttpError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    tenantry.create_tenant(new).await?;
    // Keep the port the visitor used (e.g. :8000) in the redirect.
    let port = host_port(&headers);
    Ok(Redirect::to(&format!("http://{domain}{port}/")).into_response())
}

/// The longest workspace name, in characters (Tenantry refuses longer display names too).
const MAX_NAME_CHARS: usize = 200;

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
    if chars > MAX_NAME_CHARS {
        return Err(format!(
            "name is {chars} characters long; at most {MAX_NAME_CHARS} are allowed"
        ));
    }
    Ok(())
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
    let tenants = tenantry.tenants().await?;
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
