//! A real headless browser for tests: a Node script under `tests/browser/` drives Debian's
//! chromium with Playwright (`playwright-core`, installed with axe-core into `target/node` by
//! `make node`, pinned). The test sets up the cluster and the people, runs the script with
//! what it needs as JSON, and asserts its exit status and output.
//!
//! ```ignore
//! let run = browser::run("invite.mjs", &json!({"link": link, "screenshots": dir})).await;
//! run.assert_passed();
//! let page = run.value("page");                // a `value page {...}` line the script printed
//! ```
//!
//! The script's protocol (tests/browser/lib.mjs): `ok <step>` per step passed, `value <name>
//! <json>` for what the test checks itself, `PASSED` at the end and exit 0; on the first failure
//! `FAIL <step>: <why>` and exit 1. Node runs in its own process group (chromium under it),
//! killed as a whole if the script outlives its time, so no chromium outlives a failed test.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// How long one script may run.
const TIMEOUT: Duration = Duration::from_secs(600);

/// The project's root (the scripts and `target/node` are found from it).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where the tests keep screenshots: `target/test-screenshots/`.
pub fn screenshots() -> PathBuf {
    root().join("target/test-screenshots")
}

pub struct Run {
    pub script: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn passed(&self) -> bool {
        self.code == Some(0) && self.stdout.lines().any(|l| l == "PASSED")
    }

    pub fn assert_passed(&self) {
        assert!(
            self.passed(),
            "tests/browser/{} failed (exit {:?}):\n{}\n--- stderr\n{}",
            self.script,
            self.code,
            self.stdout,
            self.stderr
        );
    }

    /// The JSON of the script's `value <name> <json>` line.
    pub fn value(&self, name: &str) -> Value {
        let prefix = format!("value {name} ");
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or_else(|| panic!("no `value {name}` from {}:\n{}", self.script, self.stdout))
    }

    /// Whether the script printed `ok <step>`.
    pub fn ok(&self, step: &str) -> bool {
        self.stdout.lines().any(|l| l == format!("ok {step}"))
    }
}

/// Runs `tests/browser/<script>` with `input` (JSON, its first argument) and waits for it.
pub async fn run(script: &str, input: &Value) -> Run {
    let root = root();
    for (what, path) in [
        ("chromium (apt-get install chromium)", Path::new(CHROMIUM)),
        (
            "playwright-core (make node)",
            &root.join("target/node/node_modules/playwright-core/package.json"),
        ),
        (
            "axe-core (make node)",
            &root.join("target/node/node_modules/axe-core/axe.min.js"),
        ),
    ] {
        assert!(path.exists(), "{} not found: {what}", path.display());
    }
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(root.join("tests/browser").join(script))
        .arg(input.to_string())
        .current_dir(&root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("node tests/browser/{script}: {e} (apt-get install nodejs)"));
    let pid = child.id();
    let out = match tokio::time::timeout(TIMEOUT, child.wait_with_output()).await {
        Ok(out) => out.unwrap_or_else(|e| panic!("node tests/browser/{script}: {e}")),
        Err(_) => {
            if let Some(pid) = pid {
                // The whole group: node and the chromium it started.
                kill_group(pid);
            }
            panic!("tests/browser/{script} did not finish in {TIMEOUT:?}");
        }
    };
    let run = Run {
        script: script.to_string(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    // Seen in the test's output with --no-capture, and kept with a failure's message.
    println!("--- tests/browser/{script}\n{}", run.stdout);
    run
}

/// SIGKILL to the process group `pid` leads.
fn kill_group(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .status();
}
