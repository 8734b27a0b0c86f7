//! `bilan-app`: the inspector's app. The only platform-specific code of the
//! app lives here: opening the store where the platform keeps app data and
//! launching the window (desktop) or the mobile shell (Android/iOS via `dx`).
//!
//! Settings: `BILAN_DEVICE_DIR` (where the store lives, default the
//! platform's app data folder: see [`bilan_mobile::data_dir`]), `BILAN_SERVER_URL` (address proposed at first login,
//! default `http://127.0.0.1:8080`), `BILAN_WINDOW_SIZE` (desktop window,
//! `LARGEURxHAUTEUR`, default `480x900`; `360x740` shows the phone layout),
//! `BILAN_ALLOW_HTTP=1` (lab only: accept a plain `http://` server off this
//! machine), `BILAN_LOG` (what the app logs on its standard error, `warn` by
//! default), `BILAN_UI_PROBE` (a file where the app keeps the ids and
//! positions of what the screen shows, for the desktop end-to-end test).

use std::sync::Arc;

use bilan_mobile::DeviceStore;
use bilan_mobile::ui::{App, Services};

fn main() {
    // What the app logs (warnings by default; `BILAN_LOG=debug` for more)
    // goes to its standard error.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BILAN_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let dir = match bilan_mobile::data_dir::for_this_launch() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let default_server =
        std::env::var("BILAN_SERVER_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let store = match DeviceStore::open(&dir) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!(
                "Impossible d'ouvrir le stockage de l'appareil dans {} : {e}",
                dir.display()
            );
            std::process::exit(1);
        }
    };
    if std::env::var("BILAN_ALLOW_HTTP").as_deref() == Ok("1")
        && let Err(e) = store.set_setting(bilan_mobile::sync::ALLOW_HTTP_SETTING, "1")
    {
        eprintln!("Réglage BILAN_ALLOW_HTTP non enregistré : {e}");
    }
    let services = Services {
        store,
        default_server,
        auto_sync: true,
        wake: Default::default(),
        probe: std::env::var_os("BILAN_UI_PROBE").map(std::path::PathBuf::from),
    };
    #[cfg(feature = "desktop")]
    {
        use dioxus::desktop::{Config, LogicalSize, WindowBuilder};
        let (w, h) = std::env::var("BILAN_WINDOW_SIZE")
            .ok()
            .and_then(|s| {
                let (w, h) = s.split_once('x')?;
                Some((w.parse::<f64>().ok()?, h.parse::<f64>().ok()?))
            })
            .unwrap_or((480.0, 900.0));
        let window = WindowBuilder::new()
            .with_title(bilan_mobile::ui::strings::APP_TITLE)
            .with_inner_size(LogicalSize::new(w, h));
        dioxus::LaunchBuilder::desktop()
            .with_cfg(Config::new().with_window(window).with_menu(None))
            .with_context(services)
            .launch(App);
    }
    #[cfg(all(feature = "mobile", not(feature = "desktop")))]
    dioxus::LaunchBuilder::mobile()
        .with_context(services)
        .launch(App);
}
