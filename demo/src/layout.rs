//! The look of the demo's HTML pages (public site and tenant sites): one frame and one small
//! stylesheet, inlined in each page (no extra request, no build step).

use crate::public_site::escape;

/// The demo's stylesheet.
const STYLE: &str = r#"
:root { --bg:#f6f7fb; --fg:#1c2333; --muted:#687086; --line:#e2e5ee; --accent:#5b3fd6; --bad:#b42318; --bad-bg:#fde7e5;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--fg); line-height:1.5; font-size:15px; }
a { color:var(--accent); }
header.bar { background:linear-gradient(90deg,#2b1d73,#5b3fd6); color:#fff; padding:14px 32px; display:flex; align-items:center; gap:16px; }
header.bar strong { font-size:18px; } header.bar span { opacity:.8; }
main { max-width:880px; margin:0 auto; padding:28px 32px 60px; }
h1 { font-size:28px; margin:0 0 6px; } h2 { font-size:18px; margin:0 0 12px; }
.card { background:#fff; border:1px solid var(--line); border-radius:10px; padding:18px 22px; margin:0 0 18px; }
.muted { color:var(--muted); }
.plans { display:grid; grid-template-columns:repeat(auto-fit,minmax(180px,1fr)); gap:12px; padding:0; list-style:none; }
.plans li { border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
.plans li b { display:block; font-size:16px; }
label { display:block; font-weight:600; font-size:13px; margin:0 0 12px; }
input, select, textarea { display:block; width:100%; margin-top:4px; padding:8px 10px; font:inherit; border:1px solid #cdd2de; border-radius:6px; }
textarea { min-height:70px; }
button { padding:8px 16px; border:0; border-radius:6px; background:var(--accent); color:#fff; font:inherit; font-weight:600; cursor:pointer; }
button.small { padding:3px 10px; font-size:13px; font-weight:500; }
button.danger { background:var(--bad); }
.error { background:var(--bad-bg); color:var(--bad); padding:8px 12px; border-radius:6px; }
.row { display:grid; grid-template-columns:1fr 1fr; gap:12px; }
ul.notes { list-style:none; padding:0; margin:0; }
ul.notes li { border-top:1px solid var(--line); padding:10px 0; }
ul.notes li:first-child { border-top:0; }
ul.notes li.fresh { animation: flash 2s ease-out; }
@keyframes flash { from { background:#efe9ff; } to { background:transparent; } }
details summary { cursor:pointer; color:var(--muted); font-size:13px; }
form.inline { display:inline; }
code { background:#eef0f6; padding:1px 5px; border-radius:4px; }
"#;

/// A whole page: `title` in the head and the bar (`subtitle` beside it), `body` (HTML, already
/// escaped where it holds user text).
pub fn page(title: &str, subtitle: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>{STYLE}</style></head>
<body><header class="bar"><strong>{title}</strong><span>{subtitle}</span></header>
<main>{body}</main></body></html>"#,
        title = escape(title),
        subtitle = escape(subtitle),
    )
}
