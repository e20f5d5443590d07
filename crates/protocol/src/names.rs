//! Enums whose values travel as fixed lowercase names (providers, modes, statuses).

use thiserror::Error;

/// A name that is not one of an enum's values, e.g. `"gcp"` for a provider.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown {kind} {value:?}: expected {expected}")]
pub struct ParseNameError {
    kind: &'static str,
    value: String,
    expected: &'static str,
}

impl ParseNameError {
    pub(crate) fn new(kind: &'static str, value: &str, expected: &'static str) -> Self {
        Self {
            kind,
            value: value.to_owned(),
            expected,
        }
    }

    /// The text that was not recognised.
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// What generic parsing code needs from a `named_enum!` type.
pub(crate) trait NamedEnum:
    std::str::FromStr<Err = ParseNameError> + Copy + PartialEq
{
    /// The accepted names, as a human-readable list for error messages.
    const EXPECTED: &'static str;
}

/// Adds `ALL`, `as_str`, `EXPECTED`, `Display`, `FromStr` and `TryFrom<String>` (for database
/// rows) to a fieldless enum whose serde names are the given strings. The enum's own serde
/// attributes must use the same strings; the tests of each module check that they agree.
macro_rules! named_enum {
    (
        $name:ident, $kind:literal, $expected:literal,
        { $($variant:ident => $text:literal),+ $(,)? }
    ) => {
        impl $name {
            /// Every value, in the order the project lists them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The accepted names, as a human-readable list for error messages.
            pub const EXPECTED: &'static str = $expected;

            /// The name used in JSON, URLs, the database and file names.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl $crate::names::NamedEnum for $name {
            const EXPECTED: &'static str = $expected;
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::convert::TryFrom<String> for $name {
            type Error = $crate::names::ParseNameError;

            // Not `Self::Error`: an enum with an `Error` variant would make it ambiguous.
            fn try_from(s: String) -> Result<Self, $crate::names::ParseNameError> {
                s.parse()
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::names::ParseNameError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::names::ParseNameError::new($kind, s, $expected)),
                }
            }
        }
    };
}

/// Checks that every value of a `named_enum!` type has the same name in serde, `Display` and
/// `FromStr`.
#[cfg(test)]
pub(crate) fn assert_names_agree_with_serde<T>(all: &[T])
where
    T: NamedEnum + serde::Serialize + std::fmt::Display + std::fmt::Debug,
{
    for value in all {
        let name = value.to_string();
        assert_eq!(
            serde_json::to_value(value).unwrap(),
            serde_json::json!(name)
        );
        assert_eq!(name.parse::<T>().unwrap(), *value);
    }
}
