//! What a Tenant materializes, or why it does not.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::ResourceExt;

use crate::api::conditions::{
    ASSIGNMENT_REQUIRED, INVALID_PROFILE, NAME_CONFLICT, NOT_IN_PARTNER_NAMESPACE, QUOTA_EXCEEDED,
};
use crate::api::{Partner, Tenant, TenantStatus};
use crate::config::Config;
use crate::manifests::TENANT_ADMIN_ROLE;

use super::{
    Refusal, TEMPLATE_NAME, WORKSPACE_TERMINATING, check_profiles, cluster_role_ref,
    effective_admins, effective_biz_apps, effective_profiles, labels, labels_for, meta, names,
    user_subjects,
};

/// What the tenant's workspace namespace (`tenant-<name>`) is right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkspaceState {
    /// No such namespace.
    Missing,
    /// Labelled `partnerkit.io/tenant=<name>` (and managed-by partnerkit), not orphaned.
    Ours,
    /// Labelled for this tenant name and `partnerkit.io/orphaned=true`, retained by this
    /// tenant's partner or assigned to it by a PartnerAssignment: adopt it.
    Orphaned,
    /// Orphaned, but retained by another partner and not assigned to this one: the data is
    /// that partner's, so AssignmentRequired and nothing is touched.
    RetainedByAnotherPartner,
    /// Exists and is not partnerkit's: NameConflict, never touched.
    Foreign,
    /// Being deleted: wait until it is gone.
    Terminating,
}

/// What the tenant builder needs besides the Tenant: read by the controller from its stores.
pub struct TenantInputs<'a> {
    pub tenant: &'a Tenant,
    pub config: &'a Config,
    /// The partner owning the tenant's namespace (None -> NotInPartnerNamespace).
    pub partner: Option<&'a Partner>,
    /// The partner's effective admins.
    pub partner_admins: &'a [String],
    /// The partner's template tenant, if it exists (ignored when inheritFromTemplate=false,
    /// or when the tenant IS the template).
    pub template: Option<&'a Tenant>,
    pub workspace: WorkspaceState,
    /// "<namespace>/<name>" of an older Tenant with the same name elsewhere -> NameConflict.
    pub name_taken_by: Option<String>,
    /// The partner that last held the workspace (its `partnerkit.io/partner` label), when
    /// `workspace` is [`WorkspaceState::RetainedByAnotherPartner`].
    pub retained_by: Option<&'a str>,
    /// How many of its partner's non-template tenants are older (by creationTimestamp, then
    /// name), counted up to the partner's maxTenants (0 without one).
    pub older_tenants: usize,
}

/// The objects of a tenant's workspace, each sorted by name.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantDesired {
    /// The workspace namespace: labels partner, tenant, managed-by and
    /// `bizapps.partnerkit.io/<app>=enabled` per enabled app; never `partnerkit.io/orphaned`.
    pub namespace: Namespace,
    /// `partnerkit-bizapps`, `partnerkit-branding`, `partnerkit-profile-<name>`…
    pub config_maps: Vec<ConfigMap>,
    /// `partnerkit-partner-admins`, `partnerkit-tenant-admins`, both -> `partnerkit-tenant-admin`.
    pub role_bindings: Vec<RoleBinding>,
}

/// The outcome for a Tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantPlan {
    /// Effective values and workspace; NO conditions / observedGeneration (the controller
    /// sets those). `workspace` is set when the tenant has (or gets) its workspace: always when
    /// `desired` is Some, and also for a refused tenant whose workspace is already `Ours`
    /// (unless the refusal is NameConflict / NotInPartnerNamespace).
    pub status: TenantStatus,
    /// Err -> Ready=False with reason/message; nothing materialized.
    pub ready: Result<(), Refusal>,
    /// Some only when ready is Ok and the tenant is not the template.
    pub desired: Option<TenantDesired>,
}

/// The plan for a Tenant. Checks, in order (the first failing one is the refusal):
/// NotInPartnerNamespace; for a non-template tenant NameConflict (an older Tenant holds the
/// name, or the workspace namespace is not partnerkit's) and QuotaExceeded; UnknownBizApp /
/// NotEntitled; InvalidProfile; for a non-template tenant WorkspaceTerminating.
pub fn tenant(inputs: &TenantInputs) -> TenantPlan {
    let t = inputs.tenant;
    let cfg = inputs.config;
    let name = t.name_any();
    let is_template = name == TEMPLATE_NAME;
    let template = if is_template || !t.spec.inherit_from_template {
        None
    } else {
        inputs.template.map(|x| &x.spec)
    };

    let mut status = TenantStatus {
        effective_profiles: effective_profiles(template, &t.spec),
        effective_admins: effective_admins(&t.spec, inputs.partner_admins),
        ..TenantStatus::default()
    };

    let Some(partner) = inputs.partner else {
        let ns = t.namespace().unwrap_or_default();
        let refusal = Refusal::new(
            NOT_IN_PARTNER_NAMESPACE,
            format!(
                "namespace {ns:?} is not a partner namespace ({}<partner>): create Tenants in their partner's namespace",
                cfg.namespace_prefixes.partner
            ),
        );
        return TenantPlan {
            status,
            ready: Err(refusal),
            desired: None,
        };
    };
    let partner_name = partner.name_any();

    let biz_apps = effective_biz_apps(&cfg.catalog, &partner.spec.entitlements, template, &t.spec);
    if let Ok(apps) = &biz_apps {
        status.effective_biz_apps = apps.clone();
    }

    if is_template {
        let ready = biz_apps.and_then(|_| check_profiles(&t.spec));
        if ready.as_ref().is_err_and(|r| r.reason == INVALID_PROFILE) {
            status.effective_profiles.clear();
        }
        return TenantPlan {
            status,
            ready,
            desired: None,
        };
    }

    let workspace = names::workspace(cfg, &name);
    let refusal = if let Some(holder) = &inputs.name_taken_by {
        Some(Refusal::new(
            NAME_CONFLICT,
            format!("tenant name {name:?} is already taken by Tenant {holder}"),
        ))
    } else if inputs.workspace == WorkspaceState::RetainedByAnotherPartner {
        let from = inputs.retained_by.unwrap_or("another partner");
        Some(Refusal::new(
            ASSIGNMENT_REQUIRED,
            format!(
                "workspace {workspace:?} holds the data partner {from:?} retained for company {name:?}; only a platform admin can move it to partner {partner_name:?}, with a PartnerAssignment {{tenant: {name}, from: {from}, to: {partner_name}}}"
            ),
        ))
    } else if inputs.workspace == WorkspaceState::Foreign {
        Some(Refusal::new(
            NAME_CONFLICT,
            format!(
                "workspace namespace {workspace:?} already exists and is not managed by partnerkit"
            ),
        ))
    } else if let Some(max) = partner.spec.entitlements.max_tenants
        && inputs.older_tenants >= max as usize
    {
        Some(Refusal::new(
            QUOTA_EXCEEDED,
            format!(
                "partner {partner_name:?} may have at most {max} tenants (entitlements.maxTenants), and {max} older tenants hold them"
            ),
        ))
    } else if let Err(refusal) = &biz_apps {
        Some(refusal.clone())
    } else if let Err(refusal) = check_profiles(&t.spec) {
        // Not echoed into status: profiles over the size bound would make the status write
        // itself too large for the API server.
        status.effective_profiles.clear();
        Some(refusal)
    } else if inputs.workspace == WorkspaceState::Terminating {
        Some(Refusal::new(
            WORKSPACE_TERMINATING,
            format!(
                "workspace namespace {workspace:?} is being deleted; the tenant is set up once it is gone"
            ),
        ))
    } else {
        None
    };

    if let Some(refusal) = refusal {
        let keeps_workspace =
            inputs.workspace == WorkspaceState::Ours && refusal.reason != NAME_CONFLICT;
        status.workspace = keeps_workspace.then_some(workspace);
        return TenantPlan {
            status,
            ready: Err(refusal),
            desired: None,
        };
    }

    let desired = workspace_objects(inputs, partner, &workspace, &status);
    status.workspace = Some(workspace);
    TenantPlan {
        status,
        ready: Ok(()),
        desired: Some(desired),
    }
}

fn workspace_objects(
    inputs: &TenantInputs,
    partner: &Partner,
    workspace: &str,
    status: &TenantStatus,
) -> TenantDesired {
    let cfg = inputs.config;
    let partner_name = partner.name_any();
    let tenant_name = inputs.tenant.name_any();
    let object_labels = labels_for(&partner_name, &[(labels::TENANT, &tenant_name)]);

    let mut ns_labels = object_labels.clone();
    for app in status.effective_biz_apps.iter().filter(|a| a.enabled) {
        ns_labels.insert(
            format!("{}{}", labels::BIZAPP_PREFIX, app.name),
            "enabled".into(),
        );
    }
    let namespace = Namespace {
        metadata: meta(workspace, None, ns_labels, None),
        ..Namespace::default()
    };

    let config_map = |name: &str, data: BTreeMap<String, String>| ConfigMap {
        metadata: meta(name, Some(workspace), object_labels.clone(), None),
        data: Some(data),
        ..ConfigMap::default()
    };
    let mut config_maps = vec![
        config_map(
            names::BIZAPPS,
            status
                .effective_biz_apps
                .iter()
                .map(|a| (a.name.clone(), a.enabled.to_string()))
                .collect(),
        ),
        config_map(names::BRANDING, super::customer_branding(partner, cfg)),
    ];
    config_maps.extend(
        status
            .effective_profiles
            .iter()
            .map(|p| config_map(&names::profile(&p.name), p.data.clone())),
    );
    config_maps.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));

    let partner_admins: BTreeSet<&String> = inputs.partner_admins.iter().collect();
    let tenant_admins: Vec<String> = status
        .effective_admins
        .iter()
        .map(|a| a.email.clone())
        .collect();
    let role_binding = |name: &str, subjects| RoleBinding {
        metadata: meta(name, Some(workspace), object_labels.clone(), None),
        role_ref: cluster_role_ref(TENANT_ADMIN_ROLE),
        subjects: Some(subjects),
    };
    let role_bindings = vec![
        role_binding(
            names::PARTNER_ADMINS_BINDING,
            user_subjects(cfg, partner_admins),
        ),
        role_binding(
            names::TENANT_ADMINS_BINDING,
            user_subjects(cfg, &tenant_admins),
        ),
    ];

    TenantDesired {
        namespace,
        config_maps,
        role_bindings,
    }
}
