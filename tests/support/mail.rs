//! A real SMTP server for tests: Debian's python3-aiosmtpd, run as a child process, storing every
//! message it receives in a Maildir; messages are parsed with Python's stdlib `email` package
//! (a real MIME parser: multipart, quoted-printable, base64, encoded headers).
//!
//! ```ignore
//! let mut smtp = SmtpServer::start(&dir.join("mail")).await;   // 127.0.0.1:smtp.port
//! // ... configure the operator with smtp.port, trigger an invitation ...
//! let mail = smtp.wait_for("alice@customer.example", 10).await;
//! let link = mail.link("http://127.0.0.1:").expect("an invitation link");
//! smtp.stop().await;                                          // the port is free again
//! ```
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// The Python that has python3-aiosmtpd (not the pyenv `python3` on PATH).
pub const PYTHON: &str = "/usr/bin/python3";

/// A TCP port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// One message, parsed by Python's `email` package (`policy=email.policy.default`).
#[derive(Debug, Clone, Deserialize)]
pub struct Mail {
    /// The decoded `From` header, e.g. `Partnerkit <noreply@platform.example>`.
    pub from: String,
    /// The bare addresses of the `To` header(s), e.g. `["alice@customer.example"]`.
    pub to: Vec<String>,
    /// The decoded `Subject` header.
    pub subject: String,
    /// The decoded `text/plain` body ("" if none).
    pub text: String,
    /// The decoded `text/html` body ("" if none).
    pub html: String,
    /// The message as stored (headers and encoded body), with aiosmtpd's `X-Peer`,
    /// `X-MailFrom` and `X-RcptTo` headers.
    pub raw: String,
}

impl Mail {
    /// The first URL in the text part that starts with `prefix`; the URL ends at whitespace,
    /// `<`, `>` or `"`, and trailing sentence punctuation (`.,;:!?)'`) is dropped.
    pub fn link(&self, prefix: &str) -> Option<String> {
        if prefix.is_empty() {
            return None;
        }
        let start = self.text.find(prefix)?;
        let rest = &self.text[start..];
        let end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"'))
            .unwrap_or(rest.len());
        let url = rest[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '\'']);
        Some(url.to_string())
    }

    /// Whether `addr` is one of the `To` addresses (case-insensitive).
    pub fn is_to(&self, addr: &str) -> bool {
        self.to.iter().any(|a| a.eq_ignore_ascii_case(addr.trim()))
    }
}

/// aiosmtpd on 127.0.0.1:`port`, storing messages in the Maildir `maildir` (files in `new/`).
pub struct SmtpServer {
    pub port: u16,
    pub maildir: PathBuf,
    child: Option<Child>,
    stderr: Arc<Mutex<String>>,
    /// A Maildir of its own ([`SmtpServer::start_fresh`]), removed on drop.
    scratch: bool,
}

static MAILDIRS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl SmtpServer {
    /// Starts aiosmtpd on a free port.
    pub async fn start(maildir: &Path) -> SmtpServer {
        Self::start_free(maildir, None).await
    }

    /// [`SmtpServer::start_free`] with a Maildir of its own: started before the cluster and
    /// the operator, whose configuration then names [`SmtpServer::port`], the port it holds.
    pub async fn start_fresh(login: Option<(&str, &str)>) -> SmtpServer {
        let n = MAILDIRS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let maildir =
            std::env::temp_dir().join(format!("partnerkit-mail-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&maildir);
        let mut server = Self::start_free(&maildir, login).await;
        server.scratch = true;
        server
    }

    /// Starts aiosmtpd (requiring `login` when given) on a free port: another process may take
    /// a port between [`free_port`] and aiosmtpd's bind, so a port found taken is replaced by
    /// another (up to five times).
    pub async fn start_free(maildir: &Path, login: Option<(&str, &str)>) -> SmtpServer {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let cmd = match login {
                None => Self::command(maildir, port),
                Some((user, password)) => Self::login_command(maildir, port, user, password),
            };
            match Self::try_launch(cmd, maildir, port).await {
                Ok(server) => return server,
                Err(taken) => last = taken,
            }
        }
        panic!("aiosmtpd found its port taken five times; the last time:\n{last}")
    }

    /// Starts aiosmtpd on `port` and waits (≤ 15 s) until it greets SMTP clients.
    pub async fn start_on(maildir: &Path, port: u16) -> SmtpServer {
        Self::launch(Self::command(maildir, port), maildir, port).await
    }

    fn command(maildir: &Path, port: u16) -> Command {
        let mut cmd = Command::new(PYTHON);
        cmd.args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir);
        cmd
    }

    /// aiosmtpd on `port` that requires `AUTH` (PLAIN or LOGIN, offered without TLS: loopback
    /// only) with exactly `user` / `password`, and refuses mail otherwise.
    pub async fn start_with_login(
        maildir: &Path,
        port: u16,
        user: &str,
        password: &str,
    ) -> SmtpServer {
        Self::launch(
            Self::login_command(maildir, port, user, password),
            maildir,
            port,
        )
        .await
    }

    fn login_command(maildir: &Path, port: u16, user: &str, password: &str) -> Command {
        const SCRIPT: &str = r#"
import sys, threading
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult
maildir, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode(), sys.argv[4].encode()
def check(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == user and auth_data.password == password
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself
c = Controller(Mailbox(maildir), hostname="127.0.0.1", port=port, authenticator=check,
               auth_required=True, auth_require_tls=False)
c.start()
threading.Event().wait()
"#;
        let mut cmd = Command::new(PYTHON);
        cmd.args(["-c", SCRIPT])
            .arg(maildir)
            .arg(port.to_string())
            .args([user, password]);
        cmd
    }

    async fn launch(cmd: Command, maildir: &Path, port: u16) -> SmtpServer {
        Self::try_launch(cmd, maildir, port)
            .await
            .unwrap_or_else(|taken| panic!("aiosmtpd: 127.0.0.1:{port} is taken:\n{taken}"))
    }

    /// Runs `cmd` and waits (≤ 15 s) until it greets on `port`; Err(its stderr) when it exited
    /// because the port was taken.
    async fn try_launch(mut cmd: Command, maildir: &Path, port: u16) -> Result<SmtpServer, String> {
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(maildir.join(sub))
                .unwrap_or_else(|e| panic!("create {}/{sub}: {e}", maildir.display()));
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("spawn {PYTHON} -m aiosmtpd: {e} (install python3-aiosmtpd)")
            });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("stderr pipe");
        let sink = stderr.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut server = SmtpServer {
            port,
            maildir: maildir.to_path_buf(),
            child: Some(child),
            stderr,
            scratch: false,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = server.child.as_mut().unwrap().try_wait().expect("try_wait") {
                tokio::time::sleep(Duration::from_millis(200)).await; // let stderr drain
                let stderr = server.stderr();
                if stderr
                    .to_ascii_lowercase()
                    .contains("address already in use")
                {
                    return Err(stderr);
                }
                panic!(
                    "aiosmtpd on 127.0.0.1:{port} exited ({status}):\n{}",
                    server.stderr()
                );
            }
            if greets(port).await {
                return Ok(server);
            }
            if Instant::now() > deadline {
                panic!(
                    "aiosmtpd on 127.0.0.1:{port} did not accept SMTP connections within 15 s:\n{}",
                    server.stderr()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What aiosmtpd wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Kills aiosmtpd and waits for it to exit; the port is free afterwards (connections are
    /// refused) and [`SmtpServer::start_on`] can take it again. Messages stay readable.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Every message received so far, oldest first (by file mtime, then name).
    pub fn messages(&self) -> Vec<Mail> {
        let files = self.files();
        if files.is_empty() {
            return Vec::new();
        }
        let out = std::process::Command::new(PYTHON)
            .arg("-c")
            .arg(PARSE_PY)
            .args(&files)
            .output()
            .unwrap_or_else(|e| panic!("spawn {PYTHON}: {e}"));
        parse_output(&out)
    }

    /// Like [`SmtpServer::messages`], without blocking the async runtime.
    pub async fn messages_async(&self) -> Vec<Mail> {
        let files = self.files();
        if files.is_empty() {
            return Vec::new();
        }
        let out = Command::new(PYTHON)
            .arg("-c")
            .arg(PARSE_PY)
            .args(&files)
            .output()
            .await
            .unwrap_or_else(|e| panic!("spawn {PYTHON}: {e}"));
        parse_output(&out)
    }

    /// Polls until a message addressed `To` `to` (case-insensitive) has arrived and returns the
    /// first such message; panics listing what has arrived after `secs` seconds.
    pub async fn wait_for(&self, to: &str, secs: u64) -> Mail {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut seen: Vec<PathBuf> = Vec::new();
        let mut mails = Vec::new();
        loop {
            let files = self.files();
            if files != seen {
                mails = self.messages_async().await;
                seen = files;
                if let Some(m) = mails.iter().find(|m| m.is_to(to)) {
                    return m.clone();
                }
            }
            if Instant::now() > deadline {
                let got: Vec<String> = mails
                    .iter()
                    .map(|m| format!("  from {:?} to {:?}: {:?}", m.from, m.to, m.subject))
                    .collect();
                panic!(
                    "no mail to {to} within {secs} s on 127.0.0.1:{}; {} message(s) received:\n{}",
                    self.port,
                    mails.len(),
                    got.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The message files in `new/`, oldest first (mtime, then name).
    fn files(&self) -> Vec<PathBuf> {
        let Ok(dir) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        let mut files: Vec<(SystemTime, PathBuf)> = dir
            .filter_map(Result::ok)
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                meta.is_file()
                    .then(|| (meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), e.path()))
            })
            .collect();
        files.sort();
        files.into_iter().map(|(_, p)| p).collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        if self.scratch {
            let _ = std::fs::remove_dir_all(&self.maildir);
        }
    }
}

/// Whether an SMTP server on 127.0.0.1:`port` sends a `220` greeting.
async fn greets(port: u16) -> bool {
    let attempt = async {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let mut stream = BufReader::new(stream);
        let mut line = String::new();
        stream.read_line(&mut line).await?;
        let _ = stream.get_mut().write_all(b"QUIT\r\n").await;
        Ok::<bool, std::io::Error>(line.starts_with("220"))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Ok(true))
    )
}

fn parse_output(out: &std::process::Output) -> Vec<Mail> {
    if !out.status.success() {
        panic!(
            "parsing mail with {PYTHON} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "mail parser output is not the expected JSON: {e}\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Parses the files named in argv, prints a JSON array of [`Mail`].
const PARSE_PY: &str = r#"
import email, email.policy, email.utils, json, sys

def body(msg, kind):
    part = msg.get_body((kind,))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except Exception:
        payload = part.get_payload(decode=True) or b""
        return payload.decode(part.get_content_charset() or "utf-8", "replace")
    if isinstance(content, bytes):
        return content.decode(part.get_content_charset() or "utf-8", "replace")
    return content

out = []
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    with open(path, "rb") as f:
        raw = f.read().decode("utf-8", "replace")
    tos = [str(v) for v in msg.get_all("To", [])]
    out.append({
        "from": str(msg.get("From", "")),
        "to": [addr for _, addr in email.utils.getaddresses(tos) if addr],
        "subject": str(msg.get("Subject", "")),
        "text": body(msg, "plain"),
        "html": body(msg, "html"),
        "raw": raw,
    })
json.dump(out, sys.stdout)
"#;
