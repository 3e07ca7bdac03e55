//! Realtime routes keep the tenant's context for their whole life: an SSE stream polled after
//! the handler returned, a WebSocket loop on the upgrade's task. Tenant A's stream never gets
//! tenant B's messages.

mod common;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::extract::ws::Message;
use axum::response::sse::{Event, Sse};
use axum::routing::{get, post};
use axum::{Extension, Router};
use common::{Server, setup, tenant};
use futures::{SinkExt, Stream, StreamExt};
use tenantry_axum::{CurrentTenant, TenantContext, TenantRouter, TenantWebSocket};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// One broadcast channel per tenant id.
#[derive(Clone, Default)]
struct Feed(Arc<Mutex<HashMap<i64, broadcast::Sender<String>>>>);

impl Feed {
    fn sender(&self, tenant: i64) -> broadcast::Sender<String> {
        self.0
            .lock()
            .unwrap()
            .entry(tenant)
            .or_insert_with(|| broadcast::channel(16).0)
            .clone()
    }
}

/// `"<message> task=<task-local tenant> db=<schema of a fresh TenantDb>"`, computed inside the
/// stream, long after the handler returned.
async fn describe(ctx: &TenantContext, msg: &str) -> String {
    let task = tenantry_sqlx::current_tenant()
        .map(|t| t.schema.clone())
        .unwrap_or_else(|| "none".into());
    let mut db = ctx.db().await.unwrap();
    let schema: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(&mut *db)
        .await
        .unwrap();
    format!("{msg} task={task} db={schema}")
}

async fn sse(
    ctx: TenantContext,
    Extension(feed): Extension<Feed>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = feed.sender(ctx.tenant().id).subscribe();
    let inner = ctx.clone();
    let events = futures::stream::unfold(rx, move |mut rx| {
        let ctx = inner.clone();
        async move {
            let msg = rx.recv().await.ok()?;
            Some((Ok(Event::default().data(describe(&ctx, &msg).await)), rx))
        }
    });
    Sse::new(ctx.stream(events))
}

async fn publish(t: CurrentTenant, Extension(feed): Extension<Feed>, body: String) {
    let _ = feed.sender(t.id).send(body);
}

async fn ws(socket: TenantWebSocket) -> axum::response::Response {
    socket.on_upgrade(|mut socket, ctx| async move {
        let hello = describe(&ctx, "hello").await;
        socket.send(Message::text(hello)).await.unwrap();
        while let Some(Ok(Message::Text(text))) = socket.recv().await {
            let reply = describe(&ctx, text.as_str()).await;
            socket.send(Message::text(reply)).await.unwrap();
        }
    })
}

async fn start() -> (tenantry_testing::TestDb, Server) {
    let (db, tenantry) = setup().await;
    tenant(&tenantry, "alpha").await;
    tenant(&tenantry, "beta").await;
    let router = Router::new()
        .route("/sse", get(sse))
        .route("/publish", post(publish))
        .route("/ws", get(ws))
        .layer(Extension(Feed::default()));
    let app = TenantRouter::new(tenantry).tenant(router);
    (db, Server::start(app).await)
}

/// Reads the next SSE event's data from a streaming response.
async fn next_event(resp: &mut reqwest::Response, buf: &mut String) -> String {
    loop {
        if let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .collect();
            if !data.is_empty() {
                return data.join("\n");
            }
            continue;
        }
        let chunk = resp.chunk().await.unwrap().expect("stream ended");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

#[tokio::test]
async fn sse_streams_run_in_their_tenant_and_never_see_another_tenants_messages() {
    let (_db, s) = start().await;
    let mut alpha = s.get("alpha.localhost", "/sse").send().await.unwrap();
    let mut beta = s.get("beta.localhost", "/sse").send().await.unwrap();
    assert_eq!(alpha.status(), 200);
    let post = |host: &'static str, body: &'static str| {
        s.client
            .post(format!("http://{}/publish", s.addr))
            .header("host", host)
            .body(body)
            .send()
    };
    // Beta's messages go out first: if alpha's stream could see them, they would come first.
    post("beta.localhost", "b1").await.unwrap();
    post("beta.localhost", "b2").await.unwrap();
    post("alpha.localhost", "a1").await.unwrap();
    post("alpha.localhost", "a2").await.unwrap();
    let (mut abuf, mut bbuf) = (String::new(), String::new());
    assert_eq!(
        next_event(&mut alpha, &mut abuf).await,
        "a1 task=alpha db=alpha"
    );
    assert_eq!(
        next_event(&mut alpha, &mut abuf).await,
        "a2 task=alpha db=alpha"
    );
    assert_eq!(
        next_event(&mut beta, &mut bbuf).await,
        "b1 task=beta db=beta"
    );
    assert_eq!(
        next_event(&mut beta, &mut bbuf).await,
        "b2 task=beta db=beta"
    );
}

#[tokio::test]
async fn websocket_loops_run_in_their_tenant() {
    let (_db, s) = start().await;
    for name in ["alpha", "beta"] {
        let mut req = format!("ws://{}/ws", s.addr).into_client_request().unwrap();
        req.headers_mut()
            .insert("host", format!("{name}.localhost").parse().unwrap());
        let (mut socket, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        let hello = socket.next().await.unwrap().unwrap();
        assert_eq!(
            hello.to_text().unwrap(),
            format!("hello task={name} db={name}")
        );
        socket
            .send(tungstenite::Message::text("ping"))
            .await
            .unwrap();
        let reply = socket.next().await.unwrap().unwrap();
        assert_eq!(
            reply.to_text().unwrap(),
            format!("ping task={name} db={name}")
        );
        socket.close(None).await.unwrap();
    }
}
