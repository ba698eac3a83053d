//! The Tenant controller.
//!
//! dereference (stores: partner, invites, template, workspace namespace, same-named tenants,
//! siblings) → validate and build (`resources::tenant`) → apply the workspace (namespace,
//! ConfigMaps, RoleBindings; each only if it differs) → delete stale children (by label) →
//! status.
//!
//! A refused tenant (NameConflict, QuotaExceeded, UnknownBizApp, NotEntitled, …) gets
//! `Ready=False` and a Warning Event; nothing is created for it, and nothing already there is
//! deleted (no data is lost because, say, an entitlement was withdrawn).
//!
//! Deletion (finalizer `tenants.partnerkit.io/cleanup`, added before the first workspace write):
//! - `Retain` (default): the workspace namespace is labelled `partnerkit.io/orphaned=true` and
//!   keeps its data (ConfigMaps and whatever users put there), but its admin RoleBindings are
//!   deleted, so the old partner's admins and the tenant admins lose access until a Tenant of
//!   the same name adopts it (relabels it and binds its own admins): a Tenant of the partner
//!   that retained it, or of the partner a platform admin's PartnerAssignment moves it to.
//!   Another partner's Tenant of that name gets AssignmentRequired and nothing.
//! - `Delete`: the workspace namespace is deleted.
//!
//! Only a namespace partnerkit created for this tenant name and this partner is orphaned or
//! deleted; a foreign one is never touched.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::apply::{self, apply_child, apply_unless_written, create_if_missing, delete};
use super::children::Ns;
use super::world::{TenantObj, World};
use super::{Ctx, Error, Next, RECONCILED};
use crate::api::{DeletionPolicy, Tenant};
use crate::config::Config;
use crate::resources::{
    self, FIELD_MANAGER, TEMPLATE_NAME, TENANT_FINALIZER, TenantDesired, TenantInputs,
    WorkspaceState, labels, names,
};

pub const CONTROLLER: &str = "tenant";

fn label<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
}

/// What the workspace namespace is, for a tenant `name` of partner `partner`. An orphaned one
/// is adoptable only by the partner that retained it, or by the partner that `assigned` (a
/// platform admin's PartnerAssignment `(tenant, from, to)`) moves it to.
pub(crate) fn workspace_state(
    ns: Option<&Ns>,
    name: &str,
    partner: Option<&str>,
    assigned: impl Fn(&str, &str) -> bool,
) -> WorkspaceState {
    let Some(ns) = ns else {
        return WorkspaceState::Missing;
    };
    if ns.deleting {
        return WorkspaceState::Terminating;
    }
    if ns.tenant.as_deref() != Some(name) || !ns.managed {
        return WorkspaceState::Foreign;
    }
    if ns.orphaned {
        let retained_by = ns.partner.as_deref().unwrap_or_default();
        return match partner {
            Some(p) if p == retained_by || assigned(retained_by, p) => WorkspaceState::Orphaned,
            _ => WorkspaceState::RetainedByAnotherPartner,
        };
    }
    // partnerkit's, for a tenant of this name: this partner's, or another partner's live tenant's.
    if partner.is_some() && ns.partner.as_deref() == partner {
        WorkspaceState::Ours
    } else {
        WorkspaceState::Foreign
    }
}

fn created(t: &TenantObj) -> Option<jiff::Timestamp> {
    t.metadata_ref().creation_timestamp.as_ref().map(|c| c.0)
}

trait MetaRef {
    fn metadata_ref(&self) -> &ObjectMeta;
}
impl MetaRef for TenantObj {
    fn metadata_ref(&self) -> &ObjectMeta {
        kube::Resource::meta(self)
    }
}

/// "<namespace>/<name>" of the Tenant that holds this tenant's name, if it is another one: the
/// oldest (creationTimestamp, then namespace) of the same-named Tenants in partner namespaces.
fn name_taken_by(world: &World, cfg: &Config, ns: &str, name: &str) -> Option<String> {
    let mut holders: Vec<(Option<jiff::Timestamp>, String)> = world
        .tenants_named(name)
        .iter()
        .map(|t| (created(t), t.namespace().unwrap_or_default()))
        .filter(|(_, n)| resources::partner_of_namespace(cfg, n).is_some())
        .collect();
    holders.sort();
    match holders.first() {
        Some((_, holder)) if holder != ns => Some(format!("{holder}/{name}")),
        _ => None,
    }
}

pub async fn reconcile(obj: Arc<TenantObj>, ctx: Arc<Ctx>) -> Result<Next, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let api: Api<Tenant> = Api::namespaced(ctx.client.clone(), &ns);
    match &obj.0 {
        Ok(t) => reconcile_tenant(t, &ns, &name, &api, &ctx).await,
        Err(invalid) => ctx.report_invalid(api.clone(), invalid).await,
    }
}

async fn reconcile_tenant(
    mut t: &Tenant,
    ns: &str,
    name: &str,
    api: &Api<Tenant>,
    ctx: &Ctx,
) -> Result<Next, Error> {
    let cfg = &ctx.config;
    let world = &ctx.world;
    let patched: Tenant;
    let partner_name = resources::partner_of_namespace(cfg, ns);
    let partner_obj = partner_name.as_deref().and_then(|p| world.partner(p));
    let partner = partner_obj.as_ref().and_then(|p| p.0.as_ref().ok());
    let workspace_ns = names::workspace(cfg, name);
    let is_template = name == TEMPLATE_NAME;

    if t.metadata.deletion_timestamp.is_some() {
        return cleanup(t, name, &workspace_ns, partner_name.as_deref(), api, ctx).await;
    }

    // Dereference.
    let partner_admins: Vec<String> = match partner {
        Some(p) => world.partner_admins(p, ns),
        None => Vec::new(),
    };
    let template_obj = if is_template {
        None
    } else {
        world.tenant(ns, TEMPLATE_NAME)
    };
    let template = template_obj.as_ref().and_then(|t| t.0.as_ref().ok());
    // A workspace this process created whose event the namespace watch has not delivered yet
    // is not in the store: only the API can say what it is (the pass would otherwise take it
    // for missing, and a refusal would write a status naming no workspace). Not in flight
    // (any more): the store, read again, holds the write if its echo came in between.
    let observed_ws = match world.namespace(&workspace_ns) {
        None if ctx.memo.echoes.in_flight::<Namespace>(None, &workspace_ns) => {
            super::get_namespace_meta(&ctx.client, &workspace_ns).await?
        }
        None => world.namespace(&workspace_ns),
        seen => seen,
    };
    let workspace = workspace_state(
        observed_ws.as_ref(),
        name,
        partner.map(|_| partner_name.as_deref()).unwrap_or(None),
        |from, to| world.assigned(name, from, to),
    );
    let retained_by = observed_ws.as_ref().and_then(|n| n.partner.as_deref());
    let name_taken_by = if is_template || partner.is_none() {
        None
    } else {
        name_taken_by(world, cfg, ns, name)
    };

    // Validate and build.
    let plan = resources::tenant(&TenantInputs {
        tenant: t,
        config: cfg,
        partner,
        partner_admins: &partner_admins,
        template,
        workspace,
        name_taken_by,
        retained_by,
        older_tenants: match partner.and_then(|p| p.spec.entitlements.max_tenants) {
            Some(max) if !is_template => world.older_tenants(ns, &t.metadata, max as usize),
            _ => 0,
        },
    });

    // Apply and clean up.
    if let Some(desired) = &plan.desired {
        // With the finalizer in place, on in the same pass with the patched copy: the patch
        // changed nothing this pass reads, and its echo on the watch needs no reconcile.
        match apply::add_finalizer(api, t, TENANT_FINALIZER).await {
            Ok(Some(p)) => {
                ctx.memo.echoes.record(&p);
                patched = p;
                t = &patched;
            }
            Ok(None) => {}
            // The store's copy is behind the server's: nothing to do from this copy. The newer
            // version may be partnerkit's own status write, whose watch event is an echo and
            // brings no pass — written by a pass that refused (NameConflict, say) before the
            // event that started this one (the holder gone) made it right. So look again soon,
            // from the newer copy, whatever wrote it.
            Err(Error::Stale(what)) => {
                tracing::debug!(%what, "stale copy; looking again from the newer one");
                return Ok(Next::RequeueAfter(super::STALE_RETRY));
            }
            Err(e) => return Err(e),
        }
        materialize(ctx, name, desired, workspace, observed_ws.as_ref()).await?;
    }

    let (ready, reason, message) = match &plan.ready {
        Ok(()) if is_template => (
            true,
            RECONCILED,
            format!(
                "the template of partner {}: its tenants inherit from it",
                partner_name.unwrap_or_default()
            ),
        ),
        Ok(()) => (
            true,
            RECONCILED,
            format!("workspace {workspace_ns} is up to date"),
        ),
        Err(r) => (false, r.reason, r.message.clone()),
    };
    apply::write_status(
        ctx,
        api,
        t,
        t.status.as_ref(),
        plan.status,
        apply::Readiness {
            ready,
            reason,
            message,
        },
    )
    .await?;
    Ok(Next::AwaitChange)
}

/// Apply the workspace: the namespace (created first if missing, so a namespace someone else
/// creates meanwhile is never taken over; un-orphaned when adopted), then its ConfigMaps and
/// RoleBindings, then delete partnerkit's objects of this tenant there that are no longer wanted.
/// `workspace` is the state of the namespace as `observed` (the store's copy, or the API's).
async fn materialize(
    ctx: &Ctx,
    tenant: &str,
    desired: &TenantDesired,
    workspace: WorkspaceState,
    observed: Option<&Ns>,
) -> Result<(), Error> {
    let world = &ctx.world;
    let ws = desired.namespace.name_any();
    let ns_api: Api<Namespace> = Api::all(ctx.client.clone());
    // A namespace this process created moments ago, not yet delivered by the namespace watch,
    // was looked up in the API by the caller: Missing here means missing.
    let ns_key = apply::key::<Namespace>(None, &ws, "");
    match workspace {
        WorkspaceState::Missing => {
            // Created with every label at once (one write, not a create and an apply): a label
            // partnerkit later drops is still removed, by the strip patch of apply_namespace.
            if let Some(created) = create_if_missing(&ns_api, &desired.namespace).await? {
                ctx.memo.echoes.record(&created);
                tracing::info!(workspace = %ws, "created the workspace namespace");
                ctx.memo.record(&ns_key, &desired.namespace, None);
            } else {
                // Created meanwhile: by us (the store is behind), or by someone else.
                let now = super::get_namespace_meta(&ctx.client, &ws).await?;
                if workspace_state(
                    now.as_ref(),
                    tenant,
                    label(&desired.namespace.metadata, labels::PARTNER),
                    |_, _| false,
                ) != WorkspaceState::Ours
                {
                    return Err(Error::NamespaceTaken(ws));
                }
                apply_unless_written(&ctx.memo, &ns_api, &desired.namespace, None).await?;
            }
        }
        WorkspaceState::Orphaned => {
            // Re-checked on the namespace as the API server has it now, not as the store last
            // saw it: still orphaned, and retained by this partner or assigned to it.
            let now = ns_api
                .get_metadata_opt(&ws)
                .await
                .map_err(|e| Error::api("get", "Namespace".into(), &ws, e))?;
            if workspace_state(
                now.as_ref().map(|m| Ns::of(&m.metadata)).as_ref(),
                tenant,
                label(&desired.namespace.metadata, labels::PARTNER),
                |from, to| world.assigned(tenant, from, to),
            ) != WorkspaceState::Orphaned
            {
                return Err(Error::Stale(format!("Namespace {ws}")));
            }
            tracing::info!(workspace = %ws, "adopting the orphaned workspace");
            let unorphan = adoption_patch(
                &desired.namespace,
                now.map(|m| m.metadata).unwrap_or_default(),
            )?;
            let pp = PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            };
            ns_api
                .patch(&ws, &pp, &Patch::Merge(&unorphan))
                .await
                .map_err(|e| Error::api("patch", "Namespace".into(), &ws, e))?;
            apply_unless_written(&ctx.memo, &ns_api, &desired.namespace, None).await?;
        }
        _ => {
            apply::apply_namespace(&ctx.memo, &ns_api, &desired.namespace, || {
                world.namespace(&ws).or_else(|| observed.cloned())
            })
            .await?;
        }
    }

    let cm_api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ws);
    let rb_api: Api<RoleBinding> = Api::namespaced(ctx.client.clone(), &ws);
    // The children are independent of each other: written side by side (the client bounds
    // how many requests are in flight in all).
    let config_maps = desired.config_maps.iter().map(|cm| {
        let (api, ws) = (&cm_api, &ws);
        let name = cm.name_any();
        async move { apply_child(&ctx.memo, api, cm, || world.config_map(ws, &name)).await }
    });
    let role_bindings = desired.role_bindings.iter().map(|rb| {
        let (api, ws) = (&rb_api, &ws);
        let name = rb.name_any();
        async move { apply_child(&ctx.memo, api, rb, || world.role_binding(ws, &name)).await }
    });
    futures::future::try_join(
        futures::future::try_join_all(config_maps),
        futures::future::try_join_all(role_bindings),
    )
    .await?;
    for cm in world.config_maps_in(&ws) {
        if cm.is_tenant_child(tenant)
            && !desired
                .config_maps
                .iter()
                .any(|d| d.metadata.name.as_deref() == Some(&*cm.name))
        {
            tracing::info!(workspace = %ws, config_map = %cm.name, "deleting a stale ConfigMap");
            delete(&cm_api, &cm.name).await?;
        }
    }
    for rb in world.role_bindings_in(&ws) {
        if rb.is_tenant_child(tenant)
            && !desired
                .role_bindings
                .iter()
                .any(|d| d.metadata.name.as_deref() == Some(&*rb.name))
        {
            tracing::info!(workspace = %ws, role_binding = %rb.name, "deleting a stale RoleBinding");
            delete(&rb_api, &rb.name).await?;
        }
    }
    Ok(())
}

/// The merge patch that adopts an orphaned workspace: it drops the orphaned label and every
/// partnerkit label the new owner does not want (the old partner's apps: set at create, so the
/// apply after it does not own them and would leave them), and sets the new owner's labels in
/// the same write. Between this patch and that apply the namespace must never look like a live
/// workspace of the old partner: a pass that saw that (its watch event is not partnerkit's
/// echo) would refuse with NameConflict, and the apply's echo brings no pass to mend it.
fn adoption_patch(desired: &Namespace, now: ObjectMeta) -> Result<serde_json::Value, Error> {
    let mut patch = apply::strip_patch(&serde_json::to_value(desired)?, &json!({"metadata": now}))
        .unwrap_or_else(|| json!({"metadata": {"labels": {labels::ORPHANED: null}}}));
    for (k, v) in desired.metadata.labels.iter().flatten() {
        patch["metadata"]["labels"][k] = json!(v);
    }
    Ok(patch)
}

async fn cleanup(
    t: &Tenant,
    name: &str,
    ws: &str,
    partner: Option<&str>,
    api: &Api<Tenant>,
    ctx: &Ctx,
) -> Result<Next, Error> {
    if !t.finalizers().iter().any(|f| f == TENANT_FINALIZER) {
        return Ok(Next::AwaitChange);
    }
    let world = &ctx.world;
    // Not in the store may mean not yet in it (a Tenant deleted right after its workspace was
    // created, the namespace watch behind): ask the API before leaving a workspace behind
    // neither orphaned nor deleted.
    let observed = match world.namespace(ws) {
        Some(ns) => Some(ns),
        None if name != TEMPLATE_NAME => super::get_namespace_meta(&ctx.client, ws).await?,
        None => None,
    };
    if name != TEMPLATE_NAME
        && workspace_state(observed.as_ref(), name, partner, |_, _| false) == WorkspaceState::Ours
    {
        let ns_api: Api<Namespace> = Api::all(ctx.client.clone());
        match t.spec.deletion_policy {
            DeletionPolicy::Delete => {
                tracing::info!(workspace = %ws, "deleting the workspace (deletionPolicy Delete)");
                delete(&ns_api, ws).await?;
                ctx.memo.forget(&apply::key::<Namespace>(None, ws, ""));
            }
            DeletionPolicy::Retain => {
                tracing::info!(workspace = %ws, "orphaning the workspace (deletionPolicy Retain)");
                let pp = PatchParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                };
                let orphan = json!({"metadata": {"labels": {labels::ORPHANED: "true"}}});
                ns_api
                    .patch(ws, &pp, &Patch::Merge(&orphan))
                    .await
                    .map_err(|e| Error::api("patch", "Namespace".into(), ws, e))?;
                let rb_api: Api<RoleBinding> = Api::namespaced(ctx.client.clone(), ws);
                for rb in world.role_bindings_in(ws) {
                    if rb.is_tenant_child(name) {
                        delete(&rb_api, &rb.name).await?;
                    }
                }
            }
        }
    }
    apply::remove_finalizer(api, t, TENANT_FINALIZER).await?;
    Ok(Next::AwaitChange)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::MANAGED_BY_VALUE;
    use std::collections::BTreeMap;

    fn meta(labels: &[(&str, &str)]) -> ObjectMeta {
        ObjectMeta {
            name: Some("tenant-secretco".into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Default::default()
        }
    }

    fn ns(labels: &[(&str, &str)]) -> Ns {
        Ns::of(&meta(labels))
    }

    fn retained_by(partner: &str) -> Ns {
        ns(&[
            (labels::MANAGED_BY, MANAGED_BY_VALUE),
            (labels::TENANT, "secretco"),
            (labels::PARTNER, partner),
            (labels::ORPHANED, "true"),
        ])
    }

    /// The adoption patch alone (before the apply that follows it) leaves the namespace as the
    /// new owner's workspace: never a live workspace of the old partner, which a pass seeing
    /// that write's event would refuse (NameConflict) with no later pass to mend it. The old
    /// partner's app label and the orphaned label go; someone else's label stays.
    #[test]
    fn the_adoption_patch_alone_makes_the_workspace_the_new_owners() {
        let chat = format!("{}chat", labels::BIZAPP_PREFIX);
        let crm = format!("{}crm", labels::BIZAPP_PREFIX);
        let orphaned = meta(&[
            (labels::MANAGED_BY, MANAGED_BY_VALUE),
            (labels::TENANT, "secretco"),
            (labels::PARTNER, "beta"),
            (labels::ORPHANED, "true"),
            (&chat, "enabled"),
            ("team", "blue"),
        ]);
        let desired = Namespace {
            metadata: meta(&[
                (labels::MANAGED_BY, MANAGED_BY_VALUE),
                (labels::TENANT, "secretco"),
                (labels::PARTNER, "alpha"),
                (&crm, "enabled"),
            ]),
            ..Default::default()
        };
        let patch = adoption_patch(&desired, orphaned.clone()).unwrap();
        // A merge patch of labels (RFC 7386): null removes, a value sets; nothing else in it.
        assert_eq!(patch.as_object().unwrap().len(), 1, "{patch}");
        assert_eq!(patch["metadata"].as_object().unwrap().len(), 1, "{patch}");
        let mut after = orphaned.clone();
        let merged = after.labels.as_mut().unwrap();
        for (k, v) in patch["metadata"]["labels"].as_object().unwrap() {
            match v.as_str() {
                Some(v) => merged.insert(k.clone(), v.to_string()),
                None => merged.remove(k),
            };
        }
        assert_eq!(
            workspace_state(Some(&Ns::of(&after)), "secretco", Some("alpha"), |_, _| {
                false
            }),
            WorkspaceState::Ours,
            "{patch}"
        );
        let labels = after.labels.unwrap();
        assert_eq!(labels.get(&crm).map(String::as_str), Some("enabled"));
        assert!(
            !labels.contains_key(&chat),
            "the old partner's app: {labels:?}"
        );
        assert!(!labels.contains_key(labels::ORPHANED), "{labels:?}");
        assert_eq!(labels.get("team").map(String::as_str), Some("blue"));
    }

    #[test]
    fn a_retained_workspace_is_adoptable_by_its_partner_or_by_assignment_only() {
        let never = |_: &str, _: &str| false;
        let ws = retained_by("beta");
        assert_eq!(
            workspace_state(Some(&ws), "secretco", Some("beta"), never),
            WorkspaceState::Orphaned,
            "the partner that retained it"
        );
        assert_eq!(
            workspace_state(Some(&ws), "secretco", Some("alpha"), never),
            WorkspaceState::RetainedByAnotherPartner,
            "another partner, without an assignment"
        );
        let beta_to_alpha = |from: &str, to: &str| from == "beta" && to == "alpha";
        assert_eq!(
            workspace_state(Some(&ws), "secretco", Some("alpha"), beta_to_alpha),
            WorkspaceState::Orphaned,
            "another partner, assigned by a platform admin"
        );
        assert_eq!(
            workspace_state(Some(&ws), "secretco", Some("gamma"), beta_to_alpha),
            WorkspaceState::RetainedByAnotherPartner,
            "an assignment to someone else does not count"
        );
        let unlabelled = ns(&[
            (labels::MANAGED_BY, MANAGED_BY_VALUE),
            (labels::TENANT, "secretco"),
            (labels::ORPHANED, "true"),
        ]);
        assert_eq!(
            workspace_state(Some(&unlabelled), "secretco", Some("alpha"), never),
            WorkspaceState::RetainedByAnotherPartner,
            "no partner label: nobody's to take"
        );
        assert_eq!(
            workspace_state(Some(&ws), "secretco", None, |_, _| true),
            WorkspaceState::RetainedByAnotherPartner,
            "no partner at all"
        );
    }
}
