//! The portal's sign-in with real sign-in programs (issue 11): `auth: oidc` through the whole
//! authorization code flow against a real OpenID Connect provider (mockoidc, built by
//! `make oidc-bins` into target/oidc-bins/, with a control API to pick the next user and to
//! spoil the next ID token), and `auth: proxy` behind the real oauth2-proxy, whose own OIDC
//! provider is the same program. Every page is fetched as a browser would (cookies, redirects
//! followed by hand), and what the user may see is decided by the API server for the
//! impersonated identity: `userPrefix` + e-mail, and the groups `impersonateGroups` lets
//! through. Runs on kube-sim and, with `PARTNERKIT_E2E_REAL=1`, on a real control plane (as
//! the chart's ServiceAccount: tests/chart/values-e2e.yaml grants the Secret and the group).

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use support::{CONFIG, Env, http};

/// The group the chart of the real-cluster run lets the portal act with
/// (tests/chart/values-e2e.yaml `impersonateGroups`).
const AUDITORS: &str = "partnerkit-e2e-auditors";
/// A group bound to the same rights, but not in `impersonateGroups`: never passed on.
const OUTSIDERS: &str = "partnerkit-e2e-outsiders";
/// The client secret's Secret (values-e2e.yaml `oidc.clientSecretSecret`).
const CLIENT_SECRET_SECRET: &str = "partnerkit-oidc";
const CLIENT_ID: &str = "partnerkit";
const CLIENT_SECRET: &str = "a-test-client-secret-0123456789";

fn bin(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/oidc-bins")
        .join(name);
    assert!(
        p.exists(),
        "{} is missing: `make oidc-bins` builds it",
        p.display()
    );
    p
}

/// A child process killed (its whole group) on drop.
struct Child(tokio::process::Child, PathBuf);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

impl Child {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.1).unwrap_or_default()
    }
}

fn spawn(program: &Path, args: &[String], log: PathBuf) -> Child {
    let out = std::fs::File::create(&log).expect("log file");
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    Child(child, log)
}

/// The test provider (hack/oidc: mockoidc).
struct Provider {
    _child: Child,
    issuer: String,
    control: String,
}

impl Provider {
    async fn start(dir: &Path) -> Provider {
        let ready = dir.join("oidc-provider.json");
        let child = spawn(
            &bin("oidc-provider"),
            &[
                "--listen".into(),
                "127.0.0.1:0".into(),
                "--client-id".into(),
                CLIENT_ID.into(),
                "--client-secret".into(),
                CLIENT_SECRET.into(),
                "--ready-file".into(),
                ready.display().to_string(),
            ],
            dir.join("oidc-provider.log"),
        );
        for _ in 0..200 {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                let v: Value = serde_json::from_str(&text).expect("ready file");
                return Provider {
                    issuer: v["issuer"].as_str().unwrap().to_string(),
                    control: v["control"].as_str().unwrap().to_string(),
                    _child: child,
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("oidc-provider not ready: {}", child.log());
    }

    async fn control(&self, path: &str, body: Value) {
        let body = body.to_string();
        let r = http::request(
            "POST",
            &format!("{}{path}", self.control),
            &[],
            Some(("application/json", body.as_bytes())),
        )
        .await
        .expect("provider control");
        assert_eq!(r.status, 204, "{path}: {}", r.body);
    }

    /// The next sign-in at the provider is `email` with `groups`.
    async fn next_user(&self, email: &str, groups: &[&str]) {
        self.control("/test/user", json!({"email": email, "groups": groups}))
            .await
    }

    /// The next ID token the provider issues is spoilt as `fault` says.
    async fn spoil_next_token(&self, fault: Value) {
        self.control("/test/fault", fault).await
    }
}

/// A browser of sorts: cookies per origin (name → value, path), requests by absolute URL.
#[derive(Default, Clone)]
struct Browser {
    cookies: Vec<(String, String, String, String)>, // origin, name, value, path
}

fn origin_and_path(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    (
        format!("http://{host}"),
        if path.is_empty() {
            "/".into()
        } else {
            path.into()
        },
    )
}

impl Browser {
    async fn get(&mut self, url: &str, headers: &[(&str, &str)]) -> http::Response {
        self.request("GET", url, headers, None).await
    }

    async fn request(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        form: Option<&[(&str, &str)]>,
    ) -> http::Response {
        let (origin, path) = origin_and_path(url);
        let cookie = self
            .cookies
            .iter()
            .filter(|(o, _, _, p)| *o == origin && path.starts_with(p.as_str()))
            .map(|(_, n, v, _)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut h = headers.to_vec();
        if !cookie.is_empty() {
            h.push(("Cookie", &cookie));
        }
        let body = form.map(http::form_urlencode);
        let r = http::request(
            method,
            url,
            &h,
            body.as_deref()
                .map(|b| ("application/x-www-form-urlencoded", b.as_bytes())),
        )
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        for (name, value) in &r.headers {
            if !name.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            let mut parts = value.split(';').map(str::trim);
            let (n, v) = parts
                .next()
                .unwrap_or_default()
                .split_once('=')
                .unwrap_or_default();
            let mut cpath = "/".to_string();
            let mut gone = v.is_empty();
            for a in parts {
                let lower = a.to_ascii_lowercase();
                if let Some(p) = lower.strip_prefix("path=") {
                    cpath = a[5..5 + p.len()].to_string();
                }
                if lower == "max-age=0" || lower.starts_with("max-age=-") {
                    gone = true;
                }
                if lower.starts_with("expires=") && lower.contains("1970") {
                    gone = true;
                }
            }
            self.cookies
                .retain(|(o, cn, _, p)| !(*o == origin && cn == n && *p == cpath));
            if !gone {
                self.cookies
                    .push((origin.clone(), n.to_string(), v.to_string(), cpath));
            }
        }
        r
    }

    fn has_cookie(&self, name: &str) -> bool {
        self.cookies.iter().any(|(_, n, _, _)| n == name)
    }

    /// Follow redirects from `url` (relative Locations resolved against the current origin),
    /// at most 10; the last response and its URL.
    async fn follow(&mut self, url: &str) -> (http::Response, String) {
        let mut url = url.to_string();
        for _ in 0..10 {
            let r = self.get(&url, &[]).await;
            if !matches!(r.status, 301 | 302 | 303 | 307 | 308) {
                return (r, url);
            }
            let to = r.header("location").expect("Location").to_string();
            url = if to.starts_with("http") {
                to
            } else {
                format!("{}{to}", origin_and_path(&url).0)
            };
        }
        panic!("too many redirects at {url}");
    }
}

/// The value of query parameter `name` of `url`.
fn query(url: &str, name: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| {
            url::form_urlencoded::parse(format!("x={v}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        })
    })
}

/// The harness's configuration with `userPrefix: "oidc:"`, `listen.web` on `port`, and `portal`.
fn config(port: u16, portal: &str) -> String {
    let base = CONFIG.replace(
        "web: \"127.0.0.1:0\"",
        &format!("web: \"127.0.0.1:{port}\""),
    );
    assert_ne!(base, CONFIG, "the harness's listen.web");
    format!("{base}userPrefix: \"oidc:\"\nportal: {portal}\n")
}

/// Partners acme (admin alice) and initech (admin ivan) with a company each, and a Role in
/// initech's namespace letting the groups AUDITORS and OUTSIDERS list its companies.
struct World {
    acme: String,
    initech: String,
    alice: String,
    globex: String,
    hooli: String,
}

async fn world(env: &Env) -> World {
    let (acme, initech) = (env.n("acme"), env.n("initech"));
    let (alice, ivan) = (env.email("alice", &acme), env.email("ivan", &initech));
    let acme_ns = env.partner_ready(&acme, &[&alice], json!({})).await;
    let initech_ns = env.partner_ready(&initech, &[&ivan], json!({})).await;
    let (globex, hooli) = (env.n("globex"), env.n("hooli"));
    env.tenant_ready(&acme_ns, &globex, json!({"displayName": "Globex"}))
        .await;
    env.tenant_ready(&initech_ns, &hooli, json!({"displayName": "Hooli"}))
        .await;
    let role = env.n("auditors");
    env.apply_json(&json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": role, "namespace": initech_ns},
        "rules": [{"apiGroups": ["partnerkit.io"], "resources": ["tenants"],
                   "verbs": ["get", "list", "watch"]}],
    }))
    .await;
    env.apply_json(&json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": role, "namespace": initech_ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": AUDITORS},
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": OUTSIDERS},
        ],
    }))
    .await;
    World {
        acme,
        initech,
        alice,
        globex,
        hooli,
    }
}

/// The client secret's Secret in the operator's namespace (the chart's on a real cluster).
async fn client_secret(env: &Env) {
    let ns = env.operator_namespace();
    env.apply_json(&json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": CLIENT_SECRET_SECRET, "namespace": ns},
        "stringData": {"clientSecret": CLIENT_SECRET},
    }))
    .await;
}

async fn start_oidc(extra: &str) -> (Env, Provider, String, u16) {
    let port = support::mail::free_port();
    let dir = std::env::temp_dir().join(format!("partnerkit-oidc-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let provider = Provider::start(&dir).await;
    let base = format!("http://127.0.0.1:{port}");
    let portal = format!(
        "{{auth: oidc, impersonateGroups: [\"{AUDITORS}\"], oidc: {{issuerUrl: \"{}\", clientId: {CLIENT_ID}, clientSecretSecret: {CLIENT_SECRET_SECRET}, redirectUrl: \"{base}/portal/oidc/callback\", scopes: [openid, email, groups]{extra}}}}}",
        provider.issuer
    );
    let mut env = Env::start_with(
        kube_sim::SimConfig::default(),
        &config(port, &portal),
        false,
    )
    .await;
    client_secret(&env).await;
    env.start_operator().await;
    (env, provider, base, port)
}

/// Sign-in up to the provider's redirect back: (the callback URL, the authorization URL).
async fn to_callback(b: &mut Browser, base: &str) -> (String, String) {
    let r = b.get(&format!("{base}/portal/"), &[]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/portal/sign-in"));
    let r = b.get(&format!("{base}/portal/sign-in"), &[]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let authorize = r.header("location").expect("to the provider").to_string();
    assert!(b.has_cookie("partnerkit_oidc"), "the flow's cookie");
    let r = b.get(&authorize, &[]).await;
    assert_eq!(r.status, 302, "the provider: {}", r.body);
    let callback = r
        .header("location")
        .expect("back to the portal")
        .to_string();
    (callback, authorize)
}

/// Everything this process logs from now on (the in-process operator's portal among it), at
/// debug level for every crate, kept in memory. nextest runs each test in a process of its
/// own, so the global subscriber is this test's.
fn capture_logs() -> std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = buf.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
        .with_ansi(false)
        .with_writer(move || Sink(sink.clone()))
        .try_init()
        .expect("this test's process has no other log subscriber");
    buf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_sign_in_acts_as_the_prefixed_email_with_filtered_groups() {
    let logs = capture_logs();
    let (env, provider, base, _) = start_oidc("").await;
    let w = world(&env).await;
    let mut b = Browser::default();

    // The whole code flow: PKCE S256, state and nonce at the provider, then Companies.
    provider
        .next_user(&w.alice, &[AUDITORS, "system:masters", OUTSIDERS])
        .await;
    let (callback, authorize) = to_callback(&mut b, &base).await;
    assert!(
        authorize.starts_with(&format!("{}/authorize?", provider.issuer)),
        "{authorize}"
    );
    assert_eq!(
        query(&authorize, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(query(&authorize, "client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(
        query(&authorize, "redirect_uri"),
        Some(format!("{base}/portal/oidc/callback"))
    );
    for p in ["state", "nonce", "code_challenge"] {
        assert!(
            query(&authorize, p).is_some_and(|v| v.len() >= 43),
            "{p} in {authorize}"
        );
    }
    assert!(
        callback.starts_with(&format!("{base}/portal/oidc/callback?")),
        "{callback}"
    );
    let code = query(&callback, "code").expect("the authorization code");
    assert!(code.len() >= 16, "a code to look for: {code}");
    let r = b.get(&callback, &[]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/portal/"));
    assert!(
        !b.has_cookie("partnerkit_oidc"),
        "the flow's cookie is used once"
    );
    // No token in a log: the operator logged the sign-in, but neither the authorization code,
    // nor any JWT (the ID and access tokens: base64url of `{"` is `eyJ`), nor the client
    // secret.
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).to_string();
    assert!(
        logged.contains("portal: OIDC sign-in") && logged.contains(&w.alice),
        "the capture works: {logged}"
    );
    for (what, secret) in [
        ("the authorization code", code.as_str()),
        ("a JWT", "eyJ"),
        ("the client secret", CLIENT_SECRET),
    ] {
        assert!(!logged.contains(secret), "{what} in the log:\n{logged}");
    }
    assert!(b.has_cookie("partnerkit_portal"));
    let session = b
        .cookies
        .iter()
        .find(|c| c.1 == "partnerkit_portal")
        .unwrap()
        .2
        .clone();
    assert!(
        !session.contains(&w.alice) && !session.contains("eyJ"),
        "encrypted, no token"
    );

    let (list, url) = b.follow(&format!("{base}/portal/")).await;
    assert_eq!(list.status, 200, "{url}: {}", list.body);
    assert!(
        url.ends_with(&format!("/portal/partners/{}/companies", w.acme)),
        "{url}"
    );
    assert!(list.body.contains("<h1>Companies</h1>"), "{}", list.body);
    assert!(list.body.contains(&w.globex), "{}", list.body);
    assert!(
        list.body
            .contains(&format!("<span id=\"user\">{}</span>", w.alice)),
        "{}",
        list.body
    );
    // The API server saw oidc:alice…: only her partner's companies are hers…
    assert!(!list.body.contains(&w.hooli), "{}", list.body);
    // …and the group that impersonateGroups lets through lets her list initech's.
    let r = b
        .get(
            &format!("{base}/portal/partners/{}/companies", w.initech),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains(&w.hooli), "{}", r.body);

    // Signed in again with the groups that must not pass (system:masters, one not listed):
    // initech's companies are refused by the API server (no impersonation of those groups).
    let mut b2 = Browser::default();
    provider
        .next_user(&w.alice, &["system:masters", OUTSIDERS])
        .await;
    let (callback, _) = to_callback(&mut b2, &base).await;
    assert_eq!(b2.get(&callback, &[]).await.status, 303);
    let r = b2
        .get(
            &format!("{base}/portal/partners/{}/companies", w.initech),
            &[],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!r.body.contains(&w.hooli), "{}", r.body);
    assert!(r.body.contains("forbidden"), "{}", r.body);
    assert!(
        !r.body.contains("impersonate"),
        "no group was even tried: {}",
        r.body
    );
    let r = b2
        .get(&format!("{base}/portal/partners/{}/companies", w.acme), &[])
        .await;
    assert_eq!(r.status, 200, "her own still: {}", r.body);

    // Sign-out ends the session: the cookie goes, and pages lead to sign-in again.
    let page = b
        .get(&format!("{base}/portal/partners/{}/companies", w.acme), &[])
        .await;
    let token = csrf(&page.body);
    let r = b
        .request(
            "POST",
            &format!("{base}/portal/sign-out"),
            &[("Sec-Fetch-Site", "same-origin")],
            Some(&[("csrf", &token)]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Signed out of the portal"), "{}", r.body);
    assert!(
        !b.has_cookie("partnerkit_portal"),
        "the session cookie is removed"
    );
    let r = b.get(&format!("{base}/portal/"), &[]).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/portal/sign-in"));
    env.finish().await;
}

/// The value of the first `name="csrf"` field of a page.
/// The same sign-in in a real browser (Playwright driving chromium): the redirects to the
/// provider and back, the Companies page as the user (axe-core and the keyboard check on it), and
/// Sign out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_sign_in_in_a_real_browser() {
    let (env, provider, base, _) = start_oidc("").await;
    let w = world(&env).await;
    provider.next_user(&w.alice, &[AUDITORS]).await;
    let input = json!({
        "base": base,
        "user": w.alice,
        "companies": format!("/portal/partners/{}/companies", w.acme),
        "screenshots": support::browser::screenshots(),
    });
    support::browser::run("oidc.mjs", &input)
        .await
        .assert_passed();
    env.finish().await;
}

fn csrf(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no CSRF field in:\n{html}"));
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').expect("end of value")].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_refuses_forged_state_and_bad_id_tokens() {
    let (env, provider, base, _) = start_oidc("").await;
    let w = world(&env).await;
    let list = format!("{base}/portal/partners/{}/companies", w.acme);

    // A forged state: refused, nothing signed in, the code never redeemed.
    let mut b = Browser::default();
    provider.next_user(&w.alice, &[]).await;
    let (callback, _) = to_callback(&mut b, &base).await;
    let state = query(&callback, "state").unwrap();
    let forged = callback.replace(&state, "forged-state-0123456789012345678901234567890");
    let r = b.get(&forged, &[]).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("state is not this sign-in"), "{}", r.body);
    assert!(!b.has_cookie("partnerkit_portal"));
    assert_eq!(b.get(&list, &[]).await.status, 303, "not signed in");
    // Nor does the genuine answer work afterwards: the flow's cookie was used up.
    let r = b.get(&callback, &[]).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("was not started here"), "{}", r.body);

    // A callback in a browser that never started a sign-in (login CSRF): refused.
    let mut other = Browser::default();
    provider.next_user(&w.alice, &[]).await;
    let (callback, _) = to_callback(&mut b, &base).await;
    let r = other.get(&callback, &[]).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!other.has_cookie("partnerkit_portal"));

    // ID tokens the provider spoils, each refused with its reason, and no session.
    for (fault, reason) in [
        (json!({"aud": "someone-else"}), "not for this portal (aud)"),
        (
            json!({"nonce": "another-sign-in"}),
            "nonce is not this sign-in",
        ),
        (json!({"expiresIn": -600}), "has expired"),
        (
            json!({"iss": "http://127.0.0.1:1/oidc"}),
            "another issuer (iss)",
        ),
        (json!({"foreignKey": true}), "signature does not verify"),
    ] {
        let mut b = Browser::default();
        provider.next_user(&w.alice, &[]).await;
        let (callback, _) = to_callback(&mut b, &base).await;
        provider.spoil_next_token(fault.clone()).await;
        let r = b.get(&callback, &[]).await;
        assert_eq!(r.status, 403, "{fault}: {}", r.body);
        assert!(r.body.contains(reason), "{fault}: {}", r.body);
        assert!(!b.has_cookie("partnerkit_portal"), "{fault}");
        assert_eq!(
            b.get(&list, &[]).await.status,
            303,
            "{fault}: not signed in"
        );
    }

    // The same provider, unspoilt: signed in (the faults above were the tokens', not setup's).
    let mut b = Browser::default();
    provider.next_user(&w.alice, &[]).await;
    let (callback, _) = to_callback(&mut b, &base).await;
    assert_eq!(b.get(&callback, &[]).await.status, 303);
    let r = b.get(&list, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains(&w.globex));
    env.finish().await;
}

/// oauth2-proxy (the real one) in front of the portal; its OIDC provider is the test provider.
struct OAuth2Proxy {
    child: Child,
    base: String,
}

async fn oauth2_proxy(dir: &Path, provider: &Provider, upstream_port: u16) -> OAuth2Proxy {
    let port = support::mail::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let args: Vec<String> = [
        "--provider=oidc".to_string(),
        format!("--oidc-issuer-url={}", provider.issuer),
        format!("--client-id={CLIENT_ID}"),
        format!("--client-secret={CLIENT_SECRET}"),
        format!("--redirect-url={base}/oauth2/callback"),
        format!("--http-address=127.0.0.1:{port}"),
        format!("--upstream=http://127.0.0.1:{upstream_port}/"),
        "--cookie-secret=0123456789abcdef0123456789abcdef".into(),
        "--cookie-secure=false".into(),
        "--email-domain=*".into(),
        "--scope=openid email profile groups".into(),
        "--code-challenge-method=S256".into(),
        "--skip-provider-button=true".into(),
        "--pass-user-headers=true".into(),
        "--reverse-proxy=false".into(),
    ]
    .into();
    let child = spawn(&bin("oauth2-proxy"), &args, dir.join("oauth2-proxy.log"));
    for _ in 0..200 {
        if http::get(&format!("{base}/ping"))
            .await
            .is_ok_and(|r| r.status == 200)
        {
            return OAuth2Proxy { child, base };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("oauth2-proxy not ready: {}", child.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_sign_in_through_oauth2_proxy() {
    let port = support::mail::free_port();
    let dir = std::env::temp_dir().join(format!(
        "partnerkit-oauth2-proxy-{}-{port}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let provider = Provider::start(&dir).await;
    let portal = format!(
        "{{auth: proxy, impersonateGroups: [\"{AUDITORS}\"], proxy: {{trustedProxies: [\"127.0.0.1/32\"]}}}}"
    );
    let env = Env::start_with(kube_sim::SimConfig::default(), &config(port, &portal), true).await;
    let w = world(&env).await;
    let proxy = oauth2_proxy(&dir, &provider, port).await;

    // Not signed in at the proxy: headers a client sends do not get through; the proxy sends
    // the browser to the provider.
    let mut b = Browser::default();
    let r = b
        .get(
            &format!("{}/portal/", proxy.base),
            &[("X-Forwarded-Email", &w.alice)],
        )
        .await;
    assert!(matches!(r.status, 302 | 303), "{}: {}", r.status, r.body);
    assert!(
        r.header("location")
            .unwrap_or_default()
            .starts_with(&provider.issuer),
        "{:?}",
        r.header("location")
    );
    assert!(!r.body.contains(&w.globex));

    // The whole flow through oauth2-proxy: Companies as oidc:alice, with the auditors group.
    provider
        .next_user(&w.alice, &[AUDITORS, "system:masters"])
        .await;
    let (list, url) = b.follow(&format!("{}/portal/", proxy.base)).await;
    assert_eq!(
        list.status,
        200,
        "{url}: {}\n{}",
        list.body,
        proxy.child.log()
    );
    assert!(
        url.ends_with(&format!("/portal/partners/{}/companies", w.acme)),
        "{url}"
    );
    assert!(list.body.contains(&w.globex), "{}", list.body);
    assert!(
        list.body
            .contains(&format!("<span id=\"user\">{}</span>", w.alice)),
        "{}",
        list.body
    );
    assert!(!list.body.contains(&w.hooli), "{}", list.body);
    let r = b
        .get(
            &format!("{}/portal/partners/{}/companies", proxy.base, w.initech),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "the auditors group passed: {}", r.body);
    assert!(r.body.contains(&w.hooli), "{}", r.body);
    // A signed-in user naming someone else in the header: oauth2-proxy's word wins.
    let r = b
        .get(
            &format!("{}/portal/partners/{}/companies", proxy.base, w.acme),
            &[("X-Forwarded-Email", "ivan@elsewhere.example")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body
            .contains(&format!("<span id=\"user\">{}</span>", w.alice)),
        "{}",
        r.body
    );

    // Straight to the portal from an address that is not a trusted proxy: the headers are
    // not believed.
    let (code, text) = http::request_from(
        "127.0.0.2",
        ([127, 0, 0, 1], port).into(),
        &format!("/portal/partners/{}/companies", w.acme),
        &[
            ("X-Forwarded-Email", &w.alice),
            ("X-Forwarded-Groups", AUDITORS),
        ],
    )
    .await;
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("not one of the trusted proxies"), "{text}");
    assert!(!text.contains(&w.globex), "{text}");

    // Signing out at the proxy ends the way in: the portal is not reached any more.
    let r = b.get(&format!("{}/oauth2/sign_out", proxy.base), &[]).await;
    assert!(matches!(r.status, 302 | 303), "{}", r.body);
    let r = b
        .get(
            &format!("{}/portal/partners/{}/companies", proxy.base, w.acme),
            &[],
        )
        .await;
    assert!(matches!(r.status, 302 | 303), "{}", r.body);
    assert!(!r.body.contains(&w.globex));
    drop(proxy);
    env.finish().await;
}
