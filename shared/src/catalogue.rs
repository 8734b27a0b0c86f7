//! The BSI component catalogue: versioned data (TOML embedded in the binary),
//! shaped like UNIFORMAT II with French labels. Inspections record the catalogue
//! version they began with, so a later catalogue never reinterprets old ratings.

use std::sync::OnceLock;

use serde::Deserialize;

/// Whether a component is rated once for the building or per dwelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Immeuble,
    Logement,
}

/// One component of the catalogue.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Component {
    pub code: String,
    pub label: String,
}

/// A UNIFORMAT II major group (A Infrastructure, B Enveloppe, ...).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Group {
    pub code: String,
    pub label: String,
    pub scope: Scope,
    pub components: Vec<Component>,
}

/// A whole catalogue version.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Catalogue {
    pub version: String,
    pub groups: Vec<Group>,
}

const V1: &str = include_str!("../catalogue/bsi-uniformat-v1.toml");

impl Catalogue {
    /// The catalogue new inspections use.
    pub fn current() -> &'static Catalogue {
        static CURRENT: OnceLock<Catalogue> = OnceLock::new();
        CURRENT.get_or_init(|| toml::from_str(V1).expect("embedded catalogue is valid TOML"))
    }

    /// The catalogue of a given version, if this build knows it.
    pub fn by_version(version: &str) -> Option<&'static Catalogue> {
        let c = Self::current();
        (c.version == version).then_some(c)
    }

    /// Every component with its group, in catalogue order.
    pub fn components(&self) -> impl Iterator<Item = (&Group, &Component)> {
        self.groups
            .iter()
            .flat_map(|g| g.components.iter().map(move |c| (g, c)))
    }

    /// Looks a component up by code.
    pub fn component(&self, code: &str) -> Option<(&Group, &Component)> {
        self.components().find(|(_, c)| c.code == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn catalogue_has_forty_building_and_eight_dwelling_components_with_unique_codes() {
        let c = Catalogue::current();
        let building = c
            .components()
            .filter(|(g, _)| g.scope == Scope::Immeuble)
            .count();
        let dwelling = c
            .components()
            .filter(|(g, _)| g.scope == Scope::Logement)
            .count();
        assert!(building >= 40, "{building} building components");
        assert!(dwelling >= 8, "{dwelling} dwelling components");
        let codes: HashSet<_> = c.components().map(|(_, c)| c.code.clone()).collect();
        assert_eq!(codes.len(), building + dwelling);
        let groups: Vec<_> = c.groups.iter().map(|g| g.code.as_str()).collect();
        assert_eq!(groups, ["A", "B", "C", "D", "E", "G", "L"]);
        assert!(Catalogue::by_version(&c.version).is_some());
    }
}
