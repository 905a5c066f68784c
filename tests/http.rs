//! The HTTP admin (feature `axum`): every route and status of `singleton_kit::http::router`,
//! through `tower::ServiceExt::oneshot`, as a server would route them.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request as HttpRequest, StatusCode};
use axum::Router;
use http_body_util::BodyExt as _;
use serde_json::{json, Value};
use singleton_kit::http::{router, router_with};
use singleton_kit::{singleton, AdminPolicy, RateLimit, SingletonCore, SingletonOperation as Op};
use tower::ServiceExt as _;

const SECRET: &str = "http-secret-7f3a";

#[singleton(name = "http_config", factory = || HttpConfig { region: "eu" })]
pub struct HttpConfig {
    pub region: &'static str,
}

#[singleton(name = "http_client", factory = HttpClient::connect)]
pub struct HttpClient;
impl HttpClient {
    fn connect() -> Self {
        let _ = HttpConfig::instance();
        HttpClient
    }
}

#[singleton(name = "http_queue", factory = HttpQueue::open, async)]
pub struct HttpQueue;
impl HttpQueue {
    async fn open() -> Self {
        HttpQueue
    }
}

#[singleton(name = "http_broken", try_factory = HttpBroken::load)]
pub struct HttpBroken;
impl HttpBroken {
    fn load() -> Result<Self, String> {
        Err("the config file is missing".into())
    }
}

#[singleton(name = "http_db", factory = || HttpDb, health = HttpDb::check)]
pub struct HttpDb;
impl HttpDb {
    async fn check(&self) -> Result<(), String> {
        Err("db.internal:5432 refused the connection".into())
    }
}

/// A core of its own for one test, with no rate limit.
fn core() -> &'static SingletonCore {
    core_limited(RateLimit::unlimited())
}

fn core_limited(limit: RateLimit) -> &'static SingletonCore {
    Box::leak(Box::new(SingletonCore::with_rate_limit(limit)))
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|err| panic!("not JSON ({err}): {}", self.body))
    }

    fn kind(&self) -> String {
        self.json()["error"]["kind"].as_str().unwrap_or_default().to_owned()
    }

    fn header(&self, name: header::HeaderName) -> &str {
        self.headers.get(name).map_or("", |value| value.to_str().unwrap())
    }
}

async fn send(app: &Router, request: HttpRequest<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.expect("the router never fails");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer { status, headers, body: String::from_utf8(bytes.to_vec()).unwrap() }
}

async fn get(app: &Router, uri: &str) -> Answer {
    send(app, HttpRequest::get(uri).body(Body::empty()).unwrap()).await
}

async fn post(app: &Router, body: Value) -> Answer {
    let request = HttpRequest::post("/singletons/admin")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    send(app, request).await
}

async fn post_bearer(app: &Router, token: &str, body: Value) -> Answer {
    let request = HttpRequest::post("/singletons/admin")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::from(body.to_string()))
        .unwrap();
    send(app, request).await
}

#[tokio::test]
async fn get_singletons_is_the_list_itself() {
    let core = core();
    core.set("http_flags", json!({"beta": true})).unwrap();
    let app = router_with(core, AdminPolicy::observe_only());
    let answer = get(&app, "/singletons").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header(header::CONTENT_TYPE), "application/json");
    let list = answer.json();
    let list = list.as_array().expect("a JSON array, no envelope");
    let names: Vec<&str> = list.iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"http_flags") && names.contains(&"http_config"), "{names:?}");
    assert!(names.windows(2).all(|w| w[0] <= w[1]), "sorted by name");
    let flags = list.iter().find(|l| l["name"] == "http_flags").unwrap();
    assert_eq!(flags["source"], "set");
    assert_eq!(flags["state"], "created");
    let config = list.iter().find(|l| l["name"] == "http_config").unwrap();
    assert_eq!(config["state"], "pending", "listing creates nothing");
}

#[tokio::test]
async fn the_graph_answers_json_dot_and_svg() {
    let core = core();
    core.get::<HttpClient>("http_client").unwrap();
    let app = router_with(core, AdminPolicy::observe_only());

    let graph = get(&app, "/singletons/graph").await;
    assert_eq!(graph.status, StatusCode::OK);
    let edges = graph.json()["edges"].clone();
    assert!(
        edges.as_array().unwrap().contains(&json!({"from": "http_client", "to": "http_config"})),
        "{edges}"
    );

    let dot = get(&app, "/singletons/graph?format=dot").await;
    assert_eq!(dot.status, StatusCode::OK);
    assert!(dot.header(header::CONTENT_TYPE).starts_with("text/vnd.graphviz"));
    assert!(dot.body.contains(r#""http_client" -> "http_config";"#), "{}", dot.body);

    let request = HttpRequest::get("/singletons/graph")
        .header(header::ACCEPT, "text/html;q=0.9, text/vnd.graphviz")
        .body(Body::empty())
        .unwrap();
    let accepted = send(&app, request).await;
    assert!(accepted.body.starts_with("digraph"), "Accept chooses DOT: {}", accepted.body);

    let unknown = get(&app, "/singletons/graph?format=xml").await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.kind(), "bad_request");
    assert!(unknown.json()["error"]["message"].as_str().unwrap().contains("`xml`"));

    let svg = get(&app, "/singletons/graph.svg").await;
    assert_eq!(svg.status, StatusCode::OK);
    assert_eq!(svg.header(header::CONTENT_TYPE), "image/svg+xml");
    assert!(svg.body.contains("<svg") && svg.body.trim_end().ends_with("</svg>"));
    assert!(svg.body.contains("http_client") && svg.body.contains("http_config"));
}

#[tokio::test]
async fn names_are_escaped_in_the_svg() {
    let core = core();
    core.set("<script>alert(1)</script>", 1_u32).unwrap();
    let app = router_with(core, AdminPolicy::observe_only());
    let svg = get(&app, "/singletons/graph.svg").await;
    assert!(!svg.body.contains("<script>"), "a name is text, never markup");
    assert!(svg.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let list = get(&app, "/singletons").await;
    assert!(list.json().as_array().unwrap().iter().any(|l| l["name"] == "<script>alert(1)</script>"));
}

#[tokio::test]
async fn health_is_200_when_up_and_503_when_a_check_is_down() {
    let core = core();
    let app = router_with(core, AdminPolicy::observe_only());
    let up = get(&app, "/singletons/health").await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.body);
    assert_eq!(up.json()["status"], "up");

    core.get::<HttpDb>("http_db").unwrap();
    let down = get(&app, "/singletons/health").await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    let report = down.json();
    assert_eq!(report["status"], "down");
    let check = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "http_db").unwrap().clone();
    assert_eq!(check["status"], "down");
    assert!(!down.body.contains("db.internal"), "observe-only callers do not see error texts: {}", down.body);

    let app = router_with(core, AdminPolicy::observe_only().require_token(SECRET));
    let request = HttpRequest::get("/singletons/health")
        .header(header::AUTHORIZATION, format!("Bearer {SECRET}"))
        .body(Body::empty())
        .unwrap();
    let detailed = send(&app, request).await;
    assert_eq!(detailed.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(detailed.body.contains("db.internal:5432"), "the token holder sees the error: {}", detailed.body);
    assert!(!detailed.body.contains(SECRET));
}

#[tokio::test]
async fn the_default_policy_refuses_changes_with_403_and_changes_nothing() {
    let core = core();
    core.set("http_kept", 1_u32).unwrap();
    let app = router_with(core, AdminPolicy::observe_only());
    for request in [
        json!({"operation": "clear"}),
        json!({"operation": "delete", "name": "http_kept"}),
        json!({"operation": "set", "name": "x", "value": 1}),
        json!({"operation": "get", "name": "http_kept"}),
    ] {
        let answer = post(&app, request.clone()).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{request}: {}", answer.body);
        assert_eq!(answer.kind(), "forbidden");
        assert_eq!(answer.json()["ok"], false);
    }
    assert!(core.has("http_kept"));
    let stats = post(&app, json!({"operation": "get_stats"})).await;
    assert_eq!(stats.status, StatusCode::OK);
    assert_eq!(stats.json()["ok"], true);
}

#[tokio::test]
async fn the_token_comes_from_the_bearer_header_or_the_body_and_is_never_echoed() {
    let core = core();
    let app = router_with(core, AdminPolicy::observe_only().require_token(SECRET));
    let set = json!({"operation": "set", "name": "http_tok", "value": {"v": 1}});
    let refused = post_bearer(&app, "wrong-token", set.clone()).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(!refused.body.contains("wrong-token"));

    let by_header = post_bearer(&app, SECRET, set).await;
    assert_eq!(by_header.status, StatusCode::OK, "{}", by_header.body);
    assert!(!by_header.body.contains(SECRET));

    let by_body = post(&app, json!({"operation": "delete", "name": "http_tok", "token": SECRET})).await;
    assert_eq!(by_body.status, StatusCode::OK, "{}", by_body.body);
    assert_eq!(by_body.json()["result"], true);
    assert!(!by_body.body.contains(SECRET));
    assert!(!core.has("http_tok"));
}

#[tokio::test]
async fn statuses_follow_the_answer_kind() {
    let core = core();
    let app = router_with(core, AdminPolicy::all());
    core.set("http_number", 5_u64).unwrap();

    let cases = [
        (json!({"operation": "frobnicate"}), StatusCode::BAD_REQUEST, "bad_request"),
        (json!({"operation": "has", "name": " "}), StatusCode::BAD_REQUEST, "invalid_name"),
        (
            json!({"operation": "set", "name": "http_config", "value": 1}),
            StatusCode::CONFLICT,
            "type_mismatch",
        ),
        (json!({"operation": "get", "name": "http_broken"}), StatusCode::INTERNAL_SERVER_ERROR, "factory"),
    ];
    for (request, status, kind) in cases {
        let answer = post(&app, request.clone()).await;
        assert_eq!((answer.status, answer.kind().as_str()), (status, kind), "{request}: {}", answer.body);
    }

    let not_json =
        send(&app, HttpRequest::post("/singletons/admin").body(Body::from("{oops")).unwrap()).await;
    assert_eq!(not_json.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "no content type");
    let bad_json = send(
        &app,
        HttpRequest::post("/singletons/admin")
            .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
            .body(Body::from("{oops"))
            .unwrap(),
    )
    .await;
    assert_eq!((bad_json.status, bad_json.kind().as_str()), (StatusCode::BAD_REQUEST, "bad_request"));
}

#[tokio::test]
async fn an_async_singleton_is_awaited_never_needs_await() {
    let core = core();
    let app = router_with(core, AdminPolicy::all());
    let answer = post(&app, json!({"operation": "get", "name": "http_queue", "correlation_id": "c-1"})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.json()["result"]["name"], "http_queue");
    assert_eq!(answer.json()["correlation_id"], "c-1");
}

#[tokio::test]
async fn a_tight_limit_answers_429_with_retry_after_in_whole_seconds() {
    let core = core_limited(RateLimit::new(1, Duration::from_millis(2500)));
    let app = router_with(core, AdminPolicy::observe_only());
    assert_eq!(get(&app, "/singletons").await.status, StatusCode::OK);
    for answer in [get(&app, "/singletons").await, post(&app, json!({"operation": "get_stats"})).await] {
        assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS, "{}", answer.body);
        assert_eq!(answer.kind(), "rate_limited");
        let seconds: u64 = answer.header(header::RETRY_AFTER).parse().expect("whole seconds");
        assert!((1..=3).contains(&seconds), "rounded up from at most 2.5 s: {seconds}");
    }
}

#[tokio::test]
async fn denying_list_closes_the_list_the_graph_and_the_page() {
    let app = router_with(core(), AdminPolicy::observe_only().deny(Op::List));
    for uri in ["/singletons", "/singletons/graph", "/singletons/graph.svg", "/singletons/ui"] {
        let answer = get(&app, uri).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{uri}");
        assert_eq!(answer.kind(), "forbidden", "{uri}");
        assert_eq!(answer.json()["operation"], "list", "{uri}");
    }
    assert_eq!(get(&app, "/singletons/health").await.status, StatusCode::OK, "health stays open");
    let app = router_with(core(), AdminPolicy::observe_only().deny(Op::Health));
    assert_eq!(get(&app, "/singletons/health").await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn bounds_methods_and_unknown_routes() {
    let app = router_with(core(), AdminPolicy::all());
    let big = format!(r#"{{"operation": "has", "name": "{}"}}"#, "x".repeat(1 << 20));
    let request = HttpRequest::post("/singletons/admin")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(big))
        .unwrap();
    let too_large = send(&app, request).await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(too_large.kind(), "bad_request");

    let streamed = Body::from_stream(futures_stream(vec![vec![b' '; 700_000], vec![b' '; 700_000]]));
    let request = HttpRequest::post("/singletons/admin")
        .header(header::CONTENT_TYPE, "application/json")
        .body(streamed)
        .unwrap();
    assert_eq!(send(&app, request).await.status, StatusCode::PAYLOAD_TOO_LARGE, "no Content-Length either");

    let form = HttpRequest::post("/singletons/admin")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("operation=clear"))
        .unwrap();
    let form = send(&app, form).await;
    assert_eq!(form.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(form.kind(), "bad_request");

    let delete =
        HttpRequest::builder().method(Method::DELETE).uri("/singletons/admin").body(Body::empty()).unwrap();
    let delete = send(&app, delete).await;
    assert_eq!(delete.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(delete.header(header::ALLOW), "POST");
    assert_eq!(delete.kind(), "bad_request");
    let post_list = HttpRequest::post("/singletons").body(Body::empty()).unwrap();
    assert_eq!(send(&app, post_list).await.status, StatusCode::METHOD_NOT_ALLOWED);

    assert_eq!(get(&app, "/singletons/nope").await.status, StatusCode::NOT_FOUND);
    let head = HttpRequest::head("/singletons").body(Body::empty()).unwrap();
    assert_eq!(send(&app, head).await.status, StatusCode::OK);
}

fn futures_stream(chunks: Vec<Vec<u8>>) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::iter(chunks.into_iter().map(Ok))
}

#[tokio::test]
async fn the_page_is_self_contained_and_relative() {
    let app = router_with(core(), AdminPolicy::observe_only());
    let page = get(&app, "/singletons/ui").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.header(header::CONTENT_TYPE), "text/html; charset=utf-8");
    let csp = page.header(header::CONTENT_SECURITY_POLICY);
    assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"), "{csp}");
    for external in ["http://", "https://", "//cdn", "@import", "<link rel=\"stylesheet\""] {
        assert!(!page.body.contains(external), "the page loads nothing from elsewhere: {external}");
    }
    for relative in [r#""../singletons""#, r#""graph.svg""#, r#""health""#] {
        assert!(page.body.contains(relative), "{relative}");
    }
    assert!(!page.body.contains("innerHTML"), "names are put in as text");
}

#[tokio::test]
async fn the_global_router_serves_the_global_core() {
    singleton_kit::manager().set("http_global_marker", 1_u8).unwrap();
    let app = router(AdminPolicy::observe_only());
    let list = get(&app, "/singletons").await;
    assert!(list.json().as_array().unwrap().iter().any(|l| l["name"] == "http_global_marker"));
}
