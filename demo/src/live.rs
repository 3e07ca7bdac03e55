//! The live notes feed: `GET /api/notes/stream` (server-sent events) and `GET /ws`
//! (WebSocket), one in-process broadcast channel per tenant.
//!
//! Both run in the tenant's context for their whole life through Tenantry's
//! [`TenantContext`]: the channel is chosen by the tenant of the request, and each note is read
//! back through a fresh tenant-scoped transaction inside the stream, after the handler has
//! returned. A tenant's stream can only ever subscribe to its own channel.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::Extension;
use axum::extract::ws::{Message, WebSocket};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use tenantry::axum::{TenantContext, TenantWebSocket};
use tokio::sync::broadcast;

use crate::tenant_site::Note;

/// New-note announcements (note ids), one channel per tenant id. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct NotesFeed(Arc<Mutex<HashMap<i64, broadcast::Sender<i64>>>>);

impl NotesFeed {
    fn channel(&self, tenant_id: i64) -> broadcast::Sender<i64> {
        self.0
            .lock()
            .expect("feed lock")
            .entry(tenant_id)
            .or_insert_with(|| broadcast::channel(64).0)
            .clone()
    }

    /// Announces note `note_id` of tenant `tenant_id` (after its transaction committed).
    pub fn publish(&self, tenant_id: i64, note_id: i64) {
        // No subscriber is not an error.
        let _ = self.channel(tenant_id).send(note_id);
    }

    /// Announcements for tenant `tenant_id`.
    pub fn subscribe(&self, tenant_id: i64) -> broadcast::Receiver<i64> {
        self.channel(tenant_id).subscribe()
    }
}

/// Reads a note through a fresh tenant-scoped transaction (inside the stream's scope).
/// `Err` when no transaction can be opened: the tenant was renamed away, deleted or suspended
/// (its identity check refused), or the database is unreachable; the feed then ends and the
/// client reconnects (and is resolved afresh).
async fn load(ctx: &TenantContext, id: i64) -> Result<Option<Note>, ()> {
    let mut db = ctx.db().await.map_err(|_| ())?;
    Ok(
        sqlx::query_as("SELECT id, title, body FROM notes WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *db)
            .await
            .ok()
            .flatten(),
    )
}

/// The next note of the tenant's feed; `None` when the feed closes.
async fn next_note(ctx: &TenantContext, rx: &mut broadcast::Receiver<i64>) -> Option<Note> {
    loop {
        match rx.recv().await {
            Ok(id) => {
                if let Some(note) = load(ctx, id).await.ok()? {
                    return Some(note);
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return None,
        }
    }
}

/// `GET /api/notes/stream`: each new note as an SSE `note` event with the note's JSON.
pub async fn notes_stream(
    ctx: TenantContext,
    Extension(feed): Extension<NotesFeed>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = feed.subscribe(ctx.tenant().id);
    let reader = ctx.clone();
    let events = futures::stream::unfold(rx, move |mut rx| {
        let ctx = reader.clone();
        async move {
            let note = next_note(&ctx, &mut rx).await?;
            let event = Event::default()
                .event("note")
                .json_data(&note)
                .unwrap_or_default();
            Some((Ok(event), rx))
        }
    });
    // Every poll of the stream runs in the tenant's scope.
    Sse::new(ctx.stream(events)).keep_alive(KeepAlive::default())
}

/// `GET /ws`: each new note as a JSON text message.
pub async fn notes_ws(ws: TenantWebSocket, Extension(feed): Extension<NotesFeed>) -> Response {
    ws.on_upgrade(move |socket, ctx| ws_loop(socket, ctx, feed))
        .into_response()
}

async fn ws_loop(mut socket: WebSocket, ctx: TenantContext, feed: NotesFeed) {
    let mut rx = feed.subscribe(ctx.tenant().id);
    loop {
        tokio::select! {
            note = next_note(&ctx, &mut rx) => {
                let Some(note) = note else { return };
                let Ok(text) = serde_json::to_string(&note) else { return };
                if socket.send(Message::text(text)).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
