//! The demo territory: one CS, 3 offices, 20 complexes and an account of
//! each role, seeded through the service like any other data.

use bilan_shared::domain::{Complex, Role};
use bilan_shared::ids::{ComplexId, OfficeId, TerritoryId};

use crate::StoreError;
use crate::service::{NewUser, Service};

/// Password of every demo account (printed by the `demo` command).
pub const DEMO_PASSWORD: &str = "bilan-demo";
/// Name of the demo territory.
pub const DEMO_TERRITORY: &str = "CS de la Mauricie (démo)";

/// What the demo seed made.
#[derive(Debug, Clone)]
pub struct Demo {
    pub territory: TerritoryId,
    pub offices: Vec<OfficeId>,
    /// Made now (false: it was there already).
    pub created: bool,
}

/// Seeds one territory, 3 offices, 20 complexes, 2 inspectors, 1 manager and
/// one office reader. Does nothing (and returns the existing one) if present.
pub fn seed_demo(store: &Service) -> Result<Demo, StoreError> {
    if let Some(t) = store.territory_by_name(DEMO_TERRITORY)? {
        let offices = store.offices(t.id)?.into_iter().map(|o| o.id).collect();
        return Ok(Demo {
            territory: t.id,
            offices,
            created: false,
        });
    }
    let territory = store.create_territory(DEMO_TERRITORY)?;
    let offices = [
        (
            "OH-TR",
            "Office d'habitation de Trois-Rivières",
            "Trois-Rivières",
        ),
        (
            "OMH-SH",
            "Office municipal d'habitation de Shawinigan",
            "Shawinigan",
        ),
        (
            "OMH-LT",
            "Office municipal d'habitation de La Tuque",
            "La Tuque",
        ),
    ];
    let streets = [
        "rue des Forges",
        "boulevard des Récollets",
        "rue Saint-Maurice",
        "avenue de la Paix",
        "rue Laviolette",
        "chemin du Lac",
        "rue Notre-Dame",
    ];
    let mut ids = Vec::new();
    let mut n = 0u32;
    for (oi, (code, name, city)) in offices.iter().enumerate() {
        let office = store.create_office(territory, code, name)?;
        ids.push(office);
        let count = [8, 7, 5][oi];
        for k in 0..count {
            n += 1;
            let dwellings = 12 + (n * 7) % 60;
            store.upsert_complex(&Complex {
                id: ComplexId::new(),
                territory_id: territory,
                office_id: office,
                code: format!("{code}-{:03}", k + 1),
                name: format!(
                    "Habitations {} {}",
                    [
                        "Les Érables",
                        "Le Boisé",
                        "La Rivière",
                        "Les Pins",
                        "Le Carrefour"
                    ][(n % 5) as usize],
                    k + 1
                ),
                address: format!("{} {}", 100 + n * 37, streets[(n as usize) % streets.len()]),
                city: city.to_string(),
                dwellings,
                year_built: 1962 + (n * 3) % 40,
                replacement_value: f64::from(dwellings) * 185_000.0,
            })?;
        }
    }
    let users = [
        ("inspecteur1", "Julie Tremblay", Role::Inspector, None),
        ("inspecteur2", "Marc Gagnon", Role::Inspector, None),
        ("responsable", "Sophie Bergeron", Role::Manager, None),
        (
            "lecteur-tr",
            "Conseil de l'OH de Trois-Rivières",
            Role::OfficeReader,
            Some(ids[0]),
        ),
    ];
    for (username, display, role, office) in users {
        store.create_user(&NewUser {
            username: username.into(),
            display_name: display.into(),
            role,
            territory_id: Some(territory),
            office_id: office,
            password: DEMO_PASSWORD.into(),
        })?;
    }
    Ok(Demo {
        territory,
        offices: ids,
        created: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_seeds_twenty_complexes_in_three_offices_once() {
        let store = crate::in_memory_service().unwrap();
        let demo = seed_demo(&store).unwrap();
        let again = seed_demo(&store).unwrap();
        assert_eq!(demo.territory, again.territory);
        let (_, user) = store.login("inspecteur1", DEMO_PASSWORD, None).unwrap();
        let r = store.reference(&user, 0).unwrap();
        assert_eq!(r.offices.len(), 3);
        assert_eq!(r.complexes.len(), 20);
        assert!(
            store
                .reference(&user, r.revision)
                .unwrap()
                .complexes
                .is_empty()
        );
    }
}
