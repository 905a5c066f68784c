//! The HTTP admin for servers (feature `axum`): the admin surface as an [`axum::Router`] that a
//! server mounts, so that it does not write the glue (status codes, `Retry-After`, the token
//! header, a page) itself.
//!
//! | route | answer |
//! |---|---|
//! | `GET /singletons` | the `list` result itself: a JSON array of [`Listed`](crate::Listed), no envelope |
//! | `GET /singletons/graph` | the [`Graph`](crate::Graph) JSON; `Accept: text/vnd.graphviz` or `?format=dot` gives DOT |
//! | `GET /singletons/graph.svg` | the graph drawn as SVG, pending singletons drawn apart from created ones |
//! | `GET /singletons/health` | the [`HealthReport`](crate::HealthReport) JSON: status 200 when up, 503 when down |
//! | `POST /singletons/admin` | a JSON [`Request`](crate::Request) through the [`Admin`](crate::Admin), answered as [`Admin::execute_json_async`](crate::Admin::execute_json_async) answers it |
//! | `GET /singletons/ui` | one self-contained HTML page: the list, refreshed every few seconds, the health on demand, and the graph |
//!
//! Every route goes through the [`Admin`](crate::Admin) of the policy given: the GET routes are
//! the observe operations `list` (the list, the graph and the page) and `health`, so
//! `deny(SingletonOperation::List)` closes the first four. The token of a request is the bearer
//! token of its `Authorization` header (`Authorization: Bearer <token>`), or, on the POST route,
//! the request's own `"token"` field. An error answers the JSON envelope of
//! [`execute_json`](crate::SingletonCore::execute_json) (`{"operation", "ok": false, "error":
//! {"kind", "message"}}`) with the status of its kind:
//!
//! | kind | status |
//! |---|---|
//! | `bad_request`, `invalid_name` | 400 Bad Request |
//! | `forbidden` | 403 Forbidden |
//! | `type_mismatch`, `duplicate_name`, `cycle` | 409 Conflict |
//! | `rate_limited` | 429 Too Many Requests, with `Retry-After` in whole seconds (rounded up, at least 1) |
//! | `factory` (and `needs_await`, which the async path never answers) | 500 Internal Server Error |
//!
//! A POST whose `Content-Type` is not `application/json` is 415 (which also keeps a cross-site
//! form from posting), a body over 1 MiB ([`MAX_JSON_REQUEST_BYTES`]) is 413, a method a route does
//! not serve is 405 with an `Allow` header: each with the same envelope, kind `bad_request`. An
//! unknown path is axum's own 404. The router binds nothing: the user's server serves it.

mod page;
pub(crate) mod svg;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::{get, post, MethodRouter};
use axum::Router;

use crate::surface::json::{self, MAX_JSON_REQUEST_BYTES};
use crate::{
    manager, Admin, AdminPolicy, Request, Response, SingletonCore, SingletonError, SingletonOperation,
};

/// The admin routes of the global core ([`manager()`](crate::manager)) under `policy`:
/// [`router_with`]`(manager(), policy)`.
///
/// Mount it in the server's own router; it binds nothing itself. Give it
/// [`AdminPolicy::observe_only`] unless the callers that can reach it may change the singletons.
///
/// ```
/// use singleton_kit::AdminPolicy;
///
/// // Observe for anyone; `get`, `set`, `delete`, `clear` and the rest with the token.
/// let policy = AdminPolicy::from_env("ADMIN_TOKEN");
/// let app: axum::Router = axum::Router::new().merge(singleton_kit::http::router(policy));
/// # drop(app);
/// ```
pub fn router(policy: AdminPolicy) -> Router {
    router_with(manager(), policy)
}

/// The admin routes of `core` under `policy`: the routes of [`router`], for another core than
/// the global one.
///
/// ```
/// use singleton_kit::{AdminPolicy, SingletonCore};
///
/// static CORE: std::sync::LazyLock<SingletonCore> = std::sync::LazyLock::new(SingletonCore::new);
/// let app = singleton_kit::http::router_with(&CORE, AdminPolicy::observe_only());
/// # drop(app);
/// ```
pub fn router_with(core: &'static SingletonCore, policy: AdminPolicy) -> Router {
    let admin: Shared = Arc::new(core.admin(policy));
    Router::new()
        .route("/singletons", only_get(list))
        .route("/singletons/graph", only_get(graph))
        .route("/singletons/graph.svg", only_get(graph_svg))
        .route("/singletons/health", only_get(health))
        .route("/singletons/ui", only_get(ui))
        .route("/singletons/admin", post(admin_request).fallback(|| async { not_allowed("POST") }))
        .with_state(admin)
}

/// What every handler holds: the admin of the core, under the router's policy.
type Shared = Arc<Admin<'static>>;

/// A GET route (HEAD too, as axum serves it) whose other methods answer 405.
fn only_get<H, T>(handler: H) -> MethodRouter<Shared>
where
    H: axum::handler::Handler<T, Shared>,
    T: 'static,
{
    get(handler).fallback(|| async { not_allowed("GET, HEAD") })
}

/// `GET /singletons`: the list itself.
async fn list(State(admin): State<Shared>, headers: HeaderMap) -> HttpResponse {
    let op = SingletonOperation::List;
    match admin.execute(request(op, &headers)) {
        Ok(Response::List(list)) => json_body(StatusCode::OK, serde_json::to_vec(&list)),
        Ok(_) => unreachable!("`list` answers a list"),
        Err(err) => error(Some(op), err),
    }
}

/// `GET /singletons/graph`: JSON, or DOT when asked for.
async fn graph(State(admin): State<Shared>, headers: HeaderMap, uri: Uri) -> HttpResponse {
    let op = SingletonOperation::List;
    let dot = match query_format(&uri) {
        Some("dot") => true,
        Some("json") => false,
        Some(other) => {
            let reason = format!("unknown graph format `{other}`: write `?format=dot` or `?format=json`");
            return error(Some(op), SingletonError::BadRequest { reason });
        }
        None => accepts(&headers, "text/vnd.graphviz"),
    };
    if let Err(err) = observe_list(&admin, &headers) {
        return error(Some(op), err);
    }
    let graph = admin.core().graph();
    if dot {
        text(StatusCode::OK, "text/vnd.graphviz; charset=utf-8", graph.to_dot())
    } else {
        json_body(StatusCode::OK, serde_json::to_vec(&graph))
    }
}

/// `GET /singletons/graph.svg`.
async fn graph_svg(State(admin): State<Shared>, headers: HeaderMap) -> HttpResponse {
    if let Err(err) = observe_list(&admin, &headers) {
        return error(Some(SingletonOperation::List), err);
    }
    text(StatusCode::OK, "image/svg+xml", svg::graph_svg(&admin.core().graph()))
}

/// `GET /singletons/health`: 200 when up, 503 when down.
async fn health(State(admin): State<Shared>, headers: HeaderMap) -> HttpResponse {
    let op = SingletonOperation::Health;
    let mut request = request(op, &headers);
    if let Err(err) = admin.admit(&request) {
        return error(Some(op), err);
    }
    request.redact = !admin.policy().shows_details(request.token.as_deref());
    match admin.core().execute_async(request).await {
        Ok(Response::Health(report)) => {
            let status = if report.status == crate::HealthStatus::Up {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            json_body(status, serde_json::to_vec(&report))
        }
        Ok(_) => unreachable!("`health` answers a report"),
        Err(err) => error(Some(op), err),
    }
}

/// `GET /singletons/ui`: the page.
async fn ui(State(admin): State<Shared>, headers: HeaderMap) -> HttpResponse {
    if let Err(err) = observe_list(&admin, &headers) {
        return error(Some(SingletonOperation::List), err);
    }
    let mut response = text(StatusCode::OK, "text/html; charset=utf-8", page::PAGE);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(page::CONTENT_SECURITY_POLICY));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// `POST /singletons/admin`: one request through the admin, with the status of its answer.
async fn admin_request(State(admin): State<Shared>, headers: HeaderMap, body: Body) -> HttpResponse {
    if !is_json(&headers) {
        let reason = "the request body must be JSON: send it with `Content-Type: application/json`";
        return error_with(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
            SingletonError::BadRequest { reason: reason.to_owned() },
        );
    }
    let bytes = match read_bounded(&headers, body).await {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    let Ok(input) = std::str::from_utf8(&bytes) else {
        let reason = "the request body is not UTF-8".to_owned();
        return error(None, SingletonError::BadRequest { reason });
    };
    let mut parsed = json::parse(input);
    if let Ok(request) = &mut parsed.request {
        if request.token.is_none() {
            request.token = bearer(&headers).map(str::to_owned);
        }
    }
    let outcome = admin.run_async(parsed.request).await;
    let status = outcome.as_ref().err().map_or(StatusCode::OK, status_of);
    let retry = outcome.as_ref().err().and_then(retry_after);
    let body = json::answer(parsed.operation, parsed.correlation_id.as_deref(), outcome);
    let mut response = text(status, "application/json", body);
    if let Some(seconds) = retry {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// The body, read up to [`MAX_JSON_REQUEST_BYTES`]; 413 past it.
async fn read_bounded(headers: &HeaderMap, body: Body) -> Result<Bytes, HttpResponse> {
    let too_large = |length: Option<u64>| {
        let length = length.map_or_else(String::new, |n| format!(" ({n} bytes)"));
        let reason = format!("the request body is over {MAX_JSON_REQUEST_BYTES} bytes{length}");
        error_with(StatusCode::PAYLOAD_TOO_LARGE, None, SingletonError::BadRequest { reason })
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_JSON_REQUEST_BYTES as u64) {
        return Err(too_large(declared));
    }
    match axum::body::to_bytes(body, MAX_JSON_REQUEST_BYTES).await {
        Ok(bytes) => Ok(bytes),
        Err(err) if is_length_limit(&err) => Err(too_large(None)),
        Err(err) => {
            let reason = format!("the request body could not be read: {err}");
            Err(error(None, SingletonError::BadRequest { reason }))
        }
    }
}

/// `true` when reading a body stopped at its bound.
fn is_length_limit(err: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// The policy's decision on an observe `list` (the list, the graph, the page), then a rate-limit
/// slot, as the `list` operation takes one.
fn observe_list(admin: &Admin<'static>, headers: &HeaderMap) -> crate::Result<()> {
    let op = SingletonOperation::List;
    admin.admit(&request(op, headers))?;
    admin.core().gate(op, None).map_err(|denied| denied.into_error(op, None))
}

/// A request for `op` with the bearer token of `headers`.
fn request(op: SingletonOperation, headers: &HeaderMap) -> Request {
    let request = Request::new(op);
    match bearer(headers) {
        Some(token) => request.token(token),
        None => request,
    }
}

/// The token of `Authorization: Bearer <token>` (the scheme in any case).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// `true` when the body is declared JSON: `application/json`, parameters (`charset`) allowed.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// `true` when the `Accept` header names `media` (parameters and q-values aside).
fn accepts(headers: &HeaderMap, media: &str) -> bool {
    headers.get_all(header::ACCEPT).iter().filter_map(|value| value.to_str().ok()).any(|value| {
        value
            .split(',')
            .any(|item| item.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case(media)))
    })
}

/// The value of the query's `format` parameter.
fn query_format(uri: &Uri) -> Option<&str> {
    uri.query()?.split('&').find_map(|pair| pair.strip_prefix("format="))
}

/// The status an error answers with.
fn status_of(err: &SingletonError) -> StatusCode {
    match err {
        SingletonError::BadRequest { .. }
        | SingletonError::UnknownOperation { .. }
        | SingletonError::MissingArgument { .. }
        | SingletonError::InvalidToken { .. }
        | SingletonError::InvalidName { .. } => StatusCode::BAD_REQUEST,
        SingletonError::Forbidden { .. } => StatusCode::FORBIDDEN,
        SingletonError::TypeMismatch { .. }
        | SingletonError::DuplicateName { .. }
        | SingletonError::Cycle { .. } => StatusCode::CONFLICT,
        SingletonError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        SingletonError::Factory { .. }
        | SingletonError::NeedsAwait { .. }
        | SingletonError::AwaitRequired { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `Retry-After` of a refusal: whole seconds, rounded up, at least 1.
fn retry_after(err: &SingletonError) -> Option<u64> {
    match err {
        SingletonError::RateLimited { retry_after, .. } => {
            Some(u64::try_from(retry_after.as_nanos().div_ceil(1_000_000_000)).unwrap_or(u64::MAX).max(1))
        }
        _ => None,
    }
}

/// The error envelope of `err`, with its status (and `Retry-After` for a refusal).
fn error(operation: Option<SingletonOperation>, err: SingletonError) -> HttpResponse {
    error_with(status_of(&err), operation, err)
}

/// The error envelope of `err` with `status`.
fn error_with(
    status: StatusCode,
    operation: Option<SingletonOperation>,
    err: SingletonError,
) -> HttpResponse {
    let retry = retry_after(&err);
    let body = json::answer(operation, None, Err(err));
    let mut response = text(status, "application/json", body);
    if let Some(seconds) = retry {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// 405 for a method that a route does not serve.
fn not_allowed(allow: &'static str) -> HttpResponse {
    let reason = format!("this route serves {allow} only");
    let mut response =
        error_with(StatusCode::METHOD_NOT_ALLOWED, None, SingletonError::BadRequest { reason });
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// A JSON body, or a 500 envelope when it could not be written (not reached: every snapshot
/// serializes).
fn json_body(status: StatusCode, body: serde_json::Result<Vec<u8>>) -> HttpResponse {
    match body {
        Ok(body) => text(status, "application/json", body),
        Err(err) => {
            let reason = format!("the answer could not be written: {err}");
            error_with(StatusCode::INTERNAL_SERVER_ERROR, None, SingletonError::BadRequest { reason })
        }
    }
}

/// A body of `content_type`, never cached, never sniffed.
fn text(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> HttpResponse {
    let mut response = (status, body.into()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}
