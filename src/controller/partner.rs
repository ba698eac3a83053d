//! The Partner controller.
//!
//! dereference (stores) → build (`resources::partner`) → apply namespace, template (create only
//! if missing), RBAC, branding → delete stale children (by label) → status.
//!
//! Deletion (finalizer `partners.partnerkit.io/cleanup`): while the partner has tenants (its
//! template not counted) it stays, `Ready=False, reason=HasTenants`, naming them. Once they are
//! gone partnerkit deletes the template tenant (it holds no data), the per-partner ClusterRole
//! and ClusterRoleBinding, and the partner namespace — which then holds only invites, the
//! branding ConfigMap and the admins RoleBinding — and finally drops the finalizer. A namespace
//! partnerkit did not create is never deleted.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use kube::{Api, ResourceExt};

use super::apply::{
    self, apply_child, apply_if_changed, apply_unless_written, create_if_missing, delete,
};
use super::children::Ns;
use super::world::PartnerObj;
use super::{Ctx, Error, Next, RECONCILED};
use crate::api::conditions::{HAS_TENANTS, NAMESPACE_CONFLICT};
use crate::api::{Partner, PartnerStatus, Tenant};
use crate::resources::{self, PARTNER_FINALIZER, PartnerInputs, TEMPLATE_NAME, labels, names};

pub const CONTROLLER: &str = "partner";

/// Who holds a namespace, as partnerkit sees it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NsState {
    Missing,
    Ours,
    Foreign,
    Terminating,
}

/// The partner namespace: ours when labelled for this partner (and managed by partnerkit).
fn partner_ns_state(ns: Option<&Ns>, partner: &str) -> NsState {
    match ns {
        None => NsState::Missing,
        Some(n) if n.partner.as_deref() != Some(partner) || n.tenant.is_some() => NsState::Foreign,
        Some(n) if n.deleting => NsState::Terminating,
        Some(_) => NsState::Ours,
    }
}

pub async fn reconcile(obj: Arc<PartnerObj>, ctx: Arc<Ctx>) -> Result<Next, Error> {
    let api: Api<Partner> = Api::all(ctx.client.clone());
    let partner = match &obj.0 {
        Ok(p) => p,
        Err(invalid) => return ctx.report_invalid(api, invalid).await,
    };
    reconcile_partner(partner, partner.name_any(), api, ctx).await
}

async fn reconcile_partner(
    partner: &Partner,
    name: String,
    api: Api<Partner>,
    ctx: Arc<Ctx>,
) -> Result<Next, Error> {
    let cfg = &ctx.config;
    let world = &ctx.world;
    let ns = names::partner_namespace(cfg, &name);

    if partner.metadata.deletion_timestamp.is_some() {
        return cleanup(partner, &name, &ns, &api, &ctx).await;
    }
    if apply::add_finalizer(&api, partner, PARTNER_FINALIZER)
        .await?
        .is_some()
    {
        // The watch brings the object back with the finalizer and a new reconcile.
        return Ok(Next::AwaitChange);
    }

    // Dereference.
    // From an index kept on watch events: a partner's reconcile costs the same at 10 tenants as
    // at 100,000.
    let tenant_count = world.tenant_count(&ns) as u32;
    let desired = resources::partner(&PartnerInputs {
        partner,
        config: cfg,
        accepted_invites: world.accepted_invites(&ns),
        tenant_count,
    });
    let mut status = desired.status.clone();

    // The namespace.
    let ns_api: Api<Namespace> = Api::all(ctx.client.clone());
    let observed_ns = world.namespace(&ns);
    match partner_ns_state(observed_ns.as_ref(), &name) {
        NsState::Foreign => {
            let message = format!(
                "namespace {ns} exists and is not this partner's (label {}={name} missing): partnerkit does not take it over",
                labels::PARTNER
            );
            apply::write_status(
                &ctx,
                &api,
                partner,
                partner.status.as_ref(),
                status,
                apply::Readiness {
                    ready: false,
                    reason: NAMESPACE_CONFLICT,
                    message,
                },
            )
            .await?;
            return Ok(Next::AwaitChange);
        }
        NsState::Terminating => {
            let message = format!("namespace {ns} is being deleted; it is recreated once gone");
            apply::write_status(
                &ctx,
                &api,
                partner,
                partner.status.as_ref(),
                status,
                apply::Readiness {
                    ready: false,
                    reason: "NamespaceTerminating",
                    message,
                },
            )
            .await?;
            return Ok(Next::AwaitChange); // the namespace's deletion event brings us back
        }
        NsState::Missing => {
            // Create first (never adopt a namespace someone else created meanwhile), then apply.
            let bare = Namespace {
                metadata: desired.namespace.metadata.clone(),
                ..Default::default()
            };
            if let Some(created) = create_if_missing(&ns_api, &bare).await? {
                ctx.memo.echoes.record(&created);
            } else {
                // Created meanwhile: by us (the store is behind), or by someone else.
                let now = super::get_namespace_meta(&ctx.client, &ns).await?;
                if partner_ns_state(now.as_ref(), &name) != NsState::Ours {
                    return Err(Error::NamespaceTaken(ns));
                }
            }
            apply_unless_written(&ctx.memo, &ns_api, &desired.namespace, None).await?;
        }
        NsState::Ours => {
            apply::apply_namespace(&ctx.memo, &ns_api, &desired.namespace, || {
                world.namespace(&ns)
            })
            .await?;
        }
    }

    // The template tenant: created if missing, never overwritten.
    if world.tenant(&ns, TEMPLATE_NAME).is_none() {
        let tenants_api: Api<Tenant> = Api::namespaced(ctx.client.clone(), &ns);
        if create_if_missing(&tenants_api, &desired.template)
            .await?
            .is_some()
        {
            tracing::info!(namespace = %ns, "created the template tenant");
        }
    }

    // RBAC and branding.
    let rb_api: Api<RoleBinding> = Api::namespaced(ctx.client.clone(), &ns);
    let cm_api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    let cr_api: Api<ClusterRole> = Api::all(ctx.client.clone());
    let crb_api: Api<ClusterRoleBinding> = Api::all(ctx.client.clone());
    apply_child(&ctx.memo, &rb_api, &desired.admins_binding, || {
        world.role_binding(&ns, names::PARTNER_ADMINS_BINDING)
    })
    .await?;
    if let Some(rb) = &desired.operator_binding {
        apply_child(&ctx.memo, &rb_api, rb, || {
            world.role_binding(&ns, names::OPERATOR_BINDING)
        })
        .await?;
    }
    apply_child(&ctx.memo, &cm_api, &desired.branding, || {
        world.config_map(&ns, names::BRANDING)
    })
    .await?;
    let role = desired.cluster_role.name_any();
    apply_if_changed(&ctx.memo, &cr_api, &desired.cluster_role, || {
        world.cluster_role(&role)
    })
    .await?;
    apply_if_changed(&ctx.memo, &crb_api, &desired.cluster_role_binding, || {
        world.cluster_role_binding(&role)
    })
    .await?;

    // Orphans: partnerkit's objects of this partner that it no longer wants.
    for cm in world.config_maps_in(&ns) {
        if cm.is_partner_child(&name) && &*cm.name != names::BRANDING {
            delete(&cm_api, &cm.name).await?;
        }
    }
    for rb in world.role_bindings_in(&ns) {
        let wanted = &*rb.name == names::PARTNER_ADMINS_BINDING
            || (&*rb.name == names::OPERATOR_BINDING && desired.operator_binding.is_some());
        if rb.is_partner_child(&name) && !wanted {
            delete(&rb_api, &rb.name).await?;
        }
    }
    for cr in world.cluster_roles_of(&name) {
        if is_partner_child(&cr.metadata, &name) && cr.name_any() != role {
            delete(&cr_api, &cr.name_any()).await?;
        }
    }
    for crb in world.cluster_role_bindings_of(&name) {
        if is_partner_child(&crb.metadata, &name) && crb.name_any() != role {
            delete(&crb_api, &crb.name_any()).await?;
        }
    }

    status.namespace = Some(ns.clone());
    let message = format!(
        "namespace {ns}: {tenant_count} tenant(s), {} admin(s)",
        status.admins.len()
    );
    apply::write_status(
        &ctx,
        &api,
        partner,
        partner.status.as_ref(),
        status,
        apply::Readiness {
            ready: true,
            reason: RECONCILED,
            message,
        },
    )
    .await?;
    Ok(Next::AwaitChange)
}

/// A partner-level child of this partner (not a workspace object).
fn is_partner_child(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    partner: &str,
) -> bool {
    let l = meta.labels.as_ref();
    let get = |k: &str| l.and_then(|l| l.get(k)).map(String::as_str);
    get(labels::MANAGED_BY) == Some(resources::MANAGED_BY_VALUE)
        && get(labels::PARTNER) == Some(partner)
        && get(labels::TENANT).is_none()
}

async fn cleanup(
    partner: &Partner,
    name: &str,
    ns: &str,
    api: &Api<Partner>,
    ctx: &Ctx,
) -> Result<Next, Error> {
    if !partner.finalizers().iter().any(|f| f == PARTNER_FINALIZER) {
        return Ok(Next::AwaitChange);
    }
    let world = &ctx.world;
    let tenants = world.tenants_in(ns);
    let mut remaining: Vec<String> = tenants
        .iter()
        .map(|t| t.name_any())
        .filter(|n| n != TEMPLATE_NAME)
        .collect();
    if !remaining.is_empty() {
        remaining.sort();
        let count = remaining.len();
        let shown: Vec<String> = remaining.iter().take(10).cloned().collect();
        let more = if count > shown.len() {
            format!(" and {} more", count - shown.len())
        } else {
            String::new()
        };
        let message = format!(
            "partner {name} still has {count} tenant(s) ({}{more}); it is deleted once they are gone (delete or move them)",
            shown.join(", ")
        );
        let status = partner.status.clone().unwrap_or_default();
        let status = PartnerStatus {
            tenants: count as u32,
            ..status
        };
        let readiness = apply::Readiness {
            ready: false,
            reason: HAS_TENANTS,
            message,
        };
        apply::write_status(
            ctx,
            api,
            partner,
            partner.status.as_ref(),
            status,
            readiness,
        )
        .await?;
        return Ok(Next::AwaitChange); // each tenant's deletion brings us back
    }
    if world.tenant(ns, TEMPLATE_NAME).is_some() {
        let tenants_api: Api<Tenant> = Api::namespaced(ctx.client.clone(), ns);
        delete(&tenants_api, TEMPLATE_NAME).await?;
        return Ok(Next::AwaitChange); // its deletion event brings us back
    }
    let role = names::partner_cluster_role(name);
    delete(&Api::<ClusterRoleBinding>::all(ctx.client.clone()), &role).await?;
    delete(&Api::<ClusterRole>::all(ctx.client.clone()), &role).await?;
    match partner_ns_state(world.namespace(ns).as_ref(), name) {
        NsState::Ours => {
            tracing::info!(namespace = %ns, "deleting the partner namespace");
            delete(&Api::<Namespace>::all(ctx.client.clone()), ns).await?;
        }
        NsState::Foreign => {
            tracing::info!(namespace = %ns, "leaving namespace {ns}: partnerkit did not create it")
        }
        NsState::Missing | NsState::Terminating => {}
    }
    apply::remove_finalizer(api, partner, PARTNER_FINALIZER).await?;
    tracing::info!("partner cleaned up");
    Ok(Next::AwaitChange)
}
