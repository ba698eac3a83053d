//! The CRDs as YAML: what `partnerkit crd` prints and `crds/` holds.

use kube::CustomResourceExt;

use crate::api::{Partner, PartnerAdminInvite, Tenant};

/// Every CRD, each with its file name under `crds/`.
pub fn crds() -> Vec<(
    &'static str,
    k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
)> {
    vec![
        ("partners.yaml", Partner::crd()),
        ("tenants.yaml", Tenant::crd()),
        ("partneradmininvites.yaml", PartnerAdminInvite::crd()),
    ]
}

/// One CRD as a YAML document.
pub fn to_yaml<T: serde::Serialize>(v: &T) -> crate::Result<String> {
    serde_saphyr::to_string(v).map_err(|e| crate::Error::Config(format!("YAML encoding: {e}")))
}

/// Every CRD as one multi-document YAML text.
pub fn all_yaml() -> crate::Result<String> {
    let mut out = String::new();
    for (_, crd) in crds() {
        out.push_str("---\n");
        out.push_str(&to_yaml(&crd)?);
    }
    Ok(out)
}
