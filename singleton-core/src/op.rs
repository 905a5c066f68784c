//! The names of the core's operations: the vocabulary every layer shares (the gate counts and
//! refuses by operation, errors and metrics name it, requests carry it).

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::SingletonError;

/// One of the core's name-keyed operations, with the seed design's names.
///
/// ```
/// use singleton_kit::SingletonOperation;
///
/// let op: SingletonOperation = "get_stats".parse()?;
/// assert_eq!(op, SingletonOperation::GetStats);
/// assert_eq!("stats".parse::<SingletonOperation>()?, SingletonOperation::GetStats);
/// assert_eq!(SingletonOperation::ResetAll.to_string(), "reset_all");
/// assert!("drop".parse::<SingletonOperation>().is_err());
///
/// // With serde, as the same strings.
/// assert_eq!(serde_json::to_string(&SingletonOperation::GetStats).unwrap(), r#""get_stats""#);
/// let op: SingletonOperation = serde_json::from_str(r#""stats""#).unwrap();
/// assert_eq!(op, SingletonOperation::GetStats);
/// assert!(serde_json::from_str::<SingletonOperation>(r#""drop""#).is_err());
/// # Ok::<(), singleton_kit::SingletonError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SingletonOperation {
    /// `"get"`: the instance under a name.
    Get,
    /// `"set"`: store an instance under a name.
    Set,
    /// `"has"`: is an instance stored under a name.
    Has,
    /// `"delete"`: remove the instance under a name.
    Delete,
    /// `"clear"`: remove every instance.
    Clear,
    /// `"get_stats"` (or `"stats"`): the statistics snapshot.
    GetStats,
    /// `"reset"`: clear the rate limiter's window and refusal count.
    Reset,
    /// `"reset_all"`: the legacy name of `clear`.
    ResetAll,
    /// `"exists"`: the legacy name of `has`.
    Exists,
    /// `"list"`: every registered `#[singleton]` and every live run-time entry, created or not,
    /// with its state; creates nothing and counts no access.
    List,
    /// `"health"`: the created singletons' health checks (async only: the sync `execute`
    /// answers `needs_await`).
    Health,
}

/// Who may run an operation, as an [`AdminPolicy`](crate::AdminPolicy) sorts them.
///
/// ```
/// use singleton_kit::{OperationClass, SingletonOperation};
///
/// assert_eq!(SingletonOperation::List.class(), OperationClass::Observe);
/// assert_eq!(SingletonOperation::Get.class(), OperationClass::Create);
/// assert_eq!(SingletonOperation::Clear.class(), OperationClass::Change);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OperationClass {
    /// Looks and changes nothing: `get_stats`, `has`, `exists`, `list`, `health` (which runs the
    /// checks, and they may reach downstream services).
    Observe,
    /// May run a registered factory and counts an access: `get`.
    Create,
    /// Changes the registry or the limiter: `set`, `delete`, `clear`, `reset_all`, `reset`.
    Change,
}

impl SingletonOperation {
    /// Every operation: the seed design's nine in its order, then `list` and `health`.
    pub const ALL: [Self; 11] = [
        Self::Get,
        Self::Set,
        Self::Has,
        Self::Delete,
        Self::Clear,
        Self::GetStats,
        Self::Reset,
        Self::ResetAll,
        Self::Exists,
        Self::List,
        Self::Health,
    ];

    /// The names [`FromStr`] accepts for [`ALL`](Self::ALL), in the same order.
    pub const NAMES: [&'static str; 11] = [
        "get",
        "set",
        "has",
        "delete",
        "clear",
        "get_stats",
        "reset",
        "reset_all",
        "exists",
        "list",
        "health",
    ];

    /// The seed design's name of the operation.
    pub const fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// Who may run it: see [`OperationClass`].
    pub const fn class(self) -> OperationClass {
        match self {
            Self::GetStats | Self::Has | Self::Exists | Self::List | Self::Health => OperationClass::Observe,
            Self::Get => OperationClass::Create,
            Self::Set | Self::Delete | Self::Clear | Self::Reset | Self::ResetAll => OperationClass::Change,
        }
    }

    /// `true` for the operations that need a name (`get`, `set`, `has`, `delete`, `exists`).
    pub const fn takes_name(self) -> bool {
        matches!(self, Self::Get | Self::Set | Self::Has | Self::Delete | Self::Exists)
    }
}

impl fmt::Display for SingletonOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SingletonOperation {
    type Err = SingletonError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "stats" {
            return Ok(Self::GetStats);
        }
        Self::NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| Self::ALL[i])
            .ok_or_else(|| SingletonError::UnknownOperation { operation: s.to_owned() })
    }
}

impl Serialize for SingletonOperation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SingletonOperation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;

        impl Visitor<'_> for Name {
            type Value = SingletonOperation;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the name of a singleton operation")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<SingletonOperation, E> {
                s.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_str(Name)
    }
}
