//! The contract's fixed words (action keys, field types, intents), each open to values Pinpoint
//! adds later.

use serde::{Deserialize, Serialize};

/// Declares an enum whose wire form is a fixed string, plus an `Other` catch-all so a value
/// Pinpoint adds later still parses (and round-trips unchanged) instead of failing the request.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $($(#[$vmeta:meta])* $variant:ident => $wire:literal),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this crate does not know, kept verbatim so it is echoed back unchanged.
            Other(String),
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)+
                    Self::Other(other) => other,
                }
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $($wire => Self::$variant,)+
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self::from(value.as_str())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map(Self::from)
            }
        }
    };
}

open_enum! {
    /// The kind of action a plugin offers; it decides which lifecycle Pinpoint runs.
    ActionKey {
        /// Synchronous export of a hired candidate (HRIS). No webhook processing.
        ExportCandidate => "exportCandidate",
        CreateAssessment => "createAssessment",
        CreateBackgroundCheck => "createBackgroundCheck",
    }
}

open_enum! {
    /// Type of an admin configuration field. What `persisted_string` does is undocumented; it is
    /// modelled so a meta response can declare it, not because we rely on its behaviour.
    ConfigFieldType {
        String => "string",
        PersistedString => "persisted_string",
    }
}

open_enum! {
    /// Type of an action form field. `string` covers numbers too: Pinpoint has no number type.
    FormFieldType {
        String => "string",
        Date => "date",
        File => "file",
        Files => "files",
        Divider => "divider",
        Heading => "heading",
        Callout => "callout",
    }
}

open_enum! {
    /// Colour of a callout. Only `danger` is documented; the others are the usual siblings and
    /// are safe to offer because an unknown value would simply be kept as `Other`.
    Intent {
        Danger => "danger",
        Warning => "warning",
        Info => "info",
        Success => "success",
    }
}
