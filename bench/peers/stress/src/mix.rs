//! The request kinds, their weights (isolation_stress's mix, with hostile hosts in the place of
//! its public requests), how each is sent and how its answer is judged.

use std::time::Duration;

use rand::Rng;
use serde::Deserialize;

/// A kind of request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Read,
    Write,
    WriteFail,
    Panic,
    Disconnect,
    Savepoint,
    StatementTimeout,
    TokioTimeout,
    Hostile,
}

/// Relative weights.
const MIX: &[(Kind, u32)] = &[
    (Kind::Read, 43),
    (Kind::Write, 14),
    (Kind::WriteFail, 5),
    (Kind::Panic, 3),
    (Kind::Disconnect, 4),
    (Kind::Savepoint, 10),
    (Kind::StatementTimeout, 3),
    (Kind::TokioTimeout, 3),
    (Kind::Hostile, 15),
];

/// A weighted random kind.
pub(crate) fn pick(rng: &mut impl Rng) -> Kind {
    let total: u32 = MIX.iter().map(|(_, w)| w).sum();
    let mut x = rng.random_range(0..total);
    for (k, w) in MIX {
        if x < *w {
            return *k;
        }
        x -= w;
    }
    Kind::Read
}

/// What one request came to.
pub(crate) struct Outcome {
    pub(crate) kind: Kind,
    /// HTTP status, 0 when the client gave up (or the connection broke).
    pub(crate) status: u16,
    /// A cross-tenant answer.
    pub(crate) violation: Option<String>,
    /// A status or body no deliberate failure explains.
    pub(crate) unexpected: Option<String>,
}

/// What a stress handler saw.
#[derive(Deserialize, Debug)]
struct Obs {
    tenant: String,
    markers: Vec<String>,
    notes: Vec<String>,
}

fn name(i: u32) -> String {
    format!("t{i:06}")
}

/// Hostile hosts for tenant `i`: `(host, the tenant it may serve, if any)`.
fn hostile(i: u32, pick: u32) -> (String, Option<String>) {
    let t = name(i);
    match pick % 12 {
        0 => (format!("{}.BENCH.LOCAL", t.to_uppercase()), Some(t)),
        1 => (format!("{t}.bench.local."), Some(t)),
        2 => (format!("{t}.bench.local:9999"), Some(t)),
        3 => ("nosuch.bench.local".into(), None),
        4 => (format!("{t}.bench.local' OR '1'='1"), None),
        5 => ("t00000_.bench.local".into(), None),
        6 => ("%.bench.local".into(), None),
        7 => (format!("{t}.bench.local.evil.example"), None),
        8 => (format!("x.{t}.bench.local"), None),
        9 => (format!("{}.bench.local", "a".repeat(300)), None),
        10 => (format!("{t}.bench.local\\"), None),
        _ => (format!("{t}..bench.local"), None),
    }
}

/// Sends one request of `kind` for tenant `i` and judges the answer.
pub(crate) async fn send(
    client: &reqwest::Client,
    addr: &str,
    kind: Kind,
    i: u32,
    other: u32,
) -> Outcome {
    let (path, post) = match kind {
        Kind::Read | Kind::Hostile => ("/stress/read".to_owned(), false),
        Kind::Write => ("/stress/write".to_owned(), true),
        Kind::WriteFail => ("/stress/write_fail".to_owned(), true),
        Kind::Panic => ("/stress/panic".to_owned(), true),
        Kind::Disconnect => ("/stress/slow".to_owned(), false),
        Kind::Savepoint => (format!("/stress/savepoint?other={other}"), false),
        Kind::StatementTimeout => ("/stress/statement_timeout".to_owned(), true),
        Kind::TokioTimeout => ("/stress/tokio_timeout".to_owned(), true),
    };
    let (host, expect) = if kind == Kind::Hostile {
        hostile(i, other)
    } else {
        (format!("{}.bench.local", name(i)), Some(name(i)))
    };
    let url = format!("http://{addr}{path}");
    let mut req = if post {
        client.post(&url)
    } else {
        client.get(&url)
    };
    req = req.header(reqwest::header::HOST, host.clone());
    if kind == Kind::Disconnect {
        req = req.timeout(Duration::from_millis(30));
    } else {
        req = req.timeout(Duration::from_secs(60));
    }
    let mut out = Outcome {
        kind,
        status: 0,
        violation: None,
        unexpected: None,
    };
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            if kind != Kind::Disconnect {
                out.unexpected = Some(format!("{kind:?} {host}: {e}"));
            }
            return out;
        }
    };
    out.status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    let obs: Option<Obs> = (out.status == 200)
        .then(|| serde_json::from_str(&body).ok())
        .flatten();
    // Which answers are the deliberate ones.
    let ok = match kind {
        Kind::WriteFail | Kind::Panic | Kind::StatementTimeout => out.status == 500,
        Kind::TokioTimeout => out.status == 504,
        Kind::Disconnect => matches!(out.status, 0 | 200),
        Kind::Hostile => match &expect {
            Some(_) => matches!(out.status, 200 | 400 | 404),
            None => out.status != 200 || obs.is_none(),
        },
        _ => out.status == 200,
    };
    if !ok {
        out.unexpected = Some(format!(
            "{kind:?} {host}: {} {}",
            out.status,
            body.chars().take(120).collect::<String>()
        ));
    }
    if let Some(obs) = obs {
        let Some(want) = expect else {
            out.violation = Some(format!(
                "{kind:?}: host {host:?} (no tenant's) served as {}: {obs:?}",
                obs.tenant
            ));
            return out;
        };
        if obs.tenant != want
            || obs.markers.iter().any(|m| *m != want)
            || obs.notes.iter().any(|n| *n != want)
        {
            out.violation = Some(format!("{kind:?}: host {host:?} expected {want}: {obs:?}"));
        } else if obs.notes.is_empty() {
            out.unexpected = Some(format!("{kind:?}: host {host:?} saw none of its own notes"));
        }
    }
    out
}
