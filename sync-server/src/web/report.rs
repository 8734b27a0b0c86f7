//! The BSI report of one inspection, for the office's board: the page to
//! print (no site navigation, page breaks between sections, none inside a
//! finding) and the PDF generated on the server, both from the blocks of
//! [`crate::bsi_report`].

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::response::Response;
use maud::{Markup, PreEscaped, html};

use super::layout::{attachment, page, photo_thumb};
use super::session::{WebError, WebUser};
use crate::AppState;
use crate::bsi_report::{Block, Source, blocks, title};
use crate::error::ApiError;
use crate::http::{blocking, parse_inspection_id};

/// Print layout: letter paper, sections start on a new page, a finding or
/// a table row never splits.
const REPORT_CSS: &str = "
@page{size:letter;margin:16mm}
.report h2{break-before:page;break-after:avoid}.report h2:first-of-type{break-before:auto}
.report h3,.report tr{break-inside:avoid;break-after:avoid}
.report .thumbs img{width:200px;height:150px}
.report table{font-size:14px;margin-bottom:12px}
";

/// The report's blocks and title, read with the user's rights (an office
/// reader: their office's inspections only).
async fn report_blocks(
    state: &AppState,
    u: &WebUser,
    id: &str,
) -> Result<(String, Vec<Block>), WebError> {
    let id = parse_inspection_id(id)?;
    let (user, tz) = (u.user.clone(), u.tz.clone());
    Ok(blocking(state, move |s| {
        let doc = s.service.inspection(&user, id)?.read()?;
        let found = s.service.complex(&user, doc.complex_id)?;
        let complex = found.as_ref().map(|(c, _)| c);
        let office = found.as_ref().map_or("", |(_, o)| o.as_str());
        let settings = s.service.settings(&user)?;
        let source = Source {
            doc: &doc,
            complex,
            office,
            settings: &settings,
            tz: &tz,
        };
        Ok((title(complex), blocks(&source)))
    })
    .await?)
}

pub(super) async fn report(
    State(state): State<AppState>,
    u: WebUser,
    Path(id): Path<String>,
) -> Result<Markup, WebError> {
    let (title, blocks) = report_blocks(&state, &u, &id).await?;
    Ok(page(
        None,
        &title,
        html! {
            style { (PreEscaped(REPORT_CSS)) }
            div.report {
                p.noprint {
                    a href={ "/inspections/" (id) } { "‹ Retour à l'inspection" }
                    " — " a href={ "/inspections/" (id) "/rapport.pdf" } { "Télécharger en PDF" }
                    " — ou imprimez cette page (Ctrl+P) pour le conseil d'administration."
                }
                @for b in &blocks { (html_block(b)) }
            }
        },
    ))
}

fn html_block(b: &Block) -> Markup {
    match b {
        Block::Title(t) => html! { h1 { (t) } },
        Block::Section(t) => html! { h2 { (t) } },
        Block::Subheading(t) => html! { h3 { (t) } },
        Block::Text(t) => html! { p { (t) } },
        Block::Note(t) => html! { p.muted { (t) } },
        Block::Condition { code, text } => html! {
            p { "État : " span class={ "cond cond-" (code) } { (code) } " " (text) }
        },
        Block::Table(t) => html! {
            table id=(t.id) {
                thead { tr { @for (h, n) in t.header.iter().zip(&t.numeric) { th.num[*n] { (h) } } } }
                tbody { @for r in &t.rows { tr { @for (c, n) in r.iter().zip(&t.numeric) { td.num[*n] { (c) } } } } }
            }
        },
        Block::Photos(list) => html! {
            div.thumbs { @for p in list { (photo_thumb(&p.shown, p.original.as_ref(), &p.caption)) } }
        },
    }
}

/// The report as a PDF download (photos as their thumbnails).
pub(super) async fn report_pdf(
    State(state): State<AppState>,
    u: WebUser,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let (title, blocks) = report_blocks(&state, &u, &id).await?;
    let mut photos = HashMap::new();
    for b in &blocks {
        if let Block::Photos(list) = b {
            for p in list {
                // A photo not uploaded yet is left out of the report.
                let thumb = state.0.photos.thumbnail(&p.shown).await;
                if let Some(bytes) = thumb.map_err(|e| WebError::Api(e.into()))? {
                    photos.insert(p.shown.clone(), bytes.to_vec());
                }
            }
        }
    }
    let pdf = tokio::task::spawn_blocking(move || crate::pdf::render(&blocks, &photos))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "PDF report task failed");
            WebError::Api(ApiError::internal())
        })?
        .map_err(|e| {
            tracing::error!(error = %e, "PDF report not written");
            WebError::Api(ApiError::internal())
        })?;
    // ASCII: a browser in a non-UTF-8 locale names a file with "é" in it
    // "download" (Chromium does, whatever the header says).
    let file: String = title
        .chars()
        .map(|c| match unaccented(c) {
            Some(a) if a.is_ascii_alphanumeric() => a,
            _ => '-',
        })
        .collect();
    let name = format!("{}.pdf", file.trim_matches('-'));
    Ok(attachment(&name, "application/pdf", pdf))
}

/// The letter without its accent for French letters; the letter itself when
/// it has none; none for anything else not ASCII.
fn unaccented(c: char) -> Option<char> {
    Some(match c {
        'à' | 'â' | 'ä' => 'a',
        'À' | 'Â' | 'Ä' => 'A',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'É' | 'È' | 'Ê' | 'Ë' => 'E',
        'î' | 'ï' => 'i',
        'Î' | 'Ï' => 'I',
        'ô' | 'ö' => 'o',
        'Ô' | 'Ö' => 'O',
        'ù' | 'û' | 'ü' => 'u',
        'Ù' | 'Û' | 'Ü' => 'U',
        'ç' => 'c',
        'Ç' => 'C',
        c if c.is_ascii() => c,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::unaccented;

    #[test]
    fn french_letters_lose_their_accents_in_file_names() {
        let name: String = "Les Érables à Rivière-Boisé"
            .chars()
            .filter_map(unaccented)
            .collect();
        assert_eq!(name, "Les Erables a Riviere-Boise");
        assert_eq!(unaccented('—'), None);
    }
}
