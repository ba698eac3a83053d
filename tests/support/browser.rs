//! A real headless browser for tests: Debian's chromium driven by chromedriver over the W3C
//! WebDriver HTTP protocol (through [`super::http`]).
//!
//! ```ignore
//! let browser = Browser::start(&dir).await;     // dir/browser-PORT-N/{profile,chromedriver.log}
//! browser.goto(&link).await;
//! assert!(browser.text().await.contains("You are invited"));
//! browser.click("#accept").await;               // waits for the navigation the click starts
//! browser.screenshot(&dir.join("accepted.png")).await;
//! browser.quit().await;
//! ```
//!
//! chromedriver runs in its own process group (with chromium under it); [`Browser::quit`] and
//! `Drop` end the session and then kill that group, so no chromium outlives a failed test.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use super::http;

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// How long one WebDriver command may take (a page load is limited to 30 s by the session).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The W3C WebDriver element reference key.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    /// chromedriver's port on 127.0.0.1.
    pub port: u16,
    /// The WebDriver session id.
    pub session: String,
    /// This browser's own directory: `profile/` (chromium's user data dir) and
    /// `chromedriver.log` (chromedriver's and chromium's output).
    pub dir: PathBuf,
    child: Option<Child>,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a session with a headless chromium using a
    /// fresh profile under `dir`.
    pub async fn start(dir: &Path) -> Browser {
        for bin in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                Path::new(bin).exists(),
                "{bin} not found: install chromium and chromium-driver (apt-get install chromium chromium-driver)"
            );
        }
        let port = super::mail::free_port();
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let own = fresh_dir(&dir, &format!("browser-{port}"));
        let profile = own.join("profile");
        std::fs::create_dir_all(&profile)
            .unwrap_or_else(|e| panic!("create {}: {e}", profile.display()));
        let log = std::fs::File::create(own.join("chromedriver.log"))
            .unwrap_or_else(|e| panic!("create {}/chromedriver.log: {e}", own.display()));
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--enable-chrome-logs")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log file"))
            .stderr(log)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("spawn {CHROMEDRIVER}: {e} (install chromium and chromium-driver)")
            });
        let mut browser = Browser {
            port,
            session: String::new(),
            dir: own,
            child: Some(child),
        };
        browser.wait_ready().await;

        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
            "--window-size=1000,900",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!("--user-data-dir={}", profile.display())])
        .collect::<Vec<_>>();
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    // implicit: finding an element waits up to 5 s for it to appear.
                    "timeouts": {"implicit": 5000, "pageLoad": 30000, "script": 30000},
                    "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
                }
            }
        });
        let url = format!("{}/session", browser.base());
        let (content_type, bytes) = json_body(&caps);
        let resp = http::request_timeout(
            "POST",
            &url,
            &[],
            Some((content_type, &bytes)),
            COMMAND_TIMEOUT,
        )
        .await
        .unwrap_or_else(|e| browser.fail(&format!("POST /session: {e}")));
        let v = parse(&resp.body);
        match v["value"]["sessionId"].as_str() {
            Some(id) if resp.status == 200 => browser.session = id.to_string(),
            _ => browser.fail(&format!(
                "chromedriver could not start {CHROMIUM} (HTTP {}): {}",
                resp.status,
                error_text(&v)
            )),
        }
        browser
    }

    /// Navigates to `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.cmd(
            "POST",
            "/url",
            json!({ "url": url }),
            &format!("goto {url}"),
        )
        .await;
    }

    /// The document's title.
    pub async fn title(&self) -> String {
        let v = self.cmd("GET", "/title", Value::Null, "title").await;
        v.as_str().unwrap_or_default().to_string()
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        let v = self.cmd("GET", "/url", Value::Null, "url").await;
        v.as_str().unwrap_or_default().to_string()
    }

    /// The page's visible text (`document.body.innerText`).
    pub async fn text(&self) -> String {
        let v = self
            .execute(
                "return document.body ? document.body.innerText : '';",
                json!([]),
            )
            .await;
        v.as_str().unwrap_or_default().to_string()
    }

    /// The page's current DOM as HTML.
    pub async fn source(&self) -> String {
        let v = self.cmd("GET", "/source", Value::Null, "source").await;
        v.as_str().unwrap_or_default().to_string()
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its result.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            json!({ "script": script, "args": args }),
            "execute script",
        )
        .await
    }

    /// Finds the first element matching the CSS selector `css` (waiting up to 5 s for it) and
    /// clicks it; a navigation the click starts (form submission, link) is waited for.
    pub async fn click(&self, css: &str) {
        let found = self
            .cmd_result(
                "POST",
                "/element",
                json!({ "using": "css selector", "value": css }),
            )
            .await;
        let element = match found {
            Ok(v) => v[ELEMENT_KEY]
                .as_str()
                .unwrap_or_else(|| panic!("click {css:?}: odd element reference {v}"))
                .to_string(),
            Err(e) => panic!(
                "click {css:?}: no element matches the selector on {} ({e})",
                self.url().await
            ),
        };
        self.cmd(
            "POST",
            &format!("/element/{element}/click"),
            json!({}),
            &format!("click {css:?}"),
        )
        .await;
    }

    /// Finds the first element matching `css` and types `text` into it as keystrokes (input
    /// events fire, as when a person types).
    pub async fn type_text(&self, css: &str, text: &str) {
        let found = self
            .cmd_result(
                "POST",
                "/element",
                json!({ "using": "css selector", "value": css }),
            )
            .await;
        let element = match found {
            Ok(v) => v[ELEMENT_KEY].as_str().unwrap_or_default().to_string(),
            Err(e) => panic!("type into {css:?}: no element matches ({e})"),
        };
        self.cmd(
            "POST",
            &format!("/element/{element}/value"),
            json!({ "text": text }),
            &format!("type into {css:?}"),
        )
        .await;
    }

    /// Saves a PNG screenshot of the viewport to `path` (creating parent directories).
    pub async fn screenshot(&self, path: &Path) {
        let v = self
            .cmd("GET", "/screenshot", Value::Null, "screenshot")
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("screenshot: chromedriver sent bad base64: {e}"));
        if let Some(parent) = path.parent() {
            let _ = tokio::fs::create_dir_all(parent).await;
        }
        tokio::fs::write(path, png)
            .await
            .unwrap_or_else(|e| panic!("screenshot: write {}: {e}", path.display()));
    }

    /// Ends the session (chromium exits) and stops chromedriver.
    pub async fn quit(mut self) {
        if !self.session.is_empty() {
            let url = format!("{}/session/{}", self.base(), self.session);
            let _ = http::request("DELETE", &url, &[], None).await;
            self.session.clear();
        }
        self.kill_group();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Polls chromedriver's `/status` until it is ready (≤ 20 s).
    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = format!("{}/status", self.base());
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().expect("try_wait") {
                self.fail(&format!("chromedriver exited ({status}) while starting"));
            }
            if let Ok(resp) = http::get(&url).await
                && resp.status == 200
                && parse(&resp.body)["value"]["ready"] == json!(true)
            {
                return;
            }
            if Instant::now() > deadline {
                self.fail("chromedriver did not answer GET /status within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A session command; panics on a WebDriver error, naming `what`.
    async fn cmd(&self, method: &str, path: &str, body: Value, what: &str) -> Value {
        match self.cmd_result(method, path, body).await {
            Ok(v) => v,
            Err(e) => panic!("browser: {what} failed: {e}"),
        }
    }

    /// A session command: its `value`, or the WebDriver error as text.
    async fn cmd_result(&self, method: &str, path: &str, body: Value) -> Result<Value, String> {
        let url = format!("{}/session/{}{path}", self.base(), self.session);
        let body = (!body.is_null()).then(|| json_body(&body));
        let body = body.as_ref().map(|(t, b)| (*t, &b[..]));
        let resp = http::request_timeout(method, &url, &[], body, COMMAND_TIMEOUT)
            .await
            .map_err(|e| format!("{method} {path}: {e} (see {})", self.log_path().display()))?;
        let v = parse(&resp.body);
        if resp.status == 200 {
            Ok(v["value"].clone())
        } else {
            Err(format!("HTTP {}: {}", resp.status, error_text(&v)))
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("chromedriver.log")
    }

    /// Panics with `what` and the tail of chromedriver's log.
    fn fail(&self, what: &str) -> ! {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        panic!(
            "browser: {what}\n--- {} (last 40 lines) ---\n{tail}",
            self.log_path().display()
        );
    }

    /// SIGKILL to chromedriver's process group (chromedriver and the chromium it started).
    fn kill_group(&self) {
        if let Some(pid) = self.child.as_ref().and_then(Child::id) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            // Best effort, blocking: let chromedriver close chromium and its profile cleanly.
            delete_session_blocking(self.port, &self.session);
        }
        self.kill_group();
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

/// `DELETE /session/{id}` with std's blocking TCP (for `Drop`), 5 s at most.
fn delete_session_blocking(port: u16, session: &str) {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
    let req = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    if s.write_all(req.as_bytes()).is_ok() {
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }
}

/// A new directory `dir/{stem}-N` that did not exist before.
fn fresh_dir(dir: &Path, stem: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    for n in 0.. {
        let candidate = dir.join(format!("{stem}-{n}"));
        match std::fs::create_dir(&candidate) {
            Ok(()) => return candidate,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("create {}: {e}", candidate.display()),
        }
    }
    unreachable!()
}

fn json_body(v: &Value) -> (&'static str, Vec<u8>) {
    (
        "application/json; charset=utf-8",
        v.to_string().into_bytes(),
    )
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string()))
}

/// `error: message` of a WebDriver error response.
fn error_text(v: &Value) -> String {
    match (v["value"]["error"].as_str(), v["value"]["message"].as_str()) {
        (Some(e), Some(m)) => format!("{e}: {m}"),
        _ => v.to_string(),
    }
}
