//! Closed vocabularies: an enum whose values are stored as stable codes (in
//! JSON, automerge documents and SQL) and shown with French labels. One
//! macro writes the code and label tables and their conversions, for the
//! domain's enums here and for others' (the server's audit actions). A
//! crate that uses it depends on `serde` and `autosurgeon`.

/// Declares a closed vocabulary stored as a stable snake_case code (in JSON, in
/// automerge documents and in SQL) with its French label for screens and reports.
#[macro_export]
macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $code:literal, $label:literal;)+ }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize)]
        pub enum $name {
            $(#[serde(rename = $code)] $variant,)+
        }

        impl $name {
            /// Every value, in display order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];
            /// The stable code used on the wire, in documents and in SQL. Never change one.
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code,)+ }
            }
            /// The French label shown to users.
            pub fn label_fr(self) -> &'static str {
                match self { $($name::$variant => $label,)+ }
            }
            /// Parses a stable code.
            pub fn from_code(code: &str) -> Option<Self> {
                match code { $($code => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.code())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::SharedError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::from_code(s).ok_or_else(|| $crate::SharedError::UnknownCode {
                    kind: stringify!($name),
                    code: s.to_string(),
                })
            }
        }

        impl ::autosurgeon::Reconcile for $name {
            type Key<'a> = autosurgeon::reconcile::NoKey;
            fn reconcile<R: ::autosurgeon::Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
                reconciler.str(self.code())
            }
        }

        impl ::autosurgeon::Hydrate for $name {
            fn hydrate_string(s: &str) -> Result<Self, ::autosurgeon::HydrateError> {
                Self::from_code(s).ok_or_else(|| ::autosurgeon::HydrateError::unexpected(stringify!($name), s.to_string()))
            }
        }
    };
}
