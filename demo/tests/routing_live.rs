//! The live notes feed (`GET /api/notes/stream`, SSE): each tenant's stream gets its own new
//! notes, read in its own schema, and never another tenant's.

mod routing_support;

use routing_support::Demo;
use serde_json::{Value, json};

/// The next `note` event's JSON from a streaming SSE response (keep-alive comments skipped).
async fn next_note(resp: &mut reqwest::Response, buf: &mut String) -> Value {
    loop {
        if let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let is_note = event.lines().any(|l| l == "event: note");
            let data: String = event
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .collect();
            if is_note {
                return serde_json::from_str(&data).unwrap();
            }
            continue;
        }
        let chunk = resp.chunk().await.unwrap().expect("stream ended");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

#[tokio::test]
async fn each_tenant_stream_gets_only_its_own_notes() {
    let d = Demo::start().await;
    d.signup("acme", "").await;
    d.signup("globex", "lab").await;
    // One stream by subfolder, one by host.
    let mut acme = d
        .get("localhost", "/t/acme/api/notes/stream")
        .send()
        .await
        .unwrap();
    let mut globex = d
        .get("globex.localhost", "/api/notes/stream")
        .send()
        .await
        .unwrap();
    assert_eq!(acme.status(), 200);
    assert_eq!(acme.headers()["content-type"], "text/event-stream");

    let post = |host: &'static str, title: &'static str| {
        d.post(host, "/api/notes")
            .json(&json!({"title": title, "body": ""}))
            .send()
    };
    // Globex's notes first: if acme's stream could see them, they would arrive first.
    assert_eq!(post("globex.localhost", "g1").await.unwrap().status(), 201);
    assert_eq!(post("globex.localhost", "g2").await.unwrap().status(), 201);
    assert_eq!(post("acme.localhost", "a1").await.unwrap().status(), 201);

    let (mut abuf, mut gbuf) = (String::new(), String::new());
    let a1 = next_note(&mut acme, &mut abuf).await;
    assert_eq!(a1["title"], "a1");
    // Note ids are per schema: acme's welcome note is 1, so a1 is 2 in acme's own table.
    assert_eq!(a1["id"], 2);
    assert_eq!(next_note(&mut globex, &mut gbuf).await["title"], "g1");
    assert_eq!(next_note(&mut globex, &mut gbuf).await["title"], "g2");
    // And acme's next event is its own next note again.
    assert_eq!(post("acme.localhost", "a2").await.unwrap().status(), 201);
    assert_eq!(next_note(&mut acme, &mut abuf).await["title"], "a2");
}
