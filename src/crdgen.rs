//! The CRDs as YAML: what `partnerkit crd` prints and `crds/` holds.

use kube::CustomResourceExt;

use crate::api::{Partner, PartnerAdminInvite, PartnerAssignment, Tenant};

/// Every CRD, each with its file name under `crds/`.
pub fn crds() -> Vec<(
    &'static str,
    k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
)> {
    let mut crds = vec![
        ("partners.yaml", Partner::crd()),
        ("tenants.yaml", Tenant::crd()),
        ("partneradmininvites.yaml", PartnerAdminInvite::crd()),
        ("partnerassignments.yaml", PartnerAssignment::crd()),
    ];
    for (_, crd) in &mut crds {
        declare_metadata_name(crd);
    }
    crds
}

/// Declares `metadata.name` (a string, nothing more) in every version's root schema. Each
/// kind's CEL rule on the name reports its error at `fieldPath: .metadata.name`, and the API
/// server accepts a fieldPath only if the schema declares it; at the root, `metadata` may
/// declare `name` and `generateName` and nothing else.
fn declare_metadata_name(
    crd: &mut k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
    for version in &mut crd.spec.versions {
        let Some(root) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        else {
            continue;
        };
        let name = JSONSchemaProps {
            type_: Some("string".into()),
            ..Default::default()
        };
        let metadata = JSONSchemaProps {
            type_: Some("object".into()),
            properties: Some([("name".to_string(), name)].into()),
            ..Default::default()
        };
        root.properties
            .get_or_insert_with(Default::default)
            .insert("metadata".into(), metadata);
    }
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
