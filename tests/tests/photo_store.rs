//! End-to-end photo store on an S3-compatible server (moto) shared by two
//! server instances on one database: an upload cut at half on instance A
//! resumes on instance B from the last byte A kept, the photo and its
//! thumbnail are then served by both, and a wrong photo is refused.

use bilan_e2e::object_store::S3Server;
use bilan_e2e::{DEMO_PASSWORD, TestServer, put_photo_under_a_wrong_name};
use bilan_shared::ids::PhotoHash;
use bilan_shared::protocol::{UPLOAD_LENGTH_HEADER, UPLOAD_OFFSET_HEADER};

/// A real image (so it has a thumbnail) of about 3 MB that hardly compresses.
fn photo() -> Vec<u8> {
    let mut png = Vec::new();
    image::RgbImage::from_fn(1200, 900, |x, y| {
        image::Rgb([(x * 7 + y) as u8, (y * 13) as u8, (x ^ y) as u8])
    })
    .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
    .unwrap();
    png
}

fn offset(r: &reqwest::Response) -> u64 {
    r.headers()[UPLOAD_OFFSET_HEADER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_at_half_on_one_instance_resumes_on_another() {
    let s3 = S3Server::start("bilan-photos").await;
    let tmp = tempfile::tempdir().unwrap();
    let a = TestServer::start_with(&tmp.path().join("server"), |c| s3.configure(c)).await;
    let b = a.start_beside(|_| {}).await;
    let (token, _) = a
        .state
        .service()
        .login("inspecteur1", DEMO_PASSWORD, None)
        .unwrap();
    let http = reqwest::Client::new();
    let photo = photo();
    let total = photo.len();
    let half = total / 2;
    let hash = PhotoHash::of(&photo);
    let url = |s: &TestServer| format!("{}/api/v1/photos/{hash}", s.url());

    // On A: the whole range announced, half the body sent, then the
    // connection fails.
    let first = bytes::Bytes::copy_from_slice(&photo[..half]);
    let cut = futures_util::stream::iter(vec![
        Ok::<_, std::io::Error>(first),
        Err(std::io::Error::other("réseau coupé")),
    ]);
    let sent = http
        .put(url(&a))
        .bearer_auth(&token)
        .header("content-type", "image/png")
        .header("content-range", format!("bytes 0-{}/{total}", total - 1))
        .body(reqwest::Body::wrap_stream(cut))
        .send()
        .await;
    assert!(sent.is_err(), "the upload was cut");

    // B sees what A kept (A writes it once it notices the cut).
    let started = std::time::Instant::now();
    let held = loop {
        let r = http.head(url(&b)).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), 204);
        let held = offset(&r);
        if held == half as u64 {
            break held;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "instance B never saw the half A received (last offset {held})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };

    // The rest, sent to B, completes the photo.
    let rest = http
        .put(url(&b))
        .bearer_auth(&token)
        .header("content-type", "image/png")
        .header(
            "content-range",
            format!("bytes {held}-{}/{total}", total - 1),
        )
        .body(photo[held as usize..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 201, "{:?}", rest.text().await);

    // Both instances serve it, byte for byte, with its thumbnail.
    for s in [&a, &b] {
        let head = http.head(url(s)).bearer_auth(&token).send().await.unwrap();
        assert_eq!(head.status(), 200);
        assert_eq!(
            head.headers()[UPLOAD_LENGTH_HEADER],
            total.to_string().as_str()
        );
        let got = http.get(url(s)).bearer_auth(&token).send().await.unwrap();
        assert_eq!(got.status(), 200);
        assert!(got.bytes().await.unwrap() == photo, "photo byte for byte");
        let thumb = http
            .get(format!("{}/thumb", url(s)))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(thumb.status(), 200);
        let thumb = image::load_from_memory(&thumb.bytes().await.unwrap()).unwrap();
        assert_eq!(thumb.width(), bilan_server::photos::THUMB_SIZE);
    }
    // Nothing of the upload is left in the bucket but the photo and its
    // thumbnail, and nothing is on the instances' disk.
    assert_eq!(a.state.0.photos.received(&hash).await.unwrap(), 0);
    assert!(
        !tmp.path().join("server").join("photos").exists(),
        "photos went to the bucket, not to a local folder"
    );

    // Bytes that do not hash to the name are refused on either instance.
    let (fake, status, body) = put_photo_under_a_wrong_name(&b, &token).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("hash_mismatch"))
    );
    assert!(!a.state.0.photos.is_complete(&fake).await.unwrap());
    b.stop().await;
    a.stop().await;
}
