//! What a Partner materializes.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleBinding};
use kube::{Resource, ResourceExt};

use crate::api::{Partner, PartnerStatus, Tenant, TenantSpec};
use crate::config::Config;
use crate::manifests::{INVITE_LINKS_ROLE, PARTNER_ADMIN_ROLE};

use super::{
    TEMPLATE_NAME, branding_data, cluster_role_ref, labels, labels_for, meta, names, user_subjects,
};

/// What the partner builder needs besides the Partner: read by the controller from its stores.
pub struct PartnerInputs<'a> {
    pub partner: &'a Partner,
    pub config: &'a Config,
    /// E-mails of Accepted invites that exist in the partner namespace.
    pub accepted_invites: Vec<String>,
    /// This partner's tenants, template excluded.
    pub tenant_count: u32,
}

/// Everything a Partner materializes, and its status values.
#[derive(Debug, Clone, PartialEq)]
pub struct PartnerDesired {
    /// `partner-<name>`, labelled `partnerkit.io/partner=<name>` and managed-by. No owner
    /// reference (it holds user objects; the finalizer deletes it).
    pub namespace: Namespace,
    /// The template tenant: create only if missing, never overwrite. displayName
    /// "<displayName> (Template)", label `partnerkit.io/template=true`.
    pub template: Tenant,
    /// `partnerkit-partner-admins` in the partner namespace -> ClusterRole
    /// `partnerkit-partner-admin`, subjects = effective admins.
    pub admins_binding: RoleBinding,
    /// `partnerkit-operator` in the partner namespace -> ClusterRole `partnerkit-invite-links`,
    /// subject = the operator's ServiceAccount, when it is known.
    pub operator_binding: Option<RoleBinding>,
    /// `partnerkit:partner:<name>`: get/list/watch/patch of the Partner and get of
    /// partners/status, by resourceNames; get of the partner namespace. Its size does not depend on
    /// the partner's tenants.
    pub cluster_role: ClusterRole,
    /// `partnerkit:partner:<name>` -> that ClusterRole, subjects = effective admins.
    pub cluster_role_binding: ClusterRoleBinding,
    /// `partnerkit-branding` in the partner namespace: the partner's own branding (its page),
    /// each unset key falling back to the platform default, whatever the entitlement.
    pub branding: ConfigMap,
    /// spec.admins ∪ accepted invites, sorted, deduplicated.
    pub effective_admins: Vec<String>,
    /// entitlements.branding && spec.branding is Some.
    pub branding_applied: bool,
    /// namespace, admins, tenants, brandingApplied — no conditions / observedGeneration
    /// (the controller sets those).
    pub status: PartnerStatus,
}

/// The desired state of a Partner.
pub fn partner(inputs: &PartnerInputs) -> PartnerDesired {
    let p = inputs.partner;
    let cfg = inputs.config;
    let name = p.name_any();
    let ns = names::partner_namespace(cfg, &name);
    let owner = p.controller_owner_ref(&());
    let base_labels = labels_for(&name, &[]);

    let effective_admins: Vec<String> = p
        .spec
        .admins
        .iter()
        .map(|a| a.email.clone())
        .chain(inputs.accepted_invites.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let subjects = user_subjects(cfg, &effective_admins);

    let namespace = Namespace {
        metadata: meta(&ns, None, base_labels.clone(), None),
        ..Namespace::default()
    };

    let mut template = Tenant::new(
        TEMPLATE_NAME,
        TenantSpec {
            display_name: format!("{} (Template)", p.spec.display_name),
            inherit_from_template: true,
            biz_apps: BTreeMap::new(),
            profiles: BTreeMap::new(),
            admins: Vec::new(),
            deletion_policy: Default::default(),
        },
    );
    template.metadata = meta(
        TEMPLATE_NAME,
        Some(&ns),
        labels_for(&name, &[(labels::TEMPLATE, "true")]),
        None,
    );

    let admins_binding = RoleBinding {
        metadata: meta(
            names::PARTNER_ADMINS_BINDING,
            Some(&ns),
            base_labels.clone(),
            owner.clone(),
        ),
        role_ref: cluster_role_ref(PARTNER_ADMIN_ROLE),
        subjects: Some(subjects.clone()),
    };

    let operator_binding = cfg
        .operator_account
        .as_ref()
        .map(|(sa_ns, sa)| RoleBinding {
            metadata: meta(
                names::OPERATOR_BINDING,
                Some(&ns),
                base_labels.clone(),
                owner.clone(),
            ),
            role_ref: cluster_role_ref(INVITE_LINKS_ROLE),
            subjects: Some(vec![k8s_openapi::api::rbac::v1::Subject {
                kind: "ServiceAccount".into(),
                name: sa.clone(),
                namespace: Some(sa_ns.clone()),
                api_group: None,
            }]),
        });

    let role_name = names::partner_cluster_role(&name);
    let rule =
        |groups: &str, resources: &str, verbs: &[&str], resource_names: Vec<String>| PolicyRule {
            api_groups: Some(vec![groups.to_string()]),
            resources: Some(vec![resources.to_string()]),
            resource_names: Some(resource_names),
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
            non_resource_urls: None,
        };
    let cluster_role = ClusterRole {
        metadata: meta(&role_name, None, base_labels.clone(), owner.clone()),
        rules: Some(vec![
            // list and watch by resourceNames are authorized for requests with
            // fieldSelector=metadata.name=<name>: `kubectl get -w`, `kubectl wait`.
            rule(
                crate::api::GROUP,
                "partners",
                &["get", "list", "watch", "patch"],
                vec![name.clone()],
            ),
            rule(
                crate::api::GROUP,
                "partners/status",
                &["get"],
                vec![name.clone()],
            ),
            // The partner namespace only: each workspace is readable through the partner
            // admins' RoleBinding in it (a RoleBinding in namespace X authorizes `get
            // namespaces/X`), so this object never grows with the partner's tenants.
            rule("", "namespaces", &["get"], vec![ns.clone()]),
        ]),
        aggregation_rule: None,
    };
    let cluster_role_binding = ClusterRoleBinding {
        metadata: meta(&role_name, None, base_labels.clone(), owner.clone()),
        role_ref: cluster_role_ref(&role_name),
        subjects: Some(subjects),
    };

    let branding = ConfigMap {
        metadata: meta(names::BRANDING, Some(&ns), base_labels, owner),
        data: Some(branding_data(
            p,
            p.spec.branding.as_ref(),
            &cfg.default_branding,
        )),
        ..ConfigMap::default()
    };

    let branding_applied = p.spec.entitlements.branding && p.spec.branding.is_some();
    let status = PartnerStatus {
        namespace: Some(ns),
        admins: effective_admins.clone(),
        tenants: inputs.tenant_count,
        branding_applied,
        ..PartnerStatus::default()
    };

    PartnerDesired {
        namespace,
        template,
        admins_binding,
        operator_binding,
        cluster_role,
        cluster_role_binding,
        branding,
        effective_admins,
        branding_applied,
        status,
    }
}
