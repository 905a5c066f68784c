//! The rules a singleton name must follow.

use crate::{Result, SingletonError};

/// The longest name, in bytes, that a singleton may have.
pub use singleton_names::MAX_NAME_LEN;

/// Checks `name` against the naming rules, and says which one it breaks:
///
/// - not empty, not only whitespace, no whitespace at the start or the end (`"cache"` and
///   `"cache "` would print alike in a log line but be two singletons);
/// - at most [`MAX_NAME_LEN`] bytes;
/// - no character that hides or rearranges text: control characters (Unicode category Cc,
///   such as `\n` or `\0`), format characters (Cf: zero-width and bidirectional controls such
///   as U+200B ZERO WIDTH SPACE, U+202E RIGHT-TO-LEFT OVERRIDE, U+2066 LEFT-TO-RIGHT ISOLATE,
///   U+FEFF, U+00AD SOFT HYPHEN) and the line and paragraph separators (Zl, Zp).
///
/// Any other Unicode is fine, and names are compared byte for byte.
///
/// ```
/// use singleton_kit::{validate_name, SingletonError};
///
/// assert!(validate_name("cache_manager").is_ok());
/// assert!(validate_name("café").is_ok());
/// assert!(validate_name("キャッシュ").is_ok());
/// assert!(validate_name("cache manager").is_ok());
/// assert!(validate_name("*").is_ok());
/// assert!(validate_name("   ").is_err());
/// assert!(validate_name("a\nb").is_err());
/// assert!(validate_name("cache ").is_err());
/// let err = validate_name("cache\u{200B}").unwrap_err();
/// assert!(matches!(err, SingletonError::InvalidName { .. }));
/// assert_eq!(
///     err.to_string(),
///     "invalid singleton name \"cache\\u{200b}\": \
///      the name holds an invisible format character (a zero-width or bidirectional control)"
/// );
/// ```
///
/// # Errors
///
/// [`SingletonError::InvalidName`], with the name (cut to a readable length) and the rule it
/// breaks.
#[inline]
pub fn validate_name(name: &str) -> Result<()> {
    // The common case, checked byte by byte: printable ASCII and spaces, no space at either end.
    let bytes = name.as_bytes();
    if let (Some(first), Some(last)) = (bytes.first(), bytes.last()) {
        if bytes.len() <= MAX_NAME_LEN
            && *first != b' '
            && *last != b' '
            && bytes.iter().all(|b| b.wrapping_sub(b' ') < 0x7f - b' ')
        {
            return Ok(());
        }
    }
    // The rules themselves are shared with the `#[singleton]` attribute, which checks
    // `name = "..."` at compile time.
    match singleton_names::problem(name) {
        None => Ok(()),
        Some(problem) => Err(SingletonError::InvalidName { name: shorten(name), reason: problem.reason() }),
    }
}

/// A name (or an operation string) as an error shows it: long ones are cut so that a log line
/// stays readable.
pub(crate) fn shorten(name: &str) -> String {
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
        assert!(validate_name(" padded").is_err());
        assert!(validate_name("padded ").is_err());
        assert!(validate_name("in side").is_ok());
        assert!(validate_name("\u{00A0}x").is_err(), "no-break space is whitespace");
        assert!(validate_name("x\u{3000}").is_err(), "ideographic space is whitespace");
        for c in ['\u{200B}', '\u{202E}', '\u{2066}', '\u{FEFF}', '\u{00AD}', '\u{E0041}', '\u{1343F}'] {
            assert!(validate_name(&format!("a{c}b")).is_err(), "U+{:04X}", u32::from(c));
        }
        for c in ['\u{2028}', '\u{2029}', '\u{85}'] {
            assert!(validate_name(&format!("a{c}b")).is_err(), "U+{:04X}", u32::from(c));
        }
        for ok in ["café", "キャッシュ", "*", "a\u{00AC}b"] {
            assert!(validate_name(ok).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn long_names_are_shortened_in_errors() {
        let err = validate_name(&"é".repeat(200)).unwrap_err();
        let SingletonError::InvalidName { name, .. } = err else { panic!("{err}") };
        assert!(name.ends_with("… (400 bytes)"), "{name}");
    }
}
