//! Typed identifiers. Every id is a UUID v7 (time-ordered, so SQLite indexes stay
//! append-friendly) wrapped in a newtype so that an office id can never be passed
//! where a complex id is expected. Wire format: the UUID's hyphenated string
//! (`#[serde(transparent)]`); in automerge documents: the same string.

use std::fmt;
use std::str::FromStr;

use autosurgeon::{Hydrate, HydrateError, Reconcile, Reconciler};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            /// The raw UUID, for storage layers that index it.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self(Uuid::nil())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl Reconcile for $name {
            type Key<'a> = autosurgeon::reconcile::NoKey;
            fn reconcile<R: Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
                reconciler.str(self.to_string())
            }
        }

        impl Hydrate for $name {
            fn hydrate_string(s: &str) -> Result<Self, HydrateError> {
                s.parse()
                    .map_err(|_| HydrateError::unexpected("a UUID string", s.to_string()))
            }
        }
    };
}

typed_id!(
    /// A CS territory: the partition key of every query on the server.
    TerritoryId
);
typed_id!(
    /// A served housing office (organisme desservi).
    OfficeId
);
typed_id!(
    /// A housing complex (ensemble immobilier): the unit that is inspected.
    ComplexId
);
typed_id!(
    /// One BSI inspection; also the id of its automerge document.
    InspectionId
);
typed_id!(
    /// A user account (inspector, manager, office reader, administrator).
    UserId
);
typed_id!(
    /// One installation of the app; its bytes are the device's automerge actor id.
    DeviceId
);
typed_id!(
    /// A finding (constat de désordre) inside an inspection.
    FindingId
);
typed_id!(
    /// A recommendation of work attached to a finding.
    RecommendationId
);
typed_id!(
    /// A site visit (time on site, travel) inside an inspection.
    VisitId
);
typed_id!(
    /// A review comment written by the CS or answered by the inspector.
    CommentId
);

/// SHA-256 of a photo's bytes, lower-case hex. Photos are content-addressed: the
/// same bytes always have the same id, so uploads are idempotent.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhotoHash(String);

impl PhotoHash {
    /// Hash of the given bytes.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::{Digest, Sha256};
        Self(hex::encode(Sha256::digest(bytes)))
    }
    /// The hex string; safe to use as a file name (64 hex digits, nothing else).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PhotoHash {
    type Error = crate::SharedError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        if s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(s))
        } else {
            Err(crate::SharedError::BadPhotoHash(s))
        }
    }
}

impl FromStr for PhotoHash {
    type Err = crate::SharedError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(s.to_ascii_lowercase())
    }
}

impl From<PhotoHash> for String {
    fn from(h: PhotoHash) -> String {
        h.0
    }
}

impl fmt::Display for PhotoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Reconcile for PhotoHash {
    type Key<'a> = autosurgeon::reconcile::NoKey;
    fn reconcile<R: Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
        reconciler.str(&self.0)
    }
}

impl Hydrate for PhotoHash {
    fn hydrate_string(s: &str) -> Result<Self, HydrateError> {
        s.parse()
            .map_err(|_| HydrateError::unexpected("a SHA-256 hex string", s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_as_plain_strings_in_json() {
        let id = ComplexId::new();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<ComplexId>(&json).unwrap(), id);
        assert_eq!(id.as_uuid().get_version_num(), 7);
    }

    #[test]
    fn photo_hash_rejects_path_traversal_and_wrong_length() {
        assert!("../../etc/passwd".parse::<PhotoHash>().is_err());
        assert!("abc".parse::<PhotoHash>().is_err());
        let h = PhotoHash::of(b"hello");
        assert_eq!(h.as_str().len(), 64);
        assert_eq!(h.as_str().parse::<PhotoHash>().unwrap(), h);
    }
}
