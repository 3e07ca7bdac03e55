//! The tenant home page's note forms: add, edit and delete a note without JavaScript
//! (`POST /notes`, `POST /notes/{id}`, `POST /notes/{id}/delete`, each answered with a 303 back
//! to the page). The JSON API (`/api/notes`) is unchanged; a note added here is announced on
//! the live feed like one added through the API.

use axum::Extension;
use axum::extract::{Form, Path};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use tenantry::axum::{CurrentTenant, HttpError, TenantBase, TenantDb};

use crate::attachments::{self, Stores};
use crate::live::NotesFeed;
use crate::no_nul;
use crate::public_site::escape;
use crate::tenant_site::Note;

/// The longest title the forms accept (characters).
const MAX_TITLE: usize = 500;

/// One note in the page's list, with its edit and delete forms.
pub fn note_item(base: &TenantBase, n: &Note) -> String {
    let action = escape(&base.link(&format!("/notes/{}", n.id)));
    format!(
        r#"<li id="note-{id}"><strong>{title}</strong><div>{body}</div>
<details><summary>Edit or delete</summary>
<form method="post" action="{action}">
  <label>Title <input name="title" required value="{title}"></label>
  <label>Body <textarea name="body">{body}</textarea></label>
  <button class="small" type="submit">Save</button>
</form>
<form class="inline" method="post" action="{action}/delete"><button class="small danger" type="submit">Delete</button></form>
</details></li>"#,
        id = n.id,
        title = escape(&n.title),
        body = escape(&n.body),
    )
}

/// A note form's fields.
#[derive(Debug, Deserialize)]
pub struct NoteForm {
    /// Title (required).
    #[serde(default)]
    pub title: String,
    /// Body.
    #[serde(default)]
    pub body: String,
}

impl NoteForm {
    fn check(&self) -> Result<(), String> {
        if self.title.trim().is_empty() {
            return Err("A note needs a title.".into());
        }
        if self.title.chars().count() > MAX_TITLE {
            return Err(format!("A title has at most {MAX_TITLE} characters."));
        }
        no_nul("title", &self.title).and(no_nul("body", &self.body))
    }
}

/// 422 with the reason and a link back to the notes.
fn refused(base: &TenantBase, why: &str) -> Response {
    let body = format!(
        r#"<section class="card"><p class="error" role="alert">{}</p><p><a href="{}">Back to the notes</a></p></section>"#,
        escape(why),
        escape(&base.link("/"))
    );
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Html(crate::layout::page(
            "Not saved",
            "nothing was changed",
            &body,
        )),
    )
        .into_response()
}

fn back(base: &TenantBase) -> Response {
    Redirect::to(&base.link("/")).into_response()
}

/// `POST /notes`: form `title`, `body`.
pub async fn create(
    tenant: CurrentTenant,
    base: TenantBase,
    Extension(feed): Extension<NotesFeed>,
    stores: Option<Extension<Stores>>,
    mut db: TenantDb,
    Form(form): Form<NoteForm>,
) -> Result<Response, HttpError> {
    if let Err(why) = form.check() {
        return Ok(refused(&base, &why));
    }
    let id: i64 =
        sqlx::query_scalar("INSERT INTO notes (title, body) VALUES ($1, $2) RETURNING id")
            .bind(form.title.trim())
            .bind(&form.body)
            .fetch_one(&mut *db)
            .await?;
    db.commit().await?;
    if let Some(stores) = &stores {
        attachments::notes_changed(stores, &tenant).await;
    }
    feed.publish(tenant.id, id);
    Ok(back(&base))
}

/// `POST /notes/{id}`: form `title`, `body`.
pub async fn update(
    base: TenantBase,
    mut db: TenantDb,
    Path(id): Path<i64>,
    Form(form): Form<NoteForm>,
) -> Result<Response, HttpError> {
    if let Err(why) = form.check() {
        return Ok(refused(&base, &why));
    }
    let done = sqlx::query("UPDATE notes SET title = $1, body = $2 WHERE id = $3")
        .bind(form.title.trim())
        .bind(&form.body)
        .bind(id)
        .execute(&mut *db)
        .await?;
    if done.rows_affected() == 0 {
        return Err(HttpError::new(
            StatusCode::NOT_FOUND,
            format!("no note {id}"),
        ));
    }
    db.commit().await?;
    Ok(back(&base))
}

/// `POST /notes/{id}/delete`.
pub async fn delete(
    tenant: CurrentTenant,
    base: TenantBase,
    stores: Option<Extension<Stores>>,
    mut db: TenantDb,
    Path(id): Path<i64>,
) -> Result<Response, HttpError> {
    let done = sqlx::query("DELETE FROM notes WHERE id = $1")
        .bind(id)
        .execute(&mut *db)
        .await?;
    if done.rows_affected() == 0 {
        return Err(HttpError::new(
            StatusCode::NOT_FOUND,
            format!("no note {id}"),
        ));
    }
    db.commit().await?;
    if let Some(stores) = &stores {
        attachments::notes_changed(stores, &tenant).await;
    }
    Ok(back(&base))
}
