//! PartnerAdminInvite end to end, as users meet it: `kubectl --as` creates invites, a real SMTP
//! server (aiosmtpd) receives the e-mail, a real browser (headless Chromium) follows the link and
//! clicks Accept, and the new admin's rights appear — and go — everywhere DESIGN.md says.
//!
//! Needs `/usr/bin/python3 -m aiosmtpd` (Debian python3-aiosmtpd), chromium and Node.js (Debian
//! chromium, nodejs; `make deps`), and playwright-core (`make node`): tests/browser/invite.mjs.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::mail::{SmtpServer, free_port};
use support::{Env, Out, http, tenant_json};

const API: &str = "partnerkit.io/v1alpha1";

/// How the operator delivers in a test.
enum Delivery {
    /// aiosmtpd, up from the start.
    Smtp,
    /// An SMTP port where nothing listens yet; `attempts` with `backoff` between them.
    SmtpDown {
        attempts: u32,
        backoff: &'static str,
    },
    /// `tls: starttls` against aiosmtpd, which offers no STARTTLS.
    StarttlsRequired,
    /// No SMTP: the link goes into a Secret.
    LinkSecret,
    /// aiosmtpd requiring AUTH as portal / s3cret; credentials from Secret `partnerkit-smtp`.
    SmtpLogin,
}

const SMTP_USER: &str = "portal";
const SMTP_PASSWORD: &str = "s3cret";

struct Fx {
    env: Env,
    smtp: Option<SmtpServer>,
    smtp_port: u16,
    web_port: u16,
}

fn config(web_port: u16, smtp: Option<String>) -> String {
    let smtp = smtp.map(|s| format!("  smtp: {s}\n")).unwrap_or_default();
    format!(
        r##"
catalog:
  - {{name: mail, displayName: Mail, premium: false}}
  - {{name: crm, displayName: CRM, premium: true}}
defaultBranding:
  logoUrl: https://platform.example/logo.png
  primaryColor: "#333333"
  support: {{url: https://help.platform.example}}
invites:
  acceptUrl: http://127.0.0.1:{web_port}/invites
{smtp}listen: {{metrics: "127.0.0.1:0", health: "127.0.0.1:0", web: "127.0.0.1:{web_port}"}}
"##
    )
}

impl Fx {
    async fn start(delivery: Delivery) -> Fx {
        Self::start_with(delivery, true).await
    }

    /// `operator: false`: the cluster, the SMTP server and the configuration only (the test
    /// runs the operator itself, e.g. as the `partnerkit` binary); the YAML is `config_yaml`.
    async fn start_with(delivery: Delivery, operator: bool) -> Fx {
        // The server first, on a port it holds, then the configuration naming it.
        let server = match delivery {
            Delivery::Smtp | Delivery::StarttlsRequired => {
                Some(SmtpServer::start_fresh(None).await)
            }
            Delivery::SmtpLogin => {
                Some(SmtpServer::start_fresh(Some((SMTP_USER, SMTP_PASSWORD))).await)
            }
            _ => None,
        };
        let web_port = free_port();
        let smtp_port = server.as_ref().map_or_else(free_port, |s| s.port);
        let smtp = |tls: &str, attempts: u32, backoff: &str| {
            Some(format!(
                "{{host: 127.0.0.1, port: {smtp_port}, tls: {tls}, from: portal@platform.example, attempts: {attempts}, retryBackoff: {backoff}, timeout: 5s}}"
            ))
        };
        let smtp_config = match &delivery {
            Delivery::Smtp => smtp("none", 3, "200ms"),
            Delivery::SmtpDown { attempts, backoff } => smtp("none", *attempts, backoff),
            Delivery::StarttlsRequired => smtp("starttls", 2, "100ms"),
            Delivery::LinkSecret => None,
            Delivery::SmtpLogin => Some(format!(
                "{{host: 127.0.0.1, port: {smtp_port}, tls: none, from: portal@platform.example, credentialsSecret: partnerkit-smtp, attempts: 20, retryBackoff: 200ms, timeout: 5s}}"
            )),
        };
        let env = Env::start_with(
            kube_sim::SimConfig::default(),
            &config(web_port, smtp_config),
            operator,
        )
        .await;
        Fx {
            env,
            smtp: server,
            smtp_port,
            web_port,
        }
    }

    /// Partner acme (admin alice), Ready, and an invite `invite-bob` for bob@acme.example
    /// (72h) in its namespace; returns the namespace.
    async fn acme_inviting_bob(&self) -> String {
        let acme = self.env.n("acme");
        let acme_ns = self
            .env
            .partner_ready(&acme, &[&self.env.email("alice", &acme)], json!({}))
            .await;
        allowed(
            &self
                .invite(None, &acme_ns, "invite-bob", "bob@acme.example", "72h")
                .await,
            "invite",
        );
        acme_ns
    }

    fn prefix(&self) -> String {
        format!("http://127.0.0.1:{}/invites/", self.web_port)
    }

    fn page(&self, ns: &str, name: &str) -> String {
        format!("{}{ns}/{name}", self.prefix())
    }

    /// `kubectl create` a PartnerAdminInvite (as `user`, or the cluster admin).
    async fn invite(
        &self,
        user: Option<&str>,
        ns: &str,
        name: &str,
        email: &str,
        ttl: &str,
    ) -> Out {
        let v = json!({"apiVersion": API, "kind": "PartnerAdminInvite",
            "metadata": {"name": name, "namespace": ns}, "spec": {"email": email, "ttl": ttl}});
        self.env.create_as(user, &v.to_string()).await
    }

    async fn get(&self, ns: &str, name: &str) -> Option<Value> {
        self.env
            .get(API, "PartnerAdminInvite", Some(ns), name)
            .await
    }

    async fn wait_phase(&self, ns: &str, name: &str, phase: &str, secs: u64) -> Value {
        let mut last = Value::Null;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(o) = self.get(ns, name).await {
                if o["status"]["phase"] == phase {
                    return o;
                }
                last = o;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {secs}s waiting for invite {name} to be {phase}; last seen:\n{:#}",
                last["status"]
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Events (events.k8s.io/v1) about an invite, as `(type, reason, note)`.
    async fn events(&self, ns: &str, name: &str) -> Vec<(String, String, String)> {
        self.env
            .list("events.k8s.io/v1", "Event", Some(ns), None)
            .await
            .into_iter()
            .filter(|e| {
                e["regarding"]["kind"] == "PartnerAdminInvite" && e["regarding"]["name"] == name
            })
            .map(|e| {
                let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
                (s("type"), s("reason"), s("note"))
            })
            .collect()
    }

    async fn wait_event(&self, ns: &str, name: &str, reason: &str) -> (String, String, String) {
        self.env
            .eventually(15, &format!("an Event {reason} about {name}"), || async {
                self.events(ns, name)
                    .await
                    .into_iter()
                    .find(|e| e.1 == reason)
            })
            .await
    }

    async fn finish(mut self) {
        if let Some(s) = self.smtp.as_mut() {
            s.stop().await;
        }
        self.env.finish().await;
    }
}

fn condition<'a>(o: &'a Value, type_: &str) -> Option<&'a Value> {
    o["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// A Secret's `data` value, decoded.
fn secret_value(secret: &Value, key: &str) -> String {
    use base64::Engine as _;
    let b64 = secret["data"][key].as_str().expect("the key in the Secret");
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64"),
    )
    .expect("UTF-8")
}

fn token_of(link: &str) -> String {
    link.split("token=")
        .nth(1)
        .expect("a token in the link")
        .to_string()
}

/// `sha256:<hex>` as the operator stores it, computed independently (sha256sum).
fn sha256(text: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let hex = String::from_utf8(out.stdout).unwrap();
    format!("sha256:{}", hex.split_whitespace().next().unwrap())
}

fn allowed(o: &Out, what: &str) {
    assert!(o.ok(), "{what} should be allowed:\n{}", o.stderr);
}

fn forbidden(o: &Out, what: &str) {
    assert!(!o.ok(), "{what} should be refused; printed:\n{}", o.stdout);
    assert!(o.stderr.contains("forbidden"), "{what}: {}", o.stderr);
}

/// Subjects (user names) of a RoleBinding or ClusterRoleBinding.
fn subjects(o: &Option<Value>) -> Vec<String> {
    o.as_ref().map(support::subjects).unwrap_or_default()
}

/// Whether `email` is a partner admin of `partner` in every place (Some(true)), in none
/// (Some(false)), or in some (None): the Partner's status.admins, the partner namespace's and
/// the workspace's `partnerkit-partner-admins`, and `partnerkit:partner:<partner>`.
async fn admin_everywhere(
    env: &Env,
    partner: &str,
    partner_ns: &str,
    workspace: &str,
    email: &str,
) -> Option<Option<bool>> {
    let p = env.partner(partner).await?;
    let in_status = p["status"]["admins"]
        .as_array()?
        .iter()
        .any(|a| a == &json!(email));
    let places = [
        in_status,
        subjects(
            &env.role_binding(partner_ns, "partnerkit-partner-admins")
                .await,
        )
        .iter()
        .any(|s| s == email),
        subjects(
            &env.role_binding(workspace, "partnerkit-partner-admins")
                .await,
        )
        .iter()
        .any(|s| s == email),
        subjects(
            &env.cluster_role_binding(&format!("partnerkit:partner:{partner}"))
                .await,
        )
        .iter()
        .any(|s| s == email),
    ];
    Some(if places.iter().all(|x| *x) {
        Some(true)
    } else if places.iter().all(|x| !*x) {
        Some(false)
    } else {
        None
    })
}

/// Where a screenshot is kept: `target/test-screenshots/<name>.png`.
fn screenshot_path(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir.join(format!("{name}.png"))
}

// ---------------------------------------------------------------------------------------------

/// Who may invite is plain RBAC: a platform admin anywhere, a partner admin in its own
/// partner namespace only, a tenant admin nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_admins_invite_anywhere_partner_admins_only_in_their_partner() {
    let fx = Fx::start(Delivery::LinkSecret).await;
    let env = &fx.env;
    let (acme, initech) = (env.n("acme"), env.n("initech"));
    let (alice, ivan) = (env.email("alice", &acme), env.email("ivan", &initech));
    let acme_ns = env.partner_ready(&acme, &[&alice], json!({})).await;
    let initech_ns = env.partner_ready(&initech, &[&ivan], json!({})).await;
    let platform = env.n("support") + "@platform.example";
    env.kubectl_ok(&[
        "create",
        "clusterrolebinding",
        &env.n("platform-admins"),
        "--clusterrole=partnerkit-platform-admin",
        &format!("--user={platform}"),
    ])
    .await;
    let globex = env.n("globex");
    env.tenant_ready(
        &acme_ns,
        &globex,
        json!({"displayName": "Globex", "admins": [{"email": "tina@globex.example"}]}),
    )
    .await;

    for ns in [&acme_ns, &initech_ns] {
        allowed(
            &fx.invite(Some(&platform), ns, "by-platform", "new@x.example", "72h")
                .await,
            &format!("a platform admin inviting in {ns}"),
        );
    }
    allowed(
        &fx.invite(
            Some(&alice),
            &acme_ns,
            "by-alice",
            "bob@acme.example",
            "72h",
        )
        .await,
        "a partner admin inviting in its own namespace",
    );
    forbidden(
        &fx.invite(
            Some(&alice),
            &initech_ns,
            "by-alice",
            "eve@acme.example",
            "72h",
        )
        .await,
        "a partner admin inviting in another partner's namespace",
    );
    forbidden(
        &fx.invite(
            Some("tina@globex.example"),
            &acme_ns,
            "by-tina",
            "t@x.example",
            "72h",
        )
        .await,
        "a tenant admin inviting",
    );
    // Alice sees and deletes invites of her partner, and reads the links to forward.
    let got = env
        .kubectl_as(
            &alice,
            &["get", "partneradmininvites", "-n", &acme_ns, "-o", "name"],
        )
        .await;
    allowed(&got, "listing invites");
    assert!(
        got.stdout.contains("by-alice") && got.stdout.contains("by-platform"),
        "{}",
        got.stdout
    );
    fx.wait_phase(&acme_ns, "by-alice", "Sent", 15).await;
    allowed(
        &env.kubectl_as(&alice, &["get", "secret", "by-alice-link", "-n", &acme_ns])
            .await,
        "a partner admin reading the link Secret",
    );
    forbidden(
        &env.kubectl_as(&alice, &["get", "secrets", "-n", &initech_ns])
            .await,
        "reading another partner's Secrets",
    );
    allowed(
        &env.kubectl_as(
            &alice,
            &[
                "delete",
                "partneradmininvite",
                "by-platform",
                "-n",
                &acme_ns,
            ],
        )
        .await,
        "deleting an invite",
    );
    fx.finish().await;
}

/// The whole flow: mail, browser, rights everywhere, revocation by deletion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_is_mailed_accepted_in_a_browser_and_revoked_by_deletion() {
    let fx = Fx::start(Delivery::Smtp).await;
    let env = &fx.env;
    let (acme, initech) = (env.n("acme"), env.n("initech"));
    let alice = env.email("alice", &acme);
    let bob = env.email("bob", &acme);
    let acme_ns = env
        .partner_ready(
            &acme,
            &[&alice],
            json!({"entitlements": {"branding": true},
                   "branding": {"primaryColor": "#aa2200", "logoUrl": "https://acme.example/logo.png",
                                "support": {"email": "help@acme.example"}}}),
        )
        .await;
    let initech_ns = env
        .partner_ready(&initech, &[&env.email("ivan", &initech)], json!({}))
        .await;
    let globex = env.n("globex");
    env.tenant_ready(&acme_ns, &globex, json!({"displayName": "Globex"}))
        .await;

    // Alice invites Bob.
    allowed(
        &fx.invite(Some(&alice), &acme_ns, "invite-bob", &bob, "72h")
            .await,
        "alice inviting bob",
    );
    let mail = fx.smtp.as_ref().unwrap().wait_for(&bob, 20).await;
    assert_eq!(mail.from, "portal@platform.example");
    assert!(
        mail.subject.contains(&format!("{acme} Inc")),
        "{}",
        mail.subject
    );
    for part in [&mail.text, &mail.html] {
        assert!(
            part.contains(&format!("{acme} Inc")),
            "the partner is named:\n{part}"
        );
        assert!(part.contains(&bob));
    }
    assert!(
        mail.html.contains("#aa2200"),
        "the e-mail is in the partner's colours"
    );
    let link = mail
        .link(&fx.prefix())
        .expect("the acceptance link in the text part");
    assert!(
        mail.html.contains(&link.replace('&', "&amp;")),
        "the HTML part links too"
    );
    assert!(link.starts_with(&fx.page(&acme_ns, "invite-bob")), "{link}");
    let token = token_of(&link);
    assert!(token.len() >= 43, "256 bits in base64url: {token}");

    let sent = fx.wait_phase(&acme_ns, "invite-bob", "Sent", 10).await;
    let st = &sent["status"];
    assert!(
        st["sentAt"].is_string() && st["expiresAt"].is_string(),
        "{st:#}"
    );
    assert_eq!(
        st["tokenHash"],
        sha256(&token),
        "only the token's SHA-256 is stored"
    );
    assert_eq!(condition(&sent, "Delivered").unwrap()["reason"], "Sent");
    let ev = fx.wait_event(&acme_ns, "invite-bob", "Sent").await;
    assert_eq!(ev.0, "Normal");
    // The token is nowhere in the cluster: not in the invite, Events, Secrets or ConfigMaps.
    for kind in ["partneradmininvites", "events", "secrets", "configmaps"] {
        let all = env.kubectl_ok(&["get", kind, "-A", "-o", "json"]).await;
        assert!(!all.contains(&token), "the token leaked into {kind}");
    }

    // A real browser opens the link from the mail: the page names partner, e-mail and expiry,
    // in the partner's branding.
    let run = support::browser::run(
        "invite.mjs",
        &json!({"link": link, "screenshots": support::browser::screenshots()}),
    )
    .await;
    run.assert_passed();
    let page = run.value("page");
    let text = page["text"].as_str().unwrap_or_default();
    assert!(text.contains(&format!("{acme} Inc")), "{text}");
    assert!(text.contains(&bob), "{text}");
    assert!(text.contains(st["expiresAt"].as_str().unwrap()), "{text}");
    let source = page["html"].as_str().unwrap_or_default();
    assert!(source.contains("#aa2200") && source.contains("https://acme.example/logo.png"));
    assert!(run.ok("Accept"), "{}", run.stdout);
    assert!(
        std::fs::metadata(screenshot_path("invite-accepted"))
            .unwrap()
            .len()
            > 1000
    );

    let accepted = fx.wait_phase(&acme_ns, "invite-bob", "Accepted", 10).await;
    assert!(accepted["status"]["acceptedAt"].is_string());
    fx.wait_event(&acme_ns, "invite-bob", "Accepted").await;

    // Within seconds Bob is an admin everywhere: the Partner's status, the partner namespace,
    // the per-partner ClusterRoleBinding, every workspace; and he edits the template.
    let ws = env.ws(&globex);
    env.eventually(10, "bob in every admin binding", || async {
        (admin_everywhere(env, &acme, &acme_ns, &ws, &bob).await? == Some(true)).then_some(())
    })
    .await;
    let tpl = tenant_json(
        &acme_ns,
        "template",
        json!({"displayName": "Edited by bob"}),
    );
    allowed(
        &env.apply_as(&bob, &tpl.to_string()).await,
        "bob editing the template",
    );
    let hooli = env.n("hooli");
    allowed(
        &env.apply_as(
            &bob,
            &tenant_json(&acme_ns, &hooli, json!({"displayName": "Hooli"})).to_string(),
        )
        .await,
        "bob creating a tenant in his partner",
    );
    forbidden(
        &env.apply_as(
            &bob,
            &tenant_json(&initech_ns, &hooli, json!({"displayName": "Hooli"})).to_string(),
        )
        .await,
        "bob creating a tenant in another partner",
    );
    allowed(
        &env.kubectl_as(&bob, &["get", "configmaps", "-n", &ws])
            .await,
        "bob in a tenant workspace",
    );

    // The link works once.
    let again = http::post_form(&fx.page(&acme_ns, "invite-bob"), &[("token", &token)], &[])
        .await
        .unwrap();
    assert_eq!(again.status, 410, "{}", again.body);
    assert!(again.body.contains("already accepted"));

    // Deleting the invite revokes everything.
    env.delete("partneradmininvite", Some(&acme_ns), "invite-bob")
        .await;
    env.eventually(10, "bob gone from every binding", || async {
        (admin_everywhere(env, &acme, &acme_ns, &ws, &bob).await? == Some(false)).then_some(())
    })
    .await;
    forbidden(
        &env.apply_as(
            &bob,
            &tenant_json(&acme_ns, &env.n("late"), json!({"displayName": "Late"})).to_string(),
        )
        .await,
        "bob after revocation",
    );
    let gone = http::get(&link).await.unwrap();
    assert_eq!(gone.status, 404, "a deleted invite's link: {}", gone.body);
    fx.finish().await;
}

/// Expired, reused, forged, malformed and unknown links, cross-site posts and guessing all get
/// a clear page with a 4xx status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_links_get_clear_pages_and_4xx() {
    let fx = Fx::start(Delivery::LinkSecret).await;
    let env = &fx.env;
    let acme = env.n("acme");
    let acme_ns = env
        .partner_ready(&acme, &[&env.email("alice", &acme)], json!({}))
        .await;

    // Without SMTP the link is in a Secret and the invite says so.
    allowed(
        &fx.invite(None, &acme_ns, "invite-carol", "carol@acme.example", "72h")
            .await,
        "invite",
    );
    let sent = fx.wait_phase(&acme_ns, "invite-carol", "Sent", 10).await;
    let delivered = condition(&sent, "Delivered").expect("Delivered");
    assert_eq!(delivered["reason"], "LinkInSecret");
    assert!(
        delivered["message"]
            .as_str()
            .unwrap()
            .contains("invite-carol-link")
    );
    let secret = env
        .get("v1", "Secret", Some(&acme_ns), "invite-carol-link")
        .await
        .expect("the link Secret");
    assert_eq!(
        secret["metadata"]["ownerReferences"][0]["name"],
        "invite-carol"
    );
    let decode = |k: &str| secret_value(&secret, k);
    let link = decode("url");
    assert_eq!(decode("email"), "carol@acme.example");
    let token = token_of(&link);
    let page = fx.page(&acme_ns, "invite-carol");

    // The page, with the platform's default branding (acme is not entitled to its own).
    let ok = http::get(&link).await.unwrap();
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.body.contains("carol@acme.example") && ok.body.contains("#333333"));
    assert_eq!(ok.header("x-frame-options"), Some("DENY"));
    assert_eq!(ok.header("referrer-policy"), Some("no-referrer"));

    // Forged, malformed, unknown: 404, 400, 404; nothing changes.
    let forged = "A".repeat(43);
    for (url, code) in [
        (format!("{page}?token={forged}"), 404),
        (format!("{page}?token=short"), 400),
        (page.clone(), 400),
        (
            format!("{}?token={token}", fx.page(&acme_ns, "no-such-invite")),
            404,
        ),
        (
            format!("{}?token={token}", fx.page("Not_A_Namespace", "x")),
            400,
        ),
    ] {
        let r = http::get(&url).await.unwrap();
        assert_eq!(r.status, code, "{url}: {}", r.body);
        assert!(
            r.body.starts_with("<!doctype html>") && !r.body.contains("panicked"),
            "{}",
            r.body
        );
    }
    let r = http::post_form(&page, &[("token", &forged)], &[])
        .await
        .unwrap();
    assert_eq!(r.status, 404);

    // A cross-site POST with the right token is refused, and nothing is accepted.
    for headers in [
        vec![("Origin", "https://evil.example")],
        vec![("Sec-Fetch-Site", "cross-site")],
    ] {
        let r = http::post_form(&page, &[("token", &token)], &headers)
            .await
            .unwrap();
        assert_eq!(r.status, 403, "{headers:?}: {}", r.body);
    }
    assert_eq!(
        fx.get(&acme_ns, "invite-carol").await.unwrap()["status"]["phase"],
        "Sent"
    );

    // Same-origin POST accepts; the second is told the link is used; the Secret goes.
    let origin = format!("http://127.0.0.1:{}", fx.web_port);
    let r = http::post_form(
        &page,
        &[("token", &token)],
        &[("Origin", &origin), ("Sec-Fetch-Site", "same-origin")],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    fx.wait_phase(&acme_ns, "invite-carol", "Accepted", 10)
        .await;
    let r = http::post_form(&page, &[("token", &token)], &[])
        .await
        .unwrap();
    assert_eq!(r.status, 410);
    assert_eq!(http::get(&link).await.unwrap().status, 410);
    env.wait_gone("v1", "Secret", Some(&acme_ns), "invite-carol-link")
        .await;

    // Expiry: a 2 s invite goes Expired on time, with an Event; its link answers 410.
    allowed(
        &fx.invite(None, &acme_ns, "invite-dave", "dave@acme.example", "2s")
            .await,
        "invite",
    );
    let sent = fx.wait_phase(&acme_ns, "invite-dave", "Sent", 10).await;
    let expires: jiff::Timestamp = sent["status"]["expiresAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let dave_secret = env
        .get("v1", "Secret", Some(&acme_ns), "invite-dave-link")
        .await
        .unwrap();
    let dave_link = secret_value(&dave_secret, "url");
    let expired = fx.wait_phase(&acme_ns, "invite-dave", "Expired", 10).await;
    let late = jiff::Timestamp::now().duration_since(expires);
    assert!(
        late < jiff::SignedDuration::from_secs(3),
        "expired {late:#} after expiresAt"
    );
    assert!(expired["status"]["acceptedAt"].is_null());
    fx.wait_event(&acme_ns, "invite-dave", "Expired").await;
    let r = http::get(&dave_link).await.unwrap();
    assert_eq!(r.status, 410);
    assert!(r.body.contains("expired"), "{}", r.body);
    // Re-issue: delete and re-create; the new invite gets a new link.
    env.delete("partneradmininvite", Some(&acme_ns), "invite-dave")
        .await;
    env.wait_gone(API, "PartnerAdminInvite", Some(&acme_ns), "invite-dave")
        .await;
    allowed(
        &fx.invite(None, &acme_ns, "invite-dave", "dave@acme.example", "72h")
            .await,
        "re-invite",
    );
    fx.wait_phase(&acme_ns, "invite-dave", "Sent", 10).await;

    // Guessing: after a burst of wrong tokens the client is turned away with 429.
    let mut codes = Vec::new();
    for i in 0..12 {
        let guess = format!("{:A>43}", i);
        codes.push(
            http::get(&format!("{page}?token={guess}"))
                .await
                .unwrap()
                .status,
        );
    }
    assert!(codes.contains(&429), "{codes:?}");
    let r = http::get(&format!("{page}?token={forged}")).await.unwrap();
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    fx.finish().await;
}

/// Inviting someone who is already an admin says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inviting_an_admin_says_so() {
    let fx = Fx::start(Delivery::LinkSecret).await;
    let env = &fx.env;
    let acme = env.n("acme");
    let alice = env.email("alice", &acme);
    let acme_ns = env.partner_ready(&acme, &[&alice], json!({})).await;
    allowed(
        &fx.invite(None, &acme_ns, "invite-alice", &alice, "72h")
            .await,
        "invite",
    );
    let o = env
        .eventually(10, "AlreadyAdmin", || async {
            let o = fx.get(&acme_ns, "invite-alice").await?;
            condition(&o, "AlreadyAdmin").is_some().then_some(o)
        })
        .await;
    let c = condition(&o, "AlreadyAdmin").unwrap();
    assert_eq!(
        (c["status"].as_str(), c["reason"].as_str()),
        (Some("True"), Some("InPartnerSpec"))
    );
    assert!(c["message"].as_str().unwrap().contains(&alice));
    let other = fx
        .invite(None, &acme_ns, "invite-zed", "zed@acme.example", "72h")
        .await;
    allowed(&other, "invite");
    let z = fx.wait_phase(&acme_ns, "invite-zed", "Sent", 10).await;
    assert!(condition(&z, "AlreadyAdmin").is_none());
    fx.finish().await;
}

/// SMTP down, then up: retried with backoff until it goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_then_up_is_retried_until_sent() {
    let mut fx = Fx::start(Delivery::SmtpDown {
        attempts: 10,
        backoff: "300ms",
    })
    .await;
    let acme_ns = fx.acme_inviting_bob().await;
    let retrying = fx
        .env
        .eventually(15, "a Retrying condition", || async {
            let o = fx.get(&acme_ns, "invite-bob").await?;
            (condition(&o, "Delivered")?["reason"] == "Retrying").then_some(o)
        })
        .await;
    assert_eq!(retrying["status"]["phase"], "Pending");
    let msg = condition(&retrying, "Delivered").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains(&format!("127.0.0.1:{}", fx.smtp_port)) && msg.contains("next attempt"),
        "{msg}"
    );
    // The server comes up; the next attempt delivers.
    fx.smtp = Some(SmtpServer::start_on(&fx.env.dir.join("maildir"), fx.smtp_port).await);
    let mail = fx
        .smtp
        .as_ref()
        .unwrap()
        .wait_for("bob@acme.example", 30)
        .await;
    let sent = fx.wait_phase(&acme_ns, "invite-bob", "Sent", 10).await;
    assert_eq!(
        sent["status"]["tokenHash"],
        sha256(&token_of(&mail.link(&fx.prefix()).unwrap()))
    );
    assert_eq!(
        fx.smtp.as_ref().unwrap().messages().len(),
        1,
        "one e-mail, not one per attempt"
    );
    fx.finish().await;
}

/// SMTP down for good: Failed with the SMTP error and a Warning Event; `starttls` never falls
/// back to plain text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_failures_end_in_failed_with_the_error() {
    let fx = Fx::start(Delivery::SmtpDown {
        attempts: 2,
        backoff: "100ms",
    })
    .await;
    let acme_ns = fx.acme_inviting_bob().await;
    let failed = fx.wait_phase(&acme_ns, "invite-bob", "Failed", 20).await;
    let c = condition(&failed, "Delivered").unwrap();
    assert_eq!(c["reason"], "SmtpError");
    let msg = c["message"].as_str().unwrap();
    assert!(
        msg.contains("failed 2 times") && msg.contains(&format!("127.0.0.1:{}", fx.smtp_port)),
        "{msg}"
    );
    let ev = fx
        .wait_event(&acme_ns, "invite-bob", "DeliveryFailed")
        .await;
    assert_eq!(ev.0, "Warning");
    fx.finish().await;

    let fx = Fx::start(Delivery::StarttlsRequired).await;
    let acme_ns = fx.acme_inviting_bob().await;
    let failed = fx.wait_phase(&acme_ns, "invite-bob", "Failed", 20).await;
    let msg = condition(&failed, "Delivered").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.to_lowercase().contains("tls"), "{msg}");
    assert!(
        fx.smtp.as_ref().unwrap().messages().is_empty(),
        "nothing went out in plain text"
    );
    fx.finish().await;
}

/// The operator restarts between sending and acceptance: the mailed link still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_survives_an_operator_restart() {
    let mut fx = Fx::start(Delivery::Smtp).await;
    let acme_ns = fx.acme_inviting_bob().await;
    let mail = fx
        .smtp
        .as_ref()
        .unwrap()
        .wait_for("bob@acme.example", 20)
        .await;
    let link = mail.link(&fx.prefix()).unwrap();
    let before = fx.wait_phase(&acme_ns, "invite-bob", "Sent", 10).await;

    fx.env.restart_operator().await;
    let r = http::get(&link).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r = http::post_form(
        &fx.page(&acme_ns, "invite-bob"),
        &[("token", &token_of(&link))],
        &[],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let after = fx.wait_phase(&acme_ns, "invite-bob", "Accepted", 10).await;
    assert_eq!(after["status"]["tokenHash"], before["status"]["tokenHash"]);
    assert_eq!(
        fx.smtp.as_ref().unwrap().messages().len(),
        1,
        "no second e-mail after the restart"
    );
    fx.env
        .eventually(10, "bob a partner admin", || async {
            subjects(
                &fx.env
                    .role_binding(&acme_ns, "partnerkit-partner-admins")
                    .await,
            )
            .contains(&"bob@acme.example".to_string())
            .then_some(())
        })
        .await;
    fx.finish().await;
}

/// SMTP credentials come from the named Secret in the operator's namespace, read at each
/// attempt: a wrong password is retried, and the corrected Secret is used without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_credentials_come_from_the_secret_and_rotate_without_a_restart() {
    let fx = Fx::start(Delivery::SmtpLogin).await;
    let env = &fx.env;
    let ns = env.operator_namespace();
    let secret = |password: &str| {
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "partnerkit-smtp", "namespace": ns},
               "stringData": {"username": SMTP_USER, "password": password}})
        .to_string()
    };
    env.apply(&secret("wrong")).await;
    let acme_ns = fx.acme_inviting_bob().await;
    let retrying = env
        .eventually(
            15,
            "a Retrying condition (authentication refused)",
            || async {
                let o = fx.get(&acme_ns, "invite-bob").await?;
                (condition(&o, "Delivered")?["reason"] == "Retrying").then_some(o)
            },
        )
        .await;
    let msg = condition(&retrying, "Delivered").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("535") || msg.to_lowercase().contains("auth"),
        "{msg}"
    );
    assert!(!msg.contains("wrong"), "the password never shows: {msg}");
    assert!(fx.smtp.as_ref().unwrap().messages().is_empty());

    env.apply(&secret(SMTP_PASSWORD)).await;
    fx.smtp
        .as_ref()
        .unwrap()
        .wait_for("bob@acme.example", 20)
        .await;
    fx.wait_phase(&acme_ns, "invite-bob", "Sent", 10).await;
    env.kubectl_ok(&["delete", "secret", "partnerkit-smtp", "-n", &ns])
        .await;
    fx.finish().await;
}

/// The token never reaches the operator's logs, not even at debug level: the real binary runs
/// with `RUST_LOG=debug` through a whole invitation, and its log is searched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_never_reaches_the_logs() {
    let fx = Fx::start_with(Delivery::Smtp, false).await;
    let env = &fx.env;
    let config = env.dir.join("config.yaml");
    std::fs::write(&config, &env.config_yaml).unwrap();
    let log_path = env.dir.join("operator.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut op = tokio::process::Command::new(env!("CARGO_BIN_EXE_partnerkit"))
        .args(["run", "--config"])
        .arg(&config)
        .env("KUBECONFIG", &env.kubeconfig)
        .env("RUST_LOG", "debug")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("the partnerkit binary");
    env.eventually(30, "the acceptance page to answer", || async {
        http::get(&fx.prefix()).await.ok().map(|r| r.status)
    })
    .await;

    let acme_ns = fx.acme_inviting_bob().await;
    let mail = fx
        .smtp
        .as_ref()
        .unwrap()
        .wait_for("bob@acme.example", 20)
        .await;
    let link = mail.link(&fx.prefix()).unwrap();
    let token = token_of(&link);
    assert_eq!(http::get(&link).await.unwrap().status, 200);
    let wrong = format!(
        "{}?token={}",
        fx.page(&acme_ns, "invite-bob"),
        "A".repeat(43)
    );
    assert_eq!(http::get(&wrong).await.unwrap().status, 404);
    let r = http::post_form(&fx.page(&acme_ns, "invite-bob"), &[("token", &token)], &[])
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    fx.wait_phase(&acme_ns, "invite-bob", "Accepted", 10).await;

    let _ = std::process::Command::new("kill")
        .args(["-TERM", &op.id().unwrap().to_string()])
        .status();
    let _ = tokio::time::timeout(Duration::from_secs(10), op.wait()).await;
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        text.contains("invitation sent") && text.contains("invitation accepted"),
        "the log covers the flow:\n{}",
        &text[text.len().saturating_sub(3000)..]
    );
    assert!(!text.contains(&token), "the token is in the operator's log");
    assert!(
        !text.contains(&"A".repeat(43)),
        "a presented token is in the log"
    );
    fx.finish().await;
}

/// Two Accept clicks at the same moment: exactly one wins, the other is told the link is used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_simultaneous_accepts_one_wins() {
    let fx = Fx::start(Delivery::LinkSecret).await;
    let acme_ns = fx.acme_inviting_bob().await;
    fx.wait_phase(&acme_ns, "invite-bob", "Sent", 10).await;
    let secret = fx
        .env
        .get("v1", "Secret", Some(&acme_ns), "invite-bob-link")
        .await
        .expect("the link Secret");
    let link = secret_value(&secret, "url");
    let token = token_of(&link);
    let page = fx.page(&acme_ns, "invite-bob");
    let fields = [("token", token.as_str())];
    let (a, b) = tokio::join!(
        http::post_form(&page, &fields, &[]),
        http::post_form(&page, &fields, &[])
    );
    let mut codes = [a.unwrap().status, b.unwrap().status];
    codes.sort();
    assert_eq!(codes, [200, 410]);
    let accepted = fx.wait_phase(&acme_ns, "invite-bob", "Accepted", 10).await;
    assert!(accepted["status"]["acceptedAt"].is_string());
    let accepted_events = fx
        .events(&acme_ns, "invite-bob")
        .await
        .into_iter()
        .filter(|e| e.1 == "Accepted")
        .count();
    assert_eq!(accepted_events, 1, "one acceptance, one Event");
    fx.finish().await;
}
