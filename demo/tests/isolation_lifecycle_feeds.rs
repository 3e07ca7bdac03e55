//! Tenant life cycle against work in flight (issue 11): SSE streams and WebSockets of a tenant
//! across a swap of names, a delete and a suspend. The demo over real HTTP on a fresh database
//! each time.
//!
//! Identity is the tenant (its registry id, reached through its domain), not the schema name:
//! after a swap of names, `alpha.localhost` still belongs to the tenant created as `alpha`,
//! whose schema is now called `bravo`. Every note title names the tenant it was written for
//! (`alpha-secret-3`, `bravo-w-7-12`...), so a foreign row is recognisable wherever it shows up.
//!
//! Each test failed against the code before the fix (commit 4ac0362); what it saw there is
//! noted on the test.
//!
//! Run: `cargo test -p tenantry-demo --test isolation_lifecycle_feeds -- --nocapture` (reports).

mod isolation_lifecycle_support;

use std::time::Duration;

use futures::StreamExt;
use isolation_lifecycle_support::*;
use tenantry::{SchemaOnDelete, TenantStatus};
use tenantry_demo::tenant_site::Note;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

/// One event of a live feed, or its end.
#[derive(Debug)]
enum FeedEvent {
    Note(String),
    Closed,
    /// Nothing within the wait.
    Quiet,
}

/// An open `GET /api/notes/stream`.
struct SseFeed {
    response: reqwest::Response,
    buf: String,
}

impl SseFeed {
    async fn next(&mut self, until: Instant) -> FeedEvent {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let event: String = self.buf.drain(..end + 2).collect();
                if event.lines().any(|l| l == "event: note") {
                    let data: String = event
                        .lines()
                        .filter_map(|l| l.strip_prefix("data: "))
                        .collect();
                    let note: Note = serde_json::from_str(&data).expect("note event");
                    return FeedEvent::Note(note.title);
                }
                continue; // keep-alive comment
            }
            match tokio::time::timeout_at(until, self.response.chunk()).await {
                Err(_) => return FeedEvent::Quiet,
                Ok(Ok(Some(chunk))) => self.buf.push_str(std::str::from_utf8(&chunk).unwrap()),
                Ok(Ok(None) | Err(_)) => return FeedEvent::Closed,
            }
        }
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// An open `GET /ws`.
struct WsFeed(Socket);

impl WsFeed {
    async fn next(&mut self, until: Instant) -> FeedEvent {
        loop {
            match tokio::time::timeout_at(until, self.0.next()).await {
                Err(_) => return FeedEvent::Quiet,
                Ok(Some(Ok(tungstenite::Message::Text(text)))) => {
                    let note: Note = serde_json::from_str(&text).expect("note message");
                    return FeedEvent::Note(note.title);
                }
                Ok(Some(Ok(tungstenite::Message::Close(_))) | None | Some(Err(_))) => {
                    return FeedEvent::Closed;
                }
                Ok(Some(Ok(_))) => {} // ping, pong
            }
        }
    }
}

/// A host's SSE stream and WebSocket, both subscribed.
struct Feeds {
    sse: SseFeed,
    ws: WsFeed,
}

impl Feeds {
    async fn open(d: &Demo, host: &str) -> Self {
        let response = d.get(host, "/api/notes/stream").send().await.unwrap();
        assert_eq!(response.status(), 200, "SSE on {host}");
        let mut req = format!("ws://{}/ws", d.addr).into_client_request().unwrap();
        req.headers_mut().insert("host", host.parse().unwrap());
        let (socket, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        let mut feeds = Feeds {
            sse: SseFeed {
                response,
                buf: String::new(),
            },
            ws: WsFeed(socket),
        };
        feeds.sync(d, host).await;
        feeds
    }

    /// Posts pings until the socket (subscribed on its own task, after the upgrade) gets one;
    /// then the SSE stream is read up to the same ping. Nothing is pending afterwards.
    async fn sync(&mut self, d: &Demo, host: &str) {
        for k in 0..20 {
            let ping = format!("{host}-ping-{k}");
            assert_eq!(d.post_note(host, &ping).await, 201);
            let until = Instant::now() + Duration::from_millis(500);
            let got = loop {
                match self.ws.next(until).await {
                    FeedEvent::Note(t) if t == ping => break true,
                    FeedEvent::Note(_) => {} // an earlier ping, late
                    FeedEvent::Quiet => break false,
                    FeedEvent::Closed => panic!("{host}: socket closed"),
                }
            };
            if got {
                let until = Instant::now() + Duration::from_secs(5);
                loop {
                    match self.sse.next(until).await {
                        FeedEvent::Note(t) if t == ping => return,
                        FeedEvent::Note(_) => {}
                        other => panic!("{host}: SSE {other:?} before {ping}"),
                    }
                }
            }
        }
        panic!("{host}: the WebSocket never got a note");
    }

    /// Everything both feeds deliver until they close, for at most `wait` from `since`: the
    /// titles and when each closed (`None`: still open).
    async fn drain(self, since: Instant, wait: Duration) -> FeedsEnd {
        let until = since + wait;
        let Feeds { mut sse, mut ws } = self;
        let sse = async move {
            let mut notes = Vec::new();
            loop {
                match sse.next(until).await {
                    FeedEvent::Note(t) => notes.push(t),
                    FeedEvent::Closed => return (notes, Some(since.elapsed())),
                    FeedEvent::Quiet => return (notes, None),
                }
            }
        };
        let ws = async move {
            let mut notes = Vec::new();
            loop {
                match ws.next(until).await {
                    FeedEvent::Note(t) => notes.push(t),
                    FeedEvent::Closed => return (notes, Some(since.elapsed())),
                    FeedEvent::Quiet => return (notes, None),
                }
            }
        };
        let ((sse_notes, sse_closed), (ws_notes, ws_closed)) = tokio::join!(sse, ws);
        FeedsEnd {
            sse_notes,
            sse_closed,
            ws_notes,
            ws_closed,
        }
    }
}

#[derive(Debug)]
struct FeedsEnd {
    sse_notes: Vec<String>,
    sse_closed: Option<Duration>,
    ws_notes: Vec<String>,
    ws_closed: Option<Duration>,
}

impl FeedsEnd {
    /// No event after the change (each would come from a transaction opened with the revoked
    /// identity), and both feeds closed.
    fn assert_ended(&self, case: &str) {
        eprintln!("[feeds] {case}: {self:?}");
        assert!(
            self.sse_notes.is_empty() && self.ws_notes.is_empty(),
            "{case}: events after the change: SSE {:?}, WebSocket {:?}",
            self.sse_notes,
            self.ws_notes
        );
        assert!(self.sse_closed.is_some(), "{case}: SSE stream still open");
        assert!(self.ws_closed.is_some(), "{case}: WebSocket still open");
    }
}
/// 4. acme's SSE stream and WebSocket across a swap with globex (then notes written on both
/// hosts), a delete (then a re-signup under the same name) and a suspend: no foreign note, and
/// both close within a few seconds. Before the fix: after the swap each of acme's feeds
/// delivered 3 of globex's secret notes, and the feeds stayed open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_and_websocket_end_on_swap_delete_and_suspend() {
    const CLOSE_WITHIN: Duration = Duration::from_secs(5);
    let _serial = SERIAL.lock().await;
    let d = Demo::start().await;
    for name in ["acme", "globex", "initech", "umbrella"] {
        d.signup(name).await;
    }
    // globex has notes at every id acme's feed will announce next.
    for i in 1..=20 {
        assert_eq!(
            d.post_note("globex.localhost", &format!("globex-secret-{i}"))
                .await,
            201
        );
    }

    // Swap: acme.localhost's tenant is now in schema `globex`, globex.localhost's in `acme`.
    let feeds = Feeds::open(&d, "acme.localhost").await;
    swap(&d.tenantry, "acme", "globex").await;
    let changed = Instant::now();
    for i in 1..=3 {
        // acme's own notes (announced on acme's channel, ids that are globex's secrets in the
        // schema now called acme) and globex's.
        assert_eq!(
            d.post_note("acme.localhost", &format!("acme-after-swap-{i}"))
                .await,
            201
        );
        assert_eq!(
            d.post_note("globex.localhost", &format!("globex-after-swap-{i}"))
                .await,
            201
        );
    }
    let end = feeds.drain(changed, CLOSE_WITHIN).await;
    let foreign: Vec<_> = end
        .sse_notes
        .iter()
        .chain(&end.ws_notes)
        .filter(|t| t.contains("globex"))
        .collect();
    assert!(
        foreign.is_empty(),
        "acme's feeds got globex's notes: {foreign:?}"
    );
    end.assert_ended("swap");

    // Delete, and a new tenant under the same name and domain.
    let feeds = Feeds::open(&d, "initech.localhost").await;
    let started = Instant::now();
    d.tenantry
        .admin()
        .delete_tenant("initech", SchemaOnDelete::Drop)
        .await
        .expect("delete with open feeds");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "delete waited on the feeds"
    );
    let changed = Instant::now();
    d.signup("initech").await;
    for i in 1..=3 {
        assert_eq!(
            d.post_note("initech.localhost", &format!("new-initech-{i}"))
                .await,
            201
        );
    }
    feeds
        .drain(changed, CLOSE_WITHIN)
        .await
        .assert_ended("delete");

    // Suspend.
    let feeds = Feeds::open(&d, "umbrella.localhost").await;
    d.tenantry
        .admin()
        .set_status("umbrella", TenantStatus::Suspended)
        .await
        .expect("suspend with open feeds");
    let changed = Instant::now();
    assert_eq!(
        d.post_note("umbrella.localhost", "after-suspend").await,
        403
    );
    feeds
        .drain(changed, CLOSE_WITHIN)
        .await
        .assert_ended("suspend");
    assert!(
        !d.titles_in("umbrella")
            .await
            .contains(&"after-suspend".to_owned())
    );
}
