//! The admin page in a real browser: the example server runs, headless Chromium loads
//! `/singletons/ui`, and the DOM it built is read back (`--dump-dom`).
//!
//! The test checks what a person relies on when they open the page: it logs nothing to the
//! console (no script error, no refused inline script or style), its table lists every
//! registered singleton, its graph draws one SVG edge per dependency and the pending singleton
//! apart from the created ones, and a name made of markup shows as text. A screenshot is written
//! to `target/axum-admin-ui.png`.
//!
//! It needs Chromium (`apt-get install chromium`; `CHROMIUM=/path/to/chrome` to choose another),
//! so it is ignored by default: `cargo test -p axum-admin --test browser -- --ignored`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

const TOKEN: &str = "browser-test-token";

/// Names that would run a script if the page wrote them as HTML: each `onerror` logs to the
/// console, which the test counts as a failure.
const HOSTILE: [&str; 3] = [
    "<script>console.error('xss-script')</script>",
    "<img src=x onerror=\"console.error('xss-img')\">",
    "\"><svg onload=console.error('xss-svg')>",
];

/// The example server, stopped when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_axum-admin"))
            .env("AXUM_ADMIN_PORT", "0")
            .env("AXUM_ADMIN_TOKEN", TOKEN)
            .stdout(Stdio::piped())
            .spawn()
            .expect("the axum-admin example starts");
        let stdout = child.stdout.take().expect("its stdout is piped");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("it prints its address");
        let url = line
            .trim()
            .strip_prefix("singleton admin: ")
            .unwrap_or_else(|| panic!("the first line names the page's address, got {line:?}"));
        let base = url.strip_suffix("/singletons/ui").expect("the page is /singletons/ui").to_owned();
        Server { child, base }
    }

    /// `method path` with a JSON body, over HTTP/1.1: the status and the body.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
        let host = self.base.strip_prefix("http://").expect("an http address");
        let mut stream = TcpStream::connect(host).expect("the server accepts");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let body = body.map(Value::to_string).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
             Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("an answer");
        let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
        let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            unchunk(body)
        } else {
            body.to_owned()
        };
        (status, body)
    }

    fn json(&self, path: &str) -> Value {
        let (status, body) = self.call("GET", path, None);
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|err| panic!("GET {path} is JSON ({err}): {body}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A chunked body, joined.
fn unchunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).expect("a chunk size");
        if size == 0 {
            break;
        }
        out.push_str(&tail[..size]);
        rest = &tail[size + 2..];
    }
    out
}

/// The browser to run: `$CHROMIUM`, or the first of Debian's and Google's names on the `PATH`.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
        .expect("Chromium is installed (apt-get install chromium), or CHROMIUM names it")
}

/// Headless Chromium on `url` with `extra` arguments: its stdout, and the console messages it
/// logged (Chromium writes each as an `INFO:CONSOLE` line on stderr, whatever its level).
fn browse(url: &str, extra: &[&str], profile: &Path) -> (String, Vec<String>) {
    let output = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("Chromium runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let console = stderr.lines().filter(|line| line.contains(":CONSOLE")).map(str::to_owned).collect();
    (String::from_utf8_lossy(&output.stdout).into_owned(), console)
}

/// `text` as the DOM serializer writes it in an attribute or a text node.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The attribute `name="…"` values of every element whose opening tag starts with `tag`.
fn attributes(dom: &str, tag: &str, name: &str) -> Vec<String> {
    let key = format!("{name}=\"");
    dom.match_indices(tag)
        .filter_map(|(at, _)| {
            let open = &dom[at..at + dom[at..].find('>')?];
            let start = open.find(&key)? + key.len();
            Some(open[start..start + open[start..].find('"')?].to_owned())
        })
        .collect()
}

/// Loads the page and checks it against the server's own list and graph.
fn check_page(server: &Server, profile: &Path) -> String {
    let url = format!("{}/singletons/ui", server.base);
    let (dom, console) = browse(&url, &["--dump-dom"], profile);
    assert!(console.is_empty(), "the page logged to the console:\n{}", console.join("\n"));
    assert!(dom.contains(r#"data-loaded="true""#), "the page's script ran to the end:\n{dom}");

    let list = server.json("/singletons");
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    let rows = attributes(&dom, "<tr data-name=", "data-name");
    let nodes = attributes(&dom, "<g class=\"node", "data-name");
    for name in &names {
        let shown = escaped(name);
        assert!(rows.contains(&shown), "the table lists {name:?} (rows: {rows:?})");
        assert!(nodes.contains(&shown), "the graph draws {name:?} (nodes: {nodes:?})");
        assert!(dom.contains(&format!("<code>{}</code>", shown.replace("&quot;", "\""))), "{name:?} as text");
    }
    assert_eq!(rows.len(), names.len(), "one row per singleton");
    assert_eq!(nodes.len(), names.len(), "one node per singleton");

    let graph = server.json("/singletons/graph");
    let edges = graph["edges"].as_array().unwrap();
    let drawn: Vec<(String, String)> = attributes(&dom, "<g class=\"edge\"", "data-from")
        .into_iter()
        .zip(attributes(&dom, "<g class=\"edge\"", "data-to"))
        .collect();
    assert_eq!(drawn.len(), edges.len(), "one SVG edge per graph edge: {drawn:?}");
    for edge in edges {
        let pair = (escaped(edge["from"].as_str().unwrap()), escaped(edge["to"].as_str().unwrap()));
        assert!(drawn.contains(&pair), "the graph draws {pair:?}");
    }
    assert!(dom.contains(r#"<g class="node pending" data-name="mailer""#), "the pending mailer");
    assert!(dom.contains(r#"<g class="node created" data-name="config""#), "the created config");
    dom
}

#[test]
#[ignore = "needs Chromium: cargo test -p axum-admin --test browser -- --ignored"]
fn the_page_in_a_browser() {
    let server = Server::start();
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("browser-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();

    // The example as it starts: five singletons, a chain of three, one pending.
    check_page(&server, &scratch.join("profile-1"));

    // A screenshot for a person to look at.
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("axum-admin-ui.png");
    let url = format!("{}/singletons/ui", server.base);
    let screenshot = format!("--screenshot={}", shot.display());
    let (_, console) = browse(
        &url,
        &[&screenshot, "--window-size=1280,1000", "--hide-scrollbars"],
        &scratch.join("profile-2"),
    );
    assert!(console.is_empty(), "the page logged to the console:\n{}", console.join("\n"));
    let png = std::fs::read(&shot).expect("Chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a PNG of the page: {} bytes", png.len());
    println!("screenshot: {}", shot.display());

    // Names made of markup, stored through the admin route: shown as text, never run.
    for name in HOSTILE {
        let (status, body) = server.call(
            "POST",
            "/singletons/admin",
            Some(&json!({"operation": "set", "name": name, "value": 1})),
        );
        assert_eq!(status, 200, "set {name:?}: {body}");
    }
    let dom = check_page(&server, &scratch.join("profile-3"));
    assert!(!dom.contains("<img src=\"x\""), "no image element made from a name");
    assert!(!dom.contains("<script>console"), "no script element made from a name");
    assert!(!dom.contains(TOKEN), "the page never shows the token");
    let _ = std::fs::remove_dir_all(&scratch);
}
