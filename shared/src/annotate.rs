//! Photo annotation: the marks an inspector draws on a photo (arrows,
//! circles, short text), kept in the inspection beside the photo, and the
//! annotated photo they make: a new JPEG with the marks drawn in, addressed
//! by its own hash like any photo. The original is never altered; each
//! annotation is drawn from it, so annotating again starts from the photo
//! as taken with the last marks to change.
//!
//! Marks are in coordinates relative to the photo (0 to 1 across and down)
//! so they land on the same spot whatever size a screen shows it at.

use std::io::Cursor;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use autosurgeon::{Hydrate, Reconcile};
use image::codecs::jpeg::JpegEncoder;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader, Rgb, RgbImage};
use serde::{Deserialize, Serialize};

use crate::doc::PhotoRef;
use crate::ids::{PhotoHash, UserId};

vocabulary!(
    /// What a mark on a photo is.
    MarkKind {
        Arrow => "fleche", "Flèche";
        Circle => "cercle", "Cercle";
        Text => "texte", "Texte";
    }
);

/// One mark, in coordinates relative to the photo.
#[derive(Clone, Debug, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct Mark {
    pub kind: MarkKind,
    /// An arrow's tail, a circle's centre, where a text starts (its left
    /// end, at mid-height).
    pub x1: f64,
    pub y1: f64,
    /// An arrow's head, a point of a circle; a text's own start again.
    pub x2: f64,
    pub y2: f64,
    /// A text mark's words; empty for the others.
    pub text: String,
}

impl Mark {
    /// An arrow from `(x1, y1)` pointing at `(x2, y2)`.
    pub fn arrow(x1: f64, y1: f64, x2: f64, y2: f64) -> Self {
        Self::drawn(MarkKind::Arrow, x1, y1, x2, y2)
    }

    /// A circle around `(cx, cy)` through `(x2, y2)`.
    pub fn circle(cx: f64, cy: f64, x2: f64, y2: f64) -> Self {
        Self::drawn(MarkKind::Circle, cx, cy, x2, y2)
    }

    /// Words starting at `(x, y)`.
    pub fn text(x: f64, y: f64, text: &str) -> Self {
        Self {
            kind: MarkKind::Text,
            x1: x,
            y1: y,
            x2: x,
            y2: y,
            text: text.trim().to_string(),
        }
    }

    fn drawn(kind: MarkKind, x1: f64, y1: f64, x2: f64, y2: f64) -> Self {
        Self {
            kind,
            x1,
            y1,
            x2,
            y2,
            text: String::new(),
        }
    }

    /// The length of a drawn mark, relative to the photo.
    fn span(&self) -> f64 {
        (self.x2 - self.x1).hypot(self.y2 - self.y1)
    }
}

/// An annotated version of a photo: the new photo and the marks it was
/// drawn with, who made it and when. Kept in a list under the photo, so
/// two inspectors annotating the same photo offline both keep theirs; the
/// latest is the one shown.
#[derive(Clone, Debug, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct Annotation {
    #[key]
    pub hash: PhotoHash,
    pub size: u64,
    pub marks: Vec<Mark>,
    pub made_by: UserId,
    pub made_at: i64,
}

impl PhotoRef {
    /// The latest annotation (by time, then hash, so every device and the
    /// server pick the same one), if the photo has any.
    pub fn latest_annotation(&self) -> Option<&Annotation> {
        self.annotations
            .iter()
            .max_by(|a, b| (a.made_at, &a.hash).cmp(&(b.made_at, &b.hash)))
    }

    /// The photo to show: the latest annotated version, else this one.
    pub fn shown(&self) -> &PhotoHash {
        self.latest_annotation().map_or(&self.hash, |a| &a.hash)
    }

    /// This photo and every annotated version of it.
    pub fn hashes(&self) -> impl Iterator<Item = &PhotoHash> {
        std::iter::once(&self.hash).chain(self.annotations.iter().map(|a| &a.hash))
    }
}

/// At most this many marks on one photo.
pub const MAX_MARKS: usize = 30;
/// At most this many characters in one text mark.
pub const MAX_TEXT: usize = 60;
/// The shortest arrow or smallest circle, relative to the photo (a tap
/// that did not move is not a mark).
pub const MIN_SPAN: f64 = 0.01;

/// Why marks cannot be saved or drawn, in words an inspector can act on.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AnnotateError {
    #[error(
        "aucune marque à enregistrer : dessinez une flèche, un cercle ou un texte sur la photo"
    )]
    NoMarks,
    #[error("au plus {MAX_MARKS} marques sur une photo : retirez-en")]
    TooManyMarks,
    #[error("un texte sur la photo ne peut pas être vide")]
    EmptyText,
    #[error("au plus {MAX_TEXT} caractères par texte sur la photo : raccourcissez-le")]
    TextTooLong,
    #[error("une marque sort de la photo : dessinez-la sur la photo")]
    OutOfPhoto,
    #[error("flèche ou cercle trop petit : glissez le doigt plus loin")]
    TooSmall,
    #[error("photo illisible, elle ne peut pas être annotée : {0}")]
    Image(String),
}

/// Whether these marks can be saved.
pub fn check(marks: &[Mark]) -> Result<(), AnnotateError> {
    if marks.is_empty() {
        return Err(AnnotateError::NoMarks);
    }
    if marks.len() > MAX_MARKS {
        return Err(AnnotateError::TooManyMarks);
    }
    let inside = |v: f64| (0.0..=1.0).contains(&v);
    for m in marks {
        if ![m.x1, m.y1, m.x2, m.y2].into_iter().all(inside) {
            return Err(AnnotateError::OutOfPhoto);
        }
        match m.kind {
            MarkKind::Text if m.text.trim().is_empty() => return Err(AnnotateError::EmptyText),
            MarkKind::Text if m.text.chars().count() > MAX_TEXT => {
                return Err(AnnotateError::TextTooLong);
            }
            MarkKind::Arrow | MarkKind::Circle if m.span() < MIN_SPAN => {
                return Err(AnnotateError::TooSmall);
            }
            _ => {}
        }
    }
    Ok(())
}

/// Marks are red with a white edge, readable on dark and light surfaces.
const INK: Rgb<u8> = Rgb([230, 25, 25]);
const EDGE: Rgb<u8> = Rgb([255, 255, 255]);

/// The annotated photo: `photo` turned upright, `marks` drawn in, encoded
/// as JPEG at `quality` with the photo's EXIF (time, GPS) kept.
pub fn render(photo: &[u8], marks: &[Mark], quality: u8) -> Result<Vec<u8>, AnnotateError> {
    check(marks)?;
    let bad = |e: image::ImageError| AnnotateError::Image(e.to_string());
    let mut decoder = ImageReader::new(Cursor::new(photo))
        .with_guessed_format()
        .map_err(|e| AnnotateError::Image(e.to_string()))?
        .into_decoder()
        .map_err(bad)?;
    let mut exif = decoder.exif_metadata().map_err(bad)?;
    let orientation = decoder.orientation().map_err(bad)?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(bad)?;
    img.apply_orientation(orientation);
    if let Some(e) = exif.as_mut() {
        let _ = Orientation::remove_from_exif_chunk(e);
    }
    let mut canvas = img.to_rgb8();
    let font = FontRef::try_from_slice(crate::fonts::BOLD)
        .map_err(|e| AnnotateError::Image(e.to_string()))?;
    for m in marks {
        draw(&mut canvas, &font, m);
    }
    let mut out = Vec::with_capacity(photo.len() + photo.len() / 4);
    let mut encoder = JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100));
    if let Some(e) = exif {
        use image::ImageEncoder;
        encoder
            .set_exif_metadata(e)
            .map_err(|e| AnnotateError::Image(e.to_string()))?;
    }
    canvas.write_with_encoder(encoder).map_err(bad)?;
    Ok(out)
}

/// A point in pixels.
pub type P = (f64, f64);

/// Half the width of a mark's stroke on a `w` × `h` photo, in pixels:
/// thick enough to read on a phone's screen at any photo size. The
/// screens' preview draws with the same.
pub fn stroke_radius(w: f64, h: f64) -> f64 {
    (w.min(h) / 160.0).max(1.5)
}

/// The height of a text mark's letters on a `w` × `h` photo, in pixels.
pub fn text_size(w: f64, h: f64) -> f64 {
    (w.min(h) / 18.0).max(14.0)
}

/// The two ends of an arrow's head, pointing at `b` from `a` (pixels),
/// drawn with strokes of radius `r`.
pub fn arrow_wings(a: P, b: P, r: f64) -> [P; 2] {
    let len = (b.0 - a.0).hypot(b.1 - a.1).max(f64::EPSILON);
    let head = (len * 0.3).clamp(r * 6.0, r * 14.0);
    let back = ((a.0 - b.0) / len, (a.1 - b.1) / len);
    [0.5f64, -0.5].map(|turn| {
        let (s, c) = turn.sin_cos();
        (
            b.0 + head * (back.0 * c - back.1 * s),
            b.1 + head * (back.0 * s + back.1 * c),
        )
    })
}

fn draw(img: &mut RgbImage, font: &FontRef<'_>, m: &Mark) {
    let (w, h) = (img.width() as f64, img.height() as f64);
    let r = stroke_radius(w, h);
    let edge = r + (r / 2.0).max(1.0);
    let a = (m.x1 * w, m.y1 * h);
    let b = (m.x2 * w, m.y2 * h);
    match m.kind {
        MarkKind::Arrow => {
            let [left, right] = arrow_wings(a, b, r);
            let strokes = [(a, b), (b, left), (b, right)];
            for (radius, ink) in [(edge, EDGE), (r, INK)] {
                for (p, q) in strokes {
                    segment(img, p, q, radius, ink);
                }
            }
        }
        MarkKind::Circle => {
            let radius = (b.0 - a.0).hypot(b.1 - a.1);
            ring(img, a, radius, edge, EDGE);
            ring(img, a, radius, r, INK);
        }
        MarkKind::Text => text(img, font, a, &m.text),
    }
}

/// Paints `ink` over the pixels within `radius` of the segment `p`–`q`,
/// with a soft edge one pixel wide.
fn segment(img: &mut RgbImage, p: P, q: P, radius: f64, ink: Rgb<u8>) {
    let (dx, dy) = (q.0 - p.0, q.1 - p.1);
    let len2 = (dx * dx + dy * dy).max(f64::EPSILON);
    cover(
        img,
        (p.0.min(q.0) - radius, p.1.min(q.1) - radius),
        (p.0.max(q.0) + radius, p.1.max(q.1) + radius),
        ink,
        |x, y| {
            let t = (((x - p.0) * dx + (y - p.1) * dy) / len2).clamp(0.0, 1.0);
            radius + 0.5 - (x - p.0 - t * dx).hypot(y - p.1 - t * dy)
        },
    );
}

/// Paints `ink` over the pixels within `half` of the circle of `radius`
/// around `c`.
fn ring(img: &mut RgbImage, c: P, radius: f64, half: f64, ink: Rgb<u8>) {
    let out = radius + half + 1.0;
    cover(
        img,
        (c.0 - out, c.1 - out),
        (c.0 + out, c.1 + out),
        ink,
        |x, y| half + 0.5 - ((x - c.0).hypot(y - c.1) - radius).abs(),
    );
}

/// Blends `ink` into every pixel of the box `lo`–`hi` (clipped to the
/// image) by `coverage(x, y)` (at most 1; 0 or less leaves it).
fn cover(img: &mut RgbImage, lo: P, hi: P, ink: Rgb<u8>, coverage: impl Fn(f64, f64) -> f64) {
    let (w, h) = (img.width() as f64, img.height() as f64);
    let x0 = lo.0.floor().clamp(0.0, w) as u32;
    let x1 = hi.0.ceil().clamp(0.0, w) as u32;
    let y0 = lo.1.floor().clamp(0.0, h) as u32;
    let y1 = hi.1.ceil().clamp(0.0, h) as u32;
    for y in y0..y1 {
        for x in x0..x1 {
            let a = coverage(x as f64 + 0.5, y as f64 + 0.5).min(1.0);
            if a > 0.0 {
                blend(img.get_pixel_mut(x, y), ink, a as f32);
            }
        }
    }
}

fn blend(px: &mut Rgb<u8>, ink: Rgb<u8>, a: f32) {
    for (c, i) in px.0.iter_mut().zip(ink.0) {
        *c = (*c as f32 * (1.0 - a) + i as f32 * a).round() as u8;
    }
}

/// Words in bold on a white label whose left end, at mid-height, is at
/// `at` (moved inside the photo if it would leave it).
fn text(img: &mut RgbImage, font: &FontRef<'_>, at: P, words: &str) {
    let (w, h) = (img.width() as f64, img.height() as f64);
    let size = text_size(w, h) as f32;
    let scaled = font.as_scaled(PxScale::from(size));
    let mut glyphs = Vec::new();
    let mut caret = 0.0f32;
    let mut previous = None;
    for ch in words.chars() {
        let id = scaled.glyph_id(ch);
        if let Some(p) = previous {
            caret += scaled.kern(p, id);
        }
        glyphs.push(id.with_scale_and_position(size, point(caret, scaled.ascent())));
        caret += scaled.h_advance(id);
        previous = Some(id);
    }
    let pad = f64::from(size) * 0.25;
    let (tw, th) = (f64::from(caret), f64::from(scaled.height()));
    let left = at.0.min(w - tw - 2.0 * pad).max(0.0);
    let top = (at.1 - th / 2.0 - pad).clamp(0.0, (h - th - 2.0 * pad).max(0.0));
    cover(
        img,
        (left, top),
        (left + tw + 2.0 * pad, top + th + 2.0 * pad),
        EDGE,
        |_, _| 0.85,
    );
    let (ox, oy) = (left + pad, top + pad);
    for g in glyphs {
        let Some(outline) = font.outline_glyph(g) else {
            continue;
        };
        let bounds = outline.px_bounds();
        outline.draw(|x, y, c| {
            let px = ox + f64::from(bounds.min.x) + f64::from(x);
            let py = oy + f64::from(bounds.min.y) + f64::from(y);
            if px >= 0.0 && py >= 0.0 && px < w && py < h {
                blend(img.get_pixel_mut(px as u32, py as u32), INK, c.min(1.0));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grey 400 × 300 photo.
    fn photo() -> Vec<u8> {
        let mut out = Vec::new();
        RgbImage::from_pixel(400, 300, Rgb([90, 90, 90]))
            .write_with_encoder(JpegEncoder::new_with_quality(&mut out, 90))
            .unwrap();
        out
    }

    fn is_red(p: &Rgb<u8>) -> bool {
        p.0[0] > 180 && p.0[1] < 90 && p.0[2] < 90
    }

    fn decoded(jpeg: &[u8]) -> RgbImage {
        image::load_from_memory(jpeg).unwrap().to_rgb8()
    }

    #[test]
    fn an_arrow_a_circle_and_a_text_are_drawn_where_they_were_placed_and_nowhere_else() {
        let marks = [
            Mark::arrow(0.1, 0.1, 0.4, 0.1),
            Mark::circle(0.75, 0.5, 0.85, 0.5),
            Mark::text(0.1, 0.85, "Fissure à surveiller"),
        ];
        let out = decoded(&render(&photo(), &marks, 90).unwrap());
        assert_eq!((out.width(), out.height()), (400, 300));
        // On the arrow's shaft, on the circle (radius 40 px around 300, 150),
        // and the label's white under the text.
        assert!(is_red(out.get_pixel(100, 30)), "arrow shaft");
        assert!(is_red(out.get_pixel(340, 150)), "circle");
        assert!(
            !is_red(out.get_pixel(300, 150)),
            "the circle's centre is left"
        );
        let label = out.get_pixel(42, 255);
        assert!(label.0.iter().all(|c| *c > 150), "white label: {label:?}");
        let text_red = (40..200).any(|x| (245..265).any(|y| is_red(out.get_pixel(x, y))));
        assert!(text_red, "letters drawn");
        // A corner far from every mark is the photo as it was.
        let corner = out.get_pixel(390, 10);
        assert!(corner.0.iter().all(|c| c.abs_diff(90) < 8), "{corner:?}");
    }

    #[test]
    fn bad_marks_are_refused_in_french_and_nothing_is_drawn() {
        let cases = [
            (vec![], AnnotateError::NoMarks),
            (vec![Mark::text(0.5, 0.5, "  ")], AnnotateError::EmptyText),
            (
                vec![Mark::text(0.5, 0.5, &"x".repeat(MAX_TEXT + 1))],
                AnnotateError::TextTooLong,
            ),
            (
                vec![Mark::arrow(0.5, 0.5, 1.2, 0.5)],
                AnnotateError::OutOfPhoto,
            ),
            (
                vec![Mark::circle(0.5, 0.5, 0.501, 0.5)],
                AnnotateError::TooSmall,
            ),
            (
                vec![Mark::arrow(0.1, 0.1, 0.5, 0.5); MAX_MARKS + 1],
                AnnotateError::TooManyMarks,
            ),
        ];
        for (marks, expected) in cases {
            assert_eq!(render(&photo(), &marks, 85).unwrap_err(), expected);
        }
        assert!(AnnotateError::TooSmall.to_string().contains("glissez"));
    }

    #[test]
    fn a_text_near_the_edge_is_moved_inside_the_photo() {
        let out = decoded(&render(&photo(), &[Mark::text(0.98, 0.99, "Toiture")], 90).unwrap());
        let red_near_right = (300..400).any(|x| (250..300).any(|y| is_red(out.get_pixel(x, y))));
        assert!(red_near_right);
    }

    #[test]
    fn a_file_that_is_not_a_photo_is_refused() {
        let err = render(b"pas une photo", &[Mark::arrow(0.1, 0.1, 0.5, 0.5)], 85).unwrap_err();
        assert!(matches!(err, AnnotateError::Image(_)));
    }
}
