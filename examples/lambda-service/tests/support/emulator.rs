//! A local stand-in for the AWS Lambda Runtime API: a small HTTP/1.1 server on 127.0.0.1 that
//! hands out queued events on `GET /2018-06-01/runtime/invocation/next`, with the headers the
//! real API sends, and records what the function posts back to `/invocation/{id}/response`,
//! `/invocation/{id}/error` and `/init/error`. It also serves the two calls of the Extensions
//! API that `lambda_runtime`'s graceful-shutdown helper makes for its internal extension:
//! `POST /2020-01-01/extension/register` (answered with an extension id) and
//! `GET /2020-01-01/extension/event/next` (held open: the helper subscribes to no event, and
//! Lambda ends its shutdown phase with SIGTERM, which the test sends itself).
//!
//! As in Lambda, `/next` is held open until an event is queued. Connections are kept alive, as
//! the runtime's client expects. Everything the emulator receives, `/next` calls included, is a
//! [`Record`], in arrival order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinHandle;

/// The function ARN handed out with every event.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:lambda-service";

const NEXT: &str = "/2018-06-01/runtime/invocation/next";
const INVOCATION: &str = "/2018-06-01/runtime/invocation/";
const INIT_ERROR: &str = "/2018-06-01/runtime/init/error";
const EXTENSION_REGISTER: &str = "/2020-01-01/extension/register";
const EXTENSION_NEXT: &str = "/2020-01-01/extension/event/next";

/// What the emulator received.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// `GET /invocation/next`: the function asked for an event.
    Next,
    /// `POST /invocation/{id}/response`.
    Response { request_id: String, body: Value },
    /// `POST /invocation/{id}/error`, with its `Lambda-Runtime-Function-Error-Type` header.
    Error { request_id: String, error_type: Option<String>, body: Value },
    /// `POST /init/error`, with its `Lambda-Runtime-Function-Error-Type` header.
    InitError { error_type: Option<String>, body: Value },
    /// `POST /extension/register`, with its `Lambda-Extension-Name` header.
    ExtensionRegister { name: Option<String> },
    /// `GET /extension/event/next`: an extension waits for its next event (never answered).
    ExtensionNext,
    /// Any other request; answered 404.
    Unexpected { method: String, path: String },
}

struct Event {
    request_id: String,
    payload: Value,
}

struct Shared {
    events: Mutex<mpsc::UnboundedReceiver<Event>>,
    records: mpsc::UnboundedSender<Record>,
}

/// A running emulator. Dropping it stops the server; connections still open end once the
/// function goes away.
pub struct Emulator {
    addr: SocketAddr,
    events: mpsc::UnboundedSender<Event>,
    records: mpsc::UnboundedReceiver<Record>,
    seen: Vec<Record>,
    next_id: u64,
    server: JoinHandle<()>,
}

impl Emulator {
    /// Starts an emulator on 127.0.0.1 at a port the system picks.
    pub async fn start() -> Emulator {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let (events, events_rx) = mpsc::unbounded_channel();
        let (records_tx, records) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared { events: Mutex::new(events_rx), records: records_tx });
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, Arc::clone(&shared)));
            }
        });
        Emulator { addr, events, records, seen: Vec::new(), next_id: 0, server }
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`: `127.0.0.1:<port>`.
    pub fn runtime_api(&self) -> String {
        self.addr.to_string()
    }

    /// Queues an event and returns its request id.
    pub fn invoke(&mut self, payload: Value) -> String {
        self.next_id += 1;
        let request_id = format!("8476a536-e9f4-11e8-9739-{:012x}", self.next_id);
        self.events.send(Event { request_id: request_id.clone(), payload }).expect("the server is running");
        request_id
    }

    /// Everything received so far, in arrival order (as far as the waits have read it).
    pub fn records(&self) -> &[Record] {
        &self.seen
    }

    /// Reads what has arrived without waiting, and returns everything received so far. Once the
    /// function has exited, that is everything it sent: each record is made before its request
    /// is answered.
    pub fn drain(&mut self) -> &[Record] {
        while let Ok(record) = self.records.try_recv() {
            self.seen.push(record);
        }
        &self.seen
    }

    /// Waits, at most `timeout`, for the first record since the last wait that `pick` accepts.
    pub async fn wait_for<T>(&mut self, timeout: Duration, mut pick: impl FnMut(&Record) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let record = tokio::time::timeout_at(deadline, self.records.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!("nothing expected arrived in {timeout:?}; received: {:#?}", self.seen)
                })
                .expect("the server is running");
            self.seen.push(record.clone());
            if let Some(found) = pick(&record) {
                return found;
            }
        }
    }

    /// Waits for the outcome of the invocation `request_id`: `Ok(response body)` or `Err(the
    /// error record)`.
    pub async fn outcome(&mut self, request_id: &str, timeout: Duration) -> Result<Value, Record> {
        self.wait_for(timeout, |record| match record {
            Record::Response { request_id: id, body } if id == request_id => Some(Ok(body.clone())),
            Record::Error { request_id: id, .. } if id == request_id => Some(Err(record.clone())),
            _ => None,
        })
        .await
    }

    /// Queues an event and waits for its outcome.
    pub async fn call(&mut self, payload: Value, timeout: Duration) -> (String, Result<Value, Record>) {
        let request_id = self.invoke(payload);
        let outcome = self.outcome(&request_id, timeout).await;
        (request_id, outcome)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// One HTTP/1.1 request, as far as the emulator needs it.
struct Request {
    method: String,
    path: String,
    error_type: Option<String>,
    extension_name: Option<String>,
    body: Vec<u8>,
}

/// Serves one keep-alive connection until the client closes it.
async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    while let Some(request) = read_request(&mut read).await {
        let (status, headers, body) = route(request, &shared).await;
        let Some(status) = status else { return };
        let mut head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        if write.write_all(head.as_bytes()).await.is_err() || write.write_all(&body).await.is_err() {
            return;
        }
    }
}

/// Answers one request: the status line's code and reason (`None` to close the connection),
/// extra headers and the body.
async fn route(
    request: Request,
    shared: &Shared,
) -> (Option<&'static str>, Vec<(&'static str, String)>, Vec<u8>) {
    let json = |body: &[u8]| {
        serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
    };
    let accepted = (Some("202 Accepted"), Vec::new(), br#"{"status":"OK"}"#.to_vec());
    let record = |r: Record| {
        let _ = shared.records.send(r);
    };
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", NEXT) => {
            record(Record::Next);
            let Some(event) = shared.events.lock().await.recv().await else {
                return (None, Vec::new(), Vec::new());
            };
            let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970");
            let deadline = (now + Duration::from_secs(300)).as_millis();
            let headers = vec![
                ("Lambda-Runtime-Aws-Request-Id", event.request_id.clone()),
                ("Lambda-Runtime-Deadline-Ms", deadline.to_string()),
                ("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN.to_owned()),
                (
                    "Lambda-Runtime-Trace-Id",
                    format!(
                        "Root=1-{:08x}-{:024x};Parent={:016x};Sampled=0",
                        now.as_secs(),
                        now.as_nanos(),
                        now.as_millis()
                    ),
                ),
            ];
            (Some("200 OK"), headers, event.payload.to_string().into_bytes())
        }
        ("POST", EXTENSION_REGISTER) => {
            record(Record::ExtensionRegister { name: request.extension_name });
            let body =
                br#"{"functionName":"lambda-service","functionVersion":"$LATEST","handler":"bootstrap"}"#;
            (Some("200 OK"), vec![("Lambda-Extension-Identifier", "ext-0001".to_owned())], body.to_vec())
        }
        ("GET", EXTENSION_NEXT) => {
            record(Record::ExtensionNext);
            std::future::pending::<()>().await;
            unreachable!("an extension's next event is never sent")
        }
        ("POST", INIT_ERROR) => {
            record(Record::InitError { error_type: request.error_type, body: json(&request.body) });
            accepted
        }
        ("POST", path) if path.starts_with(INVOCATION) => {
            let rest = &path[INVOCATION.len()..];
            if let Some(request_id) = rest.strip_suffix("/response") {
                record(Record::Response { request_id: request_id.to_owned(), body: json(&request.body) });
                accepted
            } else if let Some(request_id) = rest.strip_suffix("/error") {
                record(Record::Error {
                    request_id: request_id.to_owned(),
                    error_type: request.error_type,
                    body: json(&request.body),
                });
                accepted
            } else {
                record(Record::Unexpected { method: request.method, path: request.path });
                (Some("404 Not Found"), Vec::new(), br#"{"errorMessage":"not found"}"#.to_vec())
            }
        }
        _ => {
            record(Record::Unexpected { method: request.method, path: request.path });
            (Some("404 Not Found"), Vec::new(), br#"{"errorMessage":"not found"}"#.to_vec())
        }
    }
}

/// Reads one request (its head, then a `Content-Length` or chunked body); `None` at the end of
/// the connection or on anything malformed.
async fn read_request<R: AsyncBufReadExt + Unpin>(read: &mut R) -> Option<Request> {
    let mut line = String::new();
    if read.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let (mut length, mut chunked, mut error_type, mut extension_name) = (0usize, false, None, None);
    loop {
        line.clear();
        if read.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().ok()?,
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "lambda-runtime-function-error-type" => error_type = Some(value.to_owned()),
            "lambda-extension-name" => extension_name = Some(value.to_owned()),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            read.read_line(&mut line).await.ok()?;
            let size = usize::from_str_radix(line.trim().split(';').next()?, 16).ok()?;
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    line.clear();
                    if read.read_line(&mut line).await.ok()? == 0 || line.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            read.read_exact(&mut body[start..]).await.ok()?;
            line.clear();
            read.read_line(&mut line).await.ok()?; // the CRLF after the chunk
        }
    } else {
        body.resize(length, 0);
        read.read_exact(&mut body).await.ok()?;
    }
    Some(Request { method, path, error_type, extension_name, body })
}
