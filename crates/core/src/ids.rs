//! Identifiers. Job and photo ids are 128 random bits written as 26 lowercase base32
//! characters: URL-safe, unguessable (the job id is a capability, docs/ARCHITECTURE.md "Ownership"),
//! and — because parsing accepts nothing else — safe to splice into object keys.

use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;

/// Crockford's base32 alphabet in lowercase (no i, l, o, u: nothing to misread).
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const ID_LEN: usize = 26;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a valid {kind} id: expected {ID_LEN} characters of [0-9a-z]")]
pub struct IdError {
    pub kind: &'static str,
}

fn random_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    encode_base32(u128::from_be_bytes(bytes))
}

fn encode_base32(mut value: u128) -> String {
    // 26 digits of 5 bits hold 130 bits; the top digit carries only 3 of them.
    let mut out = [b'0'; ID_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value & 31) as usize];
        value >>= 5;
    }
    out.iter().map(|&b| b as char).collect()
}

/// What [`is_valid_id`] accepts, as a regular expression (for the OpenAPI document).
pub const ID_PATTERN: &str = "^[0-9abcdefghjkmnpqrstvwxyz]{26}$";

fn is_valid_id(text: &str) -> bool {
    text.len() == ID_LEN && text.bytes().all(|b| ALPHABET.contains(&b))
}

macro_rules! id_type {
    ($name:ident, $kind:literal) => {
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn generate() -> Self {
                Self(random_id())
            }
            pub fn parse(text: &str) -> Result<Self, IdError> {
                if is_valid_id(text) {
                    Ok(Self(text.to_owned()))
                } else {
                    Err(IdError { kind: $kind })
                }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(text: String) -> Result<Self, IdError> {
                Self::parse(&text)
            }
        }
        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some(ID_PATTERN))
                    .description(Some(concat!("A ", $kind, " id: 26 characters of lower-case base32")))
                    .into()
            }
        }
        impl utoipa::ToSchema for $name {}
    };
}

id_type!(JobId, "job");
id_type!(PhotoId, "photo");

/// The secret that proves ownership of a job. Only its SHA-256 is stored, so a leaked
/// store listing does not hand out write access.
#[derive(Clone, PartialEq, Eq)]
pub struct OwnerToken(String);

impl OwnerToken {
    pub fn generate() -> Self {
        Self(format!("{}{}", random_id(), random_id()))
    }
    pub fn from_presented(text: &str) -> Self {
        Self(text.trim().to_owned())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn sha256_hex(&self) -> String {
        sha256_hex(self.0.as_bytes())
    }
    /// Compares against a stored hash without an early exit, so timing reveals nothing.
    pub fn matches(&self, stored_sha256_hex: &str) -> bool {
        let presented = self.sha256_hex();
        presented.len() == stored_sha256_hex.len()
            && presented.bytes().zip(stored_sha256_hex.bytes()).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
    }
}

impl fmt::Debug for OwnerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OwnerToken(..)")
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_distinct_and_parse_back() {
        let a = JobId::generate();
        let b = JobId::generate();
        assert_ne!(a, b);
        assert_eq!(JobId::parse(a.as_str()), Ok(a.clone()));
        assert_eq!(a.as_str().len(), 26);
    }

    #[test]
    fn rejects_ids_that_could_escape_a_key() {
        for bad in ["", "../../../../etc/passwd", "ABCDEFGHJKMNPQRSTVWXYZ0123", "0123456789abcdefghjkmnpqr/"] {
            assert!(JobId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn encodes_all_bits() {
        assert_eq!(encode_base32(0), "0".repeat(26));
        assert_eq!(encode_base32(u128::MAX), format!("7{}", "z".repeat(25)));
    }

    #[test]
    fn owner_token_matches_only_its_hash() {
        let token = OwnerToken::generate();
        let stored = token.sha256_hex();
        assert!(token.matches(&stored));
        assert!(!OwnerToken::generate().matches(&stored));
        assert!(!token.matches(""));
    }
}
