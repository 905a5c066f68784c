//! The rules a singleton name follows, in one place for the two that check them: the runtime of
//! [singleton-kit](https://docs.rs/singleton-kit) (`validate_name`, for names given at run time)
//! and its `#[singleton]` attribute (for `name = "..."`, at compile time).
//!
//! Use them through `singleton_kit::validate_name`; this crate is an implementation detail.
//!
//! ```
//! use singleton_names::{problem, Problem};
//!
//! assert_eq!(problem("cache_manager"), None);
//! assert_eq!(problem("café"), None);
//! assert_eq!(problem("cache "), Some(Problem::TrailingWhitespace));
//! assert_eq!(problem("cache\u{200B}"), Some(Problem::Format));
//! ```

#![warn(missing_docs)]

/// The longest name, in bytes, that a singleton may have.
pub const MAX_NAME_LEN: usize = 256;

/// A rule a name breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The name is empty.
    Empty,
    /// The name is only whitespace.
    Blank,
    /// The name starts with whitespace.
    LeadingWhitespace,
    /// The name ends with whitespace.
    TrailingWhitespace,
    /// The name is longer than [`MAX_NAME_LEN`] bytes.
    TooLong,
    /// The name holds a control character (Unicode category Cc).
    Control,
    /// The name holds a format character (Cf: zero-width and bidirectional controls).
    Format,
    /// The name holds a line or paragraph separator (Zl, Zp).
    Separator,
}

impl Problem {
    /// What is wrong, as an error message says it.
    ///
    /// ```
    /// assert_eq!(singleton_names::Problem::Empty.reason(), "the name is empty");
    /// ```
    pub fn reason(self) -> &'static str {
        match self {
            Problem::Empty => "the name is empty",
            Problem::Blank => "the name is only whitespace",
            Problem::LeadingWhitespace => "the name starts with whitespace",
            Problem::TrailingWhitespace => "the name ends with whitespace",
            Problem::TooLong => "the name is longer than 256 bytes",
            Problem::Control => "the name holds a control character",
            Problem::Format => {
                "the name holds an invisible format character (a zero-width or bidirectional control)"
            }
            Problem::Separator => "the name holds a line or paragraph separator",
        }
    }
}

/// The first rule `name` breaks, if any:
///
/// - not empty, not only whitespace, no whitespace at the start or the end;
/// - at most [`MAX_NAME_LEN`] bytes;
/// - no control characters (Cc), format characters (Cf) or line and paragraph separators
///   (Zl, Zp): they hide or rearrange text in logs and admin output.
///
/// Any other Unicode is fine.
///
/// ```
/// use singleton_names::{problem, Problem};
///
/// assert_eq!(problem(""), Some(Problem::Empty));
/// assert_eq!(problem("a\u{202E}b"), Some(Problem::Format));
/// assert_eq!(problem("キャッシュ"), None);
/// ```
pub fn problem(name: &str) -> Option<Problem> {
    Some(if name.is_empty() {
        Problem::Empty
    } else if name.trim().is_empty() {
        Problem::Blank
    } else if name.starts_with(char::is_whitespace) {
        Problem::LeadingWhitespace
    } else if name.ends_with(char::is_whitespace) {
        Problem::TrailingWhitespace
    } else if name.len() > MAX_NAME_LEN {
        Problem::TooLong
    } else if name.chars().any(char::is_control) {
        Problem::Control
    } else if name.chars().any(is_format) {
        Problem::Format
    } else if name.contains(['\u{2028}', '\u{2029}']) {
        Problem::Separator
    } else {
        return None;
    })
}

/// The format characters (Unicode general category Cf) as sorted, disjoint inclusive ranges,
/// from the Unicode Character Database 15.1 (`DerivedGeneralCategory.txt`). Twenty-one ranges
/// do not justify a dependency.
const FORMAT: [(u32, u32); 21] = [
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

/// `true` for a format character (category Cf).
fn is_format(c: char) -> bool {
    let c = u32::from(c);
    let i = FORMAT.partition_point(|&(_, last)| last < c);
    FORMAT.get(i).is_some_and(|&(first, _)| first <= c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_table_is_sorted_and_matches_its_edges() {
        assert!(FORMAT.windows(2).all(|w| w[0].1 < w[1].0) && FORMAT.iter().all(|(a, b)| a <= b));
        for &(first, last) in &FORMAT {
            for c in [first, last] {
                assert!(is_format(char::from_u32(c).unwrap()), "U+{c:04X}");
            }
            for c in [first - 1, last + 1] {
                assert!(!char::from_u32(c).is_some_and(is_format), "U+{c:04X}");
            }
        }
    }

    #[test]
    fn refused_and_accepted_names() {
        for (bad, why) in [
            ("", Problem::Empty),
            (" ", Problem::Blank),
            ("cache ", Problem::TrailingWhitespace),
            (" cache", Problem::LeadingWhitespace),
            ("a\nb", Problem::Control),
            ("cache\u{200B}", Problem::Format),
            ("a\u{202E}b", Problem::Format),
            ("\u{2066}x", Problem::Format),
            ("\u{FEFF}x", Problem::Format),
            ("a\u{AD}b", Problem::Format),
            ("a\u{2028}b", Problem::Separator),
        ] {
            assert_eq!(problem(bad), Some(why), "{bad:?}");
        }
        let long = "x".repeat(MAX_NAME_LEN + 1);
        assert_eq!(problem(&long), Some(Problem::TooLong));
        for good in ["cache", "café", "キャッシュ", "cache manager", "*", "a\u{00AC}b"] {
            assert_eq!(problem(good), None, "{good:?}");
        }
    }
}
