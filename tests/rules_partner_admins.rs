//! DESIGN.md "Who does what" for partner and tenant admins, as users: `kubectl --as <e-mail>`
//! against the RBAC partnerkit materializes and the admission policy `partnerkit manifests`
//! installs.

mod support;

use serde_json::json;
use support::{Env, Out, tenant_json};

fn forbidden(o: &Out, text: &str) {
    assert!(!o.ok(), "should have been refused, printed:\n{}", o.stdout);
    assert!(
        o.stderr.contains(text),
        "expected {text:?} in:\n{}",
        o.stderr
    );
}

fn allowed(o: &Out, what: &str) {
    assert!(o.ok(), "{what} should be allowed:\n{}", o.stderr);
}

/// Partners acme (admins alice, bob) and initech (admin ivan), both Ready.
async fn two_partners(env: &Env) -> (String, String, String, String, String, String, String) {
    let (acme, initech) = (env.n("acme"), env.n("initech"));
    let (alice, bob, ivan) = (
        env.email("alice", &acme),
        env.email("bob", &acme),
        env.email("ivan", &initech),
    );
    let acme_ns = env.partner_ready(&acme, &[&alice, &bob], json!({})).await;
    let initech_ns = env.partner_ready(&initech, &[&ivan], json!({})).await;
    (acme, initech, alice, bob, ivan, acme_ns, initech_ns)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_partner_admin_manages_tenants_and_invites_in_its_namespace_only() {
    let env = Env::start().await;
    let (_acme, _initech, alice, bob, ivan, acme_ns, initech_ns) = two_partners(&env).await;

    // Every admin — the second one too — creates, edits and deletes tenants, the template included.
    for (who, tenant) in [(&alice, env.n("globex")), (&bob, env.n("hooli"))] {
        let t = tenant_json(&acme_ns, &tenant, json!({"displayName": "Co"}));
        allowed(
            &env.apply_as(who, &t.to_string()).await,
            "creating a tenant",
        );
        env.wait_ready("Tenant", Some(&acme_ns), &tenant).await;
        let t = tenant_json(
            &acme_ns,
            &tenant,
            json!({"displayName": "Co renamed", "bizApps": {"chat": false}}),
        );
        allowed(&env.apply_as(who, &t.to_string()).await, "editing a tenant");
        let tpl = tenant_json(
            &acme_ns,
            "template",
            json!({"displayName": format!("by {who}")}),
        );
        allowed(
            &env.apply_as(who, &tpl.to_string()).await,
            "editing the template",
        );
        assert_eq!(
            env.tenant(&acme_ns, "template").await.unwrap()["spec"]["displayName"],
            format!("by {who}")
        );
        let invite = json!({"apiVersion": "partnerkit.io/v1alpha1", "kind": "PartnerAdminInvite",
            "metadata": {"name": format!("invite-{}", tenant), "namespace": acme_ns}, "spec": {"email": "new@acme.example"}});
        allowed(
            &env.apply_as(who, &invite.to_string()).await,
            "creating an invite",
        );
        allowed(
            &env.kubectl_as(
                who,
                &[
                    "delete",
                    "partneradmininvite",
                    &format!("invite-{tenant}"),
                    "-n",
                    &acme_ns,
                ],
            )
            .await,
            "deleting an invite",
        );
        allowed(
            &env.kubectl_as(who, &["get", "tenants", "-n", &acme_ns, "-o", "name"])
                .await,
            "listing tenants",
        );
    }
    allowed(
        &env.kubectl_as(
            &bob,
            &[
                "delete",
                "tenant",
                &env.n("globex"),
                "-n",
                &acme_ns,
                "--wait=false",
            ],
        )
        .await,
        "the second admin deletes a tenant",
    );

    // Refused in another partner's namespace, with the API server's text.
    let t = tenant_json(
        &initech_ns,
        &env.n("sneaky"),
        json!({"displayName": "Sneaky"}),
    );
    forbidden(
        &env.create_as(Some(&bob), &t.to_string()).await,
        &format!(
            "tenants.partnerkit.io is forbidden: User \"{bob}\" cannot create resource \"tenants\" in API group \"partnerkit.io\" in the namespace \"{initech_ns}\""
        ),
    );
    forbidden(
        &env.kubectl_as(&alice, &["get", "tenants", "-n", &initech_ns])
            .await,
        &format!(
            "tenants.partnerkit.io is forbidden: User \"{alice}\" cannot list resource \"tenants\" in API group \"partnerkit.io\" in the namespace \"{initech_ns}\""
        ),
    );
    let invite = json!({"apiVersion": "partnerkit.io/v1alpha1", "kind": "PartnerAdminInvite",
        "metadata": {"name": "sneaky", "namespace": initech_ns}, "spec": {"email": "x@acme.example"}});
    forbidden(
        &env.create_as(Some(&alice), &invite.to_string()).await,
        &format!(
            "partneradmininvites.partnerkit.io is forbidden: User \"{alice}\" cannot create resource \"partneradmininvites\" in API group \"partnerkit.io\" in the namespace \"{initech_ns}\""
        ),
    );
    forbidden(
        &env.kubectl_as(
            &ivan,
            &["delete", "tenant", &env.n("hooli"), "-n", &acme_ns],
        )
        .await,
        &format!(
            "tenants.partnerkit.io \"{}\" is forbidden: User \"{ivan}\" cannot delete resource \"tenants\" in API group \"partnerkit.io\" in the namespace \"{acme_ns}\"",
            env.n("hooli")
        ),
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_admin_reads_its_partner_and_changes_only_its_branding() {
    let env = Env::start().await;
    let (acme, initech, _alice, bob, _ivan, acme_ns, _) = two_partners(&env).await;

    let o = env
        .kubectl_as(&bob, &["get", "partner", &acme, "-o", "json"])
        .await;
    allowed(&o, "reading its Partner");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&o.stdout).unwrap()["metadata"]["name"],
        acme.as_str()
    );
    forbidden(
        &env.kubectl_as(&bob, &["get", "partner", &initech]).await,
        &format!(
            "partners.partnerkit.io \"{initech}\" is forbidden: User \"{bob}\" cannot get resource \"partners\" in API group \"partnerkit.io\" at the cluster scope"
        ),
    );
    forbidden(
        &env.kubectl_as(&bob, &["get", "partners"]).await,
        &format!(
            "partners.partnerkit.io is forbidden: User \"{bob}\" cannot list resource \"partners\" in API group \"partnerkit.io\" at the cluster scope"
        ),
    );

    // Branding: allowed, and it reaches the partner's page.
    allowed(
        &env.kubectl_as(
            &bob,
            &[
                "patch",
                "partner",
                &acme,
                "--type",
                "merge",
                "-p",
                r##"{"spec":{"branding":{"primaryColor":"#112233"}}}"##,
            ],
        )
        .await,
        "patching spec.branding",
    );
    env.eventually(5, "the partner's branding ConfigMap to follow", || async {
        let cm = env.config_map(&acme_ns, "partnerkit-branding").await?;
        (cm["data"]["primaryColor"] == "#112233").then_some(())
    })
    .await;

    // Anything else: refused by the admission policy, with its message.
    let policy = "ValidatingAdmissionPolicy 'partnerkit-partner-fields' with binding 'partnerkit-partner-fields' denied request: partner admins may change only spec.branding of their Partner; other changes need the \"manage\" permission on partners (partnerkit-platform-admin)";
    for patch in [
        r#"{"spec":{"displayName":"Hijacked"}}"#.to_string(),
        format!(
            r#"{{"spec":{{"admins":[{{"email":"{bob}"}},{{"email":"mallory@evil.example"}}]}}}}"#
        ),
        r#"{"spec":{"entitlements":{"branding":true,"maxTenants":1000}}}"#.to_string(),
    ] {
        forbidden(
            &env.kubectl_as(
                &bob,
                &["patch", "partner", &acme, "--type", "merge", "-p", &patch],
            )
            .await,
            policy,
        );
    }
    forbidden(
        &env.kubectl_as(
            &bob,
            &[
                "patch",
                "partner",
                &initech,
                "--type",
                "merge",
                "-p",
                r##"{"spec":{"branding":{"primaryColor":"#112233"}}}"##,
            ],
        )
        .await,
        // (kubectl patch reads the object first)
        &format!(
            "partners.partnerkit.io \"{initech}\" is forbidden: User \"{bob}\" cannot get resource \"partners\" in API group \"partnerkit.io\" at the cluster scope"
        ),
    );
    let p = env.partner(&acme).await.unwrap();
    assert_eq!(p["spec"]["displayName"], format!("{acme} Inc"));
    assert_eq!(p["spec"]["admins"].as_array().unwrap().len(), 2);
    assert!(p["spec"]["entitlements"].get("maxTenants").is_none());
    // The platform admin (cluster-admin here) may change the rest.
    env.kubectl_ok(&[
        "patch",
        "partner",
        &acme,
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"displayName":"Renamed"}}"#,
    ])
    .await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_admins_administer_their_tenants_workspaces_and_tenant_admins_only_their_own() {
    let env = Env::start().await;
    let (_acme, _initech, alice, bob, ivan, acme_ns, initech_ns) = two_partners(&env).await;
    let (globex, hooli, umbrella) = (env.n("globex"), env.n("hooli"), env.n("umbrella"));
    let dan = env.email("dan", &globex);
    env.tenant_ready(
        &acme_ns,
        &globex,
        json!({"displayName": "Globex", "admins": [{"email": dan}]}),
    )
    .await;
    env.tenant_ready(&acme_ns, &hooli, json!({"displayName": "Hooli"}))
        .await;
    env.tenant_ready(&initech_ns, &umbrella, json!({"displayName": "Umbrella"}))
        .await;
    let (ws_globex, ws_hooli, ws_umbrella) = (env.ws(&globex), env.ws(&hooli), env.ws(&umbrella));

    for who in [&alice, &bob] {
        for ws in [&ws_globex, &ws_hooli] {
            let name = format!("by-{}", who.split('@').next().unwrap());
            allowed(
                &env.kubectl_as(
                    who,
                    &["create", "configmap", &name, "-n", ws, "--from-literal=k=v"],
                )
                .await,
                "partner admin in a workspace",
            );
            allowed(
                &env.kubectl_as(who, &["delete", "configmap", &name, "-n", ws])
                    .await,
                "partner admin deletes in a workspace",
            );
            allowed(
                &env.kubectl_as(who, &["get", "namespace", ws]).await,
                "partner admin reads its workspace namespace",
            );
        }
        forbidden(
            &env.kubectl_as(who, &["create", "configmap", "x", "-n", &ws_umbrella])
                .await,
            &format!(
                "configmaps is forbidden: User \"{who}\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"{ws_umbrella}\""
            ),
        );
        forbidden(
            &env.kubectl_as(who, &["get", "namespace", &ws_umbrella])
                .await,
            &format!(
                "namespaces \"{ws_umbrella}\" is forbidden: User \"{who}\" cannot get resource \"namespaces\" in API group \"\" in the namespace \"{ws_umbrella}\""
            ),
        );
    }
    // A tenant admin: its own workspace only, and nothing of the partner's.
    allowed(
        &env.kubectl_as(
            &dan,
            &[
                "create",
                "configmap",
                "mine",
                "-n",
                &ws_globex,
                "--from-literal=k=v",
            ],
        )
        .await,
        "tenant admin in its workspace",
    );
    allowed(
        &env.kubectl_as(
            &dan,
            &[
                "create",
                "rolebinding",
                "helper",
                "-n",
                &ws_globex,
                "--clusterrole=view",
                "--user=eve@globex.example",
            ],
        )
        .await,
        "tenant admin binds roles in its workspace",
    );
    forbidden(
        &env.kubectl_as(&dan, &["create", "configmap", "x", "-n", &ws_hooli])
            .await,
        &format!(
            "configmaps is forbidden: User \"{dan}\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"{ws_hooli}\""
        ),
    );
    forbidden(
        &env.kubectl_as(&dan, &["get", "tenants", "-n", &acme_ns])
            .await,
        &format!(
            "tenants.partnerkit.io is forbidden: User \"{dan}\" cannot list resource \"tenants\" in API group \"partnerkit.io\" in the namespace \"{acme_ns}\""
        ),
    );
    // Another partner's admin: nothing in acme's workspaces.
    forbidden(
        &env.kubectl_as(&ivan, &["get", "configmaps", "-n", &ws_globex])
            .await,
        &format!(
            "configmaps is forbidden: User \"{ivan}\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"{ws_globex}\""
        ),
    );
    env.finish().await;
}
