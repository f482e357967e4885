//! How a vocabulary enum is written: one list of variants and their words, from which
//! the enum, its `as_str`, `FromStr`, `Display`, serde and `ALL` follow, so the word of a
//! variant is spelled exactly once.

/// A word that is not in a vocabulary (read from a record, a row or a request). It names
/// the vocabulary, never the word: that came from outside and is not echoed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a known {vocabulary}")]
pub struct UnknownWord {
    /// Which vocabulary, e.g. `action`.
    pub vocabulary: &'static str,
}

/// `Display`, `Serialize` and `Deserialize` as the type's word, from its `as_str` and
/// `FromStr`.
macro_rules! word_form {
    ($ty:ident) => {
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $ty {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Self, D::Error> {
                struct WordVisitor;
                impl ::serde::de::Visitor<'_> for WordVisitor {
                    type Value = $ty;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        write!(f, "a {} word", stringify!($ty))
                    }
                    fn visit_str<E: ::serde::de::Error>(self, v: &str) -> Result<$ty, E> {
                        v.parse().map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(WordVisitor)
            }
        }
    };
}

/// A closed vocabulary: the enum with each variant's word, `ALL`, `as_str`, `FromStr`,
/// and the word forms of [`word_form`].
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        pub enum $ty:ident as $vocabulary:literal {
            $( $(#[$variant_meta:meta])* $variant:ident = $word:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $ty {
            $( $(#[$variant_meta])* $variant, )+
        }

        impl $ty {
            /// Every value, in the order declared.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The word, as stored and sent.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $ty::$variant => $word, )+
                }
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::UnknownWord;

            /// Reads the word of [`Self::as_str`]; any other string is an
            /// [`UnknownWord`](crate::UnknownWord).
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $word => Ok($ty::$variant), )+
                    _ => Err($crate::UnknownWord { vocabulary: $vocabulary }),
                }
            }
        }

        word_form!($ty);
    };
}
