//! The CS review pages, rendered on the server (maud, no front-end build, no
//! CDN), in French. Same accounts as the app: login sets an HttpOnly,
//! SameSite=Strict session cookie holding a bearer token (stored hashed);
//! every form carries a CSRF token derived from the session. Office readers
//! see their office only, managers their territory, nobody another territory.
//!
//! Here the routes; `session` (cookie, CSRF, login, errors), `layout` (frame,
//! shared fragments, CSV), then one module per page group.

mod activity;
mod admin;
mod complex;
mod inspections;
mod layout;
mod login;
mod overview;
mod plan;
mod planning;
mod progress;
mod report;
mod session;
mod settings;

use axum::Router;
use axum::routing::{get, post};

use crate::AppState;
use activity::{activity_csv, activity_page, activity_xlsx};
use admin::{admin_create_user, admin_import, admin_page, admin_revoke};
use complex::complex_page;
use inspections::{inspection, inspections, photo, resolve, review, thumb};
use layout::security_headers;
use login::{login_page, login_submit, logout};
use overview::overview;
use plan::{move_work, plan_csv, plan_page, plan_xlsx};
use planning::{planning_csv, planning_page, planning_submit, planning_xlsx};
use progress::{progress_csv, progress_page, progress_xlsx};
use settings::{budgets_submit, settings_page, settings_submit};

pub use session::{WebError, WebUser};

/// The review-page routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/connexion", get(login_page).post(login_submit))
        .route("/deconnexion", post(logout))
        .route("/", get(overview))
        .route("/inspections", get(inspections))
        .route("/inspections/{id}", get(inspection))
        .route("/inspections/{id}/rapport", get(report::report))
        .route("/inspections/{id}/rapport.pdf", get(report::report_pdf))
        .route("/ensembles/{id}", get(complex_page))
        .route("/inspections/{id}/revision", post(review))
        .route("/inspections/{id}/conflit", post(resolve))
        .route("/plan", get(plan_page))
        .route("/plan.csv", get(plan_csv))
        .route("/plan.xlsx", get(plan_xlsx))
        .route("/plan/deplacer", post(move_work))
        .route("/planification", get(planning_page).post(planning_submit))
        .route("/planification.csv", get(planning_csv))
        .route("/planification.xlsx", get(planning_xlsx))
        .route("/releve", get(activity_page))
        .route("/releve.csv", get(activity_csv))
        .route("/releve.xlsx", get(activity_xlsx))
        .route("/avancement", get(progress_page))
        .route("/avancement.csv", get(progress_csv))
        .route("/avancement.xlsx", get(progress_xlsx))
        .route("/parametres", get(settings_page).post(settings_submit))
        .route("/parametres/budgets", post(budgets_submit))
        .route("/admin", get(admin_page))
        .route("/admin/utilisateurs", post(admin_create_user))
        .route("/admin/revoquer", post(admin_revoke))
        .route("/admin/import", post(admin_import))
        .route("/photos/{hash}", get(photo))
        .route("/photos/{hash}/vignette", get(thumb))
        .layer(axum::middleware::map_response(security_headers))
}
