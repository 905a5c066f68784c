//! Who may do what: an [`AdminPolicy`] applied by an [`Admin`] to every request that comes from
//! outside the process (a Lambda event, an HTTP route). The rate limit bounds how often; the
//! policy decides who.
//!
//! # The token
//!
//! A policy's secret and a request's token are compared in constant time over a fixed width of
//! 1 KiB: both are copied into zero-padded buffers of that size, and the buffers and the lengths
//! are compared with [`subtle`]'s `ConstantTimeEq`, whatever either holds. So the time taken
//! tells neither the secret's content nor its length, which is what comparing SHA-256 digests
//! would give, without a hash crate in every user's build. A request token over 1 KiB is refused
//! before it is compared. Neither is ever logged, echoed in an answer, stored in an error or
//! shown by `Debug`.

use std::fmt;
use std::sync::Arc;

use subtle::ConstantTimeEq;

use crate::op::OperationClass;
use crate::{manager, Request, Response, Result, SingletonCore, SingletonError, SingletonOperation};

/// The longest token, in bytes, that a policy holds or a request may carry: 1 KiB.
const MAX_TOKEN: usize = 1024;

/// How much of a correlation id a refusal's log line shows.
const MAX_LOGGED_ID: usize = 64;

/// A policy's secret, in a fixed-width buffer (see the module docs).
#[derive(Clone)]
struct Secret {
    bytes: Box<[u8; MAX_TOKEN]>,
    len: usize,
}

impl Secret {
    fn new(secret: &str) -> Result<Self> {
        if secret.is_empty() {
            return Err(SingletonError::InvalidToken { reason: "the token is empty" });
        }
        if secret.len() > MAX_TOKEN {
            return Err(SingletonError::InvalidToken { reason: "the token is longer than 1 KiB" });
        }
        let mut bytes = Box::new([0_u8; MAX_TOKEN]);
        bytes[..secret.len()].copy_from_slice(secret.as_bytes());
        Ok(Self { bytes, len: secret.len() })
    }

    /// `true` when `given` (at most [`MAX_TOKEN`] bytes) is the secret, in time that does not
    /// depend on either.
    fn matches(&self, given: &str) -> bool {
        let mut other = [0_u8; MAX_TOKEN];
        other[..given.len()].copy_from_slice(given.as_bytes());
        let same_bytes = self.bytes[..].ct_eq(&other[..]);
        let same_len = (self.len as u64).ct_eq(&(given.len() as u64));
        bool::from(same_bytes & same_len)
    }
}

/// Which operations an [`Admin`] runs, and for whom.
///
/// Operations fall in three classes ([`SingletonOperation::class`]): **observe** (`get_stats`,
/// `has`, `exists`, `list`), **create** (`get`, which may run a factory and counts an access) and
/// **change** (`set`, `delete`, `clear`, `reset_all`, `reset`); `health` is observe too (it runs
/// the checks, but its errors, which can name hosts, are shown only to a request that could run
/// something beyond observe). The rules, in order:
///
/// 1. An operation [denied](Self::deny) is refused to everyone, token or not.
/// 2. An observe operation that the policy allows runs for anyone; a token is not checked.
/// 3. With a [token](Self::require_token), every other operation not denied runs for a request
///    whose token is the policy's, and only for it.
/// 4. Without one, an operation runs when the policy allows it ([`all`](Self::all),
///    [`allow`](Self::allow)).
///
/// A refusal is `Err(Forbidden)` (kind `forbidden`), says what is missing, changes nothing and
/// takes no rate-limit slot. The policy is a value: its builder methods take and return it, and
/// the last `allow`/`deny` of an operation wins. The default is [`observe_only`](Self::observe_only).
///
/// ```
/// use singleton_kit::{AdminPolicy, SingletonOperation as Op};
///
/// let policy = AdminPolicy::observe_only().allow(Op::Get).deny(Op::List);
/// assert!(policy.check(Op::Get, None).is_ok());
/// assert!(policy.check(Op::Has, None).is_ok());
/// assert_eq!(policy.check(Op::List, None).unwrap_err().to_string(), "forbidden: `list` is not allowed here");
/// assert_eq!(policy.check(Op::Clear, None).unwrap_err().to_string(), "forbidden: `clear` is not allowed here");
///
/// let guarded = AdminPolicy::observe_only().require_token("s3cret");
/// assert_eq!(guarded.check(Op::Clear, None).unwrap_err().to_string(), "forbidden: `clear` needs a token");
/// assert!(guarded.check(Op::Clear, Some("s3cret")).is_ok());
/// assert!(!format!("{guarded:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
pub struct AdminPolicy {
    /// The operations allowed to anyone (one bit per operation).
    open: u32,
    /// The operations refused to everyone.
    denied: u32,
    secret: Option<Arc<Secret>>,
}

const fn bit(op: SingletonOperation) -> u32 {
    1 << op as u32
}

impl AdminPolicy {
    /// The observe operations for anyone, nothing else: the default of every outside surface.
    ///
    /// ```
    /// use singleton_kit::{AdminPolicy, SingletonOperation};
    ///
    /// let policy = AdminPolicy::observe_only();
    /// assert!(policy.check(SingletonOperation::GetStats, None).is_ok());
    /// assert!(policy.check(SingletonOperation::Get, None).is_err());
    /// ```
    pub fn observe_only() -> Self {
        let open = SingletonOperation::ALL
            .iter()
            .filter(|op| op.class() == OperationClass::Observe)
            .fold(0, |open, op| open | bit(*op));
        Self { open, denied: 0, secret: None }
    }

    /// Every operation for anyone: for a trusted caller only (a test, an internal tool).
    ///
    /// ```
    /// use singleton_kit::{AdminPolicy, SingletonOperation};
    ///
    /// assert!(AdminPolicy::all().check(SingletonOperation::Clear, None).is_ok());
    /// ```
    pub fn all() -> Self {
        let open = SingletonOperation::ALL.iter().fold(0, |open, op| open | bit(*op));
        Self { open, denied: 0, secret: None }
    }

    /// Allows `op` to anyone (undoing an earlier [`deny`](Self::deny) of it).
    ///
    /// ```
    /// use singleton_kit::{AdminPolicy, SingletonOperation};
    ///
    /// let policy = AdminPolicy::observe_only().allow(SingletonOperation::Get);
    /// assert!(policy.check(SingletonOperation::Get, None).is_ok());
    /// ```
    #[must_use]
    pub fn allow(mut self, op: SingletonOperation) -> Self {
        self.open |= bit(op);
        self.denied &= !bit(op);
        self
    }

    /// Refuses `op` to everyone, token or not (undoing an earlier [`allow`](Self::allow) of it).
    ///
    /// ```
    /// use singleton_kit::{AdminPolicy, SingletonOperation};
    ///
    /// let policy = AdminPolicy::all().deny(SingletonOperation::Clear).require_token("t");
    /// assert!(policy.check(SingletonOperation::Clear, Some("t")).is_err());
    /// ```
    #[must_use]
    pub fn deny(mut self, op: SingletonOperation) -> Self {
        self.denied |= bit(op);
        self.open &= !bit(op);
        self
    }

    /// Every operation beyond observe that the policy does not deny then runs for a request
    /// whose `token` is `secret`, and only for it. `observe_only().require_token(s)` is observe
    /// for anyone, the rest with the token.
    ///
    /// # Panics
    ///
    /// When `secret` is empty or longer than 1 KiB (as `RateLimit::new` does on a zero window);
    /// [`try_require_token`](Self::try_require_token) returns the error instead. The message
    /// does not show the secret.
    ///
    /// ```
    /// use singleton_kit::{AdminPolicy, SingletonOperation};
    ///
    /// let policy = AdminPolicy::observe_only().require_token("s3cret");
    /// assert!(policy.check(SingletonOperation::Set, Some("s3cret")).is_ok());
    /// assert!(policy.check(SingletonOperation::Set, Some("guess!")).is_err());
    /// ```
    #[must_use]
    #[track_caller]
    pub fn require_token(self, secret: impl AsRef<str>) -> Self {
        match self.try_require_token(secret) {
            Ok(policy) => policy,
            Err(err) => panic!("{err}"),
        }
    }

    /// [`require_token`](Self::require_token) that returns `Err(InvalidToken)` for an empty
    /// secret or one longer than 1 KiB, for a secret read from configuration.
    ///
    /// ```
    /// use singleton_kit::{AdminPolicy, SingletonError};
    ///
    /// let err = AdminPolicy::observe_only().try_require_token("").unwrap_err();
    /// assert!(matches!(err, SingletonError::InvalidToken { .. }));
    /// ```
    ///
    /// # Errors
    ///
    /// [`SingletonError::InvalidToken`].
    pub fn try_require_token(mut self, secret: impl AsRef<str>) -> Result<Self> {
        self.secret = Some(Arc::new(Secret::new(secret.as_ref())?));
        Ok(self)
    }

    /// The policy for a deployment whose token sits in the environment variable `var` (put a
    /// secret manager's value there at startup, not in code): observe-only when the variable is
    /// unset or empty, every operation with that token when it is set. A value that cannot be a
    /// token (over 1 KiB, or not Unicode) leaves the policy observe-only, and says so at `error`.
    ///
    /// ```
    /// use singleton_kit::{AdminPolicy, SingletonOperation};
    ///
    /// let policy = AdminPolicy::from_env("DOC_ADMIN_TOKEN_THAT_IS_NOT_SET");
    /// assert!(policy.check(SingletonOperation::List, None).is_ok());
    /// assert!(policy.check(SingletonOperation::Clear, Some("anything")).is_err());
    /// ```
    pub fn from_env(var: &str) -> Self {
        let base = Self::observe_only();
        match std::env::var(var) {
            Ok(secret) if secret.is_empty() => base,
            Ok(secret) => base.clone().try_require_token(secret).unwrap_or_else(|err| {
                tracing::error!(variable = var, error = %err, "admin token not used: observe-only");
                base
            }),
            Err(std::env::VarError::NotPresent) => base,
            Err(std::env::VarError::NotUnicode(_)) => {
                tracing::error!(variable = var, "admin token is not Unicode, not used: observe-only");
                base
            }
        }
    }

    /// `Ok` when this policy lets a request for `op` carrying `token` run; else
    /// `Err(Forbidden)` saying what it lacks. The token is not checked for an observe operation
    /// the policy allows.
    ///
    /// ```
    /// use singleton_kit::{AdminPolicy, SingletonOperation};
    ///
    /// let policy = AdminPolicy::observe_only().require_token("s3cret");
    /// assert!(policy.check(SingletonOperation::Has, Some("wrong")).is_ok()); // not checked
    /// let err = policy.check(SingletonOperation::Delete, Some("wrong")).unwrap_err();
    /// assert_eq!(err.kind(), "forbidden");
    /// assert!(!err.to_string().contains("wrong"));
    /// ```
    ///
    /// # Errors
    ///
    /// [`SingletonError::Forbidden`].
    pub fn check(&self, op: SingletonOperation, token: Option<&str>) -> Result<()> {
        let forbidden = |reason| Err(SingletonError::Forbidden { operation: op.as_str(), reason });
        if self.denied & bit(op) != 0 {
            return forbidden("is not allowed here");
        }
        let open = self.open & bit(op) != 0;
        if open && op.class() == OperationClass::Observe {
            return Ok(());
        }
        match (&self.secret, token) {
            (Some(_), None) => forbidden("needs a token"),
            (Some(_), Some(given)) if given.len() > MAX_TOKEN => {
                forbidden("needs a token: the request's token is longer than 1 KiB")
            }
            (Some(secret), Some(given)) if secret.matches(given) => Ok(()),
            (Some(_), Some(_)) => forbidden("needs a token: the request's token does not match"),
            (None, _) if open => Ok(()),
            (None, _) => forbidden("is not allowed here"),
        }
    }
}

impl AdminPolicy {
    /// `true` when a request carrying `token` may see details that can name hosts (a health
    /// check's error text): when the policy would run some operation beyond observe for it (its
    /// token, or `all()`).
    #[cfg_attr(not(feature = "json"), allow(dead_code))]
    pub(crate) fn shows_details(&self, token: Option<&str>) -> bool {
        SingletonOperation::ALL
            .iter()
            .any(|op| op.class() != OperationClass::Observe && self.check(*op, token).is_ok())
    }
}

impl Default for AdminPolicy {
    /// [`AdminPolicy::observe_only`].
    fn default() -> Self {
        Self::observe_only()
    }
}

impl fmt::Debug for AdminPolicy {
    /// The operations allowed to anyone and those denied, and whether a token is required: never
    /// the token itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |bits: u32| -> Vec<&'static str> {
            SingletonOperation::ALL.iter().filter(|op| bits & bit(**op) != 0).map(|op| op.as_str()).collect()
        };
        f.debug_struct("AdminPolicy")
            .field("open", &names(self.open))
            .field("denied", &names(self.denied))
            .field("token", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A core's operations for requests from outside the process, under an [`AdminPolicy`]: what a
/// Lambda function or an HTTP route hands its requests to. Made by
/// [`SingletonCore::admin`] (or [`admin`](crate::admin()) for the global core).
///
/// Checks run in this order, and the first that fails answers: the request is read
/// (`bad_request`), the policy allows it (`forbidden`), its name and arguments are valid
/// (`invalid_name`, `bad_request`), the rate limit admits it (`rate_limited`); then it runs. A
/// refusal by the policy changes nothing, takes no rate-limit slot and is logged at `warn` with
/// the operation and (its first 64 characters) the correlation id.
///
/// ```
/// use singleton_kit::{AdminPolicy, SingletonCore};
/// use serde_json::Value;
///
/// let core = SingletonCore::new();
/// core.set("config", 1_u8)?;
/// let admin = core.admin(AdminPolicy::from_env("DOC_ADMIN_TOKEN_NOT_SET"));
/// let answer: Value = serde_json::from_str(&admin.execute_json(r#"{"operation": "clear"}"#)).unwrap();
/// assert_eq!(answer["error"]["kind"], "forbidden");
/// assert!(core.has("config")); // nothing changed
/// let answer: Value = serde_json::from_str(&admin.execute_json(r#"{"operation": "list"}"#)).unwrap();
/// assert_eq!(answer["result"][0]["name"], "config");
/// # Ok::<(), singleton_kit::SingletonError>(())
/// ```
pub struct Admin<'a> {
    core: &'a SingletonCore,
    policy: AdminPolicy,
}

impl SingletonCore {
    /// This core's operations under `policy`, for requests from outside the process.
    ///
    /// ```
    /// use singleton_kit::{AdminPolicy, Request, SingletonCore};
    ///
    /// let core = SingletonCore::new();
    /// let admin = core.admin(AdminPolicy::observe_only());
    /// assert!(admin.execute(Request::parse("get_stats")?).is_ok());
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    pub fn admin(&self, policy: AdminPolicy) -> Admin<'_> {
        Admin { core: self, policy }
    }
}

/// The global core's operations under `policy`: [`SingletonCore::admin`] on [`manager()`].
///
/// ```
/// use singleton_kit::{admin, AdminPolicy, Request};
///
/// let err = admin(AdminPolicy::observe_only()).execute(Request::parse("reset")?).unwrap_err();
/// assert_eq!(err.kind(), "forbidden");
/// # Ok::<(), singleton_kit::SingletonError>(())
/// ```
pub fn admin(policy: AdminPolicy) -> Admin<'static> {
    manager().admin(policy)
}

impl<'a> Admin<'a> {
    /// The policy it applies.
    pub fn policy(&self) -> &AdminPolicy {
        &self.policy
    }

    /// The core it runs requests on.
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) fn core(&self) -> &'a SingletonCore {
        self.core
    }

    /// Runs `request` if the policy allows it, as [`SingletonCore::execute`] does.
    ///
    /// # Errors
    ///
    /// `Forbidden` when the policy refuses it; else as [`SingletonCore::execute`].
    pub fn execute(&self, request: Request) -> Result<Response> {
        self.admit(&request)?;
        self.core.execute(request)
    }

    /// The policy's decision on `request`; a refusal is logged.
    pub(crate) fn admit(&self, request: &Request) -> Result<()> {
        let decision = self.policy.check(request.operation, request.token.as_deref());
        if let Err(err) = &decision {
            let correlation_id = request
                .correlation_id
                .as_deref()
                .map(|id| id.chars().take(MAX_LOGGED_ID).collect::<String>());
            tracing::warn!(
                operation = request.operation.as_str(),
                correlation_id,
                error = %err,
                "singleton admin request refused"
            );
        }
        decision
    }
}

#[cfg(feature = "json")]
impl Admin<'_> {
    /// Runs one request given as JSON if the policy allows it, and answers in JSON as
    /// [`SingletonCore::execute_json`] does (kind `forbidden` for a refusal); never panics. The
    /// request's token is its `"token"` field (a string).
    pub fn execute_json(&self, input: &str) -> String {
        use crate::surface::json;
        let parsed = json::parse(input);
        let outcome = parsed.request.and_then(|request| {
            self.admit(&request)?;
            json::run_caught(request, |request| self.core.execute(request))
        });
        json::answer(parsed.operation, parsed.correlation_id.as_deref(), outcome)
    }

    /// [`execute_json`](Self::execute_json) from async code: a `get` of an async `#[singleton]`
    /// is awaited, as [`SingletonCore::execute_json_async`] does.
    ///
    /// # Cancel safety
    ///
    /// As [`SingletonCore::execute_json_async`].
    pub async fn execute_json_async(&self, input: &str) -> String {
        use crate::surface::json;
        let parsed = json::parse(input);
        let outcome = self.run_async(parsed.request).await;
        json::answer(parsed.operation, parsed.correlation_id.as_deref(), outcome)
    }

    /// Runs a parsed request from async code if the policy allows it: the result of an answer.
    pub(crate) async fn run_async(&self, request: Result<Request>) -> Result<serde_json::Value> {
        let mut request = request?;
        self.admit(&request)?;
        request.redact = !self.policy.shows_details(request.token.as_deref());
        crate::surface::json::run_caught_async(self.core, request).await
    }
}

impl fmt::Debug for Admin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admin").field("policy", &self.policy).finish_non_exhaustive()
    }
}
