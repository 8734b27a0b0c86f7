//! The page frame (header, navigation, stylesheet, security headers), the
//! condition chart and the settings notice shared by pages, downloads
//! (CSV and .xlsx).

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use bilan_shared::domain::Role;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::session::{WebError, WebUser};
use crate::error::ApiError;
use crate::exports::Table;

pub(super) const CSS: &str = "
body{font:16px/1.45 system-ui,'DejaVu Sans',sans-serif;margin:0;color:#111}
header{background:#0b5394;color:#fff;padding:10px 16px;display:flex;gap:16px;align-items:center;flex-wrap:wrap}
header a{color:#fff}main{padding:16px;max-width:1200px;margin:auto}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}.num{text-align:right}.error{color:#a61c00;font-weight:600}.muted{color:#555}
.cond{display:inline-block;min-width:24px;text-align:center;border-radius:4px;color:#fff;font-weight:700}
.cond-A{background:#1e7b34}.cond-B{background:#6aa84f}.cond-C{background:#bf9000}.cond-D{background:#b45f06}.cond-E{background:#a61c00}
.badge{background:#a61c00;color:#fff;border-radius:10px;padding:0 8px}form.inline{display:inline}
fieldset{border:1px solid #ccc;margin:8px 0}button{padding:6px 12px;font-size:15px}
.over{background:#fce8e6;color:#a61c00}
.thumbs img{width:160px;height:120px;object-fit:cover;margin:4px;border:1px solid #ccc}
.thumbs figure{display:inline-block;margin:0;vertical-align:top}.thumbs figcaption{font-size:.8em;margin:0 4px}
@media print{header,form,.noprint{display:none}}
";

pub(super) async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'self'; img-src 'self' data:; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"),
    );
    resp
}

pub(super) fn page(user: Option<&WebUser>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="fr" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — Bilan" }
                style { (PreEscaped(CSS)) }
            }
            body {
                @if let Some(u) = user {
                    header {
                        strong { "Bilan — révision du CS" }
                        a href="/" { "Aperçu" }
                        a href="/inspections" { "Inspections" }
                        a href="/plan" { "Plan de travaux" }
                        a href="/planification" { "Planification" }
                        a href="/releve" { "Relevé des activités" }
                        a href="/avancement" { "Avancement BSI" }
                        @if u.user.role == Role::Manager { a href="/parametres" { "Paramètres" } a href="/admin" { "Administration" } }
                        span.grow {}
                        span { (u.user.display_name) " (" (u.user.role.label_fr()) ")" }
                        form.inline method="post" action="/deconnexion" {
                            input type="hidden" name="csrf" value=(u.csrf);
                            button type="submit" { "Se déconnecter" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// Horizontal bar chart of the building-condition distribution, as inline SVG.
/// A photo's thumbnail linking to the photo; an annotated one (the
/// latest version of a photo with marks drawn on it) says so and links to
/// the photo as taken.
pub(super) fn photo_thumb(
    shown: &bilan_shared::ids::PhotoHash,
    original: Option<&bilan_shared::ids::PhotoHash>,
    caption: &str,
) -> Markup {
    html! {
        figure.photo {
            a href={ "/photos/" (shown) } { img src={ "/photos/" (shown) "/vignette" } alt=(caption) title=(caption); }
            @if let Some(o) = original {
                figcaption { "Photo annotée · " a.original href={ "/photos/" (o) } { "photo d'origine" } }
            }
        }
    }
}

pub(super) fn condition_chart(counts: [u32; 5]) -> Markup {
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    let colors = ["#1e7b34", "#6aa84f", "#bf9000", "#b45f06", "#a61c00"];
    html! {
        svg width="420" height="150" role="img" aria-label="Répartition de l'état des immeubles" {
            @for (i, n) in counts.iter().enumerate() {
                @let y = 10 + i * 27;
                @let w = 320 * n / max;
                text x="0" y=(y + 15) font-size="14" { (["A", "B", "C", "D", "E"][i]) }
                rect x="24" y=(y) width=(w.max(1)) height="20" fill=(colors[i]) {}
                text x=(30 + w) y=(y + 15) font-size="14" { (n) }
            }
        }
    }
}

/// Shown above a page whose figures use default settings because the CS's
/// stored ones did not decode.
pub(super) fn unreadable_settings_notice(settings: &bilan_shared::domain::CsSettings) -> Markup {
    html! {
        @if settings.unreadable {
            p.error #parametres-illisibles role="alert" {
                "Les paramètres enregistrés du CS sont illisibles : les taux et seuils par défaut sont utilisés. "
                "Vérifiez-les et enregistrez-les dans « Paramètres » (responsable du CS)."
            }
        }
    }
}

/// The two ways a table downloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Sheet {
    Csv,
    Xlsx,
}

/// A table as a download, named after it: CSV or an Excel workbook (see
/// [`crate::exports`]). A failure to write it is logged and answered with
/// the generic 500.
pub(super) fn download(table: &Table, as_: Sheet) -> Result<Response, WebError> {
    let (bytes, ext, mime) = match as_ {
        Sheet::Csv => (table.csv(), "csv", "text/csv; charset=utf-8"),
        Sheet::Xlsx => (
            table.xlsx(),
            "xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
    };
    let bytes = bytes.map_err(|e| {
        tracing::error!(error = %e, file = %table.file, "download not written");
        WebError::Api(ApiError::internal())
    })?;
    Ok(attachment(&format!("{}.{ext}", table.file), mime, bytes))
}

/// Bytes the browser saves as the file `name`.
pub(super) fn attachment(name: &str, mime: &str, bytes: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, mime.to_string()),
            (header::CONTENT_DISPOSITION, content_disposition(name)),
        ],
        bytes,
    )
        .into_response()
}

/// `attachment` with the file's name as RFC 6266 asks: an ASCII fallback
/// (`filename`) and the UTF-8 name percent-encoded (`filename*`). Raw UTF-8
/// in a header is read in the browser's locale: "Rivière" then became a
/// file called "download".
fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// A page error as the browser sees it: the login for a missing session,
/// otherwise a page saying what went wrong.
impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::Login => Redirect::to("/connexion").into_response(),
            WebError::Api(e) => {
                let status = e.status;
                let body = page(
                    None,
                    "Erreur",
                    html! {
                        h1 { "Impossible d'afficher cette page" }
                        p.error { (e.message) }
                        p { a href="/" { "Retour à l'aperçu" } }
                    },
                );
                (status, body).into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::content_disposition;

    #[test]
    fn a_french_file_name_is_sent_percent_encoded_with_an_ascii_fallback() {
        assert_eq!(
            content_disposition("Rapport-BSI-La-Rivière.pdf"),
            "attachment; filename=\"Rapport-BSI-La-Rivi_re.pdf\"; filename*=UTF-8''Rapport-BSI-La-Rivi%C3%A8re.pdf"
        );
    }
}
