//! Key validation. Keys are built from generated ids (core's `keys` module), but the store
//! checks them anyway: the local implementation turns keys into paths, and nothing may
//! escape its root.

use crate::StoreError;

pub const MAX_KEY_BYTES: usize = 1024;

fn allowed(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'/')
}

fn invalid(key: &str, reason: &'static str) -> StoreError {
    StoreError::InvalidKey { key: key.to_owned(), reason }
}

/// A prefix is a key, or a key's beginning ending in `/`; the empty prefix lists everything.
pub fn validate_prefix(prefix: &str) -> Result<(), StoreError> {
    if prefix.is_empty() {
        return Ok(());
    }
    validate_key(prefix.strip_suffix('/').unwrap_or(prefix))
}

pub fn validate_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(invalid(key, "must be 1 to 1024 bytes"));
    }
    if !key.bytes().all(allowed) {
        return Err(invalid(key, "only A-Z, a-z, 0-9, '-', '_', '.' and '/' are allowed"));
    }
    if key
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == ".." || segment.starts_with(".tmp"))
    {
        return Err(invalid(key, "empty, '.', '..' or '.tmp' path segments are not allowed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_keys_that_escape_or_are_odd() {
        for bad in ["", "/abs", "a//b", "a/../b", "..", "a/./b", "trailing/", "sp ace", "a\\b", "é"] {
            assert!(validate_key(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["a", "jobs/abc/photo.json", "a/b-c_d.e"] {
            assert!(validate_key(good).is_ok(), "{good:?} refused");
        }
        assert!(validate_prefix("jobs/abc/").is_ok());
        assert!(validate_prefix("").is_ok());
        assert!(validate_prefix("../").is_err());
    }
}
