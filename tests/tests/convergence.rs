//! Property: 3 devices make random edits to shared inspections and sync in a
//! random order against a real server; after a final round everyone holds
//! the same documents (same heads, same content) as the server.

use bilan_e2e::{TestServer, device};
use bilan_mobile::{DeviceStore, NewFinding, SyncEngine};
use bilan_shared::Catalogue;
use bilan_shared::domain::{Rating, Severity};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Rate {
        device: usize,
        doc: usize,
        component: usize,
        rating: usize,
    },
    Note {
        device: usize,
        doc: usize,
        component: usize,
        text: String,
    },
    Finding {
        device: usize,
        doc: usize,
        component: usize,
    },
    Sync {
        device: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..2usize, 0..12usize, 0..5usize)
            .prop_map(|(device, doc, component, rating)| Op::Rate { device, doc, component, rating }),
        1 => (0..3usize, 0..2usize, 0..12usize, "[a-zé ]{0,12}")
            .prop_map(|(device, doc, component, text)| Op::Note { device, doc, component, text }),
        1 => (0..3usize, 0..2usize, 0..12usize).prop_map(|(device, doc, component)| Op::Finding { device, doc, component }),
        3 => (0..3usize).prop_map(|device| Op::Sync { device }),
    ]
}

async fn run(ops: Vec<Op>) {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("server")).await;
    let users = ["inspecteur1", "inspecteur2", "responsable"];
    let mut devices: Vec<DeviceStore> = Vec::new();
    for (i, u) in users.iter().enumerate() {
        devices.push(device(&tmp.path().join(format!("d{i}")), &server.url(), u).await);
    }
    let complexes = devices[0].complexes().unwrap();
    let docs = [
        devices[0].start_inspection(complexes[0].id).unwrap(),
        devices[1].start_inspection(complexes[1].id).unwrap(),
    ];
    for d in &devices[..2] {
        SyncEngine::new(d).sync().await.unwrap();
    }
    for d in &devices {
        SyncEngine::new(d).sync().await.unwrap();
    }
    let codes: Vec<String> = Catalogue::current()
        .components()
        .map(|(_, c)| c.code.clone())
        .collect();
    let ratings = [Rating::A, Rating::B, Rating::C, Rating::D, Rating::E];
    for op in ops {
        match op {
            Op::Rate {
                device,
                doc,
                component,
                rating,
            } => devices[device]
                .rate(docs[doc], &codes[component], ratings[rating])
                .unwrap(),
            Op::Note {
                device,
                doc,
                component,
                text,
            } => devices[device]
                .set_component_note(docs[doc], &codes[component], &text)
                .unwrap(),
            Op::Finding {
                device,
                doc,
                component,
            } => {
                devices[device]
                    .add_finding(
                        docs[doc],
                        NewFinding {
                            component: codes[component].clone(),
                            title: format!("Constat {device}"),
                            location: String::new(),
                            severity: Severity::Minor,
                            description: String::new(),
                        },
                    )
                    .unwrap();
            }
            Op::Sync { device } => {
                SyncEngine::new(&devices[device]).sync().await.unwrap();
            }
        }
    }
    // Final round: everyone pushes, then everyone pulls.
    for d in &devices {
        SyncEngine::new(d).sync().await.unwrap();
    }
    for d in &devices {
        SyncEngine::new(d).sync().await.unwrap();
    }
    let (_, manager) = server
        .state
        .service()
        .login("responsable", bilan_e2e::DEMO_PASSWORD, None)
        .unwrap();
    for id in docs {
        let on_server = server.state.service().inspection(&manager, id).unwrap();
        let mut server_heads = on_server.automerge().get_heads();
        server_heads.sort();
        let expected = on_server.read().unwrap();
        for d in &devices {
            let mut heads = d.heads(id).unwrap();
            heads.sort();
            assert_eq!(heads, server_heads, "same history");
            assert_eq!(d.inspection(id).unwrap(), expected, "same content");
            assert_eq!(
                d.conflicts(id).unwrap(),
                bilan_shared::conflicts::list(&on_server).unwrap()
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    #[test]
    fn three_devices_with_random_edits_and_sync_order_converge(ops in proptest::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(run(ops));
    }
}
