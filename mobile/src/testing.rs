//! Fixtures for the device's own tests and benches, in one place: a device
//! signed in as an inspector of a territory, with its reference data, and
//! no server. Not used by the app.

use bilan_shared::domain::{Complex, CsSettings, Office, Role, Territory};
use bilan_shared::ids::UserId;
use bilan_shared::protocol::{ReferenceResponse, UserInfo};

use crate::{DeviceStore, Result};

impl DeviceStore {
    /// Signs the device in as the inspector `username` (`display_name`) of
    /// `territory`, with `offices` and `complexes` as reference data, as if
    /// it had logged in and synced (the server address goes nowhere).
    #[doc(hidden)]
    pub fn sign_in_offline(
        &self,
        username: &str,
        display_name: &str,
        territory: Territory,
        offices: Vec<Office>,
        complexes: Vec<Complex>,
    ) -> Result<UserInfo> {
        let user = UserInfo {
            id: UserId::new(),
            username: username.into(),
            display_name: display_name.into(),
            role: Role::Inspector,
            territory_id: Some(territory.id),
            office_id: None,
        };
        self.save_login("http://127.0.0.1:9", "t", &user)?;
        self.apply_reference(&ReferenceResponse {
            territory,
            offices,
            complexes,
            revision: 1,
            catalogue_version: "x".into(),
            settings: CsSettings::default(),
            assignments: Vec::new(),
        })?;
        Ok(user)
    }
}
