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
    // The common case, checked eight bytes at a time: printable ASCII and spaces, no space at
    // either end. Anything else goes through the full rules, which agree on every name this
    // accepts (see the tests).
    if is_plain(name.as_bytes()) {
        return Ok(());
    }
    // The rules themselves are shared with the `#[singleton]` attribute, which checks
    // `name = "..."` at compile time.
    match singleton_names::problem(name) {
        None => Ok(()),
        Some(problem) => Err(SingletonError::InvalidName { name: shorten(name), reason: problem.reason() }),
    }
}

/// `true` when `name` is 1 to [`MAX_NAME_LEN`] bytes of printable ASCII (`b' '..=b'~'`) that
/// neither starts nor ends with a space: a name every rule accepts.
#[inline]
fn is_plain(name: &[u8]) -> bool {
    let len = name.len();
    let (Some(&first), Some(&last)) = (name.first(), name.last()) else { return false };
    if len > MAX_NAME_LEN || first == b' ' || last == b' ' {
        return false;
    }
    if len < 8 {
        // Every byte, in fixed-size reads that may overlap: two of four bytes, or three single
        // bytes (first, middle, last), put in one word with printable bytes around them.
        let word = if len >= 4 {
            u64::from(u32_at(name, 0)) | u64::from(u32_at(name, len - 4)) << 32
        } else {
            u64::from_le_bytes([first, name[len / 2], last, b'a', b'a', b'a', b'a', b'a'])
        };
        return printable(word);
    }
    // Whole words, the last one overlapping the one before it.
    let mut ok = true;
    let mut at = 0;
    while at + 8 < len {
        ok &= printable(word_at(name, at));
        at += 8;
    }
    ok & printable(word_at(name, len - 8))
}

#[inline(always)]
fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

#[inline(always)]
fn word_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// `true` when each of the eight bytes of `word` is printable ASCII, `0x20..=0x7E`.
#[inline(always)]
fn printable(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte below 0x20 borrows: its high bit is set after the subtraction and clear before.
    // No byte below 0x20 means no borrow at all, so no other byte is flagged.
    let below = word.wrapping_sub(ONES * 0x20) & !word;
    // A byte of 0x7F or more has its high bit set after adding one, or had it already; a carry
    // out of a byte comes only from 0xFF, which is flagged itself.
    let above = word.wrapping_add(ONES) | word;
    (below | above) & HIGH == 0
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

    /// What `is_plain` stands for, one byte at a time.
    fn plain_by_bytes(name: &[u8]) -> bool {
        !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name[0] != b' '
            && name[name.len() - 1] != b' '
            && name.iter().all(|b| (b' '..=b'~').contains(b))
    }

    /// `is_plain` against the byte-by-byte check, and the full rules accepting what it accepts.
    fn agree(name: &[u8]) {
        let plain = is_plain(name);
        assert_eq!(plain, plain_by_bytes(name), "{name:?}");
        if plain {
            let name = std::str::from_utf8(name).expect("ASCII");
            assert_eq!(singleton_names::problem(name), None, "{name:?}");
        } else if let Ok(name) = std::str::from_utf8(name) {
            if name.bytes().all(|b| (b' '..=b'~').contains(&b)) {
                // Printable ASCII turned down by the fast path: the full rules turn it down too.
                assert!(singleton_names::problem(name).is_some(), "{name:?}");
            }
        }
    }

    #[test]
    fn the_fast_path_agrees_with_the_rules_for_every_byte_at_every_place() {
        for len in 1..=40 {
            for at in 0..len {
                for byte in 0..=u8::MAX {
                    let mut name = vec![b'a'; len];
                    name[at] = byte;
                    agree(&name);
                }
            }
        }
    }

    #[test]
    fn the_fast_path_agrees_with_the_rules_for_pairs_of_bytes() {
        // Pairs catch a borrow or a carry from one byte changing what is seen of the next: every
        // pair of bytes side by side, within a word and across two, and bytes at the edges of
        // the ranges at every pair of places.
        let pair = |len: usize, i: usize, j: usize, a: u8, b: u8| {
            let mut name = vec![b'm'; len];
            name[i] = a;
            name[j] = b;
            agree(&name);
        };
        for (len, i) in [(2, 0), (5, 1), (5, 3), (9, 6), (9, 7), (16, 7), (17, 15)] {
            for a in 0..=u8::MAX {
                for b in 0..=u8::MAX {
                    pair(len, i, i + 1, a, b);
                }
            }
        }
        let edges =
            [0x00, 0x01, 0x1F, 0x20, 0x21, 0x41, 0x7E, 0x7F, 0x80, 0x9F, 0xA0, 0xC3, 0xDF, 0xE0, 0xFF];
        for len in [3, 4, 7, 8, 9, 12, 16, 17, 24] {
            for i in 0..len {
                for j in (i + 1)..len {
                    for a in edges {
                        for b in edges {
                            pair(len, i, j, a, b);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_fast_path_agrees_at_the_length_limits() {
        agree(b"");
        for len in [MAX_NAME_LEN - 1, MAX_NAME_LEN, MAX_NAME_LEN + 1, 2 * MAX_NAME_LEN] {
            agree(&vec![b'x'; len]);
            let mut spaced = vec![b' '; len];
            (spaced[0], spaced[len - 1]) = (b'x', b'y');
            agree(&spaced);
        }
        for name in ["a", " ", "  ", "a ", " a", "a b", "~", "\x7f", "abc\u{7f}", "cache_manager"] {
            agree(name.as_bytes());
        }
    }

    #[test]
    fn long_names_are_shortened_in_errors() {
        let err = validate_name(&"é".repeat(200)).unwrap_err();
        let SingletonError::InvalidName { name, .. } = err else { panic!("{err}") };
        assert!(name.ends_with("… (400 bytes)"), "{name}");
    }
}
