//! The dashboard of `runner serve` in a real headless Chromium, driven through the Chrome
//! devtools protocol (CDP): the execution page follows a run without reloading (`InProgress`,
//! then `Failed`, log lines and phase markers arriving), its Retry button re-runs the failed
//! stage until it succeeds, and a screenshot of the page during the run is saved as a test
//! artifact.
//!
//! Needs `chromium` (Debian package `chromium`; `RUNNER_TEST_CHROMIUM` names another binary).
//! Without it the test says so and skips.

use std::io::{BufRead as _, BufReader};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

use crate::serve::{TOKEN, flaky_served, request, serve_with_token};

/// How long a page may take to show what the test waits for.
const PATIENCE: Duration = Duration::from_secs(180);

/// The Chromium binary: `RUNNER_TEST_CHROMIUM`, else the first of the usual names on `PATH`.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("RUNNER_TEST_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| {
            ["chromium", "chromium-browser", "google-chrome"]
                .into_iter()
                .map(move |name| dir.join(name))
        })
        .find(|candidate| candidate.is_file())
}

/// Where screenshots go: `<target dir>/test-artifacts/`.
fn artifacts_dir() -> PathBuf {
    let binary = crate::support::runner_bin();
    let target = binary
        .parent()
        .and_then(std::path::Path::parent)
        .expect("the runner binary lives in <target>/<profile>/");
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("mkdir test-artifacts");
    dir
}

/// A headless Chromium with one page, attached through a flattened CDP session.
struct Browser {
    child: Child,
    socket: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts `binary` and opens a blank page.
    #[track_caller]
    fn launch(binary: &std::path::Path) -> Self {
        let profile = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(binary)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-port=0",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let url = devtools_url(&mut child);
        let address = url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .expect("a ws:// DevTools URL")
            .to_owned();
        let stream = TcpStream::connect(&address).expect("connect to DevTools");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let (socket, _) = tungstenite::client(url.as_str(), stream).expect("DevTools handshake");
        let mut browser = Self {
            child,
            socket,
            session: String::new(),
            next_id: 0,
            _profile: profile,
        };
        let target = browser.call("Target.createTarget", &json!({ "url": "about:blank" }));
        let target = target["targetId"].as_str().expect("targetId").to_owned();
        let attached = browser.call(
            "Target.attachToTarget",
            &json!({ "targetId": target, "flatten": true }),
        );
        attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .clone_into(&mut browser.session);
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            &json!({ "width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false }),
        );
        browser
    }

    /// Sends one command (to the page once attached) and returns its result; events and other
    /// answers in between are skipped.
    #[track_caller]
    fn call(&mut self, method: &str, params: &Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        self.socket
            .send(Message::text(message.to_string()))
            .expect("send to DevTools");
        loop {
            let reply = self.socket.read().expect("read from DevTools");
            let Message::Text(text) = reply else {
                continue;
            };
            let value: Value = serde_json::from_str(&text).expect("DevTools speaks JSON");
            if value["id"] != json!(id) {
                continue;
            }
            assert!(value.get("error").is_none(), "{method}: {value}");
            return value["result"].clone();
        }
    }

    /// The value of a JavaScript expression in the page.
    #[track_caller]
    fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            &json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression}: {result}"
        );
        result["result"]["value"].clone()
    }

    /// Polls `expression` until it is truthy; panics with `what` and the page's state when it
    /// is not within [`PATIENCE`].
    #[track_caller]
    fn wait_until(&mut self, what: &str, expression: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let value = self.eval(expression);
            if !matches!(value, Value::Null | Value::Bool(false))
                && value != json!("")
                && value != json!(0)
            {
                return value;
            }
            if Instant::now() > deadline {
                let page = self.eval("document.querySelector('main').innerText");
                panic!("the page never showed {what}; it shows:\n{page}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Loads `url` and waits for the document.
    #[track_caller]
    fn open(&mut self, url: &str) {
        self.call("Page.navigate", &json!({ "url": url }));
        self.wait_until(
            "a loaded document",
            &format!(
                "document.readyState === 'complete' && location.href.startsWith({})",
                json!(url.split('?').next().unwrap_or(url))
            ),
        );
    }

    /// Clicks the centre of the element `selector` names with real mouse events.
    #[track_caller]
    fn click(&mut self, selector: &str) {
        let rect = self.wait_until(
            selector,
            &format!(
                "(() => {{ const e = document.querySelector({}); if (!e) return null; \
                 e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
                 return {{x: r.x + r.width / 2, y: r.y + r.height / 2}}; }})()",
                json!(selector)
            ),
        );
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.call("Input.dispatchMouseEvent", &json!({ "type": kind, "x": rect["x"], "y": rect["y"], "button": "left", "clickCount": 1 }),
            );
        }
    }

    /// Saves a PNG of the viewport to `path`.
    #[track_caller]
    fn screenshot(&mut self, path: &std::path::Path) {
        let shot = self.call("Page.captureScreenshot", &json!({ "format": "png" }));
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("data"))
            .expect("base64");
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(path, png).expect("write the screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads Chromium's stderr up to `DevTools listening on ws://...`, then keeps draining it in
/// the background so that Chromium never blocks on a full pipe.
#[track_caller]
fn devtools_url(child: &mut Child) -> String {
    let stderr = child.stderr.take().expect("stderr");
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        let mut sent = false;
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if !sent {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = sender.send(Ok(url.trim().to_owned()));
                    sent = true;
                } else {
                    seen.push_str(&line);
                    seen.push('\n');
                }
            }
        }
        if !sent {
            let _ = sender.send(Err(seen));
        }
    });
    match receiver.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(url)) => url,
        Ok(Err(stderr)) => panic!("Chromium exited without a DevTools URL:\n{stderr}"),
        Err(error) => panic!("no DevTools URL from Chromium: {error}"),
    }
}

/// `document.querySelector(selector)?.dataset.status`.
fn status_of(selector: &str) -> String {
    format!(
        "document.querySelector({})?.dataset.status ?? null",
        json!(selector)
    )
}

/// Loads the execution page while the execution waits at its approval, approves it, and
/// watches the build write its log and fail; saves `dashboard.png` meanwhile.
#[track_caller]
#[expect(clippy::print_stderr, reason = "the test names its artifacts")]
fn watch_the_run_fail(browser: &mut Browser, address: &str, id: &str) {
    // The token comes from ?token= and leaves the address bar at once.
    browser.open(&format!("http://{address}/executions/{id}?token={TOKEN}"));
    browser.eval("window.loadedOnce = true");
    browser.wait_until(
        "InProgress",
        "document.getElementById('status').dataset.status === 'InProgress'",
    );
    browser.wait_until(
        "the gate waiting",
        &format!("{} === 'InProgress'", status_of("[data-stage='gate']")),
    );
    assert_eq!(
        browser.eval(&format!(
            "location.search + document.documentElement.outerHTML.includes({})",
            json!(TOKEN)
        )),
        "false",
        "the token is neither in the address nor in the page"
    );
    let (status, text) = request(
        address,
        "POST",
        &format!("/api/v1/executions/{id}/approvals/gate/approve"),
        Some(TOKEN),
        "{}",
    );
    assert_eq!(status, 202, "{text}");

    // Log lines and a phase marker arrive while the build runs.
    browser.wait_until(
        "the first log line",
        "document.getElementById('log').textContent.includes('[build.compile] first-line')",
    );
    browser.wait_until(
        "the BUILD phase marker",
        "[...document.querySelectorAll('#log .phase')].some(p => p.textContent.trim().endsWith('· BUILD'))",
    );
    let shot = artifacts_dir().join("dashboard.png");
    browser.screenshot(&shot);
    eprintln!("screenshot of the running execution: {}", shot.display());

    // Failed, without a reload, with a Retry button on the build stage.
    browser.wait_until(
        "Failed",
        "document.getElementById('status').dataset.status === 'Failed'",
    );
    assert_eq!(browser.eval(&status_of("[data-stage='build']")), "Failed");
    assert_eq!(browser.eval(&status_of("[data-stage='deploy']")), "Pending");
    browser.wait_until(
        "the end of the log",
        "document.getElementById('log').textContent.includes('[build.compile] first try fails')",
    );
}

/// Clicks Retry on the build stage and watches the same page follow the retry to the end;
/// saves `dashboard-retried.png`.
#[track_caller]
#[expect(clippy::print_stderr, reason = "the test names its artifacts")]
fn retry_from_the_page(browser: &mut Browser) {
    browser.click("button.retry[data-stage='build']");
    browser.wait_until(
        "the second try in the log",
        "document.getElementById('log').textContent.includes('[build.compile] second try')",
    );
    browser.wait_until(
        "Succeeded",
        "document.getElementById('status').dataset.status === 'Succeeded'",
    );
    assert_eq!(
        browser.eval(&status_of("[data-stage='build']")),
        "Succeeded"
    );
    assert_eq!(
        browser.eval(
            "document.querySelector(\"[data-stage='build'] [data-action='compile'] .attempt\").textContent"
        ),
        "#2"
    );
    browser.wait_until(
        "the deploy",
        &format!("{} === 'Succeeded'", status_of("[data-stage='deploy']")),
    );
    assert_eq!(
        browser.eval("window.loadedOnce === true"),
        json!(true),
        "the page was never reloaded"
    );
    assert_eq!(
        browser.eval("document.querySelectorAll('button.retry').length"),
        json!(0)
    );
    let shot = artifacts_dir().join("dashboard-retried.png");
    browser.screenshot(&shot);
    eprintln!("screenshot after the retry: {}", shot.display());
}

#[test]
#[expect(clippy::print_stderr, reason = "a skipped test says why")]
fn the_dashboard_follows_a_run_live_and_its_retry_button_reruns_the_failed_stage() {
    let Some(binary) = chromium() else {
        eprintln!(
            "skipped: no Chromium on PATH (apt-get install chromium, or set RUNNER_TEST_CHROMIUM)"
        );
        return;
    };
    let pipeline = flaky_served("dash", true, 4);
    let (mut serve, address) = serve_with_token(&pipeline);
    let mut browser = Browser::launch(&binary);
    let (status, text) = request(
        &address,
        "POST",
        "/api/v1/pipelines/dash/executions",
        Some(TOKEN),
        "",
    );
    assert_eq!(status, 202, "{text}");
    let id = serve.execution_id();

    // The index lists the pipeline with its running execution.
    browser.open(&format!("http://{address}/"));
    browser.wait_until(
        "the execution on the index",
        &format!(
            "document.querySelector('#pipelines tr[data-pipeline=\"dash\"] a')?.textContent === {}",
            json!(id)
        ),
    );
    watch_the_run_fail(&mut browser, &address, &id);
    retry_from_the_page(&mut browser);

    let execution = pipeline.status(Some(&id));
    assert_eq!(execution.status, "Succeeded");
    assert_eq!(execution.action("build", "compile").attempt, 2);
    drop(browser);
    Command::new("kill")
        .args(["-TERM", &serve.pid().to_string()])
        .status()
        .expect("kill");
    serve.finish(Duration::from_secs(60)).code(0);
}
