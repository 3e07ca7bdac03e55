//! Shared by the demo tests that run the demo's router on a local port (`demo_exports`,
//! `demo_files`): serving it, a client that shows redirects, a signup through the form.

use std::net::SocketAddr;

/// Serves `app` on a free local port (the peer address as connect info); returns the address.
pub(crate) async fn serve(app: tenantry::axum::TenantRouter) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info())
            .await
            .unwrap()
    });
    addr
}

/// A client that does not follow redirects (a signup answers 303).
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs tenant `subdomain` up (named after it) through the public site's form at `base`.
pub(crate) async fn signup(client: &reqwest::Client, base: &str, subdomain: &str) {
    let r = client
        .post(format!("{base}/signup"))
        .header("host", "localhost")
        .form(&[("name", subdomain), ("subdomain", subdomain)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
}
