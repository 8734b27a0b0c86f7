//! Access control, walked: every API endpoint and review page, for every
//! role (and nobody), on an inspection and photo of the caller's own office,
//! of another office of the same territory, and of another territory. Each
//! request's outcome is checked against the rights the domain gives (see
//! `allowed`); every refused write is checked to have changed nothing, and
//! every allowed read to hold nothing of what the caller may not see.

use bilan_e2e::{Browser, DEMO_PASSWORD, TestServer, device, fingerprint};
use bilan_mobile::SyncEngine;
use bilan_server::service::NewUser;
use bilan_shared::doc::bundle;
use bilan_shared::domain::{Rating, Role};
use bilan_shared::ids::*;
use bilan_shared::protocol::{self, DocChanges, PROTOCOL_VERSION, SyncRequest, SyncResponse};
use bilan_shared::{Author, Inspection};
use reqwest::Method;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Actor {
    Nobody,
    Inspector,
    Manager,
    /// Office reader of the Trois-Rivières office.
    Reader,
    /// An administrator account, attached to no territory.
    Admin,
}

const ACTORS: [Actor; 5] = [
    Actor::Nobody,
    Actor::Inspector,
    Actor::Manager,
    Actor::Reader,
    Actor::Admin,
];

impl Actor {
    fn username(self) -> Option<&'static str> {
        match self {
            Actor::Nobody => None,
            Actor::Inspector => Some("inspecteur1"),
            Actor::Manager => Some("responsable"),
            Actor::Reader => Some("lecteur-tr"),
            Actor::Admin => Some("admin"),
        }
    }
}

/// Whose inspection or photo a request is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// The reader's office, in the callers' territory.
    OwnOffice,
    /// Another office of the same territory.
    OtherOffice,
    /// Another territory.
    OtherTerritory,
}

const TARGETS: [Target; 3] = [
    Target::OwnOffice,
    Target::OtherOffice,
    Target::OtherTerritory,
];

/// What a request needs.
#[derive(Clone, Copy, Debug)]
enum Right {
    /// Any signed-in account.
    SignedIn,
    /// Reading the territory's data (inspectors, managers, office readers).
    Read,
    /// Syncing (inspectors and managers).
    Sync,
    /// The CS manager's decisions and administration.
    Manage,
}

/// The rights of the domain: inspectors and managers see their whole
/// territory, an office reader only their office, an administrator no
/// territory's data; only managers decide and administer; nobody reaches
/// another territory.
fn allowed(actor: Actor, right: Right, target: Option<Target>) -> bool {
    let in_reach = |t: Option<Target>| match (actor, t) {
        (_, None) => true,
        (_, Some(Target::OtherTerritory)) => false,
        (Actor::Reader, Some(Target::OtherOffice)) => false,
        _ => true,
    };
    match (actor, right) {
        (Actor::Nobody, _) => false,
        (_, Right::SignedIn) => true,
        (Actor::Admin, _) => false,
        (Actor::Inspector | Actor::Manager | Actor::Reader, Right::Read) => in_reach(target),
        (Actor::Inspector | Actor::Manager, Right::Sync) => in_reach(target),
        (Actor::Manager, Right::Manage) => in_reach(target),
        _ => false,
    }
}

/// A small real JPEG (so thumbnails exist), different for each `shade`.
fn jpeg(shade: u8) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(8, 8, image::Rgb([shade * 60, 90, 200]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

struct Session {
    actor: Actor,
    token: Option<String>,
    web: Option<Browser>,
    csrf: String,
}

/// One request of the walk.
struct Call {
    what: String,
    right: Right,
    target: Option<Target>,
    writes: bool,
    api: bool,
    method: Method,
    path: String,
    body: Body,
}

enum Body {
    None,
    Json(serde_json::Value),
    Form(Vec<(String, String)>),
    Sync(Vec<u8>),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_reads_or_writes_beyond_their_rights_on_any_endpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("server")).await;
    let url = server.url();
    let store = server.state.service();

    // Territory B, with an inspector and a manager; an administrator.
    let tb = bilan_e2e::second_territory(store, "Les Cèdres de l'Estrie");
    for (username, role, territory) in [
        ("inspecteur-b", Role::Inspector, Some(tb)),
        ("responsable-b", Role::Manager, Some(tb)),
        ("admin", Role::Admin, None),
    ] {
        store
            .create_user(&NewUser {
                username: username.into(),
                display_name: username.into(),
                role,
                territory_id: territory,
                office_id: None,
                password: DEMO_PASSWORD.into(),
            })
            .unwrap();
    }

    // One inspection with a photo per target.
    let a = device(&tmp.path().join("a"), &url, "inspecteur1").await;
    let b = device(&tmp.path().join("b"), &url, "inspecteur-b").await;
    let complex_of = |d: &bilan_mobile::DeviceStore, prefix: &str| {
        d.complexes()
            .unwrap()
            .into_iter()
            .find(|c| c.code.starts_with(prefix))
            .unwrap()
    };
    let mut docs = Vec::new();
    let mut complexes = Vec::new();
    let mut photos = Vec::new();
    let mut secrets = Vec::new();
    for (target, dev, prefix) in [
        (Target::OwnOffice, &a, "OH-TR"),
        (Target::OtherOffice, &a, "OMH-SH"),
        (Target::OtherTerritory, &b, "SHE"),
    ] {
        let complex = complex_of(dev, prefix);
        let id = dev.start_inspection(complex.id).unwrap();
        let fid = dev.add_finding(id, bilan_e2e::roof_finding()).unwrap();
        let bytes = jpeg(target as u8);
        let hash = dev
            .attach_photo(id, fid, &bytes, "image/jpeg", "Toit")
            .unwrap();
        SyncEngine::new(dev).sync().await.unwrap();
        docs.push((target, id));
        complexes.push((target, complex.id));
        photos.push((target, hash));
        secrets.push((target, id.to_string(), complex.name.clone()));
    }
    let doc_of = |t: Target| docs.iter().find(|d| d.0 == t).unwrap().1;
    let complex_id_of = |t: Target| complexes.iter().find(|c| c.0 == t).unwrap().1;
    let photo_of = |t: Target| photos.iter().find(|p| p.0 == t).unwrap().1.clone();

    // A genuine new change to a target's inspection (a rating by a new actor).
    let change_to = |t: Target| -> Vec<u8> {
        let owner = if t == Target::OtherTerritory {
            "responsable-b"
        } else {
            "responsable"
        };
        let (_, u) = store.login(owner, DEMO_PASSWORD, None).unwrap();
        let mut insp: Inspection = store.inspection(&u, doc_of(t)).unwrap();
        let author = Author::device(DeviceId::new(), u.id, "Quelqu'un");
        let change = insp
            .edit(&author, |d| d.rate("B3010", Rating::E))
            .unwrap()
            .expect("a change");
        let req = SyncRequest {
            protocol: PROTOCOL_VERSION,
            device_id: DeviceId::new(),
            cursor: 0,
            docs: vec![DocChanges {
                doc_id: doc_of(t),
                changes: vec![serde_bytes::ByteBuf::from(bundle(&[change]))],
            }],
        };
        protocol::encode(&req).unwrap()
    };

    // Sessions: a bearer token and a review-page session per actor.
    let http = bilan_e2e::http_without_redirects();
    let mut sessions = Vec::new();
    for actor in ACTORS {
        let Some(name) = actor.username() else {
            sessions.push(Session {
                actor,
                token: None,
                web: None,
                csrf: String::new(),
            });
            continue;
        };
        let (token, _) = store.login(name, DEMO_PASSWORD, None).unwrap();
        let web = Browser::login(&url, name).await;
        let (_, home) = web.get("/").await;
        let csrf = if actor == Actor::Admin {
            String::new()
        } else {
            Browser::csrf(&home)
        };
        sessions.push(Session {
            actor,
            token: Some(token),
            web: Some(web),
            csrf,
        });
    }

    let managers =
        ["responsable", "responsable-b"].map(|m| store.login(m, DEMO_PASSWORD, None).unwrap().1);

    // The walk.
    let mut calls: Vec<Call> = Vec::new();
    let call = |what: &str, right, target, writes, api, method, path: String, body| Call {
        what: what.to_string(),
        right,
        target,
        writes,
        api,
        method,
        path,
        body,
    };
    calls.push(call(
        "api me",
        Right::SignedIn,
        None,
        false,
        true,
        Method::GET,
        "/api/v1/me".into(),
        Body::None,
    ));
    calls.push(call(
        "api reference",
        Right::Read,
        None,
        false,
        true,
        Method::GET,
        "/api/v1/reference".into(),
        Body::None,
    ));
    calls.push(call(
        "api list",
        Right::Read,
        None,
        false,
        true,
        Method::GET,
        "/api/v1/inspections".into(),
        Body::None,
    ));
    let pull = SyncRequest {
        protocol: PROTOCOL_VERSION,
        device_id: DeviceId::new(),
        cursor: 0,
        docs: vec![],
    };
    calls.push(call(
        "api pull",
        Right::Sync,
        None,
        false,
        true,
        Method::POST,
        "/api/v1/sync".into(),
        Body::Sync(protocol::encode(&pull).unwrap()),
    ));
    for page in [
        "/",
        "/inspections",
        "/plan",
        "/plan.csv",
        "/plan.xlsx",
        "/releve",
        "/releve.csv",
        "/releve.xlsx",
        "/avancement",
        "/avancement.csv",
        "/avancement.xlsx",
        "/planification",
        "/planification.csv",
        "/planification.xlsx",
        "/parametres",
    ] {
        calls.push(call(
            &format!("page {page}"),
            Right::Read,
            None,
            false,
            false,
            Method::GET,
            page.into(),
            Body::None,
        ));
    }
    calls.push(call(
        "page /admin",
        Right::Manage,
        None,
        false,
        false,
        Method::GET,
        "/admin".into(),
        Body::None,
    ));
    for t in TARGETS {
        let (id, hash) = (doc_of(t), photo_of(t));
        let tt = Some(t);
        calls.push(call(
            "api inspection",
            Right::Read,
            tt,
            false,
            true,
            Method::GET,
            format!("/api/v1/inspections/{id}"),
            Body::None,
        ));
        calls.push(call(
            "api photo",
            Right::Read,
            tt,
            false,
            true,
            Method::GET,
            format!("/api/v1/photos/{hash}"),
            Body::None,
        ));
        calls.push(call(
            "api thumb",
            Right::Read,
            tt,
            false,
            true,
            Method::GET,
            format!("/api/v1/photos/{hash}/thumb"),
            Body::None,
        ));
        calls.push(call(
            "page inspection",
            Right::Read,
            tt,
            false,
            false,
            Method::GET,
            format!("/inspections/{id}"),
            Body::None,
        ));
        calls.push(call(
            "page report",
            Right::Read,
            tt,
            false,
            false,
            Method::GET,
            format!("/inspections/{id}/rapport"),
            Body::None,
        ));
        calls.push(call(
            "page report pdf",
            Right::Read,
            tt,
            false,
            false,
            Method::GET,
            format!("/inspections/{id}/rapport.pdf"),
            Body::None,
        ));
        calls.push(call(
            "page complex",
            Right::Read,
            tt,
            false,
            false,
            Method::GET,
            format!("/ensembles/{}", complex_id_of(t)),
            Body::None,
        ));
        calls.push(call(
            "page photo",
            Right::Read,
            tt,
            false,
            false,
            Method::GET,
            format!("/photos/{hash}"),
            Body::None,
        ));
        calls.push(call(
            "page thumb",
            Right::Read,
            tt,
            false,
            false,
            Method::GET,
            format!("/photos/{hash}/vignette"),
            Body::None,
        ));
        calls.push(call(
            "api push",
            Right::Sync,
            tt,
            true,
            true,
            Method::POST,
            "/api/v1/sync".into(),
            Body::Sync(change_to(t)),
        ));
        calls.push(call(
            "api review",
            Right::Manage,
            tt,
            true,
            true,
            Method::POST,
            format!("/api/v1/inspections/{id}/review"),
            Body::Json(serde_json::json!({ "comment": "Vu." })),
        ));
        calls.push(call("api resolve", Right::Manage, tt, true, true, Method::POST, format!("/api/v1/inspections/{id}/resolve"),
            Body::Json(serde_json::json!({ "path": ["components", "B3010", "rating"], "value_id": "1@00" }))));
        calls.push(call(
            "api assign",
            Right::Manage,
            tt,
            true,
            true,
            Method::POST,
            "/api/v1/assignments".into(),
            Body::Json(serde_json::json!({ "complexes": [complex_id_of(t)], "inspector": null })),
        ));
        calls.push(call(
            "page assign",
            Right::Manage,
            tt,
            true,
            false,
            Method::POST,
            "/planification".into(),
            Body::Form(vec![
                ("ensemble".into(), complex_id_of(t).to_string()),
                ("action".into(), "retirer".into()),
            ]),
        ));
        calls.push(call(
            "page review",
            Right::Manage,
            tt,
            true,
            false,
            Method::POST,
            format!("/inspections/{id}/revision"),
            Body::Form(vec![("comment".into(), "Vu.".into())]),
        ));
        calls.push(call(
            "page resolve",
            Right::Manage,
            tt,
            true,
            false,
            Method::POST,
            format!("/inspections/{id}/conflit"),
            Body::Form(vec![
                ("path".into(), "components/B3010/rating".into()),
                ("value_id".into(), "1@00".into()),
            ]),
        ));
    }
    let settings_form = || {
        Body::Form(
            [
                ("hourly", "60"),
                ("travel_hourly", "40"),
                ("per_km", "0,5"),
                ("compensation", "0"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        )
    };
    calls.push(call(
        "page settings",
        Right::Manage,
        None,
        true,
        false,
        Method::POST,
        "/parametres".into(),
        settings_form(),
    ));
    calls.push(call(
        "page import",
        Right::Manage,
        None,
        true,
        false,
        Method::POST,
        "/admin/import".into(),
        Body::Form(vec![
            ("kind".into(), "organismes".into()),
            ("csv".into(), "code,nom\nOH-NEUF,Office neuf\n".into()),
            ("confirm".into(), "1".into()),
        ]),
    ));
    calls.push(call(
        "page revoke",
        Right::Manage,
        Some(Target::OwnOffice),
        true,
        false,
        Method::POST,
        "/admin/revoquer".into(),
        Body::Form(vec![("username".into(), "inspecteur2".into())]),
    ));
    calls.push(call(
        "page revoke",
        Right::Manage,
        Some(Target::OtherTerritory),
        true,
        false,
        Method::POST,
        "/admin/revoquer".into(),
        Body::Form(vec![("username".into(), "inspecteur-b".into())]),
    ));

    let (mut walked, mut refused) = (0, 0);
    for c in &calls {
        for s in &sessions {
            let expect = allowed(s.actor, c.right, c.target);
            let before = fingerprint(&server, &managers);
            let mut req = http.request(c.method.clone(), format!("{url}{}", c.path));
            if c.api {
                if let Some(t) = &s.token {
                    req = req.bearer_auth(t);
                }
            } else if let Some(w) = &s.web {
                req = req.header("cookie", &w.cookie);
            }
            req = match &c.body {
                Body::None => req,
                Body::Json(v) => req.json(v),
                Body::Sync(bytes) => req.body(bytes.clone()),
                Body::Form(fields) => {
                    let mut fields = fields.clone();
                    fields.push(("csrf".into(), s.csrf.clone()));
                    req.form(&fields)
                }
            };
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let location = resp
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let body = resp.bytes().await.unwrap();
            let text = String::from_utf8_lossy(&body);
            let what = format!("{} {:?} as {:?} -> {status}", c.what, c.target, s.actor);
            walked += 1;
            let denied = match status {
                401 | 403 | 404 => true,
                303 => location == "/connexion",
                _ => false,
            };
            if expect {
                assert!(!denied, "{what}: refused but allowed: {text}");
                assert!(status < 500, "{what}: {text}");
            } else {
                refused += 1;
                assert!(denied, "{what}: allowed but must be refused: {text}");
                if s.actor == Actor::Nobody && c.api {
                    assert_eq!(status, 401, "{what}");
                }
            }
            if !expect || !c.writes {
                assert_eq!(
                    fingerprint(&server, &managers),
                    before,
                    "{what}: changed something"
                );
            }
            // Nothing of what the caller may not see, in anything it may read.
            if expect && !c.writes {
                let mut hidden = vec![Target::OtherTerritory];
                if s.actor == Actor::Reader {
                    hidden.push(Target::OtherOffice);
                }
                let readable = if c.path == "/api/v1/sync" {
                    let resp: SyncResponse =
                        protocol::decode(&body, 1 << 30).expect("sync response");
                    resp.changes
                        .iter()
                        .map(|d| d.doc_id.to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                } else {
                    text.to_string()
                };
                for (t, id, complex) in &secrets {
                    if hidden.contains(t) {
                        assert!(
                            !readable.contains(id.as_str()),
                            "{what}: shows {t:?}'s inspection"
                        );
                        let escaped = complex.replace('&', "&amp;").replace('\'', "&#39;");
                        assert!(
                            !readable.contains(complex.as_str()) && !readable.contains(&escaped),
                            "{what}: shows {t:?}'s complex {complex}"
                        );
                    }
                }
            }
        }
    }
    // Nobody of territory A got B's photo by claiming its hash: the upload
    // must carry the photo's bytes.
    let inspector = sessions
        .iter()
        .find(|s| s.actor == Actor::Inspector)
        .unwrap();
    let token = inspector.token.clone().unwrap();
    let b_photo = photo_of(Target::OtherTerritory);
    let photo_url = format!("{url}/api/v1/photos/{b_photo}");
    let range_of = |bytes: &[u8]| format!("bytes 0-{}/{}", bytes.len() - 1, bytes.len());
    let put = |range: String, body: Vec<u8>| {
        http.put(&photo_url)
            .bearer_auth(&token)
            .header("content-range", range)
            .body(body)
            .send()
    };
    let get = || http.get(&photo_url).bearer_auth(&token).send();
    let head = http
        .head(&photo_url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            head.status().as_u16(),
            head.headers()["upload-offset"].to_str().unwrap()
        ),
        (204, "0"),
        "another territory's photo is not admitted to exist"
    );
    // One byte; the second half of a photo; a whole other photo.
    let other = jpeg(3);
    for (body, range, expect) in [
        (b"x".to_vec(), "bytes 0-0/1".to_string(), 422),
        (b"photo".to_vec(), "bytes 5-9/10".to_string(), 409),
        (other.clone(), range_of(&other), 422),
    ] {
        let r = put(range.clone(), body).await.unwrap();
        assert_eq!(r.status().as_u16(), expect, "{range}");
        walked += 1;
        refused += 1;
    }
    let r = get().await.unwrap();
    assert!(
        matches!(r.status().as_u16(), 403 | 404),
        "still not readable"
    );
    // Whoever sends the very bytes gets access (the same photo taken twice).
    let bytes = jpeg(Target::OtherTerritory as u8);
    let r = put(range_of(&bytes), bytes.clone()).await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let r = get().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());
    println!("access walk: {walked} requests, {refused} refused as expected");
    assert!(walked > 250);
}
