//! The error table of `HttpError` (`docs/errors.md`): each `tenantry_sqlx::Error` variant gets
//! its documented status, and mistakes in what a user gave are 4xx, never 500.

mod common;

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use common::{Server, public_router, setup};
use tenantry_axum::{HttpError, TenantRouter, TenantryExt};
use tenantry_core::{HostError, NameError};
use tenantry_sqlx::{Error, NewTenant, TenantStatus};

/// Status, `Retry-After` and body of the response `e` becomes.
async fn answer(e: Error) -> (StatusCode, Option<String>, String) {
    let response = HttpError::from(e).into_response();
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        retry_after,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

fn s(text: &str) -> String {
    text.to_owned()
}

#[tokio::test]
async fn every_variant_gets_its_documented_status() {
    let user_errors: Vec<(Error, StatusCode)> = vec![
        (
            Error::InvalidName(NameError::SchemaReserved(s("public"))),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Error::InvalidDomain {
                domain: s("a b"),
                reason: HostError::Malformed,
            },
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Error::UnknownTenantType {
                tenant_type: s("nope"),
            },
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Error::TenantDataNotObject { found: "an array" },
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Error::DisplayNameTooLong {
                chars: 201,
                max: 200,
            },
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Error::DisplayNameControlCharacter { character: '\0' },
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (Error::TenantNotFound(s("acme")), StatusCode::NOT_FOUND),
        (
            Error::DomainNotFound {
                domain: s("acme.test"),
            },
            StatusCode::NOT_FOUND,
        ),
        (
            Error::TenantNameTaken { schema: s("acme") },
            StatusCode::CONFLICT,
        ),
        (
            Error::RenameToSameName { schema: s("acme") },
            StatusCode::CONFLICT,
        ),
        (
            Error::DomainTaken {
                domain: s("acme.test"),
            },
            StatusCode::CONFLICT,
        ),
        (
            Error::DomainIsPublic {
                domain: s("localhost"),
            },
            StatusCode::CONFLICT,
        ),
        (
            Error::PrimaryDomainRemoval {
                domain: s("acme.test"),
            },
            StatusCode::CONFLICT,
        ),
        (
            Error::RoleExists { role: s("t_acme") },
            StatusCode::CONFLICT,
        ),
        (
            Error::SchemaAlreadyTenant { schema: s("acme") },
            StatusCode::CONFLICT,
        ),
    ];
    for (e, expected) in user_errors {
        let message = e.to_string();
        let (status, retry_after, body) = answer(e).await;
        assert_eq!(status, expected, "{message}");
        assert_eq!(retry_after, None, "{message}");
        // The body is the message: it names only what the user gave.
        assert_eq!(body, message);
    }

    // The tenant changed or is not serving: unchanged answers.
    let retry_soon = [
        Error::TenantMoved(s("acme")),
        Error::SchemaMissing(s("acme")),
        Error::TenantBusy {
            schema: s("acme"),
            waited: Duration::from_secs(10),
        },
    ];
    for e in retry_soon {
        let (status, retry_after, body) = answer(e).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert_eq!(body, "Service Unavailable");
    }
    let suspended = Error::TenantNotServing {
        schema: s("acme"),
        status: TenantStatus::Suspended,
    };
    assert_eq!(
        answer(suspended).await,
        (StatusCode::FORBIDDEN, None, s("This site is suspended."))
    );
    let maintenance = Error::TenantNotServing {
        schema: s("acme"),
        status: TenantStatus::Maintenance,
    };
    assert_eq!(
        answer(maintenance).await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some(s("120")),
            s("This site is down for maintenance.")
        )
    );
    assert_eq!(
        answer(Error::Database(sqlx::Error::PoolTimedOut)).await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            s("Service Unavailable")
        )
    );

    // Faults of the deployment or the application: 500 with a generic body.
    let not_json = serde_json::to_value(std::collections::HashMap::from([((1, 2), 3)]))
        .expect_err("tuple keys are not JSON");
    let server_faults = [
        Error::Database(sqlx::Error::RowNotFound),
        Error::Migration {
            schema: s("acme"),
            version: 2,
            description: s("bad"),
            message: s("syntax error"),
        },
        Error::MigrationState {
            schema: s("acme"),
            message: s("migration 1 was edited"),
        },
        Error::CannotClone {
            tenant_type: s("default"),
            reason: s("type status"),
        },
        Error::TenantDataNotSerializable(not_json),
        Error::Hook {
            hook: "after_create",
            source: "seed failed".into(),
        },
        Error::NoCurrentTenant,
        Error::SessionScopeForbidden,
        Error::SessionReleasedInTransaction,
        Error::ExtraSearchPathMissing {
            schemas: vec![s("extensions")],
        },
        Error::InvalidPublicDomain {
            domain: s("a b"),
            reason: HostError::Malformed,
        },
        Error::InvalidTenantRolePrefix { prefix: s("Bad") },
    ];
    for e in server_faults {
        let message = e.to_string();
        let (status, _, body) = answer(e).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{message}");
        assert_eq!(body, "Internal Server Error", "{message}");
    }
}

/// A sign-up route that passes what the user sent straight to Tenantry: `name` and `domain`,
/// optionally `display_name`, `tenant_type` and `data`.
async fn sign_up(
    TenantryExt(tenantry): TenantryExt,
    Json(form): Json<serde_json::Value>,
) -> Result<StatusCode, HttpError> {
    let text = |key: &str| form[key].as_str().map(str::to_owned);
    let mut new = NewTenant::new(
        text("name").unwrap_or_default(),
        text("domain").unwrap_or_default(),
    );
    if let Some(name) = text("display_name") {
        new = new.display_name(name);
    }
    if let Some(ty) = text("tenant_type") {
        new = new.tenant_type(ty);
    }
    if let Some(data) = form.get("data") {
        new = new.data(data).expect("JSON is JSON");
    }
    tenantry.admin().create_tenant(new).await?;
    Ok(StatusCode::CREATED)
}

#[tokio::test]
async fn sign_up_mistakes_are_4xx_not_500() {
    let (_db, tenantry) = setup().await;
    let public = public_router().route("/signup", post(sign_up));
    let app = TenantRouter::new(tenantry.clone())
        .public(public)
        .tenant(Router::new());
    let s = Server::start(app).await;
    let sign_up = |body: serde_json::Value| {
        let request = s
            .client
            .post(format!("http://{}/signup", s.addr))
            .header("host", "localhost")
            .json(&body);
        async move {
            let r = request.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    use serde_json::json;

    let created = sign_up(json!({"name": "acme", "domain": "acme.localhost"})).await;
    assert_eq!(created.0, 201, "{created:?}");
    let cases = [
        (
            json!({"name": "beta", "domain": "beta.localhost", "data": ["plan", "free"]}),
            422,
            "tenant data must be a JSON object, not an array",
        ),
        (
            json!({"name": "beta", "domain": "beta.localhost", "data": "free"}),
            422,
            "tenant data must be a JSON object, not a string",
        ),
        (
            json!({"name": "beta", "domain": "beta.localhost", "tenant_type": "nope"}),
            422,
            "unknown tenant type \"nope\"",
        ),
        (
            json!({"name": "beta", "domain": "beta.localhost", "display_name": "x".repeat(201)}),
            422,
            "display name is 201 characters long; at most 200 are allowed",
        ),
        (
            json!({"name": "beta", "domain": "beta.localhost", "display_name": "a\u{0}b"}),
            422,
            "display name contains the control character U+0000; control characters are not allowed",
        ),
        (
            json!({"name": "Beta", "domain": "beta.localhost"}),
            422,
            "schema name \"Beta\" must match",
        ),
        (
            json!({"name": "beta", "domain": "be ta"}),
            422,
            "domain \"be ta\" is not a valid host name",
        ),
        (
            json!({"name": "acme", "domain": "beta.localhost"}),
            409,
            "tenant name \"acme\" is taken",
        ),
        (
            json!({"name": "beta", "domain": "ACME.localhost"}),
            409,
            "domain \"acme.localhost\" is already taken",
        ),
        (
            json!({"name": "beta", "domain": "localhost"}),
            409,
            "domain \"localhost\" is a public domain",
        ),
    ];
    for (body, status, message) in cases {
        let (got, text) = sign_up(body.clone()).await;
        assert_eq!(got, status, "{body}: {text}");
        assert!(text.starts_with(message), "{body}: {text}");
    }
    assert_eq!(tenantry.admin().tenants().await.unwrap().len(), 1);
}
