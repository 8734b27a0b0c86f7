//! Annotated photos end to end: drawn on the device, uploaded like any
//! photo, shown by the review pages and the report in place of the photo
//! as taken, which stays on the server untouched and linked.

use bilan_e2e::{Browser, TestServer, device, first_complex, roof_finding, server_doc, sync};
use bilan_shared::annotate::Mark;
use bilan_shared::ids::PhotoHash;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_annotated_photo_reaches_the_review_page_and_the_report_linked_to_the_photo_as_taken() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(&tmp.path().join("server")).await;
    let d = device(&tmp.path().join("d"), &server.url(), "inspecteur1").await;
    let id = d.start_inspection(first_complex(&d)).unwrap();
    let fid = d.add_finding(id, roof_finding()).unwrap();
    let photo = d
        .attach_photo(
            id,
            fid,
            &bilan_e2e::slow_day::camera_jpeg(1600, 1200, 7),
            "image/jpeg",
            "Membrane",
        )
        .unwrap();
    sync(&d).await;
    let taken = d.photo_bytes(&photo).unwrap();
    let marks = [
        Mark::arrow(0.15, 0.2, 0.45, 0.5),
        Mark::circle(0.6, 0.5, 0.7, 0.5),
        Mark::text(0.1, 0.85, "Soulèvement"),
    ];
    let annotated = d.annotate_photo(id, fid, &photo, &marks).unwrap();
    let report = sync(&d).await;
    assert_eq!(
        report.photos_uploaded, 1,
        "only the annotated photo is sent"
    );

    let doc = server_doc(&server, "responsable", id);
    let p = &doc.findings[0].photos[0];
    assert_eq!(p.hash, photo);
    assert_eq!(p.shown(), &annotated);
    assert_eq!(p.annotations[0].marks, marks);

    let m = Browser::login(&server.url(), "responsable").await;
    let (st, page) = m.get(&format!("/inspections/{id}")).await;
    assert_eq!(st, 200);
    assert!(
        page.contains(&format!("src=\"/photos/{annotated}/vignette\""))
            && !page.contains(&format!("src=\"/photos/{photo}/vignette\"")),
        "the annotated photo is the one shown"
    );
    assert!(
        page.contains("Photo annotée")
            && page.contains(&format!("class=\"original\" href=\"/photos/{photo}\"")),
        "with a link to the photo as taken"
    );
    let (st, _, bytes) = m.download(&format!("/photos/{annotated}")).await;
    assert_eq!(st, 200);
    assert_eq!(PhotoHash::of(&bytes), annotated);
    let (st, _, bytes) = m.download(&format!("/photos/{photo}")).await;
    assert_eq!((st, bytes), (200, taken), "the photo as taken, untouched");

    let (st, html) = m.get(&format!("/inspections/{id}/rapport")).await;
    assert_eq!(st, 200);
    assert!(
        html.contains(&format!("src=\"/photos/{annotated}/vignette\""))
            && html.contains(&format!("href=\"/photos/{photo}\"")),
        "{html}"
    );
    // The office's reader sees the annotated photo of its office's complex.
    let reader = Browser::login(&server.url(), "lecteur-tr").await;
    let (st, _, _) = reader.download(&format!("/photos/{annotated}")).await;
    assert_eq!(st, 200);
}
