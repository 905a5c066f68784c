//! Admin operations over JSON: [`Request`] read from a JSON object, and
//! [`SingletonCore::execute_json`], which parses one request, runs it and answers in JSON.
//!
//! This module is behind the cargo feature `json`, which is **on by default** in `singleton-core`
//! and in `singleton-kit`: the seed design runs its operations from Lambda events, so a plain
//! dependency on singleton-kit can answer them. It is the only thing that makes `serde_json` a
//! dependency; `default-features = false` leaves it (and this module) out.
//!
//! # The answers
//!
//! ```json
//! {"operation": "get_stats", "ok": true, "result": { ...the Stats JSON... }, "correlation_id": "req-1"}
//! {"operation": "has", "ok": true, "result": true}
//! {"operation": "set", "ok": true, "result": true}
//! {"operation": "clear", "ok": true, "result": 3}
//! {"operation": "get", "ok": true, "result": {"name": "x", "type": "app::X", "access_count": 4, "created_at": 1764600000.5}}
//! {"operation": "get", "ok": true, "result": null}
//! {"operation": "delete", "ok": false, "error": {"kind": "rate_limited", "message": "...", "retry_after_ms": 12}}
//! {"operation": null, "ok": false, "error": {"kind": "bad_request", "message": "unknown operation `frobnicate`; valid: get, set, ..."}}
//! ```
//!
//! # Untrusted input
//!
//! Everything in a request comes from outside. Input longer than [`MAX_JSON_REQUEST_BYTES`] is
//! refused unread; nesting deeper than 128 levels anywhere in it (the request's own object
//! counted as the first, unknown fields included) is refused before it is parsed; malformed JSON, a top
//! level that is not an object, a missing, repeated or wrong-typed field and an unknown operation
//! are answered `bad_request` before anything runs, so they change nothing and take no rate-limit
//! slot. A panic in user code (a factory, or a value's `Drop` run by `set`, `delete` or `clear`)
//! is caught and answered as kind `factory` with the panic's message.
//!
//! # Sharing with an async twin
//!
//! Parsing ([`parse`]) and answering ([`answer`]) do not run anything; [`run_caught`] wraps the
//! run. `execute_json` is those three around [`SingletonCore::execute`]; an async form only needs
//! to put its own awaited run (and its own unwind catching) in the middle.

use std::any::Any;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::lifecycle::join::CatchUnwind;
use crate::surface::stats::unix_seconds;
use crate::{
    AnyInstance, Request, Response, Result, SingletonCore, SingletonError, SingletonOperation, SingletonValue,
};

/// The longest input, in bytes, that [`SingletonCore::execute_json`] reads: 1 MiB. Longer input
/// is answered `bad_request` without being parsed.
///
/// ```
/// use singleton_kit::{SingletonCore, MAX_JSON_REQUEST_BYTES};
///
/// let core = SingletonCore::new();
/// let huge = format!(r#"{{"operation": "has", "name": "{}"}}"#, "x".repeat(MAX_JSON_REQUEST_BYTES));
/// let answer: serde_json::Value = serde_json::from_str(&core.execute_json(&huge)).unwrap();
/// assert_eq!(answer["ok"], false);
/// assert_eq!(answer["error"]["kind"], "bad_request");
/// ```
pub const MAX_JSON_REQUEST_BYTES: usize = 1 << 20;

impl SingletonCore {
    /// Runs one admin operation given as JSON and answers in JSON; never panics.
    ///
    /// **This is the trusted, in-process path: it runs every operation, `clear` and `set`
    /// included, for whoever wrote `input`.** Do not wire it to input from outside the process
    /// (a Lambda event, an HTTP body): give that to an [`Admin`](crate::Admin) instead
    /// ([`SingletonCore::admin`](crate::SingletonCore::admin)), whose
    /// [`AdminPolicy`](crate::AdminPolicy) decides who may do what.
    ///
    /// The request is `{"operation": "...", "name": "...", "correlation_id": "...", "value": ...}`
    /// (`name`, `correlation_id` and `value` optional, `null` for `name` and `correlation_id` the
    /// same as absent, unknown fields ignored, `"stats"` accepted for `get_stats`). `value` is
    /// read only by `set`, which stores it as a [`serde_json::Value`].
    ///
    /// The answer is `{"operation": <canonical name, or null>, "ok": true, "result": ...}` or
    /// `{"operation": ..., "ok": false, "error": {"kind": ..., "message": ...}}`, with
    /// `"correlation_id"` echoed whenever the request's could be read (errors included). Results:
    /// `get_stats` the [`Stats`](crate::Stats) JSON; `has`, `exists`, `delete`, `reset` a bool;
    /// `clear`, `reset_all` the count removed; `set` `true`; `get` `null` when there is no
    /// instance, else `{"name", "type", "access_count", "created_at"}` (the access count includes
    /// this `get`; `created_at` in Unix seconds) plus `"value"` when the instance is a
    /// `serde_json::Value`.
    ///
    /// Error kinds are [`SingletonError::kind`]'s; a refusal by the rate limit adds
    /// `"retry_after_ms"` (an integer, rounded up). An invalid name, a missing argument and a
    /// refusal are errors for every operation, as in [`execute`](Self::execute). A request that
    /// cannot be read is `bad_request`, changes nothing and takes no rate-limit slot: input over [`MAX_JSON_REQUEST_BYTES`],
    /// nesting deeper than 128 levels anywhere (the request's own object is the first), malformed JSON, a missing, repeated or wrong-typed field,
    /// an unknown operation. A panic in user code (a factory, or a
    /// `Drop`) is caught and answered with kind `factory` and the panic's message.
    ///
    /// ```
    /// use singleton_kit::SingletonCore;
    /// use serde_json::{json, Value};
    ///
    /// let core = SingletonCore::new();
    /// let answer = |request: Value| -> Value {
    ///     serde_json::from_str(&core.execute_json(&request.to_string())).unwrap()
    /// };
    ///
    /// let set = answer(json!({"operation": "set", "name": "flags", "value": {"beta": true}}));
    /// assert_eq!(set, json!({"operation": "set", "ok": true, "result": true}));
    ///
    /// let got = answer(json!({"operation": "get", "name": "flags", "correlation_id": "req-1"}));
    /// assert_eq!(got["ok"], true);
    /// assert_eq!(got["correlation_id"], "req-1");
    /// assert_eq!(got["result"]["value"], json!({"beta": true}));
    /// assert_eq!(got["result"]["access_count"], 1);
    ///
    /// let bad = answer(json!({"operation": "frobnicate", "correlation_id": "req-2"}));
    /// assert_eq!(bad["operation"], Value::Null);
    /// assert_eq!(bad["error"]["kind"], "bad_request");
    /// assert_eq!(bad["correlation_id"], "req-2");
    ///
    /// let blank = answer(json!({"operation": "has", "name": " "}));
    /// assert_eq!(blank["error"]["kind"], "invalid_name");
    /// ```
    pub fn execute_json(&self, input: &str) -> String {
        let parsed = parse(input);
        let outcome = parsed.request.and_then(|request| run_caught(request, |request| self.execute(request)));
        answer(parsed.operation, parsed.correlation_id.as_deref(), outcome)
    }

    /// [`execute_json`](Self::execute_json) from async code: a `get` of an async `#[singleton]`
    /// that has no instance yet creates it (awaiting its factory, or joining the creation in
    /// progress), where `execute_json` answers `needs_await`. Every other operation is answered
    /// exactly as `execute_json` answers it. Never panics.
    ///
    /// ```
    /// use singleton_kit::{singleton, SingletonCore};
    /// use serde_json::Value;
    ///
    /// #[singleton(name = "doc_json_async", factory = Sqs::connect, async)]
    /// struct Sqs;
    ///
    /// impl Sqs {
    ///     async fn connect() -> Sqs {
    ///         Sqs
    ///     }
    /// }
    ///
    /// let core = SingletonCore::new();
    /// let request = r#"{"operation": "get", "name": "doc_json_async"}"#;
    /// let sync: Value = serde_json::from_str(&core.execute_json(request)).unwrap();
    /// assert_eq!(sync["error"]["kind"], "needs_await");
    /// let answer = futures::executor::block_on(core.execute_json_async(request));
    /// let answer: Value = serde_json::from_str(&answer).unwrap();
    /// assert_eq!(answer["ok"], true);
    /// assert_eq!(answer["result"]["name"], "doc_json_async");
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses nothing: a creation it was driving is driven on by the next caller.
    pub async fn execute_json_async(&self, input: &str) -> String {
        let parsed = parse(input);
        let outcome = match parsed.request {
            Ok(request) => run_caught_async(self, request).await,
            Err(err) => Err(err),
        };
        answer(parsed.operation, parsed.correlation_id.as_deref(), outcome)
    }
}

/// [`run_caught`] for [`SingletonCore::execute_async`](crate::SingletonCore): the async run,
/// with its polls under `catch_unwind`.
pub(crate) async fn run_caught_async(core: &SingletonCore, request: Request) -> Result<Value> {
    let operation = request.operation;
    let name = request.name.clone();
    CatchUnwind(std::pin::pin!(async { core.execute_async(request).await.map(result) }))
        .await
        .unwrap_or_else(|payload| Err(panicked(operation, name, payload.as_ref())))
}

/// What could be read of a request: its operation and correlation id even when the rest could not.
pub(crate) struct Parsed {
    /// The operation, when it was read and known.
    pub(crate) operation: Option<SingletonOperation>,
    /// The correlation id, when it was read as a string.
    pub(crate) correlation_id: Option<String>,
    /// The request, or why it is a bad request.
    pub(crate) request: Result<Request>,
}

/// Reads one request. Runs nothing.
pub(crate) fn parse(input: &str) -> Parsed {
    if input.len() > MAX_JSON_REQUEST_BYTES {
        let reason =
            format!("the request is {} bytes long; at most {MAX_JSON_REQUEST_BYTES} are read", input.len());
        return Parsed { operation: None, correlation_id: None, request: Err(bad(reason)) };
    }
    if let Some(at) = too_deep(input.as_bytes()) {
        let reason = format!(
            "the request nests deeper than {MAX_JSON_DEPTH} levels (at byte {at}); at most \
             {MAX_JSON_DEPTH} are read, the request's own object counted"
        );
        return Parsed { operation: None, correlation_id: None, request: Err(bad(reason)) };
    }
    let mut raw = Raw::default();
    let mut de = serde_json::Deserializer::from_str(input);
    // `too_deep` has bounded the depth of the whole document, unknown fields included (serde_json
    // checks it only where it builds values, and one level short of 128).
    de.disable_recursion_limit();
    let read = RawSeed(&mut raw).deserialize(&mut de).and_then(|()| de.end());
    let correlation_id = match &raw.correlation_id {
        Some(Value::String(id)) => Some(id.clone()),
        _ => None,
    };
    let operation = match &raw.operation {
        Some(Value::String(op)) => op.parse().ok(),
        _ => None,
    };
    let request = match read {
        Ok(()) => raw.into_request(),
        Err(err) => Err(bad(err.to_string())),
    };
    if let Err(err) = &request {
        tracing::debug!(correlation_id, error = %err, "singleton request not read");
    }
    Parsed { operation, correlation_id, request }
}

/// How deep a request may nest, its own object counted as the first level: deeper input is
/// `bad_request` before it is parsed, wherever the nesting is (unknown fields included).
pub(crate) const MAX_JSON_DEPTH: usize = 128;

/// Where `input` nests deeper than [`MAX_JSON_DEPTH`]: the byte offset of the first bracket one
/// level too deep. A bracket inside a string is text; the rest of the syntax is the parser's.
/// One pass over the bytes, with no recursion, however deep the input.
fn too_deep(input: &[u8]) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0_usize, false, false);
    for (at, &byte) in input.iter().enumerate() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Some(at);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Runs `run` on `request` and turns its response into the answer's `result`, turning a panic
/// into `Err(Factory)` naming the request's singleton. The response is let go of inside the
/// catch too: dropping the last handle to a replaced instance runs that value's `Drop`.
pub(crate) fn run_caught(request: Request, run: impl FnOnce(Request) -> Result<Response>) -> Result<Value> {
    let operation = request.operation;
    let name = request.name.clone();
    panic::catch_unwind(AssertUnwindSafe(|| run(request).map(result)))
        .unwrap_or_else(|payload| Err(panicked(operation, name, payload.as_ref())))
}

/// The error a panic during `operation` is answered with.
pub(crate) fn panicked(
    operation: SingletonOperation,
    name: Option<String>,
    payload: &(dyn Any + Send),
) -> SingletonError {
    let message = crate::error::panic_message(payload);
    let name = name.filter(|_| operation.takes_name()).unwrap_or_else(|| "all singletons".to_owned());
    SingletonError::Factory { name, source: format!("panicked during `{operation}`: {message}").into() }
}

/// The answer to one request, as JSON text.
pub(crate) fn answer(
    operation: Option<SingletonOperation>,
    correlation_id: Option<&str>,
    outcome: Result<Value>,
) -> String {
    let body = match outcome {
        Ok(result) => Body::Ok(result),
        Err(err) => Body::Err(err),
    };
    serde_json::to_string(&Answer { operation, correlation_id, body }).unwrap_or_else(|err| {
        // Not reached: every part is a string, a number, a bool or a `Value`. Still valid JSON.
        serde_json::json!({
            "operation": operation,
            "ok": false,
            "error": {"kind": "bad_request", "message": format!("the answer could not be written: {err}")},
        })
        .to_string()
    })
}

/// The `result` of a successful operation.
fn result(response: Response) -> Value {
    match response {
        Response::Value(None) => Value::Null,
        Response::Value(Some(instance)) => describe(&instance),
        Response::Stored => Value::Bool(true),
        Response::Bool(b) => Value::Bool(b),
        Response::Count(n) => Value::from(n),
        Response::Stats(stats) => serde_json::to_value(&*stats).unwrap_or(Value::Null),
        Response::List(list) => serde_json::to_value(&list).unwrap_or(Value::Null),
        Response::Health(report) => serde_json::to_value(&*report).unwrap_or(Value::Null),
    }
}

/// A `get` result: what the registry knows of the instance, and its value when it is JSON.
fn describe(instance: &AnyInstance) -> Value {
    let node = instance.node();
    let meta = node.meta();
    let mut out = serde_json::Map::new();
    out.insert("name".into(), instance.name().into());
    out.insert("type".into(), meta.type_name.into());
    out.insert("access_count".into(), node.accesses().into());
    out.insert("created_at".into(), unix_seconds(meta.created_at).into());
    if let Some(value) = instance.downcast::<Value>() {
        out.insert("value".into(), Value::clone(&value));
    }
    Value::Object(out)
}

struct Answer<'a> {
    operation: Option<SingletonOperation>,
    correlation_id: Option<&'a str>,
    body: Body,
}

enum Body {
    Ok(Value),
    Err(SingletonError),
}

impl Serialize for Answer<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("operation", &self.operation)?;
        match &self.body {
            Body::Ok(result) => {
                map.serialize_entry("ok", &true)?;
                map.serialize_entry("result", result)?;
            }
            Body::Err(err) => {
                map.serialize_entry("ok", &false)?;
                map.serialize_entry("error", &ErrorBody(err))?;
            }
        }
        if let Some(id) = self.correlation_id {
            map.serialize_entry("correlation_id", id)?;
        }
        map.end()
    }
}

struct ErrorBody<'a>(&'a SingletonError);

impl Serialize for ErrorBody<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("kind", self.0.kind())?;
        map.serialize_entry("message", &self.0.to_string())?;
        if let SingletonError::RateLimited { retry_after, .. } = self.0 {
            let ms = u64::try_from(retry_after.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
            map.serialize_entry("retry_after_ms", &ms)?;
        }
        map.end()
    }
}

fn bad(reason: impl Into<String>) -> SingletonError {
    SingletonError::BadRequest { reason: reason.into() }
}

/// The fields of a request as they were read, before their types are checked, so that the
/// operation and the correlation id can be answered with even when another field is wrong.
#[derive(Default)]
struct Raw {
    operation: Option<Value>,
    name: Option<Value>,
    correlation_id: Option<Value>,
    value: Option<Value>,
    token: Option<Value>,
    /// The first field that was given twice.
    repeated: Option<&'static str>,
}

impl Raw {
    fn into_request(self) -> Result<Request> {
        if let Some(field) = self.repeated {
            return Err(bad(format!("field `{field}` is given more than once")));
        }
        let operation = match self.operation {
            None => return Err(bad("missing field `operation`")),
            Some(Value::String(op)) => op.parse::<SingletonOperation>().map_err(|_| {
                SingletonError::UnknownOperation { operation: crate::registry::name::shorten(&op) }
            })?,
            Some(other) => return Err(wrong_type("operation", &other)),
        };
        let name = optional_string("name", self.name)?;
        let correlation_id = optional_string("correlation_id", self.correlation_id)?;
        let token = optional_string("token", self.token)?;
        let value = match operation {
            SingletonOperation::Set => self.value.map(SingletonValue::new),
            _ => None,
        };
        Ok(Request { operation, name, value, correlation_id, token, redact: false })
    }
}

fn optional_string(field: &str, value: Option<Value>) -> Result<Option<String>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong_type(field, &other)),
    }
}

fn wrong_type(field: &str, found: &Value) -> SingletonError {
    let found = match found {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    bad(format!("field `{field}` must be a string, not {found}"))
}

/// Reads a request object into a [`Raw`], keeping what it read even if a later part fails.
struct RawSeed<'a>(&'a mut Raw);

impl<'de> DeserializeSeed<'de> for RawSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> std::result::Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RawSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a request object such as {\"operation\": \"get\", \"name\": \"cache\"}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        let raw = self.0;
        while let Some(key) = map.next_key::<Key>()? {
            let (slot, field) = match key {
                Key::Operation => (&mut raw.operation, "operation"),
                Key::Name => (&mut raw.name, "name"),
                Key::CorrelationId => (&mut raw.correlation_id, "correlation_id"),
                Key::Value => (&mut raw.value, "value"),
                Key::Token => (&mut raw.token, "token"),
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            let value = map.next_value::<Value>()?;
            if slot.is_some() {
                raw.repeated.get_or_insert(field);
            } else {
                *slot = Some(value);
            }
        }
        Ok(())
    }
}

/// A request field's name; anything else is ignored.
enum Key {
    Operation,
    Name,
    CorrelationId,
    Value,
    Token,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct KeyVisitor;

        impl Visitor<'_> for KeyVisitor {
            type Value = Key;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<Key, E> {
                Ok(match s {
                    "operation" => Key::Operation,
                    "name" => Key::Name,
                    "correlation_id" => Key::CorrelationId,
                    "value" => Key::Value,
                    "token" => Key::Token,
                    _ => Key::Other,
                })
            }
        }

        deserializer.deserialize_identifier(KeyVisitor)
    }
}

/// Reads the admin request shape. `value` becomes a [`serde_json::Value`] stored by `set` (and
/// is ignored by the other operations); unknown fields are ignored.
///
/// ```
/// use singleton_kit::{Request, Response, SingletonCore, SingletonOperation};
///
/// let request: Request = serde_json::from_str(
///     r#"{"operation": "set", "name": "limits", "value": {"max": 8}, "extra": 1}"#,
/// ).unwrap();
/// assert_eq!(request.operation(), SingletonOperation::Set);
/// let core = SingletonCore::new();
/// assert!(matches!(core.execute(request)?, Response::Stored));
/// let limits = core.get::<serde_json::Value>("limits")?.expect("stored");
/// assert_eq!(limits["max"], 8);
///
/// assert!(serde_json::from_str::<Request>(r#"{"operation": "frobnicate"}"#).is_err());
/// assert!(serde_json::from_str::<Request>(r#"{"name": "x"}"#).is_err());
/// # Ok::<(), singleton_kit::SingletonError>(())
/// ```
impl<'de> Deserialize<'de> for Request {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let mut raw = Raw::default();
        RawSeed(&mut raw).deserialize(deserializer)?;
        raw.into_request().map_err(de::Error::custom)
    }
}
