//! No secret in the logs: with every log level on (the server's, the HTTP
//! layer's and the device's), a login, a sync with a photo, a review-page
//! login and a logout never write a password, a bearer token or a session
//! cookie into a log line.

use std::io::Write;
use std::sync::{Arc, Mutex};

use bilan_e2e::{DEMO_PASSWORD, TestServer, device, roof_finding};
use bilan_mobile::SyncEngine;

/// Every log line written during the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_token_or_cookie_reaches_a_log_line() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter("trace")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("server")).await;
    let a = device(&tmp.path().join("a"), &server.url(), "inspecteur1").await;
    let id = a.start_inspection(a.complexes().unwrap()[0].id).unwrap();
    let fid = a.add_finding(id, roof_finding()).unwrap();
    a.attach_photo(id, fid, b"une photo", "image/jpeg", "")
        .unwrap();
    SyncEngine::new(&a).sync().await.unwrap();
    let token = a.setting("token").unwrap().unwrap();

    // The review pages: a session cookie, then a logout.
    let web = bilan_e2e::http_without_redirects();
    let r = web
        .post(format!("{}/connexion", server.url()))
        .form(&[("username", "responsable"), ("password", DEMO_PASSWORD)])
        .send()
        .await
        .unwrap();
    let cookie = r
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let session = cookie.split_once('=').unwrap().1.to_string();
    let page = web
        .get(format!("{}/", server.url()))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    // The review logout (its form's CSRF token), then the session is gone.
    let html = page.text().await.unwrap();
    let csrf = bilan_e2e::Browser::csrf(&html);
    let out = web
        .post(format!("{}/deconnexion", server.url()))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303, "the logout redirects to the login page");
    let after = web
        .get(format!("{}/", server.url()))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_ne!(
        after.status(),
        200,
        "the session cookie no longer opens a page"
    );
    // The device's logout: everything is synced, so the server revokes its token.
    SyncEngine::new(&a).logout().await.unwrap();
    assert!(a.user().unwrap().is_none(), "the device forgot the session");
    let refused = web
        .get(format!("{}/api/v1/me", server.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "the device's token is revoked");
    // A failed login too: its password must not be logged either.
    let _ = web
        .post(format!("{}/api/v1/login", server.url()))
        .json(&serde_json::json!({"username": "inspecteur2", "password": "secret-essai-42"}))
        .send()
        .await
        .unwrap();

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("login user=inspecteur1") && text.contains("sync phases"),
        "the server's logs were captured"
    );
    assert!(
        text.contains("review logout user=responsable") && text.contains("logout user=inspecteur1"),
        "both logouts are logged"
    );
    for (what, secret) in [
        ("password", DEMO_PASSWORD),
        ("failed password", "secret-essai-42"),
        ("device token", token.as_str()),
        ("session cookie", session.as_str()),
    ] {
        assert!(!text.contains(secret), "the {what} is in the logs");
    }
}
