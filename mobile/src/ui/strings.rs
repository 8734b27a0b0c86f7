//! Every French string of the app's screens, in one place, so that a second
//! language can follow by swapping this module.

pub const APP_TITLE: &str = "Bilan — inspection BSI";
pub const LOGIN_TITLE: &str = "Connexion";
pub const LOGIN_HELP: &str =
    "Une seule connexion suffit : l'application fonctionne ensuite sans réseau.";
pub const SERVER: &str = "Adresse du serveur";
pub const USERNAME: &str = "Utilisateur";
pub const PASSWORD: &str = "Mot de passe";
pub const LOGIN: &str = "Se connecter";
pub const LOGGING_IN: &str = "Connexion…";
pub const SEARCH: &str = "Rechercher une adresse ou un nom";
pub const FILTER_ALL: &str = "Tous";
pub const FILTER_DUE: &str = "À faire (cycle de 5 ans)";
pub const FILTER_IN_PROGRESS: &str = "En cours";
pub const FILTER_DONE: &str = "Terminés";
pub const FILTER_RETURNED: &str = "Retournés par le CS";
pub const MY_VISITS: &str = "Mes visites";
pub const ALL_COMPLEXES: &str = "Tous les ensembles";
pub const NO_VISITS: &str =
    "Aucune visite ne vous est planifiée. Le CS les planifie ; voyez aussi « Tous les ensembles ».";
pub const PLANNED_FOR: &str = "Prévue";
pub const MONTH_TO_SET: &str = "mois à fixer";
pub const DUE_ON: &str = "échéance";
/// Beside a visit planned after the cycle's end.
pub const PLANNED_LATE: &str = "prévue après l'échéance";
pub const LAST_APPROVED_BSI: &str = "Dernier BSI approuvé";
/// Beside a component: what the last approved BSI said of it.
pub const PREVIOUS_BSI: &str = "Dernier BSI";
/// Rates a component as the last BSI did (an explicit act, never automatic).
pub const KEEP_PREVIOUS: &str = "Reprendre";
pub const CARRIED_WORKS: &str = "Travaux recommandés au dernier BSI";
pub const WORK_STATUS_UNSET: &str = "Statut à préciser";
pub const DONE_YEAR: &str = "Année réalisée";
pub const DONE_COST: &str = "Coût réel ($)";
/// Before the grade of an inspection not approved yet.
pub const PROVISIONAL_GRADE: &str = "cote provisoire";
pub const NEVER: &str = "jamais";
pub const CONDITION: &str = "État";
pub const BACK: &str = "‹ Retour";
pub const DWELLINGS: &str = "Logements";
pub const YEAR_BUILT: &str = "Année de construction";
pub const REPLACEMENT_VALUE: &str = "Valeur de remplacement";
pub const HISTORY: &str = "Historique des inspections";
pub const NO_INSPECTION: &str = "Aucune inspection sur cet appareil.";
pub const START_INSPECTION: &str = "Commencer une inspection";
pub const OPEN: &str = "Ouvrir";
pub const VISIT: &str = "Visite de chantier";
pub const START_ON_SITE: &str = "Arrivée sur place";
pub const STOP_ON_SITE: &str = "Départ du site";
pub const ON_SITE_SINCE: &str = "Sur place depuis";
pub const TRAVEL_HOURS: &str = "Heures de déplacement";
pub const KM: &str = "Kilomètres";
pub const EXPENSES: &str = "Frais ($)";
pub const VISITS_RECORDED: &str = "Visites enregistrées";
pub const HOURS_ON_SITE: &str = "h sur place";
pub const RATED: &str = "cotés";
pub const PRESENT: &str = "présents";
pub const NOTE: &str = "Note";
pub const NOT_APPLICABLE: &str = "S/O";
pub const NOT_INSPECTED: &str = "N/I";
pub const SAVED: &str = "Enregistré";
pub const FINDINGS: &str = "Constats de désordre";
pub const ADD_FINDING: &str = "Ajouter un constat";
pub const FINDING: &str = "Constat";
pub const COMPONENT: &str = "Composant";
pub const TITLE: &str = "Désordre observé";
pub const LOCATION: &str = "Emplacement";
pub const SEVERITY: &str = "Gravité";
pub const SAVE: &str = "Enregistrer";
pub const PHOTOS: &str = "Photos";
pub const TAKE_PHOTO: &str = "Prendre ou choisir une photo";
pub const CAPTION: &str = "Légende";
pub const PHOTO_NOT_READ: &str =
    "photo illisible : reprenez-la ou choisissez-en une autre (rien n'a été enregistré)";
/// On a photo's thumbnail: opens the annotation screen.
pub const ANNOTATE: &str = "Annoter";
/// Under the thumbnail of a photo shown with its marks.
pub const ANNOTATED: &str = "annotée";
pub const ANNOTATE_TITLE: &str = "Annoter la photo";
pub const ANNOTATE_HELP: &str = "Glissez le doigt sur la photo : la flèche de la queue à la pointe, le cercle du centre au bord. Un texte : écrivez-le, puis touchez la photo. L'originale reste intacte.";
pub const TEXT_TO_PLACE: &str = "Texte à placer";
pub const WRITE_TEXT_FIRST: &str = "écrivez d'abord le texte, puis touchez la photo où le placer";
pub const UNDO_MARK: &str = "Retirer la dernière marque";
pub const SAVE_ANNOTATION: &str = "Enregistrer l'annotation";
pub const SAVING_ANNOTATION: &str = "Enregistrement…";
pub const ANNOTATION_FAILED: &str = "l'annotation n'a pas pu être enregistrée (erreur interne) : la photo d'origine est intacte, réessayez";
pub const BACK_TO_FINDING: &str = "‹ Retour au constat";
/// How many marks are drawn so far.
pub fn marks(n: usize) -> String {
    match n {
        0 => "Aucune marque".into(),
        1 => "1 marque".into(),
        n => format!("{n} marques"),
    }
}
pub const RECOMMENDATION: &str = "Recommandation";
pub const WORK: &str = "Travaux";
pub const URGENCY: &str = "Urgence";
pub const QUANTITY: &str = "Quantité";
pub const UNIT: &str = "Unité";
pub const UNIT_COST: &str = "Coût unitaire ($)";
pub const ESTIMATED_COST: &str = "Coût estimé";
pub const ADD_RECOMMENDATION: &str = "Ajouter la recommandation";
pub const CONFLICTS: &str = "Conflits";
pub const CONFLICTS_HELP: &str =
    "Deux personnes ont saisi des valeurs différentes. Choisissez celle à garder.";
pub const NO_CONFLICT: &str = "Aucun conflit.";
pub const KEEP: &str = "Garder";
pub const REVIEW: &str = "Révision du CS";
pub const NO_COMMENT: &str = "Aucun commentaire du CS.";
pub const SUBMIT: &str = "Soumettre pour révision";
pub const SUBMITTED: &str = "Soumise : le CS la révisera.";
pub const ONLINE: &str = "En ligne";
pub const OFFLINE: &str = "Hors ligne";
pub const PENDING_CHANGES: &str = "modif. en attente";
pub const PENDING_PHOTOS: &str = "Mo de photos en attente";
pub const LAST_SYNC: &str = "Dernière synchro";
pub const SYNC_NOW: &str = "Synchroniser";
pub const SYNCING: &str = "Synchro…";
/// A sync that stopped on an internal error (logged): nothing is lost.
pub const SYNC_FAILED: &str = "la synchronisation s'est arrêtée sur une erreur interne : vos données restent sur l'appareil, réessayez";
pub const PHOTO_QUEUE: &str = "Photos à envoyer";
pub const CURRENT_PHOTO: &str = "Photo en cours";

/// What a running sync is doing, for the sync bar.
pub fn sync_stage(stage: crate::progress::Stage) -> String {
    use crate::progress::Stage;
    match stage {
        Stage::Idle => "Synchro en préparation".into(),
        Stage::Sending { .. } => "Envoi des modifications".into(),
        Stage::Receiving { page } => format!("Réception des données, page {page}"),
        Stage::Photos { index, count } => format!("Photo {index} sur {count}"),
        Stage::Done => "Synchro terminée".into(),
    }
}

/// A transfer speed: `850 ko/s`, `1,2 Mo/s`.
pub fn speed(bytes_per_sec: f64) -> String {
    if bytes_per_sec >= 1_000_000.0 {
        format!(
            "{} Mo/s",
            bilan_shared::fmt::decimal(bytes_per_sec / 1_000_000.0, 1)
        )
    } else {
        format!("{:.0} ko/s", (bytes_per_sec / 1000.0).max(0.0))
    }
}

/// Time left of a transfer: `encore 3 min 20 s`, `encore 12 s`.
pub fn time_left(left: std::time::Duration) -> String {
    let s = left.as_secs();
    match s {
        0..=59 => format!("encore {s} s"),
        60..=3599 => format!("encore {} min {} s", s / 60, s % 60),
        _ => format!("encore {} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// The server could not be reached: when the app tries again by itself
/// (a tap on "Synchroniser" tries at once).
pub fn retry_at(clock: &str) -> String {
    format!("nouvel essai automatique à {clock}")
}
pub const LOGOUT: &str = "Changer d'utilisateur";
pub const INCOMPLETE: &str = "Cotez tous les composants présents avant de soumettre.";

/// A store read failed: what happened and what to do; the screen keeps the
/// last data it could read.
pub fn read_failed(error: &str) -> String {
    format!(
        "Lecture impossible sur l'appareil : {error}. Les dernières données lues restent affichées."
    )
}

/// "il y a 5 min", "à 14 h 02" style relative time.
pub fn ago(ms: i64, now: i64) -> String {
    let s = (now - ms).max(0) / 1000;
    match s {
        0..=59 => "à l'instant".into(),
        60..=3599 => format!("il y a {} min", s / 60),
        3600..=86_399 => format!("il y a {} h", s / 3600),
        _ => format!("il y a {} j", s / 86_400),
    }
}

pub use bilan_shared::calendar::iso_date as date;
pub use bilan_shared::fmt::money;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_naturally_in_french() {
        assert_eq!(ago(0, 120_000), "il y a 2 min");
    }
}
