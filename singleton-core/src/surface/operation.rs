//! The name-keyed operations as data: what an admin endpoint or a Lambda event sends.

use crate::{AnyInstance, SingletonError, SingletonOperation, SingletonValue, Stats};

/// One operation as data, for [`SingletonCore::execute`](crate::SingletonCore::execute).
///
/// With the `json` feature (on by default) it also deserializes from the admin request shape
/// `{"operation": "...", "name": "...", "correlation_id": "...", "value": <any JSON>}`, as
/// `SingletonCore::execute_json` reads it.
///
/// ```
/// use singleton_kit::{Request, Response, SingletonCore, SingletonValue};
///
/// let core = SingletonCore::new();
/// let set = Request::parse("set")?.name("answer").value(SingletonValue::new(42_u32));
/// assert!(matches!(core.execute(set)?, Response::Stored));
/// let get = Request::parse("get")?.name("answer").correlation_id("req-17");
/// let Response::Value(Some(v)) = core.execute(get)? else { panic!("expected a value") };
/// assert_eq!(*v.downcast::<u32>().unwrap(), 42);
/// # Ok::<(), singleton_kit::SingletonError>(())
/// ```
#[derive(Debug)]
pub struct Request {
    pub(crate) operation: SingletonOperation,
    pub(crate) name: Option<String>,
    pub(crate) value: Option<SingletonValue>,
    pub(crate) correlation_id: Option<String>,
}

impl Request {
    /// A request for `operation`, with no arguments yet.
    ///
    /// ```
    /// use singleton_kit::{Request, Response, SingletonCore, SingletonOperation};
    ///
    /// let core = SingletonCore::new();
    /// let request = Request::new(SingletonOperation::Has).name("cache");
    /// assert_eq!(request.operation(), SingletonOperation::Has);
    /// assert!(matches!(core.execute(request)?, Response::Bool(false)));
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    pub fn new(operation: SingletonOperation) -> Self {
        Self { operation, name: None, value: None, correlation_id: None }
    }

    /// A request for the operation named `operation` (`"get"`, `"get_stats"`, ...).
    ///
    /// ```
    /// use singleton_kit::{Request, SingletonError, SingletonOperation};
    ///
    /// assert_eq!(Request::parse("stats")?.operation(), SingletonOperation::GetStats);
    /// let err = Request::parse("drop").unwrap_err();
    /// assert!(matches!(err, SingletonError::UnknownOperation { .. }));
    /// assert!(err.to_string().contains("get_stats"));
    /// # Ok::<(), SingletonError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`SingletonError::UnknownOperation`], listing the valid names.
    pub fn parse(operation: &str) -> Result<Self, SingletonError> {
        operation.parse().map(Self::new)
    }

    /// The singleton's name, for `get`, `set`, `has`, `delete` and `exists`.
    ///
    /// ```
    /// use singleton_kit::{Request, Response, SingletonCore, SingletonError};
    ///
    /// let core = SingletonCore::new();
    /// let err = core.execute(Request::parse("has")?).unwrap_err();
    /// assert!(matches!(err, SingletonError::MissingArgument { argument: "a name", .. }));
    /// assert!(matches!(core.execute(Request::parse("has")?.name("cache"))?, Response::Bool(false)));
    /// # Ok::<(), SingletonError>(())
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The value to store, for `set`.
    ///
    /// ```
    /// use singleton_kit::{Request, Response, SingletonCore, SingletonValue};
    ///
    /// let core = SingletonCore::new();
    /// let set = Request::parse("set")?.name("limit").value(SingletonValue::new(10_u32));
    /// assert!(matches!(core.execute(set)?, Response::Stored));
    /// assert_eq!(*core.get::<u32>("limit")?.expect("stored"), 10);
    /// assert!(core.execute(Request::parse("set")?.name("limit")).is_err()); // no value
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    pub fn value(mut self, value: SingletonValue) -> Self {
        self.value = Some(value);
        self
    }

    /// The caller's correlation id: the operation's `tracing` events carry it.
    ///
    /// ```
    /// use singleton_kit::{Request, Response, SingletonCore};
    ///
    /// let core = SingletonCore::new();
    /// // The events of this `clear` are emitted in a span with `correlation_id = "req-42"`.
    /// let request = Request::parse("clear")?.correlation_id("req-42");
    /// assert!(matches!(core.execute(request)?, Response::Count(0)));
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// The operation.
    ///
    /// ```
    /// use singleton_kit::{Request, SingletonOperation};
    ///
    /// let request = Request::parse("reset_all")?.correlation_id("req-7");
    /// assert_eq!(request.operation(), SingletonOperation::ResetAll);
    /// assert!(!request.operation().takes_name());
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    pub fn operation(&self) -> SingletonOperation {
        self.operation
    }
}

/// What [`SingletonCore::execute`](crate::SingletonCore::execute) returns, one variant per shape
/// of result.
///
/// ```
/// use singleton_kit::{Request, Response, SingletonCore};
///
/// let core = SingletonCore::new();
/// core.set("n", 1_u8)?;
/// match core.execute(Request::parse("get_stats")?)? {
///     Response::Stats(stats) => assert_eq!(stats.total_singletons, 1),
///     other => panic!("expected stats, got {other:?}"),
/// }
/// # Ok::<(), singleton_kit::SingletonError>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Response {
    /// `get`: the instance, or `None` when there is none.
    Value(Option<AnyInstance>),
    /// `set`: the value was stored.
    Stored,
    /// `has`, `exists`, `delete`, `reset`.
    Bool(bool),
    /// `clear`, `reset_all`: how many instances were removed.
    Count(usize),
    /// `get_stats`.
    Stats(Box<Stats>),
}
