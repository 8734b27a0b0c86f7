//! Bilan's device library: everything the inspector's app does except
//! drawing screens. The [`store`] keeps inspections, the outbound queue,
//! photos, reference data and settings in SQLite, durable at every edit; the
//! [`sync`] engine talks to the territory server; [`ui`] holds the Dioxus
//! screens. The `bilan-app` window and the `bilan-device` CLI are thin layers
//! over these.

pub mod cli;
pub mod data_dir;
pub mod error;
pub mod network;
pub mod progress;
pub mod retry;
pub mod store;
pub mod sync;
pub mod testing;
pub mod ui;

pub use error::{MobileError, Result};
pub use store::{
    DeviceStore, InspectionSummary, NewFinding, NewRecommendation, SyncStatus, WorkUpdate,
};
pub use sync::{SyncEngine, SyncReport};
