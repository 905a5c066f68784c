//! The rules a singleton name must follow.

use crate::{Result, SingletonError};

/// The longest name, in bytes, that a singleton may have.
pub const MAX_NAME_LEN: usize = 256;

/// Checks `name` against the naming rules: not empty, not only whitespace, at most
/// [`MAX_NAME_LEN`] bytes, no control characters. Any other Unicode is fine.
///
/// ```
/// use singleton_kit::validate_name;
///
/// assert!(validate_name("cache_manager").is_ok());
/// assert!(validate_name("café").is_ok());
/// assert!(validate_name("   ").is_err());
/// assert!(validate_name("a\nb").is_err());
/// ```
#[inline]
pub fn validate_name(name: &str) -> Result<()> {
    // The common case, checked byte by byte: printable ASCII and spaces, not only spaces.
    let bytes = name.as_bytes();
    if (1..=MAX_NAME_LEN).contains(&bytes.len())
        && bytes.iter().all(|b| b.wrapping_sub(b' ') < 0x7f - b' ')
        && bytes.iter().any(|b| *b != b' ')
    {
        return Ok(());
    }
    let reason = if name.is_empty() {
        "the name is empty"
    } else if name.trim().is_empty() {
        "the name is only whitespace"
    } else if name.len() > MAX_NAME_LEN {
        "the name is longer than 256 bytes"
    } else if name.chars().any(char::is_control) {
        "the name holds a control character"
    } else {
        return Ok(());
    };
    Err(SingletonError::InvalidName { name: shorten(name), reason })
}

/// The name as an error shows it: long names are cut so that a log line stays readable.
fn shorten(name: &str) -> String {
    const SHOWN: usize = 64;
    if name.len() <= SHOWN {
        return name.to_owned();
    }
    let mut end = SHOWN;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &name[..end], name.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries() {
        assert!(validate_name(&"a".repeat(MAX_NAME_LEN)).is_ok());
        assert!(validate_name(&"a".repeat(MAX_NAME_LEN + 1)).is_err());
        assert!(validate_name("\0").is_err());
        assert!(validate_name("\t").is_err());
        assert!(validate_name("x\u{7f}").is_err());
        assert!(validate_name("名前").is_ok());
        assert!(validate_name(" padded ").is_ok());
    }

    #[test]
    fn long_names_are_shortened_in_errors() {
        let err = validate_name(&"é".repeat(200)).unwrap_err();
        let SingletonError::InvalidName { name, .. } = err else { panic!("{err}") };
        assert!(name.ends_with("… (400 bytes)"), "{name}");
    }
}
