//! Where the app keeps its store on each platform: `BILAN_DEVICE_DIR` when
//! set; otherwise the folder the platform gives apps for their data
//! (desktop Linux: `$XDG_DATA_HOME/bilan`, usually `~/.local/share/bilan`;
//! macOS and iOS: `Library/Application Support/bilan`; Windows:
//! `%APPDATA%\bilan`; Android: the app's own `files/bilan`). Never the
//! working directory: launched from a read-only folder or a phone's home
//! screen, the app still finds its store.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::error::{MobileError, Result};

/// The folder under the platform's data folder.
const APP_FOLDER: &str = "bilan";

/// The store's folder: the override if given, else `platform`'s
/// [`APP_FOLDER`]; an error saying what to set when neither exists.
pub fn device_dir(override_dir: Option<OsString>, platform: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(dir) = override_dir.filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    platform.map(|p| p.join(APP_FOLDER)).ok_or_else(|| {
        MobileError::Invalid(
            "aucun dossier de données d'application sur ce système : indiquez où garder les données avec BILAN_DEVICE_DIR".into(),
        )
    })
}

/// The platform's folder for app data, if it has one.
pub fn platform_data_dir() -> Option<PathBuf> {
    #[cfg(target_os = "android")]
    {
        android_files_dir()
    }
    #[cfg(not(target_os = "android"))]
    {
        dirs::data_dir()
    }
}

/// An Android app's private files folder, `/data/data/<package>/files`: an
/// app's process is named after its package.
#[cfg(target_os = "android")]
fn android_files_dir() -> Option<PathBuf> {
    let cmdline = std::fs::read("/proc/self/cmdline").ok()?;
    let package = cmdline.split(|b| *b == 0).next()?;
    let package = std::str::from_utf8(package).ok()?.split(':').next()?;
    (!package.is_empty()).then(|| PathBuf::from("/data/data").join(package).join("files"))
}

/// The store's folder for this launch: [`device_dir`] with the
/// environment's `BILAN_DEVICE_DIR` and the platform's data folder.
pub fn for_this_launch() -> Result<PathBuf> {
    device_dir(std::env::var_os("BILAN_DEVICE_DIR"), platform_data_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_override_wins_over_the_platform_folder() {
        let dir = device_dir(Some("/tmp/ici".into()), Some("/home/j/.local/share".into()));
        assert_eq!(dir.unwrap(), PathBuf::from("/tmp/ici"));
    }

    #[test]
    fn without_override_the_store_lives_in_the_platform_data_folder_not_the_working_one() {
        let dir = device_dir(None, Some("/home/j/.local/share".into())).unwrap();
        assert_eq!(dir, PathBuf::from("/home/j/.local/share/bilan"));
        let empty = device_dir(Some(OsString::new()), Some("/d".into())).unwrap();
        assert_eq!(
            empty,
            PathBuf::from("/d/bilan"),
            "an empty override is no override"
        );
    }

    #[test]
    fn with_no_data_folder_the_error_says_what_to_set() {
        let e = device_dir(None, None).unwrap_err().to_string();
        assert!(e.contains("BILAN_DEVICE_DIR"), "{e}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn on_linux_the_platform_folder_is_the_xdg_data_folder() {
        let expected = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
        assert_eq!(platform_data_dir(), expected);
    }
}
