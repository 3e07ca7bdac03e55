//! A tenant archive as a download (`admin().export_tenant`) and as an upload
//! (`admin().import_tenant`), streamed both ways: neither the archive nor the upload is held
//! whole in memory or written to disk.
//!
//! * Export: the library writes the archive on a blocking thread into a [`ChannelWriter`]
//!   (64 KiB chunks, a few in flight) whose other end is the response body. The answer waits
//!   for the first chunk: an export refused before any byte (unknown tenant, no migration
//!   history...) is shown on the tenant's page; one failing later cuts the download short (the
//!   archive then lacks its end entry and an import refuses it).
//! * Import: the multipart field's chunks go through a channel into a [`ChannelReader`] that
//!   the library reads on its blocking thread. The CSRF token and the names must come before
//!   the file (the form is laid out so); the upload is limited by
//!   [`crate::Console::max_archive_bytes`].

use std::io::{self, Read, Write};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::tools::{failed, refused, to_new_tenant};
use super::tools_section::{NewForm, Tool};
use crate::config::Shared;
use crate::session::{CheckedForm, Session, refusal};

/// Bytes per chunk sent to the client.
const CHUNK: usize = 64 * 1024;
/// Chunks in flight between the archive's thread and the connection (either way).
const IN_FLIGHT: usize = 8;
/// The longest text field of the import form.
const MAX_FIELD: usize = 4096;

/// The export form holds only its token.
#[derive(Deserialize)]
pub(crate) struct ExportForm {}

/// `POST /tenants/{name}/export`: the archive, as `<schema>-<date>.tenant.tar.gz`.
pub(crate) async fn export(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    CheckedForm(session, ExportForm {}): CheckedForm<ExportForm>,
) -> Response {
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, tenantry_sqlx::Error>>(IN_FLIGHT);
    let writer = io::BufWriter::with_capacity(CHUNK, ChannelWriter(tx.clone()));
    let task = (Arc::clone(&shared), name.clone());
    tokio::spawn(async move {
        let (shared, name) = task;
        match shared.tenantry.admin().export_tenant(&name, writer).await {
            Ok((_writer, report)) => {
                tracing::info!(
                    target: "tenantry::console",
                    action = "export",
                    tenant = %name,
                    rows = report.rows(),
                    archive_bytes = report.archive_bytes,
                    elapsed_ms = report.elapsed.as_millis() as u64,
                    "tenant exported"
                );
            }
            Err(e) => {
                tracing::warn!(target: "tenantry::console", action = "export", tenant = %name, error = %e, "export failed");
                // Seen by the handler (before the first byte) or ends the body with an error.
                let _ = tx.send(Err(e)).await;
            }
        }
    });
    let first = match rx.recv().await {
        Some(Ok(bytes)) => bytes,
        Some(Err(e)) => {
            return failed(
                &shared,
                &session,
                &name,
                Tool::Export,
                NewForm::default(),
                &e,
            )
            .await;
        }
        None => {
            return refused(
                &shared,
                &session,
                &name,
                Tool::Export,
                NewForm::default(),
                StatusCode::INTERNAL_SERVER_ERROR,
                "The export ended without writing anything.".to_owned(),
            )
            .await;
        }
    };
    let rest = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let body = futures::stream::once(async move { Ok(first) })
        .chain(rest)
        .map(|item| item.map_err(|e| io::Error::other(e.to_string())));
    let file = format!(
        "{}-{}.tenant.tar.gz",
        // A registry name is [a-z0-9_] already; nothing else may reach the header.
        name.replace(|c: char| !(c.is_ascii_alphanumeric() || c == '_'), "_"),
        chrono::Utc::now().format("%Y-%m-%d")
    );
    (
        [
            (header::CONTENT_TYPE, "application/gzip".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// The archive's bytes into a channel, from the library's blocking thread (never call it from
/// async code: it blocks while the client is slower than the export).
struct ChannelWriter(mpsc::Sender<Result<Bytes, tenantry_sqlx::Error>>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the download was abandoned"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `POST /tenants/{name}/import` (multipart): `csrf_token`, `new_name`, `domain`,
/// `display_name`, then the file `archive`.
pub(crate) async fn import(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    req: Request,
) -> Response {
    // The session first: nothing of the body is read without one.
    let Some(session) = Session::read(&shared, req.headers()).filter(|s| s.signed_in) else {
        return refusal(
            &shared,
            "You are not signed in (or your session expired). Sign in, then try again.",
        );
    };
    let mut multipart = match Multipart::from_request(req, &shared).await {
        Ok(m) => m,
        Err(e) => return e.into_response(),
    };
    let mut token_ok = false;
    let mut form = NewForm::default();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return upload_failed(&shared, &session, &name, form, &e).await,
        };
        let Some(which) = field.name().map(str::to_owned) else {
            continue;
        };
        match which.as_str() {
            "archive" if token_ok => return load(&shared, &session, &name, form, field).await,
            "archive" => break,
            "csrf_token" | "new_name" | "domain" | "display_name" => {
                let text = match small_text(field).await {
                    Ok(text) => text,
                    Err(e) => return upload_failed(&shared, &session, &name, form, &e).await,
                };
                match which.as_str() {
                    "csrf_token" => token_ok = session.csrf_matches(&text),
                    "new_name" => form.new_name = text,
                    "domain" => form.domain = text,
                    _ => form.display_name = text,
                }
            }
            // Anything else is skipped (dropped unread).
            _ => {}
        }
    }
    if !token_ok {
        return refusal(
            &shared,
            "The form's security token is missing or out of date (it must come before the file). \
             Reload the page and try again.",
        );
    }
    refused(
        &shared,
        &session,
        &name,
        Tool::Import,
        form,
        StatusCode::UNPROCESSABLE_ENTITY,
        "Choose an archive file to import. Nothing was created.".to_owned(),
    )
    .await
}

/// A text field, refused beyond [`MAX_FIELD`] bytes or when it is not UTF-8.
async fn small_text(mut field: Field<'_>) -> Result<String, UploadError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(UploadError::Multipart)? {
        if bytes.len() + chunk.len() > MAX_FIELD {
            return Err(UploadError::FieldTooLong);
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| UploadError::NotText)
}

/// Why the upload itself (not the archive) was refused.
#[derive(Debug)]
enum UploadError {
    Multipart(MultipartError),
    FieldTooLong,
    NotText,
}

async fn upload_failed(
    shared: &Shared,
    session: &Session,
    name: &str,
    form: NewForm,
    e: &dyn UploadProblem,
) -> Response {
    let (status, text) = e.explain(shared);
    refused(shared, session, name, Tool::Import, form, status, text).await
}

/// An upload problem as a status and a sentence.
trait UploadProblem: Sync {
    fn explain(&self, shared: &Shared) -> (StatusCode, String);
}

impl UploadProblem for MultipartError {
    fn explain(&self, shared: &Shared) -> (StatusCode, String) {
        let status = self.status();
        let text = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!(
                "The upload is larger than the console accepts ({} bytes). Nothing was created.",
                shared.max_archive_bytes
            )
        } else {
            format!("The upload could not be read: {self}. Nothing was created.")
        };
        (status, text)
    }
}

impl UploadProblem for UploadError {
    fn explain(&self, shared: &Shared) -> (StatusCode, String) {
        match self {
            Self::Multipart(e) => e.explain(shared),
            Self::FieldTooLong => (
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("A form field is longer than {MAX_FIELD} bytes. Nothing was created."),
            ),
            Self::NotText => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "A form field is not UTF-8 text. Nothing was created.".to_owned(),
            ),
        }
    }
}

/// Imports the archive in `field` (streamed into the library) as `form`'s tenant.
async fn load(
    shared: &Shared,
    session: &Session,
    name: &str,
    form: NewForm,
    mut field: Field<'_>,
) -> Response {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(IN_FLIGHT);
    let import = shared
        .tenantry
        .admin()
        .import_tenant(ChannelReader::new(rx), form.new_tenant());
    let feed = async move {
        loop {
            match field.chunk().await {
                Ok(Some(bytes)) => {
                    if tx.send(Ok(bytes)).await.is_err() {
                        return None; // the import stopped reading (it failed)
                    }
                }
                Ok(None) => return None,
                Err(e) => {
                    let _ = tx.send(Err(io::Error::other(e.to_string()))).await;
                    return Some(e);
                }
            }
        }
    };
    match futures::join!(import, feed) {
        (Ok(report), _) => {
            let rows = report.rows();
            tracing::info!(
                target: "tenantry::console",
                action = "import",
                tenant = %report.tenant.schema,
                page = %name,
                rows,
                archive_bytes = report.archive_bytes,
                elapsed_ms = report.elapsed.as_millis() as u64,
                "tenant imported"
            );
            to_new_tenant(
                shared,
                &report.tenant.schema,
                &[("done", "imported"), ("rows", &rows.to_string())],
            )
        }
        // The upload broke (too large, cut off): that is the reason, not the archive.
        (Err(_), Some(upload)) => upload_failed(shared, session, name, form, &upload).await,
        (Err(e), None) => failed(shared, session, name, Tool::Import, form, &e).await,
    }
}

/// The upload's chunks as a [`Read`], for the library's blocking thread (it blocks while the
/// upload is slower than the import).
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl ChannelReader {
    fn new(rx: mpsc::Receiver<io::Result<Bytes>>) -> Self {
        Self {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(bytes)) => self.current = bytes,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}
