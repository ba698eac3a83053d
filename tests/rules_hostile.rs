//! Issue 9, "Chaos, proved in tests": isolation between partners, checked exhaustively with the
//! API server's own authorizer, and hostile input — markup, control characters, unicode, every
//! length limit, oversized profiles, thousands of admins — refused at `kubectl apply` time with
//! the field named, or accepted, kept verbatim and reconciled, while every other tenant keeps
//! converging.
//!
//! Isolation: for each person, every verb on every kind partnerkit materializes or users keep
//! (and the cluster-wide objects that would hand over the rest: its CRDs, its admission policies,
//! impersonation, ClusterRoles), asked as a `SubjectAccessReview` — the very decision the API
//! server makes for a request — plus a handful of real `kubectl --as` requests that must come
//! back Forbidden and leave the objects as they were. A few things that must be allowed are
//! asked too, so a test cannot pass by everything being denied.
//!
//! Two of them reproduced product bugs found here, since fixed: an invite name the schema
//! accepts that was never delivered (its link Secret's label was over 63 characters); oversized
//! profiles that ended in a silent error loop (now Ready=False, InvalidProfile, from the
//! controller) and long refusal messages that lost their Warning Event (notes are now cut to
//! the API server's 1 kB).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use support::{Env, Out, http, partner_json, ready, tenant_json};

const API: &str = "partnerkit.io/v1alpha1";

/// The support suite's catalog, with the acceptance page on `web_port` (invitation links go into
/// a Secret: no SMTP).
fn config(web_port: u16) -> String {
    format!(
        r##"
catalog:
  - {{name: mail, displayName: Mail, premium: false}}
  - {{name: chat, displayName: Chat, premium: false}}
  - {{name: crm, displayName: CRM, premium: true}}
  - {{name: analytics, displayName: Analytics, premium: true}}
defaultBranding:
  logoUrl: https://platform.example/logo.png
  primaryColor: "#333333"
  support: {{url: https://help.platform.example}}
invites:
  acceptUrl: http://127.0.0.1:{web_port}/invites
listen: {{metrics: "127.0.0.1:0", health: "127.0.0.1:0", web: "127.0.0.1:{web_port}"}}
"##
    )
}

async fn start() -> (Env, u16) {
    let port = support::mail::free_port();
    let env = Env::start_with(Default::default(), &config(port), true).await;
    (env, port)
}

/// At most `n` characters of `s`, for assertion messages about huge manifests.
fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!(
            "{}… ({} bytes)",
            s.chars().take(n).collect::<String>(),
            s.len()
        )
    }
}

fn forbidden(o: &Out, what: &str) {
    assert!(
        !o.ok(),
        "{what} should have been refused, printed:\n{}",
        o.stdout
    );
    assert!(
        o.stderr.contains("Forbidden") || o.stderr.contains("forbidden"),
        "{what}: expected Forbidden, got:\n{}",
        o.stderr
    );
}

fn allowed(o: &Out, what: &str) {
    assert!(o.ok(), "{what} should be allowed:\n{}", o.stderr);
}

// ---------------------------------------------------------------------------------------------
// Invitations (link in a Secret, accepted on the operator's page)
// ---------------------------------------------------------------------------------------------

fn invite_json(ns: &str, name: &str, email: &str) -> Value {
    json!({"apiVersion": API, "kind": "PartnerAdminInvite",
        "metadata": {"name": name, "namespace": ns}, "spec": {"email": email}})
}

async fn wait_invite(env: &Env, ns: &str, name: &str, phase: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let o = env.get(API, "PartnerAdminInvite", Some(ns), name).await;
        if let Some(o) = &o
            && o["status"]["phase"] == phase
        {
            return o.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for invite {name} to be {phase}; last seen:\n{:#}",
            o.map(|o| o["status"].clone()).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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

/// The invite's link from its `<name>-link` Secret once it is Sent.
async fn invite_link(env: &Env, ns: &str, name: &str) -> String {
    wait_invite(env, ns, name, "Sent").await;
    let secret = env
        .get("v1", "Secret", Some(ns), &format!("{name}-link"))
        .await
        .expect("the link Secret");
    secret_value(&secret, "url")
}

/// Accept an invite as its invitee does: the token of the link, posted to the page.
async fn accept(env: &Env, port: u16, ns: &str, name: &str) {
    let link = invite_link(env, ns, name).await;
    let token = link.split("token=").nth(1).expect("a token in the link");
    let page = format!("http://127.0.0.1:{port}/invites/{ns}/{name}");
    let r = http::post_form(&page, &[("token", token)], &[])
        .await
        .expect("the acceptance page");
    assert_eq!(r.status, 200, "accepting {name}: {}", r.body);
    wait_invite(env, ns, name, "Accepted").await;
}

// ---------------------------------------------------------------------------------------------
// SubjectAccessReviews
// ---------------------------------------------------------------------------------------------

/// One question to the API server's authorizer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Ask {
    user: String,
    namespace: String,
    verb: String,
    group: String,
    resource: String,
    subresource: String,
    name: String,
}

impl std::fmt::Display for Ask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = if self.group.is_empty() {
            "core".to_string()
        } else {
            self.group.clone()
        };
        let sub = if self.subresource.is_empty() {
            String::new()
        } else {
            format!("/{}", self.subresource)
        };
        let name = if self.name.is_empty() {
            "(any name)".to_string()
        } else {
            format!("{:?}", self.name)
        };
        let scope = if self.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in namespace {}", self.namespace)
        };
        write!(
            f,
            "{} may {} {group} {}{sub} {name} {scope}",
            self.user, self.verb, self.resource
        )
    }
}

fn ask(user: &str, namespace: &str, verb: &str, kind: &Kind, name: &str) -> Ask {
    Ask {
        user: user.to_string(),
        namespace: namespace.to_string(),
        verb: verb.to_string(),
        group: kind.group.to_string(),
        resource: kind.resource.to_string(),
        subresource: kind.subresource.to_string(),
        name: name.to_string(),
    }
}

/// The API server's answer for a user in `system:authenticated`, as a SubjectAccessReview the
/// cluster admin creates.
async fn decide(client: &kube::Client, a: &Ask) -> bool {
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(a.user.clone()),
            groups: Some(vec!["system:authenticated".into()]),
            resource_attributes: Some(ResourceAttributes {
                namespace: opt(&a.namespace),
                verb: Some(a.verb.clone()),
                group: Some(a.group.clone()),
                resource: Some(a.resource.clone()),
                subresource: opt(&a.subresource),
                name: opt(&a.name),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut tries = 0;
    loop {
        match api.create(&PostParams::default(), &review).await {
            Ok(r) => {
                return r
                    .status
                    .is_some_and(|s| s.allowed && s.denied != Some(true));
            }
            Err(e) if tries < 3 => {
                tries += 1;
                eprintln!("SubjectAccessReview {a}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("SubjectAccessReview {a}: {e}"),
        }
    }
}

/// Every question answered, 16 at a time.
async fn decide_all(client: &kube::Client, asks: Vec<Ask>) -> Vec<(Ask, bool)> {
    let mut out: Vec<(Ask, bool)> = futures::stream::iter(asks)
        .map(|a| async move {
            let ok = decide(client, &a).await;
            (a, ok)
        })
        .buffer_unordered(16)
        .collect()
        .await;
    out.sort();
    out
}

/// A resource (or subresource) and the names of the objects of it worth asking about by name
/// (RBAC may grant by resourceNames): every question is asked without a name too.
struct Kind {
    group: &'static str,
    resource: &'static str,
    subresource: &'static str,
    /// Verbs beyond get, list, watch, create, update, patch, delete, deletecollection.
    extra: &'static [&'static str],
    names: Vec<String>,
}

const VERBS: [&str; 8] = [
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

fn kind(
    group: &'static str,
    resource: &'static str,
    subresource: &'static str,
    extra: &'static [&'static str],
    names: &[&str],
) -> Kind {
    Kind {
        group,
        resource,
        subresource,
        extra,
        names: names.iter().map(|s| s.to_string()).collect(),
    }
}

/// Every question about `kinds` for `user` in `namespace` ("" = the cluster scope): every verb,
/// without a name and by each name.
fn every_question(user: &str, namespace: &str, kinds: &[Kind]) -> Vec<Ask> {
    let mut out = Vec::new();
    for k in kinds {
        let names = std::iter::once("").chain(k.names.iter().map(String::as_str));
        for name in names {
            for verb in VERBS.iter().chain(k.extra) {
                out.push(ask(user, namespace, verb, k, name));
            }
        }
    }
    out
}

/// Two partners, each with a template, tenants (one with a tenant admin of its own), an
/// accepted invite and a pending one, materialized workspaces, and objects users keep there.
struct World {
    alpha: String,
    beta: String,
    alpha_ns: String,
    beta_ns: String,
    /// alpha's admin (spec.admins), alpha's admin through an accepted invite.
    alice: String,
    carol: String,
    /// beta's admin (spec.admins), beta's admin through an accepted invite, a pending invitee.
    bob: String,
    frank: String,
    gina: String,
    /// Tenant admins: dan of alpha's a1, erin of beta's b1.
    dan: String,
    erin: String,
    a1: String,
    a2: String,
    b1: String,
    b2: String,
    ws_a1: String,
    ws_a2: String,
    ws_b1: String,
    ws_b2: String,
}

async fn two_partners(env: &Env, port: u16) -> World {
    let (alpha, beta) = (env.n("alpha"), env.n("beta"));
    let (a1, a2, b1, b2) = (env.n("a1"), env.n("a2"), env.n("b1"), env.n("b2"));
    let w = World {
        alice: env.email("alice", &alpha),
        carol: env.email("carol", &alpha),
        bob: env.email("bob", &beta),
        frank: env.email("frank", &beta),
        gina: env.email("gina", &beta),
        dan: env.email("dan", &a1),
        erin: env.email("erin", &b1),
        alpha_ns: env.pns(&alpha),
        beta_ns: env.pns(&beta),
        ws_a1: env.ws(&a1),
        ws_a2: env.ws(&a2),
        ws_b1: env.ws(&b1),
        ws_b2: env.ws(&b2),
        alpha,
        beta,
        a1,
        a2,
        b1,
        b2,
    };
    env.partner_ready(&w.alpha, &[&w.alice], json!({})).await;
    env.partner_ready(
        &w.beta,
        &[&w.bob],
        json!({"entitlements": {"branding": true}, "branding": {"primaryColor": "#aa0000"}}),
    )
    .await;
    for (ns, t, admins) in [
        (&w.alpha_ns, &w.a1, json!([{"email": w.dan}])),
        (&w.alpha_ns, &w.a2, json!([])),
        (&w.beta_ns, &w.b1, json!([{"email": w.erin}])),
        (&w.beta_ns, &w.b2, json!([])),
    ] {
        env.apply_json(&tenant_json(
            ns,
            t,
            json!({"displayName": format!("Company {t}"), "admins": admins, "profiles": {"wifi": {"ssid": t}}}),
        ))
        .await;
    }
    for (ns, name, email) in [
        (&w.alpha_ns, "invite-carol", &w.carol),
        (&w.beta_ns, "invite-frank", &w.frank),
        (&w.beta_ns, "invite-gina", &w.gina),
    ] {
        env.apply_json(&invite_json(ns, name, email)).await;
    }
    accept(env, port, &w.alpha_ns, "invite-carol").await;
    accept(env, port, &w.beta_ns, "invite-frank").await;
    // gina's stays Sent: its link is in Secret invite-gina-link in beta's namespace.
    invite_link(env, &w.beta_ns, "invite-gina").await;
    for (ns, t) in [
        (&w.alpha_ns, &w.a1),
        (&w.alpha_ns, &w.a2),
        (&w.beta_ns, &w.b1),
        (&w.beta_ns, &w.b2),
    ] {
        env.wait_ready("Tenant", Some(ns), t).await;
    }
    // The accepted invitees are effective admins (Partner status and the workspaces' bindings).
    for (p, who, ws) in [
        (&w.alpha, &w.carol, &w.ws_a2),
        (&w.beta, &w.frank, &w.ws_b2),
    ] {
        env.eventually(15, &format!("{who} to be an admin of {p}"), || async {
            let partner = env.partner(p).await?;
            let admins = partner["status"]["admins"].as_array()?;
            let rb = env.role_binding(ws, "partnerkit-partner-admins").await?;
            (admins.iter().any(|a| a == who.as_str()) && support::subjects(&rb).contains(who))
                .then_some(())
        })
        .await;
    }
    // What users keep in beta's (and alpha's) namespaces: a Secret, a ConfigMap, a
    // ServiceAccount, a Role and its RoleBinding, a Lease.
    for ns in [&w.beta_ns, &w.ws_b1, &w.ws_b2, &w.alpha_ns, &w.ws_a2] {
        for o in [
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "private-secret", "namespace": ns},
                "stringData": {"password": "hunter2"}}),
            support::config_map_json(ns, "private-notes", json!({"note": "confidential"})),
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "private-sa", "namespace": ns}}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "private-role", "namespace": ns},
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "private-rb", "namespace": ns},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "private-role"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "someone@private.example"}]}),
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "private-lease", "namespace": ns},
                "spec": {"holderIdentity": "private"}}),
        ] {
            env.apply_json(&o).await;
        }
    }
    w
}

/// Every kind, in a namespace, worth asking about, with the names of objects of both partners.
fn namespaced_kinds(w: &World) -> Vec<Kind> {
    let tenants = ["template", &w.a1, &w.a2, &w.b1, &w.b2];
    let invites = ["invite-carol", "invite-frank", "invite-gina"];
    vec![
        kind("partnerkit.io", "tenants", "", &[], &tenants),
        kind("partnerkit.io", "tenants", "status", &[], &tenants),
        kind("partnerkit.io", "partneradmininvites", "", &[], &invites),
        kind(
            "partnerkit.io",
            "partneradmininvites",
            "status",
            &[],
            &invites,
        ),
        kind(
            "",
            "configmaps",
            "",
            &[],
            &[
                "partnerkit-branding",
                "partnerkit-bizapps",
                "partnerkit-profile-wifi",
                "private-notes",
            ],
        ),
        kind(
            "",
            "secrets",
            "",
            &[],
            &["invite-gina-link", "invite-frank-link", "private-secret"],
        ),
        kind(
            "",
            "serviceaccounts",
            "",
            &["impersonate"],
            &["default", "private-sa"],
        ),
        kind(
            "",
            "serviceaccounts",
            "token",
            &[],
            &["default", "private-sa"],
        ),
        kind("", "events", "", &[], &[]),
        kind("events.k8s.io", "events", "", &[], &[]),
        kind(
            "rbac.authorization.k8s.io",
            "rolebindings",
            "",
            &[],
            &[
                "partnerkit-partner-admins",
                "partnerkit-tenant-admins",
                "partnerkit-operator",
                "private-rb",
            ],
        ),
        kind(
            "rbac.authorization.k8s.io",
            "roles",
            "",
            &["escalate", "bind"],
            &["private-role"],
        ),
        kind("coordination.k8s.io", "leases", "", &[], &["private-lease"]),
        kind("", "pods", "", &[], &[]),
        kind("", "pods", "exec", &[], &[]),
        kind("", "services", "", &[], &[]),
        kind("", "persistentvolumeclaims", "", &[], &[]),
        kind("", "resourcequotas", "", &[], &[]),
        kind("", "limitranges", "", &[], &[]),
        kind("apps", "deployments", "", &[], &[]),
        kind("networking.k8s.io", "networkpolicies", "", &[], &[]),
    ]
}

/// Cluster-scoped kinds about partner `p` (its Partner, namespaces, ClusterRole and binding) and
/// what would hand over every partner: the CRDs, the admission policies, partnerkit's
/// ClusterRoles, PartnerAssignments, impersonation.
fn cluster_kinds(p: &str, namespaces: &[&str], admins: &[&str]) -> Vec<Kind> {
    let role = format!("partnerkit:partner:{p}");
    let mut users: Vec<&str> = admins.to_vec();
    users.extend(["admin", "kubernetes-admin", "system:admin"]);
    vec![
        kind("partnerkit.io", "partners", "", &["manage"], &[p]),
        kind("partnerkit.io", "partners", "status", &[], &[p]),
        kind(
            "partnerkit.io",
            "partnerassignments",
            "",
            &[],
            &["any-assignment"],
        ),
        kind("", "namespaces", "", &[], namespaces),
        kind("", "namespaces", "status", &[], namespaces),
        kind("", "namespaces", "finalize", &[], namespaces),
        kind(
            "rbac.authorization.k8s.io",
            "clusterroles",
            "",
            &["escalate", "bind"],
            &[
                &role,
                "partnerkit-partner-admin",
                "partnerkit-tenant-admin",
                "partnerkit-platform-admin",
                "partnerkit-invite-links",
                "cluster-admin",
                "admin",
            ],
        ),
        kind(
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            "",
            &[],
            &[&role, "cluster-admin"],
        ),
        kind(
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            "",
            &[],
            &[
                "partners.partnerkit.io",
                "tenants.partnerkit.io",
                "partneradmininvites.partnerkit.io",
                "partnerassignments.partnerkit.io",
            ],
        ),
        kind(
            "admissionregistration.k8s.io",
            "validatingadmissionpolicies",
            "",
            &[],
            &["partnerkit-partner-fields", "partnerkit-tenant-fields"],
        ),
        kind(
            "admissionregistration.k8s.io",
            "validatingadmissionpolicybindings",
            "",
            &[],
            &["partnerkit-partner-fields", "partnerkit-tenant-fields"],
        ),
        kind(
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            "",
            &[],
            &[],
        ),
        kind(
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
            "",
            &[],
            &[],
        ),
        kind("", "users", "", &["impersonate"], &users),
        kind(
            "",
            "groups",
            "",
            &["impersonate"],
            &["system:masters", "system:authenticated"],
        ),
        kind("authentication.k8s.io", "uids", "", &["impersonate"], &[]),
        kind(
            "authentication.k8s.io",
            "userextras",
            "scopes",
            &["impersonate"],
            &[],
        ),
    ]
}

/// A Namespace object is authorized with the request's namespace set to its own name: so a
/// RoleBinding inside it counts. Every verb on each, asked that way too.
fn namespace_questions(user: &str, namespaces: &[&str], verbs: &[&str]) -> Vec<Ask> {
    let ns_kind = kind("", "namespaces", "", &[], &[]);
    let mut out = Vec::new();
    for ns in namespaces {
        for verb in verbs {
            out.push(ask(user, ns, verb, &ns_kind, ns));
        }
    }
    out
}

/// Ask everything; return the answers that differ from `expect`, described.
async fn unexpected(client: &kube::Client, asks: Vec<Ask>, expect: bool) -> (usize, Vec<String>) {
    let n = asks.len();
    let wrong = decide_all(client, asks)
        .await
        .into_iter()
        .filter(|(_, ok)| *ok != expect)
        .map(|(a, _)| a.to_string())
        .collect();
    (n, wrong)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_partner_admin_or_tenant_admin_reaches_anything_of_another_partner() {
    let (env, port) = start().await;
    let w = two_partners(&env, port).await;
    let t0 = std::time::Instant::now();
    let ns_kinds = namespaced_kinds(&w);

    // alpha's partner admins (spec.admins and an accepted invite) against everything of beta:
    // its namespace, its workspaces, cluster-wide, its Partner, its RBAC, and what would hand
    // over every partner at once.
    let beta_namespaces = [w.beta_ns.as_str(), &w.ws_b1, &w.ws_b2];
    let beta_cluster = cluster_kinds(
        &w.beta,
        &beta_namespaces,
        &[&w.bob, &w.frank, &w.gina, &w.erin],
    );
    let mut denied: Vec<Ask> = Vec::new();
    for who in [&w.alice, &w.carol] {
        for ns in beta_namespaces.iter().chain(&[""]) {
            denied.extend(every_question(who, ns, &ns_kinds));
        }
        denied.extend(every_question(who, "", &beta_cluster));
        let mut verbs = VERBS.to_vec();
        verbs.push("impersonate");
        denied.extend(namespace_questions(who, &beta_namespaces, &verbs));
    }

    // A tenant admin of alpha's a1 against alpha's partner namespace, alpha's other workspace,
    // alpha's Partner and RBAC, and beta's everything.
    let alpha_others = [w.alpha_ns.as_str(), &w.ws_a2];
    let alpha_cluster = cluster_kinds(
        &w.alpha,
        &alpha_others,
        &[&w.alice, &w.carol, &w.bob, &w.erin],
    );
    for ns in alpha_others
        .iter()
        .chain(beta_namespaces.iter())
        .chain(&[""])
    {
        denied.extend(every_question(&w.dan, ns, &ns_kinds));
    }
    denied.extend(every_question(&w.dan, "", &alpha_cluster));
    denied.extend(every_question(&w.dan, "", &beta_cluster));
    denied.extend(namespace_questions(
        &w.dan,
        &[&w.alpha_ns, &w.ws_a2, &w.beta_ns, &w.ws_b1, &w.ws_b2],
        &VERBS,
    ));

    // Within their own reach, what the design does not give either: a partner admin changes
    // only spec.branding of its Partner (and never holds "manage"), writes no status, no
    // Secret, ConfigMap or RBAC in its partner namespace, relabels or deletes no namespace,
    // moves no company; a tenant admin does not relabel or delete its workspace namespace.
    let k = |group, resource, sub| kind(group, resource, sub, &[], &[]);
    for who in [&w.alice, &w.carol] {
        let own = |verb: &str, ns: &str, kd: &Kind, name: &str| ask(who, ns, verb, kd, name);
        for verb in ["manage", "update", "delete", "create"] {
            denied.push(own(verb, "", &k("partnerkit.io", "partners", ""), &w.alpha));
        }
        for verb in ["update", "patch"] {
            denied.push(own(
                verb,
                "",
                &k("partnerkit.io", "partners", "status"),
                &w.alpha,
            ));
            denied.push(own(
                verb,
                &w.alpha_ns,
                &k("partnerkit.io", "tenants", "status"),
                &w.a1,
            ));
            denied.push(own(
                verb,
                &w.alpha_ns,
                &k("partnerkit.io", "partneradmininvites", "status"),
                "invite-carol",
            ));
        }
        for verb in ["create", "update", "patch", "delete"] {
            for (group, resource, name) in [
                ("", "secrets", "invite-carol-link"),
                ("", "configmaps", "partnerkit-branding"),
                ("", "serviceaccounts", "default"),
                (
                    "rbac.authorization.k8s.io",
                    "rolebindings",
                    "partnerkit-partner-admins",
                ),
                ("rbac.authorization.k8s.io", "roles", "private-role"),
            ] {
                denied.push(own(verb, &w.alpha_ns, &k(group, resource, ""), name));
            }
            denied.push(own(
                verb,
                "",
                &k("rbac.authorization.k8s.io", "clusterroles", ""),
                &format!("partnerkit:partner:{}", w.alpha),
            ));
            denied.push(own(
                verb,
                "",
                &k("rbac.authorization.k8s.io", "clusterrolebindings", ""),
                &format!("partnerkit:partner:{}", w.alpha),
            ));
            denied.push(own(
                verb,
                "",
                &k("partnerkit.io", "partnerassignments", ""),
                "",
            ));
        }
        for verb in ["escalate", "bind"] {
            denied.push(own(
                verb,
                "",
                &k("rbac.authorization.k8s.io", "clusterroles", ""),
                &format!("partnerkit:partner:{}", w.alpha),
            ));
        }
        denied.push(own("impersonate", "", &k("", "users", ""), &w.dan));
        denied.extend(namespace_questions(
            who,
            &[&w.alpha_ns, &w.ws_a1],
            &["update", "patch", "delete"],
        ));
        for verb in ["update", "patch", "delete", "list"] {
            denied.push(own(verb, "", &k("", "namespaces", ""), &w.ws_a1));
        }
    }
    denied.extend(namespace_questions(
        &w.dan,
        &[&w.ws_a1],
        &["update", "patch", "delete"],
    ));
    for verb in ["create", "update", "delete"] {
        denied.push(ask(
            &w.dan,
            &w.ws_a1,
            verb,
            &k("", "resourcequotas", ""),
            "",
        ));
    }

    // What the design grants, so that denying everything cannot pass.
    let mut granted: Vec<Ask> = Vec::new();
    for who in [&w.alice, &w.carol] {
        let g = |verb: &str, ns: &str, kd: Kind, name: &str| ask(who, ns, verb, &kd, name);
        for verb in ["create", "list", "watch", "deletecollection"] {
            granted.push(g(verb, &w.alpha_ns, k("partnerkit.io", "tenants", ""), ""));
        }
        for verb in ["get", "update", "patch", "delete"] {
            granted.push(g(
                verb,
                &w.alpha_ns,
                k("partnerkit.io", "tenants", ""),
                &w.a1,
            ));
            granted.push(g(
                verb,
                &w.alpha_ns,
                k("partnerkit.io", "tenants", ""),
                "template",
            ));
        }
        granted.push(g(
            "create",
            &w.alpha_ns,
            k("partnerkit.io", "partneradmininvites", ""),
            "",
        ));
        granted.push(g(
            "delete",
            &w.alpha_ns,
            k("partnerkit.io", "partneradmininvites", ""),
            "invite-carol",
        ));
        for verb in ["get", "watch", "patch"] {
            granted.push(g(verb, "", k("partnerkit.io", "partners", ""), &w.alpha));
        }
        granted.push(g("get", "", k("", "namespaces", ""), &w.alpha_ns));
        // A workspace is readable through the partner admins' RoleBinding in it: the API server
        // authorizes `GET /api/v1/namespaces/<ws>` with the request's namespace set to <ws>.
        granted.push(g("get", &w.ws_a1, k("", "namespaces", ""), &w.ws_a1));
        granted.push(g("get", &w.ws_a2, k("", "namespaces", ""), &w.ws_a2));
        granted.push(g("list", &w.alpha_ns, k("", "secrets", ""), ""));
        granted.push(g(
            "get",
            &w.alpha_ns,
            k("", "configmaps", ""),
            "private-notes",
        ));
        for ws in [&w.ws_a1, &w.ws_a2] {
            granted.push(g("create", ws, k("", "configmaps", ""), ""));
            granted.push(g("get", ws, k("", "secrets", ""), "private-secret"));
            granted.push(g(
                "create",
                ws,
                k("rbac.authorization.k8s.io", "rolebindings", ""),
                "",
            ));
            granted.push(g("create", ws, k("apps", "deployments", ""), ""));
        }
    }
    for verb in ["get", "list", "create", "update", "delete"] {
        granted.push(ask(&w.dan, &w.ws_a1, verb, &k("", "configmaps", ""), ""));
        granted.push(ask(&w.dan, &w.ws_a1, verb, &k("", "secrets", ""), ""));
    }
    granted.push(ask(
        &w.dan,
        &w.ws_a1,
        "create",
        &k("rbac.authorization.k8s.io", "rolebindings", ""),
        "",
    ));
    granted.push(ask(
        &w.dan,
        &w.ws_a1,
        "get",
        &k("", "namespaces", ""),
        &w.ws_a1,
    ));
    // beta's own people do reach beta (the invitee included), so the questions above are
    // asked of a world where the rights exist.
    for who in [&w.bob, &w.frank] {
        granted.push(ask(
            who,
            &w.beta_ns,
            "create",
            &k("partnerkit.io", "tenants", ""),
            "",
        ));
        granted.push(ask(
            who,
            "",
            "get",
            &k("partnerkit.io", "partners", ""),
            &w.beta,
        ));
        granted.push(ask(
            who,
            &w.ws_b1,
            "get",
            &k("", "secrets", ""),
            "private-secret",
        ));
    }
    granted.push(ask(
        &w.erin,
        &w.ws_b1,
        "get",
        &k("", "secrets", ""),
        "private-secret",
    ));

    let (n_denied, holes) = unexpected(&env.client, denied, false).await;
    let (n_granted, missing) = unexpected(&env.client, granted, true).await;
    eprintln!(
        "{n_denied} SubjectAccessReviews that must be denied, {n_granted} that must be allowed, in {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    assert!(
        holes.is_empty(),
        "{} of {n_denied} requests the design forbids are allowed by the API server:\n{}",
        holes.len(),
        holes.join("\n")
    );
    assert!(
        missing.is_empty(),
        "{} of {n_granted} requests the design grants are denied:\n{}",
        missing.len(),
        missing.join("\n")
    );

    // Real requests, as the people make them: Forbidden, and nothing changes.
    let watched: Vec<(&str, &str, Option<&str>, String)> = vec![
        ("v1", "Secret", Some(&w.beta_ns), "invite-gina-link".into()),
        ("v1", "Secret", Some(&w.beta_ns), "private-secret".into()),
        ("v1", "Secret", Some(&w.ws_b1), "private-secret".into()),
        (
            "v1",
            "ConfigMap",
            Some(&w.beta_ns),
            "partnerkit-branding".into(),
        ),
        ("v1", "ConfigMap", Some(&w.ws_b1), "private-notes".into()),
        (
            "v1",
            "ConfigMap",
            Some(&w.ws_b1),
            "partnerkit-profile-wifi".into(),
        ),
        (API, "Tenant", Some(&w.beta_ns), w.b1.clone()),
        (API, "Tenant", Some(&w.beta_ns), w.b2.clone()),
        (API, "Tenant", Some(&w.beta_ns), "template".into()),
        (
            API,
            "PartnerAdminInvite",
            Some(&w.beta_ns),
            "invite-frank".into(),
        ),
        (API, "Partner", None, w.beta.clone()),
        ("v1", "Namespace", None, w.ws_b1.clone()),
        (
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            None,
            format!("partnerkit:partner:{}", w.beta),
        ),
        (
            "v1",
            "ConfigMap",
            Some(&w.alpha_ns),
            "partnerkit-branding".into(),
        ),
        ("v1", "Secret", Some(&w.ws_a2), "private-secret".into()),
    ];
    let versions = |objs: Vec<Option<Value>>| -> Vec<String> {
        objs.iter()
            .map(|o| {
                let o = o.as_ref().expect("the object exists");
                o["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    };
    let mut before = Vec::new();
    for (v, kd, ns, name) in &watched {
        before.push(env.get(v, kd, *ns, name).await);
    }
    let before = versions(before);

    let (alice, carol, dan) = (&w.alice, &w.carol, &w.dan);
    let beta_tenant = tenant_json(
        &w.beta_ns,
        &env.n("sneaky"),
        json!({"displayName": "Sneaky"}),
    );
    let cm = |ns: &str| support::config_map_json(ns, "sneaky", json!({"k": "v"})).to_string();
    let a = |args: &[&str]| -> Vec<String> { args.iter().map(|s| s.to_string()).collect() };
    let attempts: Vec<(&str, Vec<String>, Option<String>)> = vec![
        (
            alice,
            a(&["get", "secret", "invite-gina-link", "-n", &w.beta_ns]),
            None,
        ),
        (alice, a(&["get", "secrets", "-n", &w.beta_ns]), None),
        (
            alice,
            a(&[
                "get",
                "secret",
                "private-secret",
                "-n",
                &w.ws_b1,
                "-o",
                "yaml",
            ]),
            None,
        ),
        (alice, a(&["get", "configmaps", "-A"]), None),
        (
            alice,
            a(&[
                "delete",
                "configmap",
                "partnerkit-branding",
                "-n",
                &w.beta_ns,
            ]),
            None,
        ),
        (
            alice,
            a(&["delete", "configmap", "private-notes", "-n", &w.ws_b1]),
            None,
        ),
        (alice, a(&["create", "-f", "-"]), Some(cm(&w.ws_b1))),
        (
            alice,
            a(&["create", "-f", "-"]),
            Some(beta_tenant.to_string()),
        ),
        (
            alice,
            a(&["delete", "tenant", &w.b1, "-n", &w.beta_ns, "--wait=false"]),
            None,
        ),
        (
            alice,
            a(&[
                "patch",
                "tenant",
                "template",
                "-n",
                &w.beta_ns,
                "--type",
                "merge",
                "-p",
                r#"{"spec":{"profiles":{"wifi":{"ssid":"pwned"}}}}"#,
            ]),
            None,
        ),
        (
            alice,
            a(&["get", "partneradmininvites", "-n", &w.beta_ns]),
            None,
        ),
        (
            alice,
            a(&["delete", "namespace", &w.ws_b1, "--wait=false"]),
            None,
        ),
        (
            alice,
            a(&[
                "label",
                "namespace",
                &w.ws_b1,
                "partnerkit.io/partner=x",
                "--overwrite",
            ]),
            None,
        ),
        (
            alice,
            a(&[
                "delete",
                "clusterrolebinding",
                &format!("partnerkit:partner:{}", w.beta),
            ]),
            None,
        ),
        (
            alice,
            a(&[
                "patch",
                "partner",
                &w.beta,
                "--type",
                "merge",
                "-p",
                r##"{"spec":{"branding":{"primaryColor":"#000000"}}}"##,
            ]),
            None,
        ),
        (
            carol,
            a(&["delete", "tenant", &w.b2, "-n", &w.beta_ns, "--wait=false"]),
            None,
        ),
        (
            carol,
            a(&["get", "secret", "private-secret", "-n", &w.ws_b1]),
            None,
        ),
        (dan, a(&["get", "tenants", "-n", &w.alpha_ns]), None),
        (
            dan,
            a(&["get", "configmap", "partnerkit-branding", "-n", &w.alpha_ns]),
            None,
        ),
        (
            dan,
            a(&["get", "secret", "private-secret", "-n", &w.ws_a2]),
            None,
        ),
        (dan, a(&["create", "-f", "-"]), Some(cm(&w.ws_a2))),
        (
            dan,
            a(&["get", "secret", "private-secret", "-n", &w.ws_b1]),
            None,
        ),
        (dan, a(&["get", "partner", &w.alpha]), None),
    ];
    let n_real = attempts.len();
    for (who, args, stdin) in attempts {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = match &stdin {
            Some(m) => env.create_as(Some(who), m).await,
            None => env.kubectl_as(who, &args).await,
        };
        forbidden(&o, &format!("{who}: kubectl {}", args.join(" ")));
    }
    let mut after = Vec::new();
    for (v, kd, ns, name) in &watched {
        after.push(env.get(v, kd, *ns, name).await);
    }
    assert_eq!(versions(after), before, "an object changed");
    assert!(env.tenant(&w.beta_ns, &env.n("sneaky")).await.is_none());
    assert!(env.config_map(&w.ws_b1, "sneaky").await.is_none());
    assert!(env.config_map(&w.ws_a2, "sneaky").await.is_none());
    assert_eq!(
        env.config_map(&w.ws_b1, "partnerkit-profile-wifi")
            .await
            .unwrap()["data"]["ssid"],
        w.b1.as_str()
    );

    // And the allowed ones, for real: alpha's admins manage alpha's tenants and read their
    // workspaces; the tenant admin reads its own.
    let a3 = env.n("a3");
    allowed(
        &env.apply_as(
            alice,
            &tenant_json(&w.alpha_ns, &a3, json!({"displayName": "A3"})).to_string(),
        )
        .await,
        "alice creates a tenant in her partner",
    );
    env.wait_ready("Tenant", Some(&w.alpha_ns), &a3).await;
    allowed(
        &env.kubectl_as(
            carol,
            &["delete", "tenant", &a3, "-n", &w.alpha_ns, "--wait=false"],
        )
        .await,
        "carol (an accepted invite) deletes a tenant of her partner",
    );
    allowed(
        &env.kubectl_as(
            carol,
            &["get", "configmap", "partnerkit-bizapps", "-n", &w.ws_a1],
        )
        .await,
        "carol reads a workspace of her partner",
    );
    allowed(
        &env.kubectl_as(dan, &["get", "configmaps", "-n", &w.ws_a1])
            .await,
        "dan reads his workspace",
    );
    allowed(
        &env.kubectl_as(dan, &["get", "namespace", &w.ws_a1]).await,
        "dan reads his workspace namespace",
    );

    // What RBAC lets alpha's admins do (create a Tenant in their own namespace) cannot reach
    // beta either: a Tenant named like beta's company gets NameConflict and nothing, and beta's
    // workspace stays beta's.
    allowed(
        &env.apply_as(
            alice,
            &tenant_json(&w.alpha_ns, &w.b1, json!({"displayName": "Taken"})).to_string(),
        )
        .await,
        "alice creates a tenant named like beta's",
    );
    let refused = env
        .wait_reason("Tenant", Some(&w.alpha_ns), &w.b1, "NameConflict")
        .await;
    assert!(refused["status"]["workspace"].is_null());
    let ws = env.namespace(&w.ws_b1).await.unwrap();
    assert_eq!(
        support::labels_of(&ws)
            .get("partnerkit.io/partner")
            .map(String::as_str),
        Some(w.beta.as_str())
    );
    assert_eq!(
        support::subjects(
            &env.role_binding(&w.ws_b1, "partnerkit-partner-admins")
                .await
                .unwrap()
        ),
        {
            let mut v = vec![w.bob.clone(), w.frank.clone()];
            v.sort();
            v
        }
    );
    eprintln!(
        "plus {n_real} real requests refused; whole test body {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    env.kubectl_ok(&["delete", "tenant", &w.b1, "-n", &w.alpha_ns, "--wait=false"])
        .await;
    env.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Hostile input
// ---------------------------------------------------------------------------------------------

/// `env.n(base…)` padded with `x` to exactly `len` characters.
fn sized(env: &Env, base: &str, len: usize) -> String {
    let fixed = env.n(base).len();
    assert!(len >= fixed, "{base}: {len} < {fixed}");
    env.n(&format!("{base}{}", "x".repeat(len - fixed)))
}

/// The same for names that may be DNS subdomains (a PartnerAdminInvite's): dots every 50
/// characters. (kube-sim refuses a subdomain with a label over 63 characters; Kubernetes checks
/// only the 253 in all — IsDNS1123Subdomain — so a 200-character single-label name passes there.)
fn sized_dotted(env: &Env, base: &str, len: usize) -> String {
    let fixed = env.n(base).len();
    assert!(len > fixed, "{base}: {len} <= {fixed}");
    let mut pad: Vec<char> = (0..len - fixed)
        .map(|i| if i % 50 == 0 { '.' } else { 'x' })
        .collect();
    if pad.last() == Some(&'.') {
        *pad.last_mut().unwrap() = 'x';
    }
    env.n(&format!("{base}{}", pad.into_iter().collect::<String>()))
}

/// An e-mail address of exactly `len` characters that matches the schema's pattern.
fn email_of_len(len: usize) -> String {
    let domain = "@limits.example";
    format!("{}{domain}", "a".repeat(len - domain.len()))
}

/// Whether `kubectl create` of `manifest` is refused with `field` and `text` in the error; and
/// then nothing of that name is stored.
async fn refused(env: &Env, manifest: &Value, field: &str, text: &str) {
    let m = manifest.to_string();
    let o = env.create_as(None, &m).await;
    assert!(!o.ok(), "accepted: {}", cut(&m, 300));
    assert!(
        o.stderr.contains(field) && o.stderr.contains(text),
        "expected {field:?} / {text:?} in:\n{}\nfor {}",
        cut(&o.stderr, 2000),
        cut(&m, 300)
    );
    let name = manifest["metadata"]["name"].as_str().unwrap_or_default();
    if !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    {
        assert!(
            env.get(
                manifest["apiVersion"].as_str().unwrap(),
                manifest["kind"].as_str().unwrap(),
                manifest["metadata"]["namespace"].as_str(),
                name,
            )
            .await
            .is_none(),
            "{name} was stored"
        );
    }
}

fn admins(emails: &[String]) -> Value {
    Value::Array(emails.iter().map(|e| json!({"email": e})).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_length_limit_holds_exactly_and_one_more_is_refused_with_the_field_named() {
    let (env, _port) = start().await;

    // Partner: a 50-character name, 100 admins, a display name of the longest length whose
    // template name ("<displayName> (Template)") still fits a Tenant's displayName — in
    // two-byte characters: limits count characters, not bytes.
    let p = sized(&env, "limits", 50);
    let emails: Vec<String> = (0..100)
        .map(|i| format!("admin{i}@limits.example"))
        .collect();
    let display = "Ω".repeat(MAX_PARTNER_DISPLAY);
    env.apply_json(
        &json!({"apiVersion": API, "kind": "Partner", "metadata": {"name": p},
        "spec": {"displayName": display, "admins": admins(&emails)}}),
    )
    .await;
    env.wait_ready("Partner", None, &p).await;
    let ns = env.pns(&p);
    assert_eq!(ns.len(), 58);
    let template = env
        .eventually(10, "the template tenant", || async {
            env.tenant(&ns, "template").await
        })
        .await;
    assert_eq!(
        template["spec"]["displayName"],
        format!("{display} (Template)")
    );
    env.wait_ready("Tenant", Some(&ns), "template").await;
    let rb = env
        .role_binding(&ns, "partnerkit-partner-admins")
        .await
        .unwrap();
    assert_eq!(support::subjects(&rb).len(), 100);
    let crb = env
        .cluster_role_binding(&format!("partnerkit:partner:{p}"))
        .await
        .unwrap();
    assert_eq!(support::subjects(&crb).len(), 100);

    let ok_admin = ["x@limits.example"];
    let name_rule = "must be a DNS label of at most 50 characters";
    refused(
        &env,
        &partner_json(&sized(&env, "limits", 51), "L", &ok_admin, json!({})),
        "metadata.name",
        name_rule,
    )
    .await;
    refused(
        &env,
        &partner_json(&env.n("dotted.name"), "L", &ok_admin, json!({})),
        "metadata.name",
        name_rule,
    )
    .await;
    refused(
        &env,
        &partner_json(&env.n("ünïcode"), "L", &ok_admin, json!({})),
        "metadata.name",
        "",
    )
    .await;
    let many: Vec<String> = (0..101).map(|i| format!("a{i}@limits.example")).collect();
    refused(
        &env,
        &json!({"apiVersion": API, "kind": "Partner", "metadata": {"name": env.n("many")},
            "spec": {"displayName": "L", "admins": admins(&many)}}),
        "spec.admins",
        "Too many: 101",
    )
    .await;
    let thousands: Vec<String> = (0..5000)
        .map(|i| format!("admin{i}@thousands.example"))
        .collect();
    refused(
        &env,
        &json!({"apiVersion": API, "kind": "Partner", "metadata": {"name": env.n("many")},
            "spec": {"displayName": "L", "admins": admins(&thousands)}}),
        "spec.admins",
        "Too many: 5000",
    )
    .await;
    refused(
        &env,
        &partner_json(
            &env.n("long"),
            &"Ω".repeat(MAX_PARTNER_DISPLAY + 1),
            &ok_admin,
            json!({}),
        ),
        "spec.displayName",
        "Too long",
    )
    .await;
    refused(
        &env,
        &partner_json(&env.n("long"), "", &ok_admin, json!({})),
        "spec.displayName",
        "",
    )
    .await;
    refused(
        &env,
        &partner_json(&env.n("long"), "L", &[&email_of_len(255)], json!({})),
        "spec.admins[0].email",
        "Too long",
    )
    .await;

    // Tenant: a 50-character name, 100 admins (one with a 254-character e-mail), a
    // 256-character display name, a 40-character profile name with a 253-character key.
    let t = sized(&env, "company", 50);
    let mut emails: Vec<String> = (0..99).map(|i| format!("user{i}@limits.example")).collect();
    emails.push(email_of_len(254));
    let profile = "p".repeat(40);
    let key = "k".repeat(253);
    env.tenant_ready(
        &ns,
        &t,
        json!({"displayName": "é".repeat(256), "admins": admins(&emails),
            "profiles": {profile.clone(): {key.clone(): "v"}}}),
    )
    .await;
    let ws = env.ws(&t);
    assert_eq!(ws.len(), 57);
    assert!(env.namespace(&ws).await.is_some());
    let rb = env
        .role_binding(&ws, "partnerkit-tenant-admins")
        .await
        .unwrap();
    assert_eq!(support::subjects(&rb).len(), 100);
    assert!(support::subjects(&rb).contains(&email_of_len(254)));
    let cm = env
        .config_map(&ws, &format!("partnerkit-profile-{profile}"))
        .await
        .expect("the 40-character profile's ConfigMap");
    assert_eq!(cm["data"][&key], "v");

    let tenant = |name: &str, spec: Value| tenant_json(&ns, name, spec);
    refused(
        &env,
        &tenant(&sized(&env, "company", 51), json!({"displayName": "T"})),
        "metadata.name",
        name_rule,
    )
    .await;
    refused(
        &env,
        &tenant(&env.n("café"), json!({"displayName": "T"})),
        "metadata.name",
        "",
    )
    .await;
    let many: Vec<String> = (0..101).map(|i| format!("u{i}@limits.example")).collect();
    refused(
        &env,
        &tenant(
            &env.n("t"),
            json!({"displayName": "T", "admins": admins(&many)}),
        ),
        "spec.admins",
        "Too many: 101",
    )
    .await;
    refused(
        &env,
        &tenant(&env.n("t"), json!({"displayName": "é".repeat(257)})),
        "spec.displayName",
        "Too long",
    )
    .await;
    refused(
        &env,
        &tenant(
            &env.n("t"),
            json!({"displayName": "T", "admins": [{"email": email_of_len(255)}]}),
        ),
        "spec.admins[0].email",
        "Too long",
    )
    .await;
    refused(
        &env,
        &tenant(
            &env.n("t"),
            json!({"displayName": "T", "profiles": {"p".repeat(41): {"k": "v"}}}),
        ),
        "spec.profiles",
        "at most 40 characters",
    )
    .await;
    refused(
        &env,
        &tenant(
            &env.n("t"),
            json!({"displayName": "T", "profiles": {"wifi": {"k".repeat(254): "v"}}}),
        ),
        "spec.profiles",
        "keys must be ConfigMap keys",
    )
    .await;

    // PartnerAdminInvite: the schema allows 200 characters, 201 is refused; a name of 63
    // characters is delivered, its link Secret written (64 to 200: see
    // an_invite_name_the_schema_accepts_is_delivered). The e-mail and ttl bounds.
    let i63 = sized_dotted(&env, "invite", 63);
    env.apply_json(&invite_json(&ns, &i63, &email_of_len(254)))
        .await;
    let link = invite_link(&env, &ns, &i63).await;
    assert!(link.contains(&i63), "{link}");
    refused(
        &env,
        &invite_json(&ns, &sized_dotted(&env, "invite", 201), "x@limits.example"),
        "metadata.name",
        "at most 200 characters",
    )
    .await;
    refused(
        &env,
        &invite_json(&ns, &env.n("i"), &email_of_len(255)),
        "spec.email",
        "Too long",
    )
    .await;
    let mut long_ttl = invite_json(&ns, &env.n("i"), "x@limits.example");
    long_ttl["spec"]["ttl"] = json!("8785h");
    refused(&env, &long_ttl, "spec.ttl", "at most 8784h").await;
    env.finish().await;
}

/// The longest Partner display name: its template is "<displayName> (Template)", within a
/// Tenant's 256 characters.
const MAX_PARTNER_DISPLAY: usize = 256 - " (Template)".len();

/// The schema accepts PartnerAdminInvite names of up to 200 characters, but one of more than 63
/// never leaves Pending/Sending without SMTP: the operator labels its link Secret
/// `partnerkit.io/invite=<invite name>`, a label value (at most 63 characters), so the Secret's
/// apply is refused (422) on every retry. Dotted so that kube-sim takes the name (it refuses a
/// subdomain with a label over 63 characters; Kubernetes does not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_name_the_schema_accepts_is_delivered() {
    let (env, _port) = start().await;
    let p = env.n("inv");
    let ns = env
        .partner_ready(&p, &[&env.email("owner", &p)], json!({}))
        .await;
    let mut undelivered = Vec::new();
    for len in [64, 200] {
        let name = sized_dotted(&env, "invite", len);
        env.apply_json(&invite_json(&ns, &name, "x@limits.example"))
            .await;
        let delivered = async {
            for _ in 0..100 {
                let o = env.get(API, "PartnerAdminInvite", Some(&ns), &name).await?;
                if o["status"]["phase"] == "Sent" {
                    return Some(());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            None
        };
        if delivered.await.is_none() {
            let o = env.get(API, "PartnerAdminInvite", Some(&ns), &name).await;
            undelivered.push(format!(
                "a {len}-character invite name: not Sent after 10s; status: {}",
                cut(&o.map(|o| o["status"].to_string()).unwrap_or_default(), 300)
            ));
        }
    }
    env.finish().await;
    assert!(undelivered.is_empty(), "{}", undelivered.join("\n"));
}

/// Text people may type, paste or forge: markup, quotes, line breaks, NUL and other control
/// characters, terminal escapes, bidirectional overrides, zero-width characters, emoji, other
/// scripts and combining marks, template and shell syntax, YAML.
const HOSTILE: [&str; 9] = [
    "<script>alert(1)</script>",
    "\"q\" 's' `b` &amp;",
    "one\ntwo\r\n3",
    "\u{0}\u{7}\u{1b}[31mred\u{1b}[0m\t",
    "\u{202e}rtl\u{200b}\u{feff}",
    "🦀 日本語 Ελλάς عربى e\u{301}",
    "{{ .Values.x }} ${jndi:ldap://x/a} $(rm -rf /)",
    "---\nkind: Secret",
    "k: v # c",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_is_kept_verbatim_materialized_safely_and_escaped_on_pages() {
    let (env, port) = start().await;
    let display: String = HOSTILE.join(" | ");
    assert!(display.chars().count() <= MAX_PARTNER_DISPLAY);
    let h = env.n("hostile");
    let owner = env.email("owner", &h);
    // A licensing partner whose admin set a logo URL that tries to break out of an attribute.
    let logo = "https://x.example/l.png\"><script>alert(2)</script>";
    env.apply_json(&partner_json(
        &h,
        &display,
        &[&owner],
        json!({"entitlements": {"branding": true}, "branding": {"logoUrl": logo, "primaryColor": "#123456"}}),
    ))
    .await;
    env.wait_ready("Partner", None, &h).await;
    let ns = env.pns(&h);
    let p = env.partner(&h).await.unwrap();
    assert_eq!(p["spec"]["displayName"], display.as_str());

    // Verbatim in the partner's page and its template; ConfigMap keys are partnerkit's own.
    let page_keys =
        |cm: &Value| -> Vec<String> { cm["data"].as_object().unwrap().keys().cloned().collect() };
    let branding = env.config_map(&ns, "partnerkit-branding").await.unwrap();
    assert_eq!(branding["data"]["partnerDisplayName"], display.as_str());
    assert_eq!(branding["data"]["logoUrl"], logo);
    assert_eq!(
        page_keys(&branding),
        [
            "logoUrl",
            "partner",
            "partnerDisplayName",
            "primaryColor",
            "supportUrl"
        ]
    );
    let template = env
        .eventually(10, "the template tenant", || async {
            env.tenant(&ns, "template").await
        })
        .await;
    assert_eq!(
        template["spec"]["displayName"],
        format!("{display} (Template)")
    );

    // A tenant: hostile display name, profile values, and a profile holding YAML.
    let t = env.n("victim");
    let notes: BTreeMap<String, String> = HOSTILE
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("k{i}"), v.to_string()))
        .collect();
    let yaml = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: stolen\n---\n\u{0}";
    let tenant = env
        .tenant_ready(
            &ns,
            &t,
            json!({"displayName": display, "profiles": {"notes": notes, "files": {"config.yaml": yaml, ".hidden": "<b>x</b>"}},
                "admins": [{"email": "first.last+tag@hostile.example"}]}),
        )
        .await;
    assert_eq!(tenant["spec"]["displayName"], display.as_str());
    let ws = env.ws(&t);
    let cm = env
        .config_map(&ws, "partnerkit-profile-notes")
        .await
        .unwrap();
    assert_eq!(cm["data"], json!(notes));
    let files = env
        .config_map(&ws, "partnerkit-profile-files")
        .await
        .unwrap();
    assert_eq!(
        files["data"],
        json!({"config.yaml": yaml, ".hidden": "<b>x</b>"})
    );
    let effective = tenant["status"]["effectiveProfiles"].as_array().unwrap();
    let notes_status = effective.iter().find(|p| p["name"] == "notes").unwrap();
    assert_eq!(notes_status["data"], json!(notes));
    let ws_branding = env.config_map(&ws, "partnerkit-branding").await.unwrap();
    assert_eq!(ws_branding["data"]["partnerDisplayName"], display.as_str());
    assert_eq!(ws_branding["data"]["logoUrl"], logo);
    assert_eq!(page_keys(&ws_branding), page_keys(&branding));
    // Nothing else appeared: the YAML in a value is a value.
    assert!(env.get("v1", "Secret", Some(&ws), "stolen").await.is_none());
    // kubectl's tables and JSON still read it.
    env.kubectl_ok(&["get", "tenants", "-n", &ns]).await;
    env.kubectl_ok(&["get", "partner", &h]).await;
    let out = env
        .kubectl_ok(&["get", "tenant", &t, "-n", &ns, "-o", "json"])
        .await;
    let parsed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(parsed["spec"]["displayName"], display.as_str());

    // The acceptance page (what an invitee sees): the display name and the logo URL escaped.
    env.apply_json(&invite_json(&ns, "invite-x", "x@hostile.example"))
        .await;
    let link = invite_link(&env, &ns, "invite-x").await;
    assert!(link.starts_with(&format!("http://127.0.0.1:{port}/")));
    let r = http::get(&link).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        !r.body.contains("<script>"),
        "raw markup on the page:\n{}",
        r.body
    );
    assert!(r.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(r.body.contains("&quot;&gt;&lt;script&gt;alert(2)"));
    assert!(r.header("content-security-policy").is_some());

    // What cannot be kept safely is refused at apply time, with the field named.
    let spec = |extra: Value| {
        let mut s = json!({"displayName": "T"});
        s.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        s
    };
    for (name, extra, field, text) in [
        ("<script>", json!({}), "metadata.name", ""),
        ("café", json!({}), "metadata.name", ""),
        (
            "t",
            json!({"admins": [{"email": "a@b.example\r\nBcc: all@evil.example"}]}),
            "spec.admins[0].email",
            "should match",
        ),
        (
            "t",
            json!({"admins": [{"email": "<script>@x.example"}]}),
            "spec.admins[0].email",
            "should match",
        ),
        ("t", json!({"displayName": ""}), "spec.displayName", ""),
        (
            "t",
            json!({"profiles": {"wifi<script>": {"k": "v"}}}),
            "spec.profiles",
            "profile names must be DNS labels",
        ),
        (
            "t",
            json!({"profiles": {"wifi-é": {"k": "v"}}}),
            "spec.profiles",
            "profile names must be DNS labels",
        ),
        (
            "t",
            json!({"profiles": {"wifi": {"k<script>": "v"}}}),
            "spec.profiles",
            "keys must be ConfigMap keys",
        ),
        (
            "t",
            json!({"profiles": {"wifi": {"schlüssel": "v"}}}),
            "spec.profiles",
            "keys must be ConfigMap keys",
        ),
        (
            "t",
            json!({"profiles": {"wifi": {"a\nb": "v"}}}),
            "spec.profiles",
            "keys must be ConfigMap keys",
        ),
        (
            "t",
            json!({"bizApps": {"<script>": true}}),
            "spec.bizApps",
            "BizApp names must be DNS labels",
        ),
        (
            "t",
            json!({"deletionPolicy": "Delete\n"}),
            "spec.deletionPolicy",
            "Unsupported value",
        ),
    ] {
        let n = if name == "t" {
            env.n("t")
        } else {
            format!("{name}-{}", env.sfx)
        };
        refused(&env, &tenant_json(&ns, &n, spec(extra)), field, text).await;
    }
    for (branding, field) in [
        (
            json!({"logoUrl": "javascript:alert(1)"}),
            "spec.branding.logoUrl",
        ),
        (
            json!({"logoUrl": "https://x.example/a b.png"}),
            "spec.branding.logoUrl",
        ),
        (
            json!({"primaryColor": "red;}</style><script>"}),
            "spec.branding.primaryColor",
        ),
        (
            json!({"support": {"email": "help@x.example\nBcc: all@evil.example"}}),
            "spec.branding.support.email",
        ),
    ] {
        refused(
            &env,
            &partner_json(
                &env.n("bad"),
                "B",
                &["a@b.example"],
                json!({"branding": branding}),
            ),
            field,
            "",
        )
        .await;
    }
    refused(
        &env,
        &invite_json(&ns, &env.n("i"), "x@y.example\nBcc: all@evil.example"),
        "spec.email",
        "should match",
    )
    .await;
    env.finish().await;
}

/// The operator's reconcile errors so far, every controller.
fn reconcile_errors(env: &Env) -> u64 {
    let t = env.telemetry();
    ["partner", "tenant", "partneradmininvite"]
        .iter()
        .map(|c| t.metrics.reconcile_errors(c))
        .sum()
}

/// A partner whose template has profile wifi {ssid: v1}, and a sentinel tenant inheriting it,
/// Ready; returns (partner namespace, sentinel, its workspace).
async fn sentinel_partner(env: &Env, base: &str) -> (String, String, String) {
    let q = env.n(base);
    let ns = env
        .partner_ready(
            &q,
            &[&env.email("owner", &q)],
            json!({"entitlements": {"bizApps": []}}),
        )
        .await;
    env.apply_json(&tenant_json(
        &ns,
        "template",
        json!({"displayName": "Template", "profiles": {"wifi": {"ssid": "v1"}}}),
    ))
    .await;
    let sentinel = env.n("sentinel");
    env.tenant_ready(&ns, &sentinel, json!({"displayName": "Sentinel"}))
        .await;
    let ws = env.ws(&sentinel);
    env.eventually(10, "the sentinel's wifi v1", || async {
        let cm = env.config_map(&ws, "partnerkit-profile-wifi").await?;
        (cm["data"]["ssid"] == "v1").then_some(())
    })
    .await;
    (ns, sentinel, ws)
}

/// While `barrage` runs: change the template's profile and the sentinel's own, and wait until
/// the sentinel's workspace and status show both; returns how long that took.
async fn sentinel_follows(env: &Env, ns: &str, sentinel: &str, ws: &str) -> Duration {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t0 = std::time::Instant::now();
    env.kubectl_ok(&[
        "patch",
        "tenant",
        "template",
        "-n",
        ns,
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"profiles":{"wifi":{"ssid":"v2"}}}}"#,
    ])
    .await;
    env.kubectl_ok(&[
        "patch",
        "tenant",
        sentinel,
        "-n",
        ns,
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"displayName":"Sentinel <b>2</b>","profiles":{"vpn":{"gw":"gw-2"}}}}"#,
    ])
    .await;
    env.eventually(
        30,
        "the sentinel to converge during the barrage",
        || async {
            let wifi = env.config_map(ws, "partnerkit-profile-wifi").await?;
            let vpn = env.config_map(ws, "partnerkit-profile-vpn").await?;
            let t = env.tenant(ns, sentinel).await?;
            let current = t["status"]["observedGeneration"] == t["metadata"]["generation"];
            let profiles = t["status"]["effectiveProfiles"].as_array()?;
            let wifi_status = profiles.iter().find(|p| p["name"] == "wifi")?;
            (wifi["data"]["ssid"] == "v2"
                && vpn["data"]["gw"] == "gw-2"
                && wifi_status["data"]["ssid"] == "v2"
                && current
                && ready(&t)?["status"] == "True")
                .then(|| t0.elapsed())
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_barrage_of_hostile_input_never_stops_another_tenant_converging() {
    let (env, _port) = start().await;
    let (ns, sentinel, ws) = sentinel_partner(&env, "quarry").await;
    let t0 = std::time::Instant::now();

    let (many_profiles, many_keys, big_value, churn, unknown, premium, outside) = (
        env.n("many-profiles"),
        env.n("many-keys"),
        env.n("big-value"),
        env.n("churn"),
        env.n("unknown-apps"),
        env.n("premium"),
        env.n("outside"),
    );
    let plain_ns = env.n("plain");
    env.kubectl_ok(&["create", "namespace", &plain_ns]).await;

    // Accepted, and big: 100 profiles of 5 keys; one profile of 3,000 keys; a 200 kB value.
    let big_ones = async {
        let profiles: BTreeMap<String, BTreeMap<String, String>> = (0..100)
            .map(|i| {
                (
                    format!("p{i}"),
                    (0..5)
                        .map(|k| (format!("k{k}"), HOSTILE[(i + k) % HOSTILE.len()].into()))
                        .collect(),
                )
            })
            .collect();
        let keys: BTreeMap<String, String> = (0..3000)
            .map(|k| (format!("key-{k}"), format!("value {k}")))
            .collect();
        let blob: String = HOSTILE.join("\n").repeat(200_000 / 150);
        for (name, spec) in [
            (
                &many_profiles,
                json!({"displayName": "Many profiles", "profiles": profiles}),
            ),
            (
                &many_keys,
                json!({"displayName": "Many keys", "profiles": {"big": keys}}),
            ),
            (
                &big_value,
                json!({"displayName": "Big value", "profiles": {"blob": {"data": blob}}}),
            ),
        ] {
            let o = env
                .create_as(None, &tenant_json(&ns, name, spec).to_string())
                .await;
            allowed(&o, &format!("creating {name}"));
        }
        // Client-side apply keeps the whole object in an annotation, limited to 256 KiB:
        // refused at apply time, naming it.
        let huge = tenant_json(
            &ns,
            &env.n("huge-apply"),
            json!({"displayName": "Huge", "profiles": {"blob": {"data": "x".repeat(300_000)}}}),
        );
        let path = env.dir.join("huge-apply.json");
        std::fs::write(&path, huge.to_string()).unwrap();
        let o = env.kubectl(&["apply", "-f", path.to_str().unwrap()]).await;
        assert!(!o.ok(), "a 300 kB client-side apply was accepted");
        assert!(
            o.stderr.contains("metadata.annotations") && o.stderr.contains("262144"),
            "{}",
            cut(&o.stderr, 1000)
        );
    };

    // Accepted and refused by the controller: unknown apps (150 of them), a premium app the
    // partner is not entitled to, a Tenant outside any partner namespace.
    let refused_by_controller = async {
        let apps: BTreeMap<String, bool> = (0..150)
            .map(|i| (format!("no-such-app-{i:03}-{}", "x".repeat(24)), true))
            .collect();
        for (tns, name, spec) in [
            (
                &ns,
                &unknown,
                json!({"displayName": "<i>Unknown</i>", "bizApps": apps}),
            ),
            (
                &ns,
                &premium,
                json!({"displayName": "Premium", "bizApps": {"crm": true}}),
            ),
            (&plain_ns, &outside, json!({"displayName": "Outside"})),
        ] {
            let o = env
                .create_as(None, &tenant_json(tns, name, spec).to_string())
                .await;
            allowed(&o, &format!("creating {name}"));
        }
    };

    // Refused at apply time, over and over.
    let refusals = async {
        let admins_5000: Vec<String> = (0..5000)
            .map(|i| format!("admin{i}@thousands.example"))
            .collect();
        for round in 0..3 {
            for (spec, field, text) in [
                (
                    json!({"displayName": "T", "admins": admins(&admins_5000)}),
                    "spec.admins",
                    "Too many: 5000",
                ),
                (
                    json!({"displayName": "é".repeat(257)}),
                    "spec.displayName",
                    "Too long",
                ),
                (
                    json!({"displayName": "T", "admins": [{"email": "x@y.example\n"}]}),
                    "spec.admins[0].email",
                    "should match",
                ),
                (
                    json!({"displayName": "T", "profiles": {"<p>": {"k": "v"}}}),
                    "spec.profiles",
                    "profile names must be DNS labels",
                ),
                (
                    json!({"displayName": "T", "bizApps": {"Crm": true}}),
                    "spec.bizApps",
                    "BizApp names must be DNS labels",
                ),
            ] {
                let name = env.n(&format!("refused-{round}"));
                refused(&env, &tenant_json(&ns, &name, spec), field, text).await;
            }
        }
    };

    // One tenant edited 15 times in a row, hostile text each time.
    let churning = async {
        env.apply_json(&tenant_json(&ns, &churn, json!({"displayName": "Churn"})))
            .await;
        for i in 0..15 {
            let patch = json!({"spec": {"displayName": HOSTILE[i % HOSTILE.len()],
                "profiles": {"p": {"v": if i == 14 { "final".to_string() } else { HOSTILE[i % HOSTILE.len()].to_string() }}}}});
            env.kubectl_ok(&[
                "patch",
                "tenant",
                &churn,
                "-n",
                &ns,
                "--type",
                "merge",
                "-p",
                &patch.to_string(),
            ])
            .await;
        }
    };

    let ((), (), (), (), took) = tokio::join!(
        big_ones,
        refused_by_controller,
        refusals,
        churning,
        sentinel_follows(&env, &ns, &sentinel, &ws)
    );
    eprintln!(
        "the sentinel converged {:.1}s after its change, during the barrage",
        took.as_secs_f64()
    );

    // What was accepted is materialized...
    env.wait_ready("Tenant", Some(&ns), &many_profiles).await;
    let objects = env
        .list(
            "v1",
            "ConfigMap",
            Some(&env.ws(&many_profiles)),
            Some(&format!("partnerkit.io/tenant={many_profiles}")),
        )
        .await;
    // 100 profiles, the template's wifi, partnerkit-bizapps and partnerkit-branding.
    assert_eq!(objects.len(), 103);
    env.wait_ready("Tenant", Some(&ns), &many_keys).await;
    let cm = env
        .config_map(&env.ws(&many_keys), "partnerkit-profile-big")
        .await
        .unwrap();
    assert_eq!(cm["data"].as_object().unwrap().len(), 3000);
    env.wait_ready("Tenant", Some(&ns), &big_value).await;
    let cm = env
        .config_map(&env.ws(&big_value), "partnerkit-profile-blob")
        .await
        .unwrap();
    assert_eq!(cm["data"]["data"], HOSTILE.join("\n").repeat(200_000 / 150));
    // ...the rest refused with a reason...
    let o = env
        .wait_reason("Tenant", Some(&ns), &unknown, "UnknownBizApp")
        .await;
    let message = ready(&o).unwrap()["message"].as_str().unwrap().to_string();
    assert!(message.contains("no-such-app-000"), "{message}");
    assert!(env.namespace(&env.ws(&unknown)).await.is_none());
    env.wait_reason("Tenant", Some(&ns), &premium, "NotEntitled")
        .await;
    env.wait_reason("Tenant", Some(&plain_ns), &outside, "NotInPartnerNamespace")
        .await;
    // ...the churned tenant ends in its last state...
    env.eventually(15, "the churned tenant's last state", || async {
        let t = env.tenant(&ns, &churn).await?;
        let cm = env
            .config_map(&env.ws(&churn), "partnerkit-profile-p")
            .await?;
        (cm["data"]["v"] == "final"
            && t["status"]["observedGeneration"] == t["metadata"]["generation"]
            && ready(&t)?["status"] == "True")
            .then_some(())
    })
    .await;
    // ...and nothing keeps failing: no reconcile error in a retry period (5 s) and more.
    let errors = reconcile_errors(&env);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        reconcile_errors(&env),
        errors,
        "the operator is in a reconcile error loop"
    );
    env.wait_ready("Tenant", Some(&ns), &sentinel).await;
    eprintln!("barrage test body {:.1}s", t0.elapsed().as_secs_f64());
    env.finish().await;
}

/// Input the API server would accept but whose materialization it could not hold. Each must be
/// refused at apply time with the field named, or end `Ready=False` with a reason (and a Warning
/// Event), while the sentinel converges. Before the fixes, on Kubernetes:
/// - profiles of ~800 kB (the Tenant is stored: under etcd's 1.5 MiB request limit) made a
///   status — effectiveProfiles repeats them — over the limit: every status write failed with
///   500 `etcdserver: request is too large`; the Tenant never got a status;
/// - a profile over 1 MiB (the Tenant is stored) made a ConfigMap over ConfigMap's 1 MiB: 422
///   on every retry, no status either;
/// - a refusal message over 1 kB (150 unknown BizApps) was not published as a Warning Event:
///   events.k8s.io/v1 refuses a `note` over 1 kB.
/// Now a Tenant with more than 256 KiB of profile data is Ready=False, InvalidProfile, and its
/// status does not repeat the data; Event notes are cut to 1 kB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_too_big_to_materialize_is_refused_or_reported() {
    let (env, _port) = start().await;
    let (ns, sentinel, ws) = sentinel_partner(&env, "oversize").await;
    let mut failures: Vec<String> = Vec::new();
    let cases = [
        (env.n("status-too-big"), "x".repeat(800_000)),
        (env.n("configmap-too-big"), "x".repeat(1_100_000)),
    ];
    let create = async {
        let mut created = Vec::new();
        for (name, value) in &cases {
            let m = tenant_json(
                &ns,
                name,
                json!({"displayName": "Big", "profiles": {"blob": {"data": value}}}),
            );
            let o = env.create_as(None, &m.to_string()).await;
            if o.ok() {
                created.push(name.clone());
            } else if !o.stderr.contains("spec.profiles") {
                failures.push(format!(
                    "{name}: refused without naming spec.profiles: {}",
                    cut(&o.stderr, 300)
                ));
            }
        }
        created
    };
    let (created, took) = tokio::join!(create, sentinel_follows(&env, &ns, &sentinel, &ws));
    eprintln!("the sentinel converged in {:.1}s", took.as_secs_f64());
    for name in created {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let t = env.tenant(&ns, &name).await.unwrap();
            let current = t["status"]["observedGeneration"] == t["metadata"]["generation"];
            if current && ready(&t).is_some_and(|c| c["status"] == "False") {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                failures.push(format!(
                    "{name}: accepted, and no Ready=False with a reason after 20s; status: {}",
                    cut(&t["status"].to_string(), 300)
                ));
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let unknown = env.n("unknown-apps");
    let apps: BTreeMap<String, bool> = (0..150)
        .map(|i| (format!("no-such-app-{i:03}-{}", "x".repeat(24)), true))
        .collect();
    env.apply_json(&tenant_json(
        &ns,
        &unknown,
        json!({"displayName": "Unknown", "bizApps": apps}),
    ))
    .await;
    env.wait_reason("Tenant", Some(&ns), &unknown, "UnknownBizApp")
        .await;
    let warned = async {
        for _ in 0..50 {
            if env
                .warnings_about(&ns, "Tenant", &unknown)
                .await
                .iter()
                .any(|(r, _)| r == "UnknownBizApp")
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    if !warned.await {
        failures.push(format!(
            "{unknown}: Ready=False UnknownBizApp with a {}-character message, but no Warning Event",
            ready(&env.tenant(&ns, &unknown).await.unwrap()).unwrap()["message"]
                .as_str()
                .unwrap()
                .len()
        ));
    }
    env.finish().await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
