//! The login screen: server address, user name and password, once; the app
//! works offline afterwards.

use dioxus::prelude::*;

use super::state::{Screen, Ui, services, sync_soon};
use super::strings as t;
use crate::SyncEngine;

#[component]
pub(super) fn LoginScreen() -> Element {
    let svc = services();
    let ui = use_context::<Ui>();
    let initial = match svc.store.setting("server_url") {
        Ok(url) => url.unwrap_or(svc.default_server.clone()),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the last server address");
            svc.default_server.clone()
        }
    };
    let mut server = use_signal(|| initial);
    let mut user = use_signal(String::new);
    let mut password = use_signal(String::new);
    let mut busy = use_signal(|| false);
    let mut error = use_signal(|| None::<String>);
    let store = svc.store.clone();
    let submit = move |e: FormEvent| {
        e.prevent_default();
        let store = store.clone();
        let svc = svc.clone();
        busy.set(true);
        spawn(async move {
            let engine = SyncEngine::new(&store);
            let r = async {
                engine.login(&server(), &user(), &password()).await?;
                engine.refresh_reference().await?;
                Ok::<_, crate::MobileError>(())
            }
            .await;
            busy.set(false);
            match r {
                Ok(()) => {
                    ui.go(Screen::Visits);
                    sync_soon(&svc, ui);
                }
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    rsx! {
        h1 { "{t::APP_TITLE}" }
        h2 { "{t::LOGIN_TITLE}" }
        p { class: "muted", "{t::LOGIN_HELP}" }
        form { id: "login", onsubmit: submit,
            label { r#for: "username", "{t::USERNAME}" }
            input { id: "username", autofocus: true, initial_value: "{user}", autocomplete: "username", oninput: move |e| user.set(e.value()) }
            label { r#for: "password", "{t::PASSWORD}" }
            input { id: "password", r#type: "password", initial_value: "{password}", oninput: move |e| password.set(e.value()) }
            label { r#for: "server", "{t::SERVER}" }
            input { id: "server", r#type: "url", initial_value: "{server}", oninput: move |e| server.set(e.value()) }
            p { button { id: "login-submit", r#type: "submit", class: "primary", disabled: busy(), if busy() { "{t::LOGGING_IN}" } else { "{t::LOGIN}" } } }
            if let Some(e) = error() { p { class: "error", role: "alert", "{e}" } }
        }
    }
}
