//! The BSI report as a PDF, generated on the server from the same blocks
//! as its printable page ([`crate::bsi_report`]), with `krilla` (pure Rust,
//! from the Typst project: shapes text with rustybuzz, embeds and subsets
//! fonts, takes JPEG photos as they are). The font is DejaVu Sans, carried
//! in the binary ([`bilan_shared::fonts`], Bitstream Vera licence): every
//! French letter renders, whatever the server's machine has installed.
//! Letter pages, a simple flowing layout: a block that does not fit starts
//! a new page; a section starts one when less than a third of it is left.

use std::collections::HashMap;

use bilan_shared::ids::PhotoHash;
use krilla::Document;
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect, Size, Transform};
use krilla::image::Image;
use krilla::num::NormalizedF32;
use krilla::page::{Page, PageSettings};
use krilla::paint::Fill;
use krilla::surface::Surface;
use krilla::text::{Font, TextDirection};

use crate::bsi_report::{Block, Table};

use bilan_shared::fonts::{BOLD, REGULAR};

/// US letter, in points, and the margin all round.
const WIDTH: f32 = 612.0;
const HEIGHT: f32 = 792.0;
const MARGIN: f32 = 48.0;
/// Advance of an average character of DejaVu Sans, per point of size (for
/// wrapping; a little wide, so lines never overflow).
const CHAR_WIDTH: f32 = 0.56;

/// Why a report could not be written (a bug, never the user's input).
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("police du rapport illisible")]
    Font,
    #[error("écriture du PDF : {0}")]
    Write(String),
}

/// The report as PDF bytes; `photos` holds the JPEG (thumbnail) of each
/// photo the blocks name (one missing is left out, with a note).
pub fn render(blocks: &[Block], photos: &HashMap<PhotoHash, Vec<u8>>) -> Result<Vec<u8>, PdfError> {
    let fonts = Fonts {
        regular: Font::new(REGULAR.into(), 0).ok_or(PdfError::Font)?,
        bold: Font::new(BOLD.into(), 0).ok_or(PdfError::Font)?,
    };
    let mut document = Document::new();
    {
        let mut writer = Writer::new(&mut document, &fonts);
        for block in blocks {
            writer.block(block, photos);
        }
        writer.finish();
    }
    document
        .finish()
        .map_err(|e| PdfError::Write(format!("{e:?}")))
}

struct Fonts {
    regular: Font,
    bold: Font,
}

/// Lays blocks out page after page.
struct Writer<'a> {
    document: &'a mut Document,
    fonts: &'a Fonts,
    /// Each finished page's drawing, replayed when the page is written.
    ops: Vec<Op>,
    pages: Vec<Vec<Op>>,
    y: f32,
}

/// One drawing operation of a page.
enum Op {
    Text {
        x: f32,
        y: f32,
        size: f32,
        bold: bool,
        text: String,
        white: bool,
    },
    Rect {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        color: (u8, u8, u8),
    },
    Image {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        image: Image,
    },
}

impl<'a> Writer<'a> {
    fn new(document: &'a mut Document, fonts: &'a Fonts) -> Self {
        Self {
            document,
            fonts,
            ops: Vec::new(),
            pages: Vec::new(),
            y: MARGIN,
        }
    }

    fn new_page(&mut self) {
        self.pages.push(std::mem::take(&mut self.ops));
        self.y = MARGIN;
    }

    /// Makes room for `h` points, on a new page if needed.
    fn room(&mut self, h: f32) {
        if self.y + h > HEIGHT - MARGIN && self.y > MARGIN {
            self.new_page();
        }
    }

    fn text(&mut self, x: f32, size: f32, bold: bool, text: &str, width: f32) {
        for line in wrap(text, width, size) {
            self.room(size * 1.4);
            self.y += size * 1.2;
            self.ops.push(Op::Text {
                x,
                y: self.y,
                size,
                bold,
                text: line,
                white: false,
            });
            self.y += size * 0.2;
        }
    }

    fn block(&mut self, block: &Block, photos: &HashMap<PhotoHash, Vec<u8>>) {
        let width = WIDTH - 2.0 * MARGIN;
        match block {
            Block::Title(t) => {
                self.text(MARGIN, 18.0, true, t, width);
                self.y += 6.0;
            }
            Block::Section(t) => {
                if self.y > HEIGHT * 2.0 / 3.0 {
                    self.new_page();
                }
                self.y += 12.0;
                self.text(MARGIN, 14.0, true, t, width);
                self.y += 4.0;
            }
            Block::Subheading(t) => {
                self.room(40.0);
                self.y += 6.0;
                self.text(MARGIN, 11.0, true, t, width);
            }
            Block::Text(t) => self.text(MARGIN, 10.0, false, t, width),
            Block::Note(t) => self.text(MARGIN, 9.0, false, t, width),
            Block::Condition { code, text } => {
                self.room(30.0);
                self.y += 4.0;
                self.ops.push(Op::Rect {
                    x: MARGIN,
                    y: self.y,
                    w: 22.0,
                    h: 20.0,
                    color: condition_color(code),
                });
                self.ops.push(Op::Text {
                    x: MARGIN + 6.0,
                    y: self.y + 15.0,
                    size: 13.0,
                    bold: true,
                    text: code.clone(),
                    white: true,
                });
                self.ops.push(Op::Text {
                    x: MARGIN + 30.0,
                    y: self.y + 15.0,
                    size: 12.0,
                    bold: true,
                    text: format!("État : {text}"),
                    white: false,
                });
                self.y += 26.0;
            }
            Block::Table(t) => self.table(t, width),
            Block::Photos(list) => {
                let (w, h, gap) = (160.0, 120.0, 8.0);
                let per_row = ((width + gap) / (w + gap)).floor().max(1.0) as usize;
                for row in list.chunks(per_row) {
                    self.room(h + 8.0);
                    self.y += 4.0;
                    for (i, photo) in row.iter().enumerate() {
                        let x = MARGIN + i as f32 * (w + gap);
                        let image = photos
                            .get(&photo.shown)
                            .and_then(|b| Image::from_jpeg(b.clone().into(), true).ok());
                        match image {
                            Some(image) => {
                                let (iw, ih) = image.size();
                                let scale = (w / iw as f32).min(h / ih as f32);
                                self.ops.push(Op::Image {
                                    x,
                                    y: self.y,
                                    w: iw as f32 * scale,
                                    h: ih as f32 * scale,
                                    image,
                                });
                            }
                            None => self.ops.push(Op::Text {
                                x,
                                y: self.y + 12.0,
                                size: 8.0,
                                bold: false,
                                text: format!("Photo non disponible : {}", photo.caption),
                                white: false,
                            }),
                        }
                    }
                    self.y += h + 4.0;
                }
            }
        }
    }

    /// A table: columns as wide as their longest text allows, cells
    /// wrapped, the header repeated on each new page.
    fn table(&mut self, t: &Table, width: f32) {
        let size = 8.5;
        let cols = t.header.len().max(1);
        let longest: Vec<f32> = (0..cols)
            .map(|c| {
                t.rows
                    .iter()
                    .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                    .chain(std::iter::once(t.header[c].chars().count()))
                    .max()
                    .unwrap_or(1)
                    .clamp(4, 40) as f32
            })
            .collect();
        let total: f32 = longest.iter().sum();
        let widths: Vec<f32> = longest.iter().map(|l| width * l / total).collect();
        self.row(&t.header, &widths, size, true);
        for r in &t.rows {
            let lines = r
                .iter()
                .zip(&widths)
                .map(|(cell, w)| wrap(cell, w - 4.0, size).len())
                .max()
                .unwrap_or(1);
            if self.y + lines as f32 * size * 1.3 + 4.0 > HEIGHT - MARGIN {
                self.new_page();
                self.row(&t.header, &widths, size, true);
            }
            self.row(r, &widths, size, false);
        }
        self.y += 6.0;
    }

    fn row(&mut self, cells: &[String], widths: &[f32], size: f32, header: bool) {
        let top = self.y;
        let mut bottom = top;
        let mut x = MARGIN;
        if header {
            let h = size * 1.3 * 2.0 + 4.0;
            self.ops.push(Op::Rect {
                x: MARGIN,
                y: top,
                w: widths.iter().sum(),
                h,
                color: (235, 235, 235),
            });
        }
        for (cell, w) in cells.iter().zip(widths) {
            let mut y = top;
            for line in wrap(cell, w - 4.0, size) {
                y += size * 1.3;
                self.ops.push(Op::Text {
                    x: x + 2.0,
                    y,
                    size,
                    bold: header,
                    text: line,
                    white: false,
                });
            }
            bottom = bottom.max(y);
            x += w;
        }
        let min = if header { size * 1.3 * 2.0 } else { size * 1.3 };
        self.y = bottom.max(top + min) + 4.0;
    }

    /// Writes every page into the document.
    fn finish(mut self) {
        self.new_page();
        let settings = || PageSettings::from_wh(WIDTH, HEIGHT);
        for ops in std::mem::take(&mut self.pages)
            .into_iter()
            .filter(|p| !p.is_empty())
        {
            let Some(settings) = settings() else { return };
            let mut page: Page<'_> = self.document.start_page_with(settings);
            let mut surface = page.surface();
            for op in ops {
                draw(&mut surface, self.fonts, op);
            }
            surface.finish();
            page.finish();
        }
    }
}

fn draw(surface: &mut Surface<'_>, fonts: &Fonts, op: Op) {
    let fill = |(r, g, b): (u8, u8, u8)| Fill {
        paint: rgb::Color::new(r, g, b).into(),
        opacity: NormalizedF32::ONE,
        rule: Default::default(),
    };
    match op {
        Op::Text {
            x,
            y,
            size,
            bold,
            text,
            white,
        } => {
            surface.set_fill(Some(fill(if white {
                (255, 255, 255)
            } else {
                (17, 17, 17)
            })));
            let font = if bold { &fonts.bold } else { &fonts.regular };
            surface.draw_text(
                Point::from_xy(x, y),
                font.clone(),
                size,
                &text,
                false,
                TextDirection::Auto,
            );
        }
        Op::Rect { x, y, w, h, color } => {
            if let Some(rect) = Rect::from_xywh(x, y, w, h) {
                let mut pb = PathBuilder::new();
                pb.push_rect(rect);
                if let Some(path) = pb.finish() {
                    surface.set_fill(Some(fill(color)));
                    surface.draw_path(&path);
                }
            }
        }
        Op::Image { x, y, w, h, image } => {
            if let Some(size) = Size::from_wh(w, h) {
                surface.push_transform(&Transform::from_translate(x, y));
                surface.draw_image(image, size);
                surface.pop();
            }
        }
    }
}

/// The colour of a condition's badge, as on the pages.
fn condition_color(code: &str) -> (u8, u8, u8) {
    match code {
        "A" => (30, 123, 52),
        "B" => (106, 168, 79),
        "C" => (191, 144, 0),
        "D" => (180, 95, 6),
        _ => (166, 28, 0),
    }
}

/// `text` cut into lines that fit `width` at `size` (by words; a word
/// longer than a line is cut).
fn wrap(text: &str, width: f32, size: f32) -> Vec<String> {
    let max = ((width / (size * CHAR_WIDTH)).floor() as usize).max(4);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word = word.to_string();
        while word.chars().count() > max {
            let head: String = word.chars().take(max).collect();
            word = word.chars().skip(max).collect();
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            lines.push(head);
        }
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > max {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_between_words_and_long_words_are_cut() {
        let lines = wrap("Réfection de la toiture du bâtiment principal", 100.0, 10.0);
        assert!(lines.iter().all(|l| l.chars().count() <= 17), "{lines:?}");
        assert_eq!(
            lines.join(" "),
            "Réfection de la toiture du bâtiment principal"
        );
        assert_eq!(wrap(&"x".repeat(40), 50.0, 10.0).len(), 5);
        assert_eq!(wrap("", 50.0, 10.0), vec![String::new()]);
    }

    /// A long report flows onto several pages, a short one fits on one.
    #[test]
    fn a_report_renders_to_a_pdf_and_flows_onto_new_pages() {
        let report = |lines: usize| {
            let mut blocks = vec![Block::Title("Rapport BSI — Les Érables".into())];
            for i in 0..lines {
                blocks.push(Block::Text(format!(
                    "Ligne {i} : état général satisfaisant, façade à surveiller."
                )));
            }
            let pdf = render(&blocks, &HashMap::new()).unwrap();
            assert!(pdf.starts_with(b"%PDF-"));
            let text = String::from_utf8_lossy(&pdf).into_owned();
            let count = text.split("/Count ").nth(1).expect("a page tree");
            count
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse::<u32>()
                .unwrap()
        };
        assert_eq!(report(5), 1);
        assert!(report(200) >= 3, "{}", report(200));
    }
}
