//! A minimal HTTP/1.1 client over `tokio::net::TcpStream` for `http://` URLs on localhost (no TLS,
//! no proxy, no redirects, no cookies): tests send exact requests (any header, e.g. `Origin` or
//! `Sec-Fetch-Site`, form posts) and see exact status codes and headers.
//!
//! ```ignore
//! let r = http::get("http://127.0.0.1:8080/invite?token=abc").await?;
//! assert_eq!(r.status, 200);
//! let r = http::post_form(url, &[("token", "abc")], &[("Origin", "http://evil.example")]).await?;
//! assert_eq!(r.status, 403);
//! ```
#![allow(dead_code)]

use std::io::{Error, ErrorKind, Result};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long one request (connect, send, read the whole response) may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// In order received, names as sent by the server.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked, as (lossy) UTF-8.
    pub body: String,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request. `Host`, `Connection: close` and `Content-Length` (when there is a body, or
/// for POST/PUT/PATCH) are added unless `headers` has a header of that name; `body` is
/// `(content-type, bytes)`. A response is read by `Content-Length`, chunked transfer-encoding or
/// until EOF; `1xx` interim responses are skipped. Errors: I/O, a malformed URL or response, or
/// [`ErrorKind::TimedOut`] after [`TIMEOUT`].
pub async fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> Result<Response> {
    request_timeout(method, url, headers, body, TIMEOUT).await
}

/// [`request`] with another time limit than [`TIMEOUT`].
pub async fn request_timeout(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
    timeout: Duration,
) -> Result<Response> {
    match tokio::time::timeout(timeout, request_inner(method, url, headers, body)).await {
        Ok(r) => r,
        Err(_) => Err(Error::new(
            ErrorKind::TimedOut,
            format!("{method} {url}: no complete response within {timeout:?}"),
        )),
    }
}

/// `GET url`.
pub async fn get(url: &str) -> Result<Response> {
    request("GET", url, &[], None).await
}

/// `POST url` with an `application/x-www-form-urlencoded` body of `fields`.
pub async fn post_form(
    url: &str,
    fields: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> Result<Response> {
    let body = form_urlencode(fields);
    request(
        "POST",
        url,
        headers,
        Some(("application/x-www-form-urlencoded", body.as_bytes())),
    )
    .await
}

/// `fields` as `application/x-www-form-urlencoded` (the WHATWG encoding: `*-._` and
/// alphanumerics kept, space as `+`, every other byte of the UTF-8 as `%XX`).
pub fn form_urlencode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", form_escape(k), form_escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn form_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `http://host[:port][/path][?query][#fragment]` → (host as written, port, request target).
fn split_url(url: &str) -> Result<(String, u16, String)> {
    let bad = |why: &str| Error::new(ErrorKind::InvalidInput, format!("URL {url:?}: {why}"));
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad("only http:// is supported"))?;
    let rest = rest.split('#').next().unwrap_or_default();
    let (authority, target) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    if authority.contains('@') {
        return Err(bad("user info is not supported"));
    }
    let (host, port) = if authority.starts_with('[') {
        // [v6]:port
        let end = authority.find(']').ok_or_else(|| bad("unclosed '['"))?;
        let port = authority[end + 1..].strip_prefix(':');
        (&authority[..=end], port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        None | Some("") => 80,
        Some(p) => p.parse().map_err(|_| bad("bad port"))?,
    };
    Ok((host.to_string(), port, target))
}

async fn request_inner(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> Result<Response> {
    let (host, port, target) = split_url(url)?;
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));

    let mut head = format!("{method} {target} HTTP/1.1\r\n");
    if !has("host") {
        if port == 80 {
            head.push_str(&format!("Host: {host}\r\n"));
        } else {
            head.push_str(&format!("Host: {host}:{port}\r\n"));
        }
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !has("connection") {
        head.push_str("Connection: close\r\n");
    }
    let bytes: &[u8] = body.map(|(_, b)| b).unwrap_or_default();
    if let Some((content_type, _)) = body
        && !has("content-type")
    {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    let wants_length = body.is_some() || matches!(method, "POST" | "PUT" | "PATCH");
    if wants_length && !has("content-length") && !has("transfer-encoding") {
        head.push_str(&format!("Content-Length: {}\r\n", bytes.len()));
    }
    head.push_str("\r\n");

    let mut stream = TcpStream::connect(format!("{host}:{port}")).await?;
    let mut out = head.into_bytes();
    out.extend_from_slice(bytes);
    stream.write_all(&out).await?;
    stream.flush().await?;

    let mut reader = BufReader::new(stream);
    loop {
        let (status, headers) = read_head(&mut reader).await?;
        if (100..200).contains(&status) && status != 101 {
            continue; // 100 Continue, 103 Early Hints: the real response follows
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_ascii_lowercase())
        };
        let no_body = method.eq_ignore_ascii_case("HEAD")
            || status == 204
            || status == 304
            || (100..200).contains(&status);
        let body = if no_body {
            Vec::new()
        } else if header("transfer-encoding").is_some_and(|te| te.ends_with("chunked")) {
            read_chunked(&mut reader).await?
        } else if let Some(len) = header("content-length") {
            let len: usize = len.parse().map_err(|_| invalid("bad Content-Length"))?;
            let mut body = vec![0; len];
            reader.read_exact(&mut body).await?;
            body
        } else {
            let mut body = Vec::new();
            reader.read_to_end(&mut body).await?;
            body
        };
        return Ok(Response {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    }
}

fn invalid(why: &str) -> Error {
    Error::new(ErrorKind::InvalidData, why.to_string())
}

/// One line without its `\r\n` / `\n`; an error at EOF.
async fn read_line<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> Result<String> {
    let mut line = Vec::new();
    if r.read_until(b'\n', &mut line).await? == 0 {
        return Err(Error::new(
            ErrorKind::UnexpectedEof,
            "connection closed before the response was complete",
        ));
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// Status line and headers.
async fn read_head<R: AsyncRead + Unpin>(
    r: &mut BufReader<R>,
) -> Result<(u16, Vec<(String, String)>)> {
    let status_line = read_line(r).await?;
    let mut parts = status_line.split_whitespace();
    let status = match (parts.next(), parts.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => code
            .parse::<u16>()
            .map_err(|_| invalid(&format!("bad status line {status_line:?}")))?,
        _ => return Err(invalid(&format!("bad status line {status_line:?}"))),
    };
    let mut headers = Vec::new();
    loop {
        let line = read_line(r).await?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(&format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    Ok((status, headers))
}

/// A chunked body (trailers are read and dropped).
async fn read_chunked<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(r).await?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| invalid(&format!("bad chunk size line {line:?}")))?;
        if size == 0 {
            // Trailers up to the empty line; a server that closes right after "0" is tolerated.
            while let Ok(line) = read_line(r).await
                && !line.is_empty()
            {}
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..]).await?;
        if !read_line(r).await?.is_empty() {
            return Err(invalid("chunk not followed by CRLF"));
        }
    }
}

/// One GET from a chosen loopback source address (127.0.0.2 is not in 127.0.0.1/32), with
/// `headers`: its status and the whole response as text.
pub async fn request_from(
    source: &str,
    addr: std::net::SocketAddr,
    target: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{source}:0").parse().expect("source"))
        .expect("bind");
    let mut s = socket.connect(addr).await.expect("connect");
    let mut req = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("in time")
        .expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, text)
}
