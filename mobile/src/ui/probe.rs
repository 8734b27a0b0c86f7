//! The probe of the desktop end-to-end test: what the window shows (element
//! ids and positions, the focus), kept in a file the test reads to aim its
//! taps. Runs only when `BILAN_UI_PROBE` names that file.

use std::path::PathBuf;

use dioxus::prelude::*;

/// For the desktop end-to-end test: five times a second, every element with
/// an id that the window shows (centre, top edge, text), which one has the focus and
/// a write counter `n`, written whole to the probe file (a temp file renamed
/// over it), so the test finds what to tap by id instead of by coordinates.
pub(super) async fn run_probe(path: PathBuf) {
    const JS: &str = r#"
        const items = [];
        for (const el of document.querySelectorAll('[id]')) {
            const r = el.getBoundingClientRect();
            if (r.width > 0 && r.height > 0) {
                items.push({ id: el.id, x: Math.round(r.left + r.width / 2), y: Math.round(r.top + r.height / 2), top: Math.round(r.top),
                             text: String(el.innerText || el.value || '').slice(0, 60) });
            }
        }
        const focus = document.activeElement && document.activeElement.id ? document.activeElement.id : '';
        return { focus, items };
    "#;
    let tmp = path.with_extension("tmp");
    // Counts the writes, so a test can wait for a view taken after its action.
    let mut n = 0u64;
    loop {
        match document::eval(JS).join::<serde_json::Value>().await {
            Ok(mut v) => {
                n += 1;
                if let Some(o) = v.as_object_mut() {
                    o.insert("n".into(), n.into());
                }
                let written =
                    std::fs::write(&tmp, v.to_string()).and_then(|_| std::fs::rename(&tmp, &path));
                if let Err(e) = written {
                    tracing::warn!(error = %e, path = %path.display(), "UI probe not written");
                }
            }
            Err(e) => tracing::warn!(error = ?e, "UI probe script failed"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
