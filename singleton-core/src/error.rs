//! The one error type of singleton-kit.

use std::time::Duration;

/// The error a factory may return: anything that converts into a boxed error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with [`SingletonError`] as its error.
pub type Result<T, E = SingletonError> = std::result::Result<T, E>;

/// Everything that can go wrong in singleton-kit.
///
/// Every variant names the singleton (or the operation) it is about, so a log line alone
/// tells what to fix.
///
/// ```
/// use singleton_kit::{SingletonCore, SingletonError};
///
/// let core = SingletonCore::new();
/// let err = core.set("", 1_u32).unwrap_err();
/// assert!(matches!(err, SingletonError::InvalidName { .. }));
/// assert_eq!(err.to_string(), "invalid singleton name \"\": the name is empty");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SingletonError {
    /// The name is empty, blank, starts or ends with whitespace, is longer than
    /// [`MAX_NAME_LEN`](crate::MAX_NAME_LEN) bytes, or holds a control character, an invisible
    /// format character or a line or paragraph separator (see
    /// [`validate_name`](crate::validate_name)). Nothing was changed.
    #[error("invalid singleton name {name:?}: {reason}")]
    InvalidName {
        /// The name as given (cut to a readable length).
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The core's rate limit refused the operation. It took no slot of the window.
    ///
    /// ```
    /// use singleton_kit::{RateLimit, SingletonCore, SingletonError};
    ///
    /// let core = SingletonCore::with_rate_limit(RateLimit::per_second(0));
    /// let one = core.set("cache", 1_u8).unwrap_err();
    /// assert!(matches!(&one, SingletonError::RateLimited { name: Some(n), .. } if n == "cache"));
    /// let all = core.stats().unwrap_err(); // about every singleton, not one of them
    /// assert!(matches!(all, SingletonError::RateLimited { name: None, .. }));
    /// assert!(all.to_string().starts_with("rate limit exceeded for `get_stats` on all singletons"));
    /// ```
    #[error("rate limit exceeded for `{operation}` on {}: retry after {retry_after:?}", subject(name.as_deref()))]
    RateLimited {
        /// The operation that was refused (`"get"`, `"set"`, ...).
        operation: &'static str,
        /// The singleton the operation was about; `None` for the operations on all of them
        /// (`clear`, `reset_all`, `get_stats`, `reset`). Every string, `"*"` included, is a name.
        name: Option<String>,
        /// How long until the oldest admitted operation leaves the window.
        retry_after: Duration,
    },

    /// The singleton holds (or is registered with) another type than the one asked for.
    #[error("singleton `{name}` has type `{found}`, not `{expected}`")]
    TypeMismatch {
        /// The singleton's name.
        name: String,
        /// The type the caller asked for or tried to store.
        expected: &'static str,
        /// The type the singleton has.
        found: &'static str,
    },

    /// The singleton's factory returned an error. Nothing was stored: the next call tries again.
    #[error("factory of singleton `{name}` failed: {source}")]
    Factory {
        /// The singleton's name.
        name: String,
        /// What the factory returned.
        #[source]
        source: BoxError,
    },

    /// Creating the singleton needs the singleton itself, through the factories in `path`.
    ///
    /// The path is in creation order and ends with the name it starts with:
    /// `["a", "b", "a"]` means that `a`'s factory asked for `b`, whose factory asked for `a`.
    #[error("dependency cycle while creating singleton `{}`: {}", .path[0], .path.join(" -> "))]
    Cycle {
        /// The singletons of the cycle, in creation order, first and last the same.
        path: Vec<String>,
    },

    /// Two `#[singleton]` types claim this name, so the name alone does not say which is meant.
    /// Each type's own `instance()` still works.
    #[error("singleton name `{name}` is claimed by more than one type: {}", .types.join(", "))]
    DuplicateName {
        /// The ambiguous name.
        name: String,
        /// The types that claim it.
        types: Vec<&'static str>,
    },

    /// The singleton is made by an async factory and has no instance yet (or is being created
    /// right now): the sync path cannot run or wait for it. Ask with `.await` instead
    /// (`T::instance().await`, [`get_async`](crate::SingletonCore::get_async)).
    #[error("singleton `{name}` is async and not created yet: await it (`instance().await` or `get_async`)")]
    NeedsAwait {
        /// The singleton's name.
        name: String,
    },

    /// An operation that only runs from async code (`health`) was given to a sync entry point
    /// (`execute`, `execute_json`): use `execute_json_async` (or the async method).
    #[error("operation `{operation}` runs async checks: use `execute_json_async` (or the async method)")]
    AwaitRequired {
        /// The operation.
        operation: &'static str,
    },

    /// An operation name that is not one of [`SingletonOperation`](crate::SingletonOperation)'s.
    /// The message lists the valid ones.
    #[error("unknown operation `{}`; valid: {}", .operation.escape_debug(), crate::SingletonOperation::NAMES.join(", "))]
    UnknownOperation {
        /// The string that was given.
        operation: String,
    },

    /// [`SingletonCore::execute`](crate::SingletonCore::execute) was called without an argument
    /// its operation needs.
    #[error("operation `{operation}` needs {argument}")]
    MissingArgument {
        /// The operation.
        operation: &'static str,
        /// What was missing (`"a name"`, `"a value"`).
        argument: &'static str,
    },

    /// An [`Admin`](crate::Admin)'s policy refused the operation: it is denied there, or needs
    /// the policy's token and the request carried none or another. Nothing was changed and no
    /// rate-limit slot was taken. The message never shows a token.
    ///
    /// ```
    /// use singleton_kit::{AdminPolicy, Request, SingletonCore, SingletonError};
    ///
    /// let core = SingletonCore::new();
    /// let err = core.admin(AdminPolicy::observe_only()).execute(Request::parse("clear")?).unwrap_err();
    /// assert!(matches!(err, SingletonError::Forbidden { operation: "clear", .. }));
    /// assert_eq!(err.kind(), "forbidden");
    /// assert_eq!(err.to_string(), "forbidden: `clear` is not allowed here");
    /// # Ok::<(), SingletonError>(())
    /// ```
    #[error("forbidden: `{operation}` {reason}")]
    Forbidden {
        /// The operation that was refused.
        operation: &'static str,
        /// What it lacks (`"is not allowed here"`, `"needs a token"`, ...).
        reason: &'static str,
    },

    /// An admin token given to [`AdminPolicy::try_require_token`](crate::AdminPolicy::try_require_token)
    /// cannot be used: it is empty, or longer than 1 KiB. The message never shows the token.
    #[error("invalid admin token: {reason}")]
    InvalidToken {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A request given as data could not be read: malformed JSON, a missing or wrong-typed
    /// field, or input over the size bound. Nothing was changed and no rate-limit slot was taken.
    #[error("bad request: {reason}")]
    BadRequest {
        /// What is wrong with the request.
        reason: String,
    },
}

/// What an operation was about, for messages: no name stands for the operations on all singletons.
fn subject(name: Option<&str>) -> String {
    match name {
        Some(name) => format!("singleton `{name}`"),
        None => "all singletons".to_owned(),
    }
}

/// What a caught panic says, when it says it with a string.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic with a payload that is not a string")
}

impl SingletonError {
    /// The name of the singleton this error is about, where there is one.
    ///
    /// ```
    /// use singleton_kit::SingletonError;
    ///
    /// let err = SingletonError::Cycle { path: vec!["a".into(), "b".into(), "a".into()] };
    /// assert_eq!(err.singleton_name(), Some("a"));
    /// ```
    pub fn singleton_name(&self) -> Option<&str> {
        match self {
            Self::RateLimited { name, .. } => name.as_deref(),
            Self::InvalidName { name, .. }
            | Self::TypeMismatch { name, .. }
            | Self::Factory { name, .. }
            | Self::DuplicateName { name, .. }
            | Self::NeedsAwait { name } => Some(name),
            Self::Cycle { path } => path.first().map(String::as_str),
            Self::UnknownOperation { .. }
            | Self::MissingArgument { .. }
            | Self::BadRequest { .. }
            | Self::Forbidden { .. }
            | Self::AwaitRequired { .. }
            | Self::InvalidToken { .. } => None,
        }
    }

    /// The error's kind, as the admin answers of
    /// `SingletonCore::execute_json` (feature `json`) name it:
    /// `"bad_request"` (an unknown operation, a missing argument, a request that could not be
    /// read), `"invalid_name"`, `"rate_limited"`, `"type_mismatch"`, `"factory"`, `"cycle"`,
    /// `"duplicate_name"`, `"needs_await"`, or `"forbidden"` (from an [`Admin`](crate::Admin)).
    ///
    /// A stable, machine-readable string: match on it rather than on the message.
    ///
    /// ```
    /// use singleton_kit::{RateLimit, SingletonCore};
    ///
    /// let core = SingletonCore::with_rate_limit(RateLimit::per_second(1));
    /// assert_eq!(core.set("", 1_u8).unwrap_err().kind(), "invalid_name");
    /// core.set("a", 1_u8)?;
    /// assert_eq!(core.set("a", 2_u8).unwrap_err().kind(), "rate_limited");
    /// assert_eq!("frobnicate".parse::<singleton_kit::SingletonOperation>().unwrap_err().kind(), "bad_request");
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UnknownOperation { .. }
            | Self::MissingArgument { .. }
            | Self::BadRequest { .. }
            | Self::InvalidToken { .. } => "bad_request",
            Self::Forbidden { .. } => "forbidden",
            Self::InvalidName { .. } => "invalid_name",
            Self::RateLimited { .. } => "rate_limited",
            Self::TypeMismatch { .. } => "type_mismatch",
            Self::Factory { .. } => "factory",
            Self::Cycle { .. } => "cycle",
            Self::DuplicateName { .. } => "duplicate_name",
            Self::NeedsAwait { .. } | Self::AwaitRequired { .. } => "needs_await",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_messages_name_what_was_refused() {
        let one = SingletonError::RateLimited {
            operation: "get",
            name: Some("cache".into()),
            retry_after: Duration::from_millis(5),
        };
        assert_eq!(one.to_string(), "rate limit exceeded for `get` on singleton `cache`: retry after 5ms");
        let all = SingletonError::RateLimited { operation: "clear", name: None, retry_after: Duration::ZERO };
        assert_eq!(all.to_string(), "rate limit exceeded for `clear` on all singletons: retry after 0ns");
        assert_eq!(all.singleton_name(), None);
        let star = SingletonError::RateLimited {
            operation: "get",
            name: Some("*".into()),
            retry_after: Duration::ZERO,
        };
        assert_eq!(star.to_string(), "rate limit exceeded for `get` on singleton `*`: retry after 0ns");
        assert_eq!(star.singleton_name(), Some("*"));
    }
}
