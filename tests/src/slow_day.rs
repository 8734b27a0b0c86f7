//! `sync-bench`'s slow-link scenario: a day's work (3 inspections and their
//! camera photos) synced over a rural link (1 Mbit/s, 300 ms round trip,
//! the fault proxy's [`Link::RURAL`]), with the CS's photo reduction and
//! without, while the inspector keeps rating: the time to sync, the bytes
//! sent, and the p99 time to save a rating meanwhile.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bilan_mobile::{NewFinding, SyncEngine};
use bilan_shared::domain::{Rating, Severity};
use bilan_shared::photo_size::PhotoSettings;

use crate::device;
use crate::fault_proxy::{FaultProxy, Link};

/// A camera-like JPEG: `w` × `h`, textured like a building's wall (fine
/// noise over broad gradients, not flat colour), quality 92 like a phone's.
pub fn camera_jpeg(w: u32, h: u32, seed: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let n = (x.wrapping_mul(2_654_435_761)
            ^ y.wrapping_mul(40_503)
            ^ seed.wrapping_mul(0x9E37_79B9))
            >> 7;
        image::Rgb([
            (x / 17 + (n & 15)) as u8,
            (y / 13 + ((n >> 5) & 15)) as u8,
            ((x + y) / 29 + ((n >> 10) & 15)) as u8,
        ])
    });
    let mut out = Vec::new();
    img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
        &mut out, 92,
    ))
    .expect("JPEG of a generated image");
    out
}

/// What one pass measured.
pub struct DayLine {
    pub took: Duration,
    pub photo_bytes: u64,
    pub sent: u64,
    pub rating_p99: Duration,
    pub ratings: usize,
}

/// Syncs a day's work with `photos` photos (12 megapixels) through a
/// rural link to the server at `server`, the device's photos sized by
/// `settings`; a thread rates components every 50 ms meanwhile.
pub async fn day_on_a_rural_link(
    dir: &Path,
    server: std::net::SocketAddr,
    photos: usize,
    settings: PhotoSettings,
) -> anyhow::Result<DayLine> {
    let link = FaultProxy::start(server, 7).await;
    let d = device(dir, &link.url(), "inspecteur1").await;
    let mut cs = d.cs_settings()?;
    cs.photos = settings;
    d.set_setting("cs_settings", &serde_json::to_string(&cs)?)?;
    let complexes = d.complexes()?;
    let mut photo_bytes = 0;
    let mut inspections = Vec::new();
    for i in 0..3 {
        let id = d.start_inspection(complexes[i % complexes.len()].id)?;
        let fid = d.add_finding(
            id,
            NewFinding {
                component: "B2010".into(),
                title: "Parement fissuré".into(),
                location: "Façade".into(),
                severity: Severity::Moderate,
                description: String::new(),
            },
        )?;
        for p in (i..photos).step_by(3) {
            let jpeg = camera_jpeg(4000, 3000, p as u32);
            photo_bytes += jpeg.len() as u64;
            d.attach_photo(id, fid, &jpeg, "image/jpeg", "Façade")?;
        }
        d.put_away(id)?;
        inspections.push(id);
    }
    let rated = *inspections.last().context("an inspection")?;
    let codes: Vec<String> = bilan_shared::Catalogue::current()
        .components()
        .map(|(_, c)| c.code.clone())
        .collect();
    link.set_link(Some(Link::RURAL));
    let d = Arc::new(d);
    let syncing = Arc::new(AtomicBool::new(true));
    let rater = {
        let (d, syncing, codes) = (d.clone(), syncing.clone(), codes.clone());
        std::thread::spawn(move || -> anyhow::Result<Vec<Duration>> {
            let mut times = Vec::new();
            let mut i = 0usize;
            while syncing.load(Ordering::SeqCst) {
                let t = Instant::now();
                d.rate(
                    rated,
                    &codes[i % codes.len()],
                    [Rating::A, Rating::B][i % 2],
                )?;
                times.push(t.elapsed());
                // As the app does after an edit: the snapshot brought up
                // to date on another thread when enough changes wait.
                let compacting = d.clone();
                std::thread::spawn(move || {
                    if let Err(e) = compacting.compact_if_due(rated) {
                        eprintln!("  compactage en arrière-plan impossible : {e}");
                    }
                });
                i += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(times)
        })
    };
    let started = Instant::now();
    let report = SyncEngine::new(d.as_ref()).sync().await;
    let took = started.elapsed();
    syncing.store(false, Ordering::SeqCst);
    let mut times = rater.join().expect("rating thread")?;
    let report = report?;
    anyhow::ensure!(
        d.photos_to_upload(i64::MAX)?.is_empty(),
        "photos left to send"
    );
    times.sort();
    let rating_p99 = times
        .get((times.len() * 99).div_ceil(100).saturating_sub(1))
        .copied()
        .unwrap_or_default();
    Ok(DayLine {
        took,
        photo_bytes,
        sent: report.bytes_up + report.photo_bytes_sent,
        rating_p99,
        ratings: times.len(),
    })
}

/// Both passes, printed: photos reduced as the CS asks by default, and
/// sent as taken.
pub async fn scenario(
    root: &Path,
    server: std::net::SocketAddr,
    photos: usize,
) -> anyhow::Result<()> {
    let passes = [
        (
            "photos réduites (2 560 px, qualité 85)",
            PhotoSettings::default(),
        ),
        (
            "photos telles que prises",
            PhotoSettings {
                max_px: 8192,
                quality: 100,
                keep_originals: true,
            },
        ),
    ];
    for (i, (label, settings)) in passes.into_iter().enumerate() {
        let l =
            day_on_a_rural_link(&root.join(format!("d6-{i}")), server, photos, settings).await?;
        println!(
            "6. journée de 3 inspections et {photos} photos, lien rural (1 Mbit/s, 300 ms), {label} : {:.1} s, {} Mo envoyés ({} Mo de photos prises) ; enregistrer une cote pendant la synchro : p99 {:.1} ms sur {}",
            l.took.as_secs_f64(),
            bilan_shared::fmt::decimal(l.sent as f64 / 1e6, 1),
            bilan_shared::fmt::decimal(l.photo_bytes as f64 / 1e6, 1),
            l.rating_p99.as_secs_f64() * 1000.0,
            l.ratings
        );
    }
    Ok(())
}
