//! Hostile input in every filter and form field of the review pages and in
//! the API's parameters: SQL and markup injection, path traversal, template
//! and lookup strings, malformed bodies. Closed-vocabulary fields answer
//! 400 with a clear message and change nothing; free-text fields keep the
//! text as text and every page shows it escaped; nothing answers 5xx.

use bilan_e2e::{Browser, DEMO_PASSWORD, TestServer, device, fingerprint};
use bilan_mobile::SyncEngine;

const PAYLOADS: [&str; 9] = [
    "' OR '1'='1",
    "1; DROP TABLE users; --",
    "\" onmouseover=\"alert(1)",
    "<script>alert('x')</script>",
    "../../../etc/passwd",
    "%00",
    "{{7*7}}",
    "${jndi:ldap://x/a}",
    "é\u{202e}\u{0}",
];

/// `text` with the characters a page must escape escaped as maud does.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_in_every_filter_and_field_is_refused_or_kept_as_text() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("server")).await;
    let url = server.url();
    let a = device(&tmp.path().join("a"), &url, "inspecteur1").await;
    let id = a.start_inspection(a.complexes().unwrap()[0].id).unwrap();
    SyncEngine::new(&a).sync().await.unwrap();
    let store = server.state.service();
    let (token, manager) = store.login("responsable", DEMO_PASSWORD, None).unwrap();
    let managers = [manager];
    let m = Browser::login(&url, "responsable").await;
    let csrf = Browser::csrf(&m.get("/").await.1);
    let http = reqwest::Client::new();
    let mut requests = 0;

    // Filters and query parameters: 400, clear, nothing changed.
    let before = fingerprint(&server, &managers);
    for payload in PAYLOADS {
        let q = |name: &str| format!("{name}={}", urlencode(payload));
        let mut paths: Vec<String> = [
            "office",
            "status",
            "condition",
            "conflicts",
            "inspector",
            "from",
            "to",
            "sort",
            "page",
        ]
        .iter()
        .map(|p| format!("/inspections?{}", q(p)))
        .collect();
        for page in ["/releve", "/releve.csv"] {
            paths.push(format!("{page}?{}", q("from")));
            paths.push(format!("{page}?{}", q("to")));
        }
        for path in paths {
            let (status, body) = m.get(&path).await;
            requests += 1;
            assert_eq!(status, 400, "{path}: {body}");
            assert!(
                body.contains("invalide"),
                "{path}: a message saying what is wrong: {body}"
            );
            assert!(!body.contains("<script>alert"), "{path}: echoed unescaped");
        }
        let r = http
            .get(format!("{url}/api/v1/reference?{}", q("since")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        requests += 1;
        assert_eq!(r.status(), 400);
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap()["code"],
            "malformed_body"
        );
        // Ids and hashes in paths.
        for path in [
            format!("/api/v1/inspections/{}", urlencode(payload)),
            format!("/api/v1/photos/{}", urlencode(payload)),
        ] {
            let r = http
                .get(format!("{url}{path}"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            requests += 1;
            assert!(
                matches!(r.status().as_u16(), 400 | 404),
                "{path}: {}",
                r.status()
            );
        }
        // Logins with hostile names: refused as wrong, not an error.
        let r = http
            .post(format!("{url}/api/v1/login"))
            .json(&serde_json::json!({ "username": payload, "password": payload }))
            .send()
            .await
            .unwrap();
        requests += 1;
        assert_eq!(r.status(), 401, "login as {payload:?}");
    }
    // Malformed bodies.
    for (path, body) in [
        (format!("/api/v1/inspections/{id}/review"), "{\"comment\": "),
        (format!("/api/v1/inspections/{id}/resolve"), "[1, 2"),
        ("/api/v1/login".to_string(), "nul"),
    ] {
        let r = http
            .post(format!("{url}{path}"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        requests += 1;
        assert_eq!(r.status(), 400, "{path}");
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap()["code"],
            "malformed_body"
        );
    }
    let r = http
        .post(format!("{url}/parametres"))
        .header("cookie", &m.cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("csrf=%ZZ&hourly")
        .send()
        .await
        .unwrap();
    requests += 1;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("Formulaire invalide"));
    // Closed-vocabulary form fields.
    for payload in PAYLOADS {
        for field in [
            "hourly",
            "travel_hourly",
            "per_km",
            "compensation",
            "seuil_a",
        ] {
            let mut form = vec![
                ("csrf", csrf.as_str()),
                ("hourly", "60"),
                ("travel_hourly", "40"),
                ("per_km", "0,5"),
                ("compensation", "0"),
            ];
            form.retain(|(k, _)| *k != field);
            form.push((field, payload));
            let (status, body) = m.post("/parametres", &form).await;
            requests += 1;
            assert_eq!(status, 400, "{field}={payload:?}: {body}");
        }
        let (status, body) = m
            .post(
                &format!("/inspections/{id}/revision"),
                &[("csrf", &csrf), ("status", payload)],
            )
            .await;
        requests += 1;
        assert_eq!(status, 400, "status={payload:?}: {body}");
        let (status, _) = m
            .post("/admin/revoquer", &[("csrf", &csrf), ("username", payload)])
            .await;
        requests += 1;
        assert_eq!(status, 403, "revoking {payload:?}");
        let (_, page) = m
            .post(
                "/admin/utilisateurs",
                &[
                    ("csrf", &csrf),
                    ("username", payload),
                    ("name", "Nom"),
                    ("role", "inspecteur"),
                    ("office", ""),
                    ("password", "motdepasse"),
                ],
            )
            .await;
        requests += 1;
        assert!(
            page.contains("nom d'utilisateur invalide"),
            "{payload:?}: {page}"
        );
        let (status, _) = m
            .post(
                "/admin/utilisateurs",
                &[
                    ("csrf", &csrf),
                    ("username", "quelquun"),
                    ("name", "Nom"),
                    ("role", payload),
                    ("password", "motdepasse"),
                ],
            )
            .await;
        requests += 1;
        assert_eq!(status, 400, "role {payload:?}");
    }
    assert_eq!(fingerprint(&server, &managers), before, "nothing changed");

    // A NUL character, which no storage keeps as text (PostgreSQL's text
    // type cannot), is refused in every free-text field with a message
    // naming the field, and nothing changes.
    let (status, body) = m
        .post(
            &format!("/inspections/{id}/revision"),
            &[("csrf", &csrf), ("comment", "toit\0à refaire")],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("commentaire : le caractère nul"), "{body}");
    let (_, user_page) = m
        .post(
            "/admin/utilisateurs",
            &[
                ("csrf", &csrf),
                ("username", "avecnul"),
                ("name", "Jean\0Nul"),
                ("role", "inspecteur"),
                ("office", ""),
                ("password", "motdepasse"),
            ],
        )
        .await;
    assert!(
        user_page.contains("nom affiché : le caractère nul"),
        "{user_page}"
    );
    let (_, preview) = m
        .post(
            "/admin/import",
            &[
                ("csrf", &csrf),
                ("kind", "ensembles"),
                (
                    "csv",
                    "code,nom,organisme,adresse,ville,logements,annee_construction,valeur_remplacement\n\
                     X9,Nul\0,OH-TR,1 rue,Ville,12,1990,2000000\n",
                ),
            ],
        )
        .await;
    assert!(preview.contains("le caractère nul"), "{preview}");
    requests += 3;
    assert_eq!(fingerprint(&server, &managers), before, "nothing changed");

    // Other free text is kept as typed and shown escaped everywhere.
    let hostile = PAYLOADS.join(" | ").replace('\0', "");
    let (status, _) = m
        .post(
            &format!("/inspections/{id}/revision"),
            &[("csrf", &csrf), ("comment", &hostile)],
        )
        .await;
    assert_eq!(status, 303);
    let (_, user_page) = m
        .post(
            "/admin/utilisateurs",
            &[
                ("csrf", &csrf),
                ("username", "nouveau"),
                ("name", &hostile),
                ("role", "inspecteur"),
                ("office", ""),
                ("password", "motdepasse"),
            ],
        )
        .await;
    assert!(
        user_page.contains("Utilisateur « nouveau » créé."),
        "{user_page}"
    );
    let csv = format!(
        "code,nom,organisme,adresse,ville,logements,annee_construction,valeur_remplacement\n\
         X1,\"{}\",OH-TR,\"{}\",Ville,12,1990,2000000\n",
        hostile.replace('"', "\"\""),
        hostile.replace('"', "\"\""),
    );
    let (_, preview) = m
        .post(
            "/admin/import",
            &[("csrf", &csrf), ("kind", "ensembles"), ("csv", &csv)],
        )
        .await;
    assert!(preview.contains("Aperçu : 1 ligne(s) valides"), "{preview}");
    let (_, done) = m
        .post(
            "/admin/import",
            &[
                ("csrf", &csrf),
                ("kind", "ensembles"),
                ("csv", &csv),
                ("confirm", "1"),
            ],
        )
        .await;
    assert!(done.contains("1 ligne(s) importée(s)."));
    requests += 4;
    let (_, detail) = m.get(&format!("/inspections/{id}")).await;
    let (_, admin) = m.get("/admin").await;
    for (what, page) in [
        ("inspection", &detail),
        ("admin", &admin),
        ("preview", &preview),
    ] {
        assert!(!page.contains("<script>alert"), "{what}: markup injected");
        assert!(
            !page.contains("\" onmouseover=\"alert(1)"),
            "{what}: attribute injected"
        );
        assert!(
            page.contains(&escaped("<script>alert('x')</script>")),
            "{what}: the text is shown"
        );
    }
    let users = store.territory_users(&managers[0]).unwrap();
    assert!(
        users.iter().any(|u| u.display_name == hostile),
        "stored as typed"
    );
    println!("injection: {requests} hostile requests, none answered 5xx");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
