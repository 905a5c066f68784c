//! The name-keyed operations as data: what an admin endpoint or a Lambda event sends.

use crate::registry::core::Denied;
use crate::Result;
use crate::{AnyInstance, HealthReport, Listed, SingletonError, SingletonOperation, SingletonValue, Stats};

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
pub struct Request {
    pub(crate) operation: SingletonOperation,
    pub(crate) name: Option<String>,
    pub(crate) value: Option<SingletonValue>,
    pub(crate) correlation_id: Option<String>,
    /// The admin token, for an [`Admin`](crate::Admin) whose policy asks for one. Never shown.
    pub(crate) token: Option<String>,
    /// Set by an [`Admin`](crate::Admin) for a request that may not see the health checks'
    /// error messages.
    pub(crate) redact: bool,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("operation", &self.operation)
            .field("name", &self.name)
            .field("value", &self.value)
            .field("correlation_id", &self.correlation_id)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
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
        Self { operation, name: None, value: None, correlation_id: None, token: None, redact: false }
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

    /// The admin token, for an [`Admin`](crate::Admin) whose policy asks for one (see
    /// [`AdminPolicy::require_token`](crate::AdminPolicy::require_token)). It is compared in
    /// constant time and never logged, echoed, or shown by `Debug`. [`SingletonCore::execute`]
    /// ignores it: the core's own methods are the trusted path.
    ///
    /// ```
    /// use singleton_kit::{AdminPolicy, Request, Response, SingletonCore};
    ///
    /// let core = SingletonCore::new();
    /// let admin = core.admin(AdminPolicy::observe_only().require_token("s3cret"));
    /// assert!(admin.execute(Request::parse("clear")?).is_err());
    /// assert!(matches!(admin.execute(Request::parse("clear")?.token("s3cret"))?, Response::Count(0)));
    /// assert!(!format!("{:?}", Request::parse("clear")?.token("s3cret")).contains("s3cret"));
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    ///
    /// [`SingletonCore::execute`]: crate::SingletonCore::execute
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
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
    /// `list`: every registered `#[singleton]` and every live run-time entry, sorted by name.
    List(Vec<Listed>),
    /// `health` (from the async entry points only).
    Health(Box<HealthReport>),
}

impl crate::SingletonCore {
    /// [`execute`](Self::execute) from async code: a `get` of an async `#[singleton]` that has no
    /// instance yet creates it (where `execute` answers `Err(NeedsAwait)`).
    #[cfg_attr(not(feature = "json"), allow(dead_code))]
    pub(crate) async fn execute_async(&self, request: Request) -> Result<Response> {
        use tracing::Instrument as _;
        if request.operation == SingletonOperation::Health {
            let report = self.health().await;
            return Ok(Response::Health(Box::new(if request.redact { report.redacted() } else { report })));
        }
        if request.operation != SingletonOperation::Get {
            return self.execute(request);
        }
        let span = match &request.correlation_id {
            Some(id) => tracing::info_span!("singleton_operation", correlation_id = %id),
            None => tracing::Span::none(),
        };
        let Some(name) = request.name.as_deref() else {
            return Err(SingletonError::MissingArgument { operation: "get", argument: "a name" });
        };
        let live = self.get_live_async(name, None).instrument(span).await?;
        Ok(Response::Value(live.map(|live| AnyInstance::new(live, name))))
    }

    /// Runs one operation given as data: the entry point of an admin endpoint or a Lambda event.
    ///
    /// Unlike the methods, which keep the seed design's `false` and `0`, every operation here
    /// says why it could not run: an invalid name, a missing argument and a rate-limit refusal
    /// are `Err` for `has`, `exists`, `delete`, `clear`, `reset_all` and `reset` too (as is an
    /// ambiguous name, `DuplicateName`). The rate limit is consulted once, as by the methods.
    ///
    /// When the request carries a correlation id, the operation's `tracing` events are emitted in
    /// a `singleton_operation` span with a `correlation_id` field.
    ///
    /// ```
    /// use singleton_kit::{Request, Response, SingletonCore, SingletonError};
    ///
    /// let core = SingletonCore::new();
    /// core.set("db_url", String::from("postgres://localhost"))?;
    /// let has = core.execute(Request::parse("has")?.name("db_url").correlation_id("req-1"))?;
    /// assert!(matches!(has, Response::Bool(true)));
    /// assert!(matches!(core.execute(Request::parse("clear")?)?, Response::Count(1)));
    /// let no_name = core.execute(Request::parse("delete")?);
    /// assert!(matches!(no_name, Err(SingletonError::MissingArgument { .. })));
    /// let blank = core.execute(Request::parse("has")?.name(" ")); // `core.has(" ")` is `false`
    /// assert!(matches!(blank, Err(SingletonError::InvalidName { .. })));
    /// # Ok::<(), SingletonError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The operation's own errors; `InvalidName`, `RateLimited` and `DuplicateName` for every
    /// operation that can meet them; `MissingArgument` when `get`, `set`, `has`, `delete` or
    /// `exists` comes without a name, or `set` without a value.
    pub fn execute(&self, request: Request) -> Result<Response> {
        let span = match &request.correlation_id {
            Some(id) => tracing::info_span!("singleton_operation", correlation_id = %id),
            None => tracing::Span::none(),
        };
        let _entered = span.enter();
        let op = request.operation;
        if op.takes_name() && request.name.is_none() {
            return Err(SingletonError::MissingArgument { operation: op.as_str(), argument: "a name" });
        }
        // Read only by the operations that take a name, which have one.
        let name = request.name.as_deref().unwrap_or_default();
        let deny = |denied: Denied| denied.into_error(op, op.takes_name().then_some(name));
        Ok(match op {
            SingletonOperation::Get => {
                Response::Value(self.get_live(name, None)?.map(|live| AnyInstance::new(live, name)))
            }
            SingletonOperation::Set => {
                let value = request
                    .value
                    .ok_or(SingletonError::MissingArgument { operation: op.as_str(), argument: "a value" })?;
                self.set_value(name, value)?;
                Response::Stored
            }
            SingletonOperation::Has | SingletonOperation::Exists => {
                Response::Bool(self.try_has(op, name).map_err(deny)?)
            }
            SingletonOperation::Delete => Response::Bool(self.try_delete(name).map_err(deny)?),
            SingletonOperation::Clear | SingletonOperation::ResetAll => {
                Response::Count(self.try_clear(op).map_err(deny)?)
            }
            SingletonOperation::GetStats => Response::Stats(Box::new(self.stats()?)),
            SingletonOperation::List => Response::List(self.list()?),
            SingletonOperation::Health => {
                return Err(SingletonError::AwaitRequired { operation: op.as_str() })
            }
            SingletonOperation::Reset => Response::Bool(self.try_reset().map_err(deny)?),
        })
    }
}
