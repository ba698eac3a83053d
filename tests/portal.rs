//! The web Partner Portal (issue 11), over HTTP as a browser would use it: sign-in (demo, and
//! proxy from trusted and untrusted addresses), sessions (cookie attributes, expiry, sign-out),
//! CSRF and cross-site refusals, Companies (only the user's partner's, markup escaped, live),
//! Create Company (a taken ID shown beside the field with the form kept; the API server's
//! refusal of a tenant admin shown), and Edit. Every write goes to the API server as the
//! signed-in person (impersonation), so these run against kube-sim and, with
//! `PARTNERKIT_E2E_REAL=1`, against a real control plane.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{CONFIG, Env, http, tenant_json};

const API: &str = "partnerkit.io/v1alpha1";

/// The harness's configuration with a `portal:` block.
fn config(portal: &str) -> String {
    format!("{CONFIG}portal: {portal}\n")
}

async fn start(portal: &str) -> Env {
    Env::start_with(kube_sim::SimConfig::default(), &config(portal), true).await
}

/// A browser of sorts: one cookie jar (the portal's one cookie), requests to the portal.
struct Browser {
    base: String,
    cookie: Option<String>,
    /// The attributes of the last Set-Cookie (e.g. `HttpOnly; SameSite=Lax; Path=/portal`).
    attributes: String,
}

impl Browser {
    /// Another tab of the same session (for a request inside a polling closure).
    fn tab(&self) -> Browser {
        Browser {
            base: self.base.clone(),
            cookie: self.cookie.clone(),
            attributes: String::new(),
        }
    }

    fn new(env: &Env) -> Browser {
        let addr = env.telemetry().web_address().expect("web address");
        Browser {
            base: format!("http://{addr}"),
            cookie: None,
            attributes: String::new(),
        }
    }

    fn absorb(&mut self, r: &http::Response) {
        for (name, value) in &r.headers {
            if !name.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            let (pair, attrs) = value.split_once(';').unwrap_or((value.as_str(), ""));
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            assert_eq!(k.trim(), "partnerkit_portal", "the portal's only cookie");
            self.attributes = attrs.to_string();
            self.cookie = (!v.is_empty() && !attrs.contains("Max-Age=0"))
                .then(|| format!("partnerkit_portal={v}"));
        }
    }

    async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        form: Option<&[(&str, &str)]>,
    ) -> http::Response {
        let url = format!("{}{path}", self.base);
        let mut h: Vec<(&str, &str)> = headers.to_vec();
        let cookie = self.cookie.clone();
        if let Some(c) = &cookie {
            h.push(("Cookie", c));
        }
        let body = form.map(http::form_urlencode);
        let r = http::request(
            method,
            &url,
            &h,
            body.as_deref()
                .map(|b| ("application/x-www-form-urlencoded", b.as_bytes())),
        )
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        self.absorb(&r);
        r
    }

    async fn get(&mut self, path: &str) -> http::Response {
        self.request("GET", path, &[], None).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> http::Response {
        self.request(
            "POST",
            path,
            &[("Sec-Fetch-Site", "same-origin")],
            Some(form),
        )
        .await
    }

    /// Demo sign-in as `email` through the sign-in page; returns the session's CSRF token.
    async fn sign_in(&mut self, email: &str) -> String {
        let page = self.get("/portal/sign-in").await;
        assert_eq!(page.status, 200, "{}", page.body);
        let pre = csrf(&page.body);
        let r = self
            .post("/portal/sign-in", &[("csrf", &pre), ("email", email)])
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        assert_eq!(r.header("location"), Some("/portal/"));
        let token = csrf(&self.home_or_list().await);
        assert_ne!(token, pre, "a new token at sign-in");
        token
    }

    /// POST a form of owned pairs with `headers`.
    async fn post_fields(
        &mut self,
        path: &str,
        fields: &[(String, String)],
        headers: &[(&str, &str)],
    ) -> http::Response {
        let f: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.request("POST", path, headers, Some(&f)).await
    }

    /// A signed-in page's body (the home page, or where it redirects).
    async fn home_or_list(&mut self) -> String {
        let r = self.get("/portal/").await;
        if r.status == 303 {
            let to = r.header("location").unwrap_or_default().to_string();
            let r = self.get(&to).await;
            assert_eq!(r.status, 200, "{to}: {}", r.body);
            r.body
        } else {
            assert_eq!(r.status, 200, "{}", r.body);
            r.body
        }
    }
}

/// The value of the first `name="csrf"` field of a page.
fn csrf(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no CSRF field in:\n{html}"));
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').expect("end of value")].to_string()
}

/// The value of the input with `id`.
fn input_value(html: &str, id: &str) -> String {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in:\n{html}"));
    let rest = &html[at..];
    let v = rest.find("value=\"").expect("value") + "value=\"".len();
    rest[v..v + rest[v..].find('"').expect("end")].to_string()
}

/// The text of the element with `id` (up to the next tag).
fn text_of(html: &str, id: &str) -> String {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in:\n{html}"));
    let rest = &html[at..];
    let start = rest.find('>').expect(">") + 1;
    rest[start..start + rest[start..].find('<').unwrap_or(rest.len() - start)].to_string()
}

/// The brand footer of a page (the partner's logo and support channel), empty if none, with
/// the template's `&#x2f;` for `/` decoded as a browser does.
fn brand_footer(html: &str) -> String {
    html.find("<footer id=\"brand\">")
        .map(|at| &html[at..at + html[at..].find("</footer>").unwrap_or(0)])
        .unwrap_or("")
        .replace("&#x2f;", "/")
}

/// Partners acme (admin alice; entitled to the premium app crm only) and initech (admin
/// ivan), Ready, with a tenant each: acme's has markup in its name.
struct Two {
    acme: String,
    acme_ns: String,
    initech_ns: String,
    alice: String,
    ivan: String,
    globex: String,
    hooli: String,
}

async fn two_partners(env: &Env) -> Two {
    let (acme, initech) = (env.n("acme"), env.n("initech"));
    let (alice, ivan) = (env.email("alice", &acme), env.email("ivan", &initech));
    let acme_ns = env
        .partner_ready(
            &acme,
            &[&alice],
            json!({"entitlements": {"bizApps": ["crm"]}}),
        )
        .await;
    let initech_ns = env.partner_ready(&initech, &[&ivan], json!({})).await;
    let (globex, hooli) = (env.n("globex"), env.n("hooli"));
    env.tenant_ready(
        &acme_ns,
        &globex,
        json!({"displayName": "<b>Globex</b> & \"Sons\" <script>alert(1)</script>"}),
    )
    .await;
    env.tenant_ready(&initech_ns, &hooli, json!({"displayName": "Hooli"}))
        .await;
    Two {
        acme,
        acme_ns,
        initech_ns,
        alice,
        ivan,
        globex,
        hooli,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_sign_in_shows_own_partners_companies_only_escaped_and_live() {
    let env = start("{auth: demo}").await;
    let t = two_partners(&env).await;
    let mut b = Browser::new(&env);

    // Signed out: every page leads to sign-in, which offers the partners' admins.
    let r = b
        .get(&format!("/portal/partners/{}/companies", t.acme))
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/portal/sign-in"));
    let page = b.get("/portal/sign-in").await;
    assert!(
        page.body.contains(&format!("Sign in as {}", t.alice)),
        "{}",
        page.body
    );
    let csp = page
        .header("content-security-policy")
        .unwrap_or_default()
        .to_string();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("style-src 'self'"),
        "{csp}"
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));

    let token = b.sign_in(&t.alice).await;
    assert!(b.attributes.contains("HttpOnly"), "{}", b.attributes);
    assert!(b.attributes.contains("SameSite=Lax"), "{}", b.attributes);
    assert!(b.attributes.contains("Path=/portal"), "{}", b.attributes);
    assert!(b.attributes.contains("Max-Age="), "{}", b.attributes);
    assert!(
        !b.cookie.as_deref().unwrap_or_default().contains(&t.alice),
        "encrypted"
    );

    // One partner: home goes straight to its Companies.
    let r = b.get("/portal/").await;
    assert_eq!(r.status, 303);
    let list_path = format!("/portal/partners/{}/companies", t.acme);
    assert_eq!(r.header("location"), Some(list_path.as_str()));
    // Its status (and with it the apps and admins) reaches the portal's watch cache one event
    // after the API server's Ready.
    let list = env
        .eventually(10, "globex Ready in alice's list", || {
            let mut b2 = b.tab();
            let path = list_path.clone();
            async move {
                let r = b2.get(&path).await;
                (r.status == 200 && r.body.contains("<td class=\"status ready\">Ready"))
                    .then_some(r)
            }
        })
        .await;
    assert!(list.body.contains("<h1>Companies</h1>"), "{}", list.body);
    assert!(list.body.contains(&format!("<code>{}</code>", t.globex)));
    // Markup in a name is text, never markup.
    assert!(!list.body.contains("<b>Globex</b>"), "{}", list.body);
    assert!(!list.body.contains("<script>alert(1)"), "{}", list.body);
    assert!(
        list.body
            .contains("&lt;b&gt;Globex&lt;&#x2f;b&gt; &amp; &quot;Sons&quot;"),
        "{}",
        list.body
    );
    // Non-premium apps are on by default; their display names are shown.
    assert!(list.body.contains("Chat, Mail"), "{}", list.body);
    // Another partner's companies are never shown…
    assert!(!list.body.contains(&t.hooli), "{}", list.body);
    // …nor reachable: the API server refuses alice a list in initech's namespace.
    let initech = t.initech_ns.trim_start_matches("partner-").to_string();
    let r = b
        .get(&format!("/portal/partners/{initech}/companies"))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!r.body.contains(&t.hooli), "{}", r.body);
    let detail = text_of(&r.body, "detail");
    assert!(
        detail.contains("forbidden") && detail.contains("list"),
        "{detail}"
    );
    assert!(detail.contains(&t.initech_ns), "{detail}");
    // Nor editable.
    let r = b
        .get(&format!("/portal/partners/{initech}/companies/{}", t.hooli))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!r.body.contains("Hooli"), "{}", r.body);

    // Live: a Tenant applied with kubectl shows up without a restart, and search finds it.
    let added = env.n("added");
    env.apply_json(&tenant_json(
        &t.acme_ns,
        &added,
        json!({"displayName": "Added Later"}),
    ))
    .await;
    env.eventually(10, "the new company in the list", || {
        let mut b2 = b.tab();
        let path = list_path.clone();
        let added = added.clone();
        async move {
            let r = b2.get(&path).await;
            r.body.contains(&added).then_some(())
        }
    })
    .await;
    let found = b.get(&format!("{list_path}?q=added+later")).await;
    assert!(found.body.contains(&added), "{}", found.body);
    assert!(!found.body.contains(&t.globex), "{}", found.body);
    assert!(found.body.contains("1 company matching"), "{}", found.body);

    // Sign-out ends the session: the cookie goes, and pages lead to sign-in again.
    let r = b.post("/portal/sign-out", &[("csrf", &token)]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(b.cookie, None, "cookie removed");
    let r = b.get(&list_path).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/portal/sign-in"));
    let _ = (t.ivan, t.initech_ns);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_company_keeps_the_form_on_refusal_and_edit_saves() {
    let env = start("{auth: demo}").await;
    let t = two_partners(&env).await;
    let mut b = Browser::new(&env);
    let token = b.sign_in(&t.alice).await;
    let list_path = format!("/portal/partners/{}/companies", t.acme);

    // The form: the seeds' words, a toggle per catalog app by display name, the premium app
    // acme is not entitled to off and disabled with why, admins defaulting to alice.
    let form = b.get(&format!("{list_path}/new")).await;
    assert_eq!(form.status, 200, "{}", form.body);
    for words in [
        "<h1>Create Company</h1>",
        ">Company name<",
        ">Company ID<",
        ">Create</button>",
    ] {
        assert!(form.body.contains(words), "{words} in {}", form.body);
    }
    for app in ["Mail", "Chat", "CRM", "Analytics"] {
        assert!(form.body.contains(&format!(">{app}</label>")), "{app}");
    }
    assert!(
        form.body
            .contains("id=\"app-analytics\" name=\"app.analytics\" disabled"),
        "{}",
        form.body
    );
    assert!(
        form.body
            .contains("Premium: your partner&#39;s plan does not include this app")
            || form
                .body
                .contains("Premium: your partner&#x27;s plan does not include this app"),
        "{}",
        form.body
    );
    assert!(
        form.body
            .contains("id=\"app-mail\" name=\"app.mail\" checked")
    );
    assert!(
        form.body.contains(&format!(">{}</textarea>", t.alice)),
        "{}",
        form.body
    );

    // A taken ID (another partner's company: IDs are unique platform-wide): the message beside
    // the Company ID, every value kept.
    let fields = |id: &str, csrf: &str| {
        vec![
            ("csrf".to_string(), csrf.to_string()),
            ("name".to_string(), "Widgets <Ltd> & Co".to_string()),
            ("id".to_string(), id.to_string()),
            ("app.mail".to_string(), "on".to_string()),
            ("app.crm".to_string(), "on".to_string()),
            (
                "admins".to_string(),
                format!("{}\ncarol@widgets.example", t.alice),
            ),
        ]
    };
    let same: &[(&str, &str)] = &[("Sec-Fetch-Site", "same-origin")];
    let r = b
        .post_fields(&list_path, &fields(&t.hooli, &token), same)
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let error = text_of(&r.body, "error-id");
    assert!(
        error.contains(&format!("The Company ID &#34;{}&#34; is taken", t.hooli))
            || error.contains(&format!("The Company ID &quot;{}&quot; is taken", t.hooli)),
        "{error}"
    );
    assert_eq!(input_value(&r.body, "name"), "Widgets &lt;Ltd&gt; &amp; Co");
    assert_eq!(input_value(&r.body, "id"), t.hooli);
    assert!(
        r.body.contains("id=\"app-crm\" name=\"app.crm\" checked"),
        "{}",
        r.body
    );
    assert!(
        !r.body.contains("id=\"app-chat\" name=\"app.chat\" checked"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("carol@widgets.example</textarea>"),
        "{}",
        r.body
    );
    assert!(env.tenant(&t.acme_ns, &t.hooli).await.is_none());

    // Cross-site posts and posts without this session's token are refused; nothing is created.
    let widgets = env.n("widgets");
    let wrong = "x".repeat(43);
    let without_token: Vec<(String, String)> = fields(&widgets, "").into_iter().skip(1).collect();
    let cross: &[(&str, &str)] = &[("Sec-Fetch-Site", "cross-site")];
    let foreign: &[(&str, &str)] = &[("Origin", "http://evil.example")];
    for (why, v, headers, text) in [
        (
            "no token",
            without_token,
            same,
            "not sent from this session",
        ),
        (
            "a wrong token",
            fields(&widgets, &wrong),
            same,
            "not sent from this session",
        ),
        (
            "Sec-Fetch-Site: cross-site",
            fields(&widgets, &token),
            cross,
            "came from another site",
        ),
        (
            "a foreign Origin",
            fields(&widgets, &token),
            foreign,
            "came from another site",
        ),
    ] {
        let r = b.post_fields(&list_path, &v, headers).await;
        assert_eq!(r.status, 403, "{why}: {}", r.body);
        assert!(r.body.contains(text), "{why}: {}", r.body);
    }
    assert!(
        env.tenant(&t.acme_ns, &widgets).await.is_none(),
        "nothing created"
    );

    // Create: as alice (the field manager says it was the portal), Ready, listed.
    let r = b
        .post_fields(&list_path, &fields(&widgets, &token), same)
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some(format!("{list_path}?created={widgets}").as_str())
    );
    let created = env.wait_ready("Tenant", Some(&t.acme_ns), &widgets).await;
    assert_eq!(created["spec"]["displayName"], "Widgets <Ltd> & Co");
    // Only what differs from the template is the company's own: crm on, chat off.
    assert_eq!(
        created["spec"]["bizApps"],
        json!({"chat": false, "crm": true})
    );
    assert_eq!(
        created["spec"]["admins"],
        json!([{"email": t.alice}, {"email": "carol@widgets.example"}])
    );
    let managers: Vec<&str> = created["metadata"]["managedFields"]
        .as_array()
        .map(|m| m.iter().filter_map(|e| e["manager"].as_str()).collect())
        .unwrap_or_default();
    assert!(managers.contains(&"partnerkit-portal"), "{managers:?}");
    let list = b.get(&format!("{list_path}?created={widgets}")).await;
    assert!(
        list.body.contains(&format!("Company {widgets} created")),
        "{}",
        list.body
    );
    // The effective apps come with the operator's status, a watch event after Ready.
    env.eventually(10, "widgets' apps in the list", || {
        let mut b2 = b.tab();
        let path = list_path.clone();
        async move { b2.get(&path).await.body.contains("CRM, Mail").then_some(()) }
    })
    .await;

    // Edit: the same form with Save, own values marked; a save lands.
    let edit_path = format!("{list_path}/{widgets}");
    let edit = b.get(&edit_path).await;
    assert_eq!(edit.status, 200, "{}", edit.body);
    assert!(edit.body.contains(">Save</button>"), "{}", edit.body);
    assert!(
        edit.body
            .contains("Set for this company (the template says off)"),
        "{}",
        edit.body
    );
    assert!(
        edit.body.contains("Inherited from the template (on)"),
        "{}",
        edit.body
    );
    let version = input_value(&edit.body, "version");
    let save = |version: &str, name: &str| {
        vec![
            ("csrf".to_string(), token.clone()),
            ("version".to_string(), version.to_string()),
            ("name".to_string(), name.to_string()),
            ("app.mail".to_string(), "on".to_string()),
            ("app.chat".to_string(), "on".to_string()),
            ("app.crm".to_string(), "on".to_string()),
            ("admins".to_string(), t.alice.clone()),
        ]
    };
    // The operator's status writes meanwhile (here one of our own) move the resourceVersion,
    // not the spec: they never refuse the admin's Save.
    env.kubectl_ok(&[
        "patch",
        "tenant",
        &widgets,
        "-n",
        &t.acme_ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"effectiveAdmins":[]}}"#,
    ])
    .await;
    let r = b
        .post_fields(&edit_path, &save(&version, "Widgets Renamed"), same)
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let saved = env
        .get(API, "Tenant", Some(&t.acme_ns), &widgets)
        .await
        .expect("tenant");
    assert_eq!(saved["spec"]["displayName"], "Widgets Renamed");
    // chat back to the template's value: no longer the company's own.
    assert_eq!(saved["spec"]["bizApps"], json!({"crm": true}));
    assert_eq!(saved["spec"]["admins"], json!([{"email": t.alice}]));
    // A save from a stale form is refused, not lost, and the form is kept.
    let r = b
        .post_fields(&edit_path, &save(&version, "Stale Name"), same)
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        text_of(&r.body, "error-form").contains("Someone changed this company"),
        "{}",
        r.body
    );
    assert_eq!(input_value(&r.body, "name"), "Stale Name");
    let saved = env
        .get(API, "Tenant", Some(&t.acme_ns), &widgets)
        .await
        .expect("tenant");
    assert_eq!(saved["spec"]["displayName"], "Widgets Renamed");
    env.finish().await;
}

/// A Save of another partner's company, posted by a partner admin with a valid token of their
/// own session, whether under that partner's address or their own: refused with the API
/// server's reason, and the company is left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_of_another_partners_company_is_refused() {
    let env = start("{auth: demo}").await;
    let t = two_partners(&env).await;
    let mut b = Browser::new(&env);
    let token = b.sign_in(&t.alice).await;
    let before = env
        .get(API, "Tenant", Some(&t.initech_ns), &t.hooli)
        .await
        .expect("hooli");
    let initech = t.initech_ns.trim_start_matches("partner-").to_string();
    // The form alice would send if she could open hooli's Edit page: its current version,
    // a new name, every app on, herself as the admin.
    let version = before["metadata"]["generation"].to_string();
    let save = vec![
        ("csrf".to_string(), token.clone()),
        ("version".to_string(), version),
        ("name".to_string(), "Taken Over".to_string()),
        ("app.mail".to_string(), "on".to_string()),
        ("app.chat".to_string(), "on".to_string()),
        ("app.crm".to_string(), "on".to_string()),
        ("admins".to_string(), t.alice.clone()),
    ];
    let same: &[(&str, &str)] = &[("Sec-Fetch-Site", "same-origin")];

    // Under initech's address: the API server refuses alice even the read.
    let r = b
        .post_fields(
            &format!("/portal/partners/{initech}/companies/{}", t.hooli),
            &save,
            same,
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body.contains("The cluster refused this request:"),
        "{}",
        r.body
    );
    let detail = text_of(&r.body, "detail");
    assert!(
        detail.contains("forbidden") && detail.contains("cannot get resource"),
        "{detail}"
    );
    assert!(detail.contains(&t.initech_ns), "{detail}");
    assert!(!r.body.contains("Taken Over"), "{}", r.body);

    // Under acme's address: there is no such company in acme.
    let r = b
        .post_fields(
            &format!("/portal/partners/{}/companies/{}", t.acme, t.hooli),
            &save,
            same,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let detail = text_of(&r.body, "detail");
    assert!(detail.contains("not found"), "{detail}");
    assert!(
        env.tenant(&t.acme_ns, &t.hooli).await.is_none(),
        "nothing created in acme"
    );

    // hooli is as it was: spec, generation and managers (no write reached it).
    let after = env
        .get(API, "Tenant", Some(&t.initech_ns), &t.hooli)
        .await
        .expect("hooli");
    assert_eq!(after["spec"], before["spec"]);
    assert_eq!(after["spec"]["displayName"], "Hooli");
    assert_eq!(
        after["metadata"]["generation"],
        before["metadata"]["generation"]
    );
    let managers: Vec<&str> = after["metadata"]["managedFields"]
        .as_array()
        .map(|m| m.iter().filter_map(|e| e["manager"].as_str()).collect())
        .unwrap_or_default();
    assert!(!managers.contains(&"partnerkit-portal"), "{managers:?}");
    // ivan, initech's admin, still sees his company by its own name.
    let mut ivan = Browser::new(&env);
    ivan.sign_in(&t.ivan).await;
    let r = ivan
        .get(&format!("/portal/partners/{initech}/companies/{}", t.hooli))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(input_value(&r.body, "name"), "Hooli");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_admin_sees_their_company_and_the_api_servers_refusals() {
    let env = start("{auth: demo}").await;
    let t = two_partners(&env).await;
    // Globex's own admin: admin of its workspace only.
    let bob = env.email("bob", &t.globex);
    env.tenant_ready(
        &t.acme_ns,
        &t.globex,
        json!({"displayName": "Globex", "admins": [{"email": bob}]}),
    )
    .await;
    let mut b = Browser::new(&env);
    let page = b.get("/portal/sign-in").await;
    let pre = csrf(&page.body);
    let r = b
        .post("/portal/sign-in", &[("csrf", &pre), ("email", &bob)])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    // Home: bob administers one company, and sees it — its apps, branding and support
    // channel, read from its workspace's ConfigMaps as bob.
    // The portal reads bob's companies from the operator's watch cache, one event behind the
    // API server's Ready: the home page redirects once that event has arrived.
    let own = format!("/portal/company/{}/{}", t.acme, t.globex);
    env.eventually(10, "bob's home to lead to his company", || {
        let mut b2 = b.tab();
        let own = own.clone();
        async move {
            let home = b2.get("/portal/").await;
            (home.status == 303 && home.header("location") == Some(own.as_str())).then_some(())
        }
    })
    .await;
    let company = b.get(&own).await;
    assert_eq!(company.status, 200, "{}", company.body);
    assert!(company.body.contains("<h1>Globex</h1>"), "{}", company.body);
    assert!(
        company
            .body
            .contains("<ul id=\"apps\"><li>Mail</li><li>Chat</li></ul>"),
        "{}",
        company.body
    );
    assert!(
        text_of(&company.body, "support").starts_with("See ")
            && company.body.contains("help.platform.example</a>"),
        "{}",
        company.body
    );
    assert!(
        company.body.contains("<code>#333333</code>"),
        "{}",
        company.body
    );
    // The header names bob's partner, and the footer its (here the platform's) support.
    assert!(
        company
            .body
            .contains(&format!("<span class=\"brand\">{} Inc</span>", t.acme))
            && brand_footer(&company.body).contains("help.platform.example"),
        "{}",
        company.body
    );
    // No other partner's name anywhere bob goes.
    assert!(!company.body.contains(&t.initech_ns), "{}", company.body);
    // Another company's page: the API server refuses bob its workspace.
    let initech = t.initech_ns.trim_start_matches("partner-").to_string();
    let r = b
        .get(&format!("/portal/company/{initech}/{}", t.hooli))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        text_of(&r.body, "detail").contains("forbidden"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("Hooli"), "{}", r.body);
    let token = csrf(&company.body);

    // The list: the API server's refusal, with its words.
    let list_path = format!("/portal/partners/{}/companies", t.acme);
    let r = b.get(&list_path).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let detail = text_of(&r.body, "detail");
    assert!(detail.contains("cannot list resource"), "{detail}");
    assert!(detail.contains(&bob), "{detail}");
    assert!(
        !r.body.contains(&t.globex) || !r.body.contains("<table"),
        "{}",
        r.body
    );

    // Create: refused by the API server, its message beside the form, the values kept.
    let id = env.n("sneaky");
    let r = b
        .post(
            &list_path,
            &[
                ("csrf", &token),
                ("name", "Sneaky"),
                ("id", &id),
                ("admins", &bob),
            ],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let error = text_of(&r.body, "error-form");
    assert!(error.contains("cannot create resource"), "{error}");
    assert!(error.contains(&t.acme_ns), "{error}");
    assert_eq!(input_value(&r.body, "name"), "Sneaky");
    assert_eq!(input_value(&r.body, "id"), id);
    assert!(env.tenant(&t.acme_ns, &id).await.is_none());
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_sign_in_believes_trusted_proxies_only() {
    let env = start("{auth: proxy, proxy: {trustedProxies: [\"127.0.0.1/32\"]}}").await;
    let t = two_partners(&env).await;
    let addr = env.telemetry().web_address().expect("web address");
    let list_path = format!("/portal/partners/{}/companies", t.acme);

    // From the trusted proxy, with the user's e-mail: signed in, the list as alice.
    let mut b = Browser::new(&env);
    let r = b
        .request(
            "GET",
            &list_path,
            &[
                ("X-Forwarded-Email", &t.alice),
                ("X-Forwarded-Proto", "https"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains(&t.globex), "{}", r.body);
    assert!(
        r.body
            .contains(&format!("<span id=\"user\">{}</span>", t.alice)),
        "{}",
        r.body
    );
    assert!(
        b.attributes.contains("Secure"),
        "TLS at the proxy: {}",
        b.attributes
    );
    assert!(b.attributes.contains("HttpOnly"), "{}", b.attributes);
    // The same proxy saying ivan: ivan, who may not list acme's companies.
    let r = b
        .request("GET", &list_path, &[("X-Forwarded-Email", &t.ivan)], None)
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        !b.attributes.contains("Secure"),
        "plain HTTP: {}",
        b.attributes
    );
    assert!(!r.body.contains(&t.globex), "{}", r.body);
    // The proxy naming nobody: refused, saying why.
    let r = http::get(&format!("http://{addr}{list_path}"))
        .await
        .expect("get");
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body
            .contains("did not say who you are (no X-Forwarded-Email header)"),
        "{}",
        r.body
    );

    // From an address that is not a trusted proxy, the headers are not believed.
    let (code, text) = http::request_from(
        "127.0.0.2",
        addr,
        &list_path,
        &[("X-Forwarded-Email", &t.alice)],
    )
    .await;
    assert_eq!(code, 403, "{text}");
    assert!(
        text.contains("This request came from 127.0.0.2, which is not one of the trusted proxies"),
        "{text}"
    );
    assert!(!text.contains(&t.globex), "{text}");
    // A proxy mode portal has no sign-in page of its own.
    let r = http::get(&format!("http://{addr}/portal/sign-in"))
        .await
        .expect("get");
    assert_eq!(r.status, 303);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire() {
    let env = start("{auth: demo, sessionTtl: 2s}").await;
    let t = two_partners(&env).await;
    let mut b = Browser::new(&env);
    let token = b.sign_in(&t.alice).await;
    assert!(
        b.attributes.contains("Max-Age=2") || b.attributes.contains("Max-Age=1"),
        "{}",
        b.attributes
    );
    let list_path = format!("/portal/partners/{}/companies", t.acme);
    assert_eq!(b.get(&list_path).await.status, 200);
    // A browser that keeps the cookie past its Max-Age gains nothing: the expiry is inside.
    let kept = b.cookie.clone();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    b.cookie = kept;
    let r = b.get(&list_path).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/portal/sign-in?expired=1"));
    assert_eq!(b.cookie, None, "the expired cookie is removed");
    let page = b.get("/portal/sign-in?expired=1").await;
    assert!(
        page.body.contains("Your session has expired"),
        "{}",
        page.body
    );
    // Nor does an expired session's token create anything.
    let r = b
        .post(
            &list_path,
            &[("csrf", &token), ("name", "Late"), ("id", &env.n("late"))],
        )
        .await;
    assert!(matches!(r.status, 303 | 403), "{}", r.body);
    assert!(env.tenant(&t.acme_ns, &env.n("late")).await.is_none());
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_key_from_a_secret_is_shared_by_every_process() {
    // portal.sessionSecret: the chart's generated Secret (on a real cluster, the one the chart
    // installed and lets its ServiceAccount read), else made here in the operator's namespace.
    let mut env = Env::start_with(
        kube_sim::SimConfig::default(),
        &config("{auth: demo, sessionSecret: partnerkit-portal-session}"),
        false,
    )
    .await;
    let ns = env.operator_namespace();
    if env
        .get("v1", "Secret", Some(&ns), "partnerkit-portal-session")
        .await
        .is_none()
    {
        env.apply_json(&json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "partnerkit-portal-session", "namespace": ns},
            "stringData": {"key": "0123456789abcdef0123456789abcdef-a-test-key"},
        }))
        .await;
    }
    env.start_operator().await;
    let t = two_partners(&env).await;
    let mut b = Browser::new(&env);
    let token = b.sign_in(&t.alice).await;
    let list_path = format!("/portal/partners/{}/companies", t.acme);

    // Another process (a restarted operator; equally another replica) with the same key
    // accepts the session and its form token.
    env.restart_operator().await;
    let mut other = Browser::new(&env);
    assert_ne!(other.base, b.base, "a new listener");
    other.cookie = b.cookie.clone();
    let r = other.get(&list_path).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains(&t.globex), "{}", r.body);
    assert_eq!(csrf(&r.body), token, "the same session");
    let r = other.post("/portal/sign-out", &[("csrf", &token)]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    env.finish().await;
}

/// Every seed task of the portal in a real browser (Playwright driving chromium:
/// tests/browser/portal.mjs), each as the person who does it, with axe-core and the keyboard
/// check on every page and its screenshot in target/test-screenshots/portal-*.png. With
/// `PARTNERKIT_DOCS_SCREENSHOTS=1` (`make docs-screenshots`) the screenshots go to docs/portal/
/// too, for the user guide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_real_browser_every_seed_task_as_its_person_on_accessible_pages() {
    let env = start("{auth: demo}").await;
    let (acme, initech) = (env.n("acme"), env.n("initech"));
    let (alice, ivan) = (env.email("alice", &acme), env.email("ivan", &initech));
    // acme: licensing, entitled to CRM (not Analytics); initech: neither.
    let acme_ns = env
        .partner_ready(
            &acme,
            &[&alice],
            json!({"entitlements": {"branding": true, "bizApps": ["crm"]}}),
        )
        .await;
    let initech_ns = env.partner_ready(&initech, &[&ivan], json!({})).await;
    let (globex, hooli) = (env.n("globex"), env.n("hooli"));
    let bob = env.email("bob", &globex);
    env.tenant_ready(
        &acme_ns,
        &globex,
        json!({"displayName": "Globex", "admins": [{"email": bob}]}),
    )
    .await;
    env.tenant_ready(&initech_ns, &hooli, json!({"displayName": "Hooli"}))
        .await;
    let root = env.email("root", &env.n("platform"));
    env.apply_json(&json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": env.n("portal-platform-admin")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "partnerkit-platform-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": root}],
    }))
    .await;
    let umbrella = env.n("umbrella");
    let addr = env.telemetry().web_address().expect("web address");
    let screenshots = support::browser::screenshots();
    let input = json!({
        "base": format!("http://{addr}"),
        "screenshots": screenshots,
        "sfx": env.sfx,
        "acme": acme, "acmeName": format!("{acme} Inc"), "initech": initech,
        "alice": alice, "ivan": ivan, "root": root, "bob": bob,
        "carol": env.email("carol", &acme),
        "mallory": env.email("mallory", &initech),
        "dave": env.email("dave", &initech),
        "globex": globex, "hooli": hooli,
        "umbrella": umbrella, "una": env.email("una", &umbrella),
    });
    let run = support::browser::run("portal.mjs", &input).await;
    run.assert_passed();

    // What the clicks did, as the API server has it.
    let id = format!("browser-{}", env.sfx);
    let moved = env.wait_ready("Tenant", Some(&initech_ns), &id).await;
    assert_eq!(moved["spec"]["displayName"], format!("Browser {}", env.sfx));
    assert_eq!(
        moved["spec"]["bizApps"],
        json!({"crm": true}),
        "created with CRM on and Chat off; Chat on again in Edit is the template's value, no override"
    );
    let tpl = env.tenant(&acme_ns, "template").await.expect("template");
    assert_eq!(tpl["spec"]["profiles"]["wifi"]["ssid"], acme.as_str());
    let p = env.partner(&acme).await.expect("acme");
    assert_eq!(p["spec"]["branding"]["primaryColor"], "#aa2200");
    assert_eq!(
        p["spec"]["branding"]["support"],
        json!({"email": format!("help@{acme}.example")})
    );
    let signed_up = env.wait_ready("Partner", None, &umbrella).await;
    assert_eq!(signed_up["spec"]["entitlements"]["branding"], true);
    let invites = env
        .kubectl_ok(&["get", "partneradmininvites", "-n", &acme_ns, "-o", "name"])
        .await;
    assert!(
        invites.trim().is_empty(),
        "the invitation revoked: {invites}"
    );
    // Alice's forged invitation to initech was refused; the platform admin's, chosen, made.
    let initech_invites: Vec<String> = env
        .list(API, "PartnerAdminInvite", Some(&initech_ns), None)
        .await
        .iter()
        .map(|i| i["spec"]["email"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(initech_invites, vec![env.email("dave", &initech)]);
    for page in [
        "sign-in",
        "companies",
        "create-company",
        "create-company-taken-id",
        "edit-company",
        "template",
        "settings",
        "settings-not-licensing",
        "invite-partner-admin",
        "invite-partner-admin-platform-admin",
        "home-platform-admin",
        "partners",
        "partner-edit",
        "partner-assignment",
        "company",
    ] {
        let png = screenshots.join(format!("portal-{page}.png"));
        let len = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
        assert!(len > 1000, "{}: {len} bytes", png.display());
        if std::env::var_os("PARTNERKIT_DOCS_SCREENSHOTS").is_some() {
            let docs = support::browser::root().join("docs/portal");
            std::fs::create_dir_all(&docs).expect("docs/portal");
            std::fs::copy(&png, docs.join(format!("{page}.png"))).expect("copy");
        }
    }
    env.finish().await;
}

/// The seed tasks' script behind an authenticating proxy (`auth: proxy`): Chromium sends the
/// proxy's identity header for each person (Playwright's extraHTTPHeaders), from the trusted
/// loopback address; alice signs in that way, sees Companies and creates a company, as herself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_real_browser_behind_a_proxy_with_identity_headers() {
    let env =
        start("{auth: proxy, proxy: {trustedProxies: [\"127.0.0.1/32\", \"::1/128\"]}}").await;
    let t = two_partners(&env).await;
    let addr = env.telemetry().web_address().expect("web address");
    let screenshots = support::browser::screenshots();
    let input = json!({
        "auth": "proxy",
        "base": format!("http://{addr}"),
        "screenshots": screenshots,
        "sfx": env.sfx,
        "acme": t.acme, "alice": t.alice,
        "globex": t.globex, "hooli": t.hooli,
    });
    let run = support::browser::run("portal.mjs", &input).await;
    run.assert_passed();
    // The company the clicks created, written as alice by the portal.
    let id = format!("browser-{}", env.sfx);
    let created = env.wait_ready("Tenant", Some(&t.acme_ns), &id).await;
    assert_eq!(
        created["spec"]["displayName"],
        format!("Browser {}", env.sfx)
    );
    assert_eq!(created["spec"]["admins"], json!([{"email": t.alice}]));
    let managers: Vec<&str> = created["metadata"]["managedFields"]
        .as_array()
        .map(|m| m.iter().filter_map(|e| e["manager"].as_str()).collect())
        .unwrap_or_default();
    assert!(managers.contains(&"partnerkit-portal"), "{managers:?}");
    for page in ["companies", "create-company", "create-company-taken-id"] {
        let png = screenshots.join(format!("portal-proxy-{page}.png"));
        let len = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
        assert!(len > 1000, "{}: {len} bytes", png.display());
    }
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_admin_sees_every_partner_and_its_companies() {
    let env = start("{auth: demo}").await;
    let t = two_partners(&env).await;
    let root = env.email("root", &env.n("platform"));
    env.apply_json(&json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": env.n("portal-platform-admin")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "partnerkit-platform-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": root}],
    }))
    .await;
    let mut b = Browser::new(&env);
    let page = b.get("/portal/sign-in").await;
    let pre = csrf(&page.body);
    let r = b
        .post("/portal/sign-in", &[("csrf", &pre), ("email", &root)])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let home = env
        .eventually(10, "the platform admin's rights", || {
            let mut b2 = b.tab();
            let acme = t.acme.clone();
            async move {
                let r = b2.get("/portal/").await;
                r.body
                    .contains(&format!("/portal/partners/{acme}/companies"))
                    .then_some(r)
            }
        })
        .await;
    assert!(home.body.contains("All partners"), "{}", home.body);
    let initech = t.initech_ns.trim_start_matches("partner-").to_string();
    assert!(
        home.body
            .contains(&format!("/portal/partners/{initech}/companies")),
        "{}",
        home.body
    );
    let r = b
        .get(&format!("/portal/partners/{initech}/companies"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains(&t.hooli), "{}", r.body);

    // Partners: every partner, and signing up a new one.
    let partners = b.get("/portal/partners").await;
    assert_eq!(partners.status, 200, "{}", partners.body);
    assert!(
        partners.body.contains("<h1>Partners</h1>"),
        "{}",
        partners.body
    );
    for p in [&t.acme, &initech] {
        assert!(
            partners.body.contains(&format!("data-id=\"{p}\"")),
            "{}",
            partners.body
        );
    }
    let token = csrf(&partners.body);
    let newco = env.n("newco");
    let newco_admin = env.email("nina", &newco);
    let r = b
        .post(
            "/portal/partners",
            &[
                ("csrf", &token),
                ("display_name", "NewCo <Resellers>"),
                ("id", &newco),
                ("admins", &newco_admin),
                ("branding", "on"),
                ("premium.crm", "on"),
                ("max_tenants", "5"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let p = env.wait_ready("Partner", None, &newco).await;
    assert_eq!(
        p["spec"]["entitlements"],
        json!({"branding": true, "bizApps": ["crm"], "maxTenants": 5})
    );
    assert_eq!(p["spec"]["admins"], json!([{"email": newco_admin}]));
    let partners = b.get(&format!("/portal/partners?created={newco}")).await;
    assert!(
        partners.body.contains("NewCo &lt;Resellers&gt;"),
        "{}",
        partners.body
    );
    // A taken ID: the API server's answer beside the Partner ID, the form kept.
    let r = b
        .post(
            "/portal/partners",
            &[
                ("csrf", &token),
                ("display_name", "Again"),
                ("id", &newco),
                ("admins", &newco_admin),
            ],
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        text_of(&r.body, "error-id").contains("already exists"),
        "{}",
        r.body
    );
    assert_eq!(input_value(&r.body, "display_name"), "Again");

    // Edit: entitlements and admins, with the version the form was made from.
    let edit = b.get(&format!("/portal/partners/{newco}/edit")).await;
    assert_eq!(edit.status, 200, "{}", edit.body);
    assert!(
        edit.body
            .contains("id=\"premium-crm\" name=\"premium.crm\" checked"),
        "{}",
        edit.body
    );
    let version = input_value(&edit.body, "version");
    let save = |version: &str| {
        vec![
            ("csrf".to_string(), token.clone()),
            ("version".to_string(), version.to_string()),
            ("display_name".to_string(), "NewCo Resellers".to_string()),
            (
                "admins".to_string(),
                format!("{newco_admin}\nsecond@{newco}.example"),
            ),
            ("max_tenants".to_string(), "7".to_string()),
        ]
    };
    let same: &[(&str, &str)] = &[("Sec-Fetch-Site", "same-origin")];
    let r = b
        .post_fields(
            &format!("/portal/partners/{newco}/edit"),
            &save(&version),
            same,
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let p = env.partner(&newco).await.expect("newco");
    assert_eq!(p["spec"]["displayName"], "NewCo Resellers");
    assert_eq!(
        p["spec"]["entitlements"],
        json!({"branding": false, "bizApps": [], "maxTenants": 7})
    );
    assert_eq!(
        p["spec"]["admins"][1]["email"],
        format!("second@{newco}.example")
    );
    let r = b
        .post_fields(
            &format!("/portal/partners/{newco}/edit"),
            &save(&version),
            same,
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        text_of(&r.body, "error-form").contains("Someone changed this partner"),
        "{}",
        r.body
    );

    // A partner admin may not list Partners, let alone create one.
    let mut alice = Browser::new(&env);
    let alice_token = alice.sign_in(&t.alice).await;
    let r = alice.get("/portal/partners").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        text_of(&r.body, "detail").contains("cannot list resource"),
        "{}",
        r.body
    );
    let sneaky = env.n("sneaky");
    let r = alice
        .post(
            "/portal/partners",
            &[
                ("csrf", &alice_token),
                ("display_name", "Sneaky"),
                ("id", &sneaky),
                ("admins", &t.alice),
            ],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(env.partner(&sneaky).await.is_none());
    // alice may read her own Partner, but not replace it (she may patch its branding only).
    let edit = alice
        .get(&format!("/portal/partners/{}/edit", t.acme))
        .await;
    assert_eq!(edit.status, 200, "{}", edit.body);
    let version = input_value(&edit.body, "version");
    let r = alice
        .post(
            &format!("/portal/partners/{}/edit", t.acme),
            &[
                ("csrf", &alice_token),
                ("version", &version),
                ("display_name", "Mine now"),
                ("admins", &t.alice),
                ("max_tenants", "1000"),
            ],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        text_of(&r.body, "error-form").contains("forbidden"),
        "{}",
        r.body
    );
    assert_ne!(
        env.partner(&t.acme).await.expect("acme")["spec"]["displayName"],
        "Mine now"
    );
    let _ = env
        .kubectl(&["delete", "partner", &newco, "--wait=false"])
        .await;
    let _ = (t.alice, t.ivan, t.globex);
    let _ = env
        .kubectl(&[
            "delete",
            "clusterrolebinding",
            &env.n("portal-platform-admin"),
        ])
        .await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_partner_admin_lists_creates_and_revokes_as_the_user() {
    let env = start("{auth: demo}").await;
    let t = two_partners(&env).await;
    let mut b = Browser::new(&env);
    let token = b.sign_in(&t.alice).await;
    let path = format!("/portal/partners/{}/invites", t.acme);
    let page = b.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("<h1>Invite Partner Admin</h1>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("No invitations."), "{}", page.body);
    // The partner is preselected and cannot be chosen.
    assert!(
        page.body.contains(&format!(
            "id=\"partner\" type=\"text\" value=\"{} Inc\" readonly",
            t.acme
        )),
        "{}",
        page.body
    );

    // A bad e-mail: the message beside the field, the value kept.
    let r = b
        .post(
            &path,
            &[("csrf", &token), ("email", "bob at acme"), ("ttl", "72h")],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        text_of(&r.body, "error-email").contains("is not an e-mail address"),
        "{}",
        r.body
    );
    assert_eq!(input_value(&r.body, "email"), "bob at acme");

    // Invite bob: a PartnerAdminInvite created as alice, listed (live, from the cache).
    let bob = env.email("bob", &t.acme);
    let r = b
        .post(&path, &[("csrf", &token), ("email", &bob), ("ttl", "48h")])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let location = r.header("location").unwrap_or_default().to_string();
    let name = location
        .split("invited=")
        .nth(1)
        .expect("the invite's name")
        .to_string();
    let invite = env
        .get(API, "PartnerAdminInvite", Some(&t.acme_ns), &name)
        .await
        .expect("the invite");
    assert_eq!(invite["spec"], json!({"email": bob, "ttl": "48h"}));
    let listed = env
        .eventually(10, "the invitation listed", || {
            let mut b2 = b.tab();
            let (path, bob) = (path.clone(), bob.clone());
            async move {
                let r = b2.get(&path).await;
                r.body.contains(&format!("<td>{bob}</td>")).then_some(r)
            }
        })
        .await;
    assert!(
        listed.body.contains(&format!("data-name=\"{name}\"")),
        "{}",
        listed.body
    );

    // Another partner's invitations: the API server's refusal.
    let initech = t.initech_ns.trim_start_matches("partner-").to_string();
    let r = b.get(&format!("/portal/partners/{initech}/invites")).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        text_of(&r.body, "detail").contains("cannot list resource"),
        "{}",
        r.body
    );

    // ivan cannot revoke acme's invitation: the API server says no, and it stays.
    let revoke = format!("{path}/{name}/revoke");
    let mut ivan = Browser::new(&env);
    let ivan_token = ivan.sign_in(&t.ivan).await;
    let r = ivan.post(&revoke, &[("csrf", &ivan_token)]).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        env.get(API, "PartnerAdminInvite", Some(&t.acme_ns), &name)
            .await
            .is_some()
    );

    // A cross-site revoke is refused; alice's own revokes.
    let r = b
        .request(
            "POST",
            &revoke,
            &[("Sec-Fetch-Site", "cross-site")],
            Some(&[("csrf", token.as_str())]),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = b.post(&revoke, &[("csrf", &token)]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    env.wait_gone(API, "PartnerAdminInvite", Some(&t.acme_ns), &name)
        .await;
    env.finish().await;
}

/// The cells of the Invite Partner Admin page's row of invitation `name` (text up to each
/// cell's first tag: the Status cell's phase without its note), None if it is not listed.
fn invite_row(html: &str, name: &str) -> Option<Vec<String>> {
    let at = html.find(&format!("<tr data-name=\"{name}\">"))?;
    let row = &html[at..at + html[at..].find("</tr>")?];
    Some(
        row.split("<td>")
            .skip(1)
            .map(|c| c[..c.find('<').unwrap_or(c.len())].trim().to_string())
            .collect(),
    )
}

/// The invitation's row on the page once its Status cell says `phase` (waiting ≤ `secs` for
/// the operator and the watch cache): [e-mail, status, sent, expires, accepted].
async fn invite_row_in(
    env: &Env,
    b: &Browser,
    path: &str,
    name: &str,
    phase: &str,
    secs: u64,
) -> (Vec<String>, String) {
    env.eventually(secs, &format!("{name} {phase} on the page"), || {
        let mut b2 = b.tab();
        let (path, name, phase) = (path.to_string(), name.to_string(), phase.to_string());
        async move {
            let r = b2.get(&path).await;
            assert_eq!(r.status, 200, "{}", r.body);
            let row = invite_row(&r.body, &name)?;
            (row[1] == phase).then_some((row, r.body))
        }
    })
    .await
}

/// Invite Partner Admin past Pending, with real mail: an invitation is Pending (with why)
/// while the SMTP server is down, Sent once it is up, Accepted when the mailed link is followed,
/// Expired after a short validity; each row says so, and Revoke deletes any of them (the
/// mailed link then leads nowhere; an accepted one takes its admin rights with it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_go_pending_sent_accepted_expired_and_are_revoked() {
    // Nothing listens on the SMTP port yet: the first invitation stays Pending.
    let (web_port, smtp_port) = (support::mail::free_port(), support::mail::free_port());
    let config = format!(
        "{}invites:\n  acceptUrl: http://127.0.0.1:{web_port}/invites\n  smtp: {{host: 127.0.0.1, port: {smtp_port}, tls: none, from: portal@platform.example, attempts: 20, retryBackoff: 200ms, timeout: 5s}}\nportal: {{auth: demo}}\n",
        CONFIG.replace(
            "web: \"127.0.0.1:0\"",
            &format!("web: \"127.0.0.1:{web_port}\"")
        )
    );
    let env = Env::start_with(kube_sim::SimConfig::default(), &config, true).await;
    let t = two_partners(&env).await;
    let mut b = Browser::new(&env);
    let token = b.sign_in(&t.alice).await;
    let path = format!("/portal/partners/{}/invites", t.acme);
    let invite = |b: &mut Browser, email: String, ttl: &'static str| {
        let (path, token) = (path.clone(), token.clone());
        let mut b = b.tab();
        async move {
            let r = b
                .post(&path, &[("csrf", &token), ("email", &email), ("ttl", ttl)])
                .await;
            assert_eq!(r.status, 303, "{}", r.body);
            let location = r.header("location").unwrap_or_default().to_string();
            location
                .split("invited=")
                .nth(1)
                .expect("the invite's name")
                .to_string()
        }
    };

    // Pending: the SMTP server is down; the row says why, and the page refreshes itself.
    let bob = env.email("bob", &t.acme);
    let bob_invite = invite(&mut b, bob.clone(), "72h").await;
    let (row, body) = env
        .eventually(
            20,
            "bob's invitation Pending with the delivery error",
            || {
                let mut b2 = b.tab();
                let (path, name) = (path.clone(), bob_invite.clone());
                async move {
                    let r = b2.get(&path).await;
                    let at = r.body.find(&format!("<tr data-name=\"{name}\">"))?;
                    let rest = &r.body[at..];
                    rest[..rest.find("</tr>")?]
                        .contains("next attempt")
                        .then(|| (invite_row(&r.body, &name).unwrap(), r.body.clone()))
                }
            },
        )
        .await;
    assert_eq!(row[..2], [bob.clone(), "Pending".to_string()], "{body}");
    assert_eq!(row[2], "", "not sent: {body}");
    assert!(body.contains("id=\"pending-note\""), "{body}");
    assert!(body.contains("data-refresh=\"5\""), "{body}");

    // Sent: the server comes up, the next attempt delivers.
    let smtp = support::mail::SmtpServer::start_on(&env.dir.join("maildir"), smtp_port).await;
    let prefix = format!("http://127.0.0.1:{web_port}/invites/");
    let bob_link = smtp
        .wait_for(&bob, 30)
        .await
        .link(&prefix)
        .expect("bob's link");
    let (row, body) = invite_row_in(&env, &b, &path, &bob_invite, "Sent", 10).await;
    assert!(
        row[2].len() >= 20 && row[3].len() >= 20,
        "sent and expiry times: {row:?}"
    );
    assert_eq!(row[4], "", "not accepted: {row:?}");
    assert!(!body.contains("id=\"pending-note\""), "{body}");

    // Accepted: carol follows her mailed link and clicks Accept.
    let carol = env.email("carol", &t.acme);
    let carol_invite = invite(&mut b, carol.clone(), "72h").await;
    let link = smtp
        .wait_for(&carol, 30)
        .await
        .link(&prefix)
        .expect("carol's link");
    let ok = http::get(&link).await.unwrap();
    assert_eq!(ok.status, 200, "{}", ok.body);
    let (page, query) = link.split_once('?').expect("a token");
    let carol_token = query.strip_prefix("token=").expect("token=");
    let origin = format!("http://127.0.0.1:{web_port}");
    let r = http::post_form(
        page,
        &[("token", carol_token)],
        &[("Origin", &origin), ("Sec-Fetch-Site", "same-origin")],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let (row, body) = invite_row_in(&env, &b, &path, &carol_invite, "Accepted", 10).await;
    assert!(row[2].len() >= 20 && row[4].len() >= 20, "{row:?}");
    assert!(
        body.contains("Revoking removes the admin rights it gave."),
        "{body}"
    );
    let is_admin = |who: String| {
        let env = &env;
        let acme = t.acme.clone();
        async move {
            env.partner(&acme).await.is_some_and(|p| {
                p["status"]["admins"]
                    .as_array()
                    .is_some_and(|a| a.contains(&json!(who)))
            })
        }
    };
    env.eventually(10, "carol a partner admin", || async {
        is_admin(carol.clone()).await.then_some(())
    })
    .await;

    // Expired: dave's invitation is valid for 2 s.
    let dave = env.email("dave", &t.acme);
    let dave_invite = invite(&mut b, dave.clone(), "2s").await;
    let (row, body) = invite_row_in(&env, &b, &path, &dave_invite, "Expired", 20).await;
    assert_eq!(row[0], dave);
    assert!(row[3].len() >= 20 && row[4].is_empty(), "{row:?}");
    // Every state at once, newest first (those of one second by name), each with its Revoke
    // button.
    let mut expected = Vec::new();
    for name in [&bob_invite, &carol_invite, &dave_invite] {
        let i = env
            .get(API, "PartnerAdminInvite", Some(&t.acme_ns), name)
            .await
            .expect("the invite");
        let created: jiff::Timestamp = i["metadata"]["creationTimestamp"]
            .as_str()
            .and_then(|c| c.parse().ok())
            .expect("creationTimestamp");
        expected.push((std::cmp::Reverse(created), name.to_string()));
    }
    expected.sort();
    let mut listed: Vec<(usize, String)> = expected
        .iter()
        .map(|(_, n)| {
            (
                body.find(&format!("data-name=\"{n}\"")).expect("listed"),
                n.clone(),
            )
        })
        .collect();
    listed.sort();
    assert_eq!(
        listed.into_iter().map(|(_, n)| n).collect::<Vec<_>>(),
        expected.into_iter().map(|(_, n)| n).collect::<Vec<_>>(),
        "{body}"
    );
    for (name, phase) in [
        (&bob_invite, "Sent"),
        (&carol_invite, "Accepted"),
        (&dave_invite, "Expired"),
    ] {
        assert_eq!(invite_row(&body, name).expect("listed")[1], phase, "{body}");
        assert!(
            body.contains(&format!(
                "action=\"/portal/partners/{}/invites/{name}/revoke\"",
                t.acme
            )),
            "{name}: {body}"
        );
    }

    // Revoke works on each: Sent (its mailed link then leads nowhere), Accepted (the rights
    // go), Expired.
    for name in [&bob_invite, &carol_invite, &dave_invite] {
        let r = b
            .post(&format!("{path}/{name}/revoke"), &[("csrf", &token)])
            .await;
        assert_eq!(r.status, 303, "{name}: {}", r.body);
        let to = r.header("location").unwrap_or_default().to_string();
        assert_eq!(to, format!("{path}?revoked={name}"));
        env.wait_gone(API, "PartnerAdminInvite", Some(&t.acme_ns), name)
            .await;
        let r = b.get(&to).await;
        assert!(
            text_of(&r.body, "flash").contains(&format!("Invitation {name} revoked.")),
            "{}",
            r.body
        );
        assert!(invite_row(&r.body, name).is_none(), "{}", r.body);
    }
    let r = http::get(&bob_link).await.unwrap();
    assert_eq!(r.status, 404, "{}", r.body);
    env.eventually(10, "carol no longer a partner admin", || async {
        (!is_admin(carol.clone()).await).then_some(())
    })
    .await;
    let r = b.get(&path).await;
    assert!(r.body.contains("No invitations."), "{}", r.body);
    drop(smtp);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn companies_page_and_search_over_many_companies() {
    let env = start("{auth: demo}").await;
    let t = two_partners(&env).await;
    // 120 more companies (121 with globex): three pages of 50.
    for i in 0..120 {
        let id = format!("co{i:03}-{}", env.sfx);
        let name = if i % 10 == 7 {
            format!("Needle {i}")
        } else {
            format!("Company {i}")
        };
        support::apply_value(
            &env.client,
            &tenant_json(&t.acme_ns, &id, json!({"displayName": name})),
            "test",
        )
        .await;
    }
    let mut b = Browser::new(&env);
    b.sign_in(&t.alice).await;
    let list_path = format!("/portal/partners/{}/companies", t.acme);
    let first = env
        .eventually(20, "every company in the cache", || {
            let mut b2 = b.tab();
            let path = list_path.clone();
            async move {
                let r = b2.get(&path).await;
                r.body.contains("121 companies").then_some(r)
            }
        })
        .await;
    let rows = |body: &str| body.matches("<tr data-id=").count();
    assert_eq!(rows(&first.body), 50);
    assert!(first.body.contains("Page 1 of 3"), "{}", first.body);
    assert!(
        first.body.contains("rel=\"next\" href=\"?q=&amp;page=2\""),
        "{}",
        first.body
    );
    assert!(!first.body.contains("rel=\"prev\""));
    // In ID order: co000 first.
    assert!(
        first
            .body
            .contains(&format!("data-id=\"co000-{}\"", env.sfx))
    );
    let last = b.get(&format!("{list_path}?page=3")).await;
    assert_eq!(rows(&last.body), 21, "{}", last.body);
    assert!(last.body.contains("Page 3 of 3") && last.body.contains("rel=\"prev\""));
    assert!(
        last.body.contains(&format!("data-id=\"{}\"", t.globex)),
        "globex sorts last"
    );
    // Past the end: the last page.
    let past = b.get(&format!("{list_path}?page=99")).await;
    assert!(past.body.contains("Page 3 of 3"), "{}", past.body);
    // Search by name, any case: 12 needles, one page.
    let found = b.get(&format!("{list_path}?q=NEEDLE")).await;
    assert_eq!(rows(&found.body), 12, "{}", found.body);
    assert!(
        found.body.contains("12 companies matching"),
        "{}",
        found.body
    );
    assert!(!found.body.contains("Page 1 of"), "one page: no pager");
    // Search by ID.
    let found = b.get(&format!("{list_path}?q=co11")).await;
    assert_eq!(rows(&found.body), 10, "{}", found.body);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_page_edits_the_template_and_companies_follow() {
    let env = start("{auth: demo}").await;
    let t = two_partners(&env).await;
    let mut b = Browser::new(&env);
    let token = b.sign_in(&t.alice).await;
    let path = format!("/portal/partners/{}/template", t.acme);
    let page = b.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<h1>Template</h1>"), "{}", page.body);
    assert!(page.body.contains(">Template name<") && page.body.contains(">Save</button>"));
    assert!(
        page.body.contains("The catalog&#x27;s default (off)")
            || page.body.contains("The catalog's default (off)"),
        "{}",
        page.body
    );
    let version = input_value(&page.body, "version");
    let name = input_value(&page.body, "name");

    // A line that is not profile.key=value: the message beside Profiles, the text kept.
    let form = |profiles: &str| {
        vec![
            ("csrf".to_string(), token.clone()),
            ("version".to_string(), version.clone()),
            ("name".to_string(), name.clone()),
            ("app.mail".to_string(), "on".to_string()),
            ("app.chat".to_string(), "on".to_string()),
            ("app.crm".to_string(), "on".to_string()),
            ("profiles".to_string(), profiles.to_string()),
        ]
    };
    let same: &[(&str, &str)] = &[("Sec-Fetch-Site", "same-origin")];
    let r = b
        .post_fields(&path, &form("wifi.ssid=acme\nno equals sign"), same)
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        text_of(&r.body, "error-profiles").starts_with("Line 2: write profile.key=value"),
        "{}",
        r.body
    );
    assert!(r.body.contains("no equals sign</textarea>"), "{}", r.body);

    // Save: crm on and a wifi profile in the template, as alice.
    let r = b
        .post_fields(&path, &form("wifi.ssid=acme\nwifi.security=wpa3"), same)
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let tpl = env
        .get(API, "Tenant", Some(&t.acme_ns), "template")
        .await
        .expect("template");
    assert_eq!(tpl["spec"]["bizApps"], json!({"crm": true}));
    assert_eq!(
        tpl["spec"]["profiles"],
        json!({"wifi": {"security": "wpa3", "ssid": "acme"}})
    );
    // Live inheritance: globex gets crm, and Companies shows it.
    let list_path = format!("/portal/partners/{}/companies", t.acme);
    env.eventually(15, "globex to inherit crm", || {
        let mut b2 = b.tab();
        let path = list_path.clone();
        async move {
            let r = b2.get(&path).await;
            r.body.contains("Chat, CRM, Mail").then_some(())
        }
    })
    .await;
    let page = b.get(&path).await;
    assert!(
        page.body
            .contains("Set in the template (the catalog&#x27;s default is off)")
            || page
                .body
                .contains("Set in the template (the catalog's default is off)"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("wifi.security=wpa3\nwifi.ssid=acme</textarea>"),
        "{}",
        page.body
    );

    // ivan may not read acme's template.
    let mut ivan = Browser::new(&env);
    ivan.sign_in(&t.ivan).await;
    let r = ivan.get(&path).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        text_of(&r.body, "detail").contains("forbidden"),
        "{}",
        r.body
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_brand_a_licensing_partner_only() {
    let env = start("{auth: demo}").await;
    let t = two_partners(&env).await;
    // acme becomes a licensing partner.
    env.apply_json(&support::partner_json(
        &t.acme,
        &format!("{} Inc", t.acme),
        &[&t.alice],
        json!({"entitlements": {"branding": true, "bizApps": ["crm"]}}),
    ))
    .await;
    let mut b = Browser::new(&env);
    let token = b.sign_in(&t.alice).await;
    let path = format!("/portal/partners/{}/settings", t.acme);
    let page = env
        .eventually(10, "the licensing form", || {
            let mut b2 = b.tab();
            let path = path.clone();
            async move {
                let r = b2.get(&path).await;
                (r.status == 200 && !r.body.contains("id=\"not-licensing\"")).then_some(r)
            }
        })
        .await;
    assert!(page.body.contains("<h1>Settings</h1>"), "{}", page.body);
    let version = input_value(&page.body, "version");
    let same: &[(&str, &str)] = &[("Sec-Fetch-Site", "same-origin")];
    let form = |color: &str| {
        vec![
            ("csrf".to_string(), token.clone()),
            ("version".to_string(), version.clone()),
            (
                "logo_url".to_string(),
                "https://acme.example/logo.png".to_string(),
            ),
            ("primary_color".to_string(), color.to_string()),
            ("support_kind".to_string(), "email".to_string()),
            ("support_email".to_string(), "help@acme.example".to_string()),
            ("support_url".to_string(), String::new()),
        ]
    };
    let r = b.post_fields(&path, &form("blue"), same).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        text_of(&r.body, "error-primary_color").contains("#RRGGBB"),
        "{}",
        r.body
    );
    let r = b.post_fields(&path, &form("#0055ff"), same).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let p = env.partner(&t.acme).await.expect("partner");
    assert_eq!(
        p["spec"]["branding"],
        json!({"logoUrl": "https://acme.example/logo.png", "primaryColor": "#0055ff", "support": {"email": "help@acme.example"}})
    );
    // The portal's pages for acme take the colour (from self, under the CSP).
    env.eventually(10, "the brand colour", || {
        let mut b2 = b.tab();
        let css = format!("/portal/partners/{}/brand.css", t.acme);
        async move {
            let r = b2.get(&css).await;
            r.body
                .contains("--brand: #0055ff; --brand-text: #ffffff;")
                .then_some(())
        }
    })
    .await;
    let list = b
        .get(&format!("/portal/partners/{}/companies", t.acme))
        .await;
    assert!(
        list.body
            .contains(&format!("href=\"/portal/partners/{}/brand.css\"", t.acme))
    );
    // … and show its logo and support channel.
    let foot = brand_footer(&list.body);
    assert!(
        foot.contains("href=\"https://acme.example/logo.png\"")
            && foot.contains("href=\"mailto:help@acme.example\""),
        "{}",
        list.body
    );

    // A partner that is not licensing sees why, and cannot save.
    let mut ivan = Browser::new(&env);
    let ivan_token = ivan.sign_in(&t.ivan).await;
    let initech = t.initech_ns.trim_start_matches("partner-").to_string();
    let ipath = format!("/portal/partners/{initech}/settings");
    let r = ivan.get(&ipath).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("id=\"not-licensing\""), "{}", r.body);
    assert!(r.body.contains("<fieldset disabled>"), "{}", r.body);
    // Its pages carry the platform's support channel, never acme's.
    let foot = brand_footer(&r.body);
    assert!(
        foot.contains("help.platform.example") && !foot.contains("acme.example"),
        "{}",
        r.body
    );
    let r = ivan
        .post(
            &ipath,
            &[
                ("csrf", &ivan_token),
                ("primary_color", "#ff0000"),
                ("support_email", "x@initech.example"),
            ],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(env.partner(&initech).await.expect("initech")["spec"]["branding"].is_null());
    // Nor may alice open initech's settings: the API server refuses her its Partner.
    let r = b.get(&ipath).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        text_of(&r.body, "detail").contains("forbidden"),
        "{}",
        r.body
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_admin_moves_a_company_to_another_partner() {
    let env = start("{auth: demo}").await;
    let t = two_partners(&env).await;
    let initech = t.initech_ns.trim_start_matches("partner-").to_string();
    let root = env.email("root", &env.n("platform"));
    let binding = env.n("portal-move-admin");
    env.apply_json(&json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": binding},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "partnerkit-platform-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": root}],
    }))
    .await;
    // alice may not see the page.
    let mut alice = Browser::new(&env);
    alice.sign_in(&t.alice).await;
    let r = alice.get("/portal/partner-assignment").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        text_of(&r.body, "detail").contains("cannot list resource"),
        "{}",
        r.body
    );

    let mut b = Browser::new(&env);
    let page = b.get("/portal/sign-in").await;
    let pre = csrf(&page.body);
    b.post("/portal/sign-in", &[("csrf", &pre), ("email", &root)])
        .await;
    let page = env
        .eventually(10, "the platform admin's rights", || {
            let mut b2 = b.tab();
            async move {
                let r = b2.get("/portal/partner-assignment").await;
                (r.status == 200).then_some(r)
            }
        })
        .await;
    assert!(
        page.body.contains("<h1>Partner Assignment</h1>"),
        "{}",
        page.body
    );
    let token = csrf(&page.body);
    let r = b
        .post(
            "/portal/partner-assignment",
            &[
                ("csrf", &token),
                ("tenant", &t.globex),
                ("from", &t.acme),
                ("to", &initech),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    // The record, the company in initech (Ready: it adopted the workspace), gone from acme.
    let a = env
        .get(
            API,
            "PartnerAssignment",
            None,
            &format!("{}-to-{initech}", t.globex),
        )
        .await
        .expect("the assignment");
    assert_eq!(
        a["spec"],
        json!({"tenant": t.globex, "from": t.acme, "to": initech})
    );
    let moved = env
        .wait_ready("Tenant", Some(&t.initech_ns), &t.globex)
        .await;
    assert!(
        moved["spec"]["displayName"]
            .as_str()
            .unwrap_or_default()
            .contains("Globex")
    );
    env.wait_gone(API, "Tenant", Some(&t.acme_ns), &t.globex)
        .await;
    env.eventually(10, "the workspace to belong to initech", || async {
        let ns = env.namespace(&env.ws(&t.globex)).await?;
        (ns["metadata"]["labels"]["partnerkit.io/partner"] == initech.as_str()).then_some(())
    })
    .await;
    let page = b
        .get(&format!("/portal/partner-assignment?moved={}", t.globex))
        .await;
    assert!(
        page.body.contains(&format!("Company {} moved", t.globex)),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!("<td><code>{}</code></td>", t.globex)),
        "{}",
        page.body
    );
    // Moving a company that is not there: the API server's answer, the form kept.
    let r = b
        .post(
            "/portal/partner-assignment",
            &[
                ("csrf", &token),
                ("tenant", &t.globex),
                ("from", &t.acme),
                ("to", &initech),
            ],
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(
        text_of(&r.body, "error-form").contains("not found"),
        "{}",
        r.body
    );
    assert_eq!(input_value(&r.body, "tenant"), t.globex);
    let _ = (t.ivan, t.hooli, t.alice);
    let _ = env
        .kubectl(&["delete", "clusterrolebinding", &binding])
        .await;
    env.finish().await;
}
