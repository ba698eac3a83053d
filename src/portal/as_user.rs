//! API requests made as the signed-in person: the operator's own client, with the
//! `Impersonate-User` (and `Impersonate-Group`) headers on each request. The API server then
//! authorizes the request as that person — RBAC and admission decide, never the portal — and
//! its refusal, message and all, is what the page shows.
//!
//! One client serves every identity (the headers are per request), so there is no cache of
//! per-user clients to bound, and one connection pool.

use axum::http::{HeaderName, HeaderValue};
use kube::api::{ListParams, PostParams};
use kube::core::Request;
use kube::{Client, Resource};
use serde::de::DeserializeOwned;

use crate::api::Tenant;

/// Who the API server should see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The Kubernetes user name (`userPrefix` + e-mail).
    pub user: String,
    /// Groups passed on: those of `portal.impersonateGroups` the user has, never `system:`.
    pub groups: Vec<String>,
}

impl Identity {
    /// The identity of a user with `groups`, given the groups the portal may pass on.
    pub fn new(user: &str, groups: &[String], allowed: &[String]) -> Identity {
        Identity {
            user: user.to_string(),
            groups: groups
                .iter()
                .filter(|g| !g.starts_with("system:") && allowed.contains(g))
                .cloned()
                .collect(),
        }
    }
}

/// Why the API server (or the way to it) refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The HTTP status (403, 404, 409, 422, …); 503 when the API server could not be reached.
    pub code: u16,
    /// The machine-readable reason (`Forbidden`, `AlreadyExists`, `Invalid`, `Conflict`, …).
    pub reason: String,
    /// The API server's message, as kubectl would print it.
    pub message: String,
    /// For `Invalid`: the fields the API server named (`metadata.name`, `spec.admins[0].email`).
    pub fields: Vec<(String, String)>,
}

impl From<kube::Error> for Refused {
    fn from(e: kube::Error) -> Refused {
        match e {
            kube::Error::Api(s) => Refused {
                code: s.code,
                reason: s.reason.clone(),
                message: s.message.clone(),
                fields: s
                    .details
                    .as_ref()
                    .map(|d| {
                        d.causes
                            .iter()
                            .map(|c| (c.field.clone(), c.message.clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            other => {
                tracing::warn!(error = %other, "portal: API request failed");
                Refused {
                    code: 503,
                    reason: "ServiceUnavailable".into(),
                    message: "The cluster cannot be reached right now. Try again in a minute."
                        .into(),
                    fields: vec![],
                }
            }
        }
    }
}

/// The operator's client acting as `who`.
pub struct AsUser<'a> {
    pub client: &'a Client,
    pub who: &'a Identity,
}

impl AsUser<'_> {
    fn impersonated(
        &self,
        mut req: axum::http::Request<Vec<u8>>,
    ) -> Result<axum::http::Request<Vec<u8>>, Refused> {
        let bad = |what: &str| Refused {
            code: 400,
            reason: "BadRequest".into(),
            message: format!("{what} cannot be sent in an HTTP header"),
            fields: vec![],
        };
        let h = req.headers_mut();
        h.insert(
            HeaderName::from_static("impersonate-user"),
            HeaderValue::from_str(&self.who.user).map_err(|_| bad("the user name"))?,
        );
        for g in &self.who.groups {
            h.append(
                HeaderName::from_static("impersonate-group"),
                HeaderValue::from_str(g).map_err(|_| bad("a group name"))?,
            );
        }
        Ok(req)
    }

    async fn send<T: DeserializeOwned>(
        &self,
        req: Result<axum::http::Request<Vec<u8>>, kube::core::request::Error>,
    ) -> Result<T, Refused> {
        let req = req.map_err(|e| Refused {
            code: 400,
            reason: "BadRequest".into(),
            message: e.to_string(),
            fields: vec![],
        })?;
        let req = self.impersonated(req)?;
        Ok(self.client.request::<T>(req).await?)
    }

    fn url<K: Resource<DynamicType = ()>>(ns: Option<&str>) -> Request {
        Request::new(K::url_path(&(), ns))
    }

    /// Whether the user may list `K` in `ns`: a list of at most one, as them.
    pub async fn may_list<K: Resource<DynamicType = ()> + DeserializeOwned + Clone>(
        &self,
        ns: &str,
    ) -> Result<(), Refused> {
        let lp = ListParams::default().limit(1);
        self.send::<kube::core::ObjectList<K>>(Self::url::<K>(Some(ns)).list(&lp))
            .await
            .map(|_| ())
    }

    /// Create `obj` in `ns`, as the user.
    pub async fn create<K: Resource<DynamicType = ()> + serde::Serialize + DeserializeOwned>(
        &self,
        ns: &str,
        obj: &K,
    ) -> Result<K, Refused> {
        let body = serde_json::to_vec(obj).map_err(|e| Refused {
            code: 400,
            reason: "BadRequest".into(),
            message: e.to_string(),
            fields: vec![],
        })?;
        self.send(Self::url::<K>(Some(ns)).create(&post_params(), body))
            .await
    }

    /// Delete `name` in `ns`, as the user.
    pub async fn delete<K: Resource<DynamicType = ()>>(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<(), Refused> {
        self.send::<serde_json::Value>(Self::url::<K>(Some(ns)).delete(name, &Default::default()))
            .await
            .map(|_| ())
    }

    /// Read a namespaced `K`, as the user.
    pub async fn get<K: Resource<DynamicType = ()> + DeserializeOwned>(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<K, Refused> {
        self.send(Self::url::<K>(Some(ns)).get(name, &Default::default()))
            .await
    }

    /// Whether the user may list the cluster-scoped `K`: a list of at most one, as them.
    pub async fn may_list_cluster<K: Resource<DynamicType = ()> + DeserializeOwned + Clone>(
        &self,
    ) -> Result<(), Refused> {
        let lp = ListParams::default().limit(1);
        self.send::<kube::core::ObjectList<K>>(Self::url::<K>(None).list(&lp))
            .await
            .map(|_| ())
    }

    /// Create a cluster-scoped `obj`, as the user.
    pub async fn create_cluster<
        K: Resource<DynamicType = ()> + serde::Serialize + DeserializeOwned,
    >(
        &self,
        obj: &K,
    ) -> Result<K, Refused> {
        let body = serde_json::to_vec(obj).map_err(|e| Refused {
            code: 400,
            reason: "BadRequest".into(),
            message: e.to_string(),
            fields: vec![],
        })?;
        self.send(Self::url::<K>(None).create(&post_params(), body))
            .await
    }

    /// Replace a cluster-scoped `obj` (its `metadata.resourceVersion` makes a concurrent
    /// change a 409), as the user.
    pub async fn replace_cluster<
        K: Resource<DynamicType = ()> + serde::Serialize + DeserializeOwned,
    >(
        &self,
        name: &str,
        obj: &K,
    ) -> Result<K, Refused> {
        let body = serde_json::to_vec(obj).map_err(|e| Refused {
            code: 400,
            reason: "BadRequest".into(),
            message: e.to_string(),
            fields: vec![],
        })?;
        self.send(Self::url::<K>(None).replace(name, &post_params(), body))
            .await
    }

    /// Read a cluster-scoped `K`, as the user.
    pub async fn get_cluster<K: Resource<DynamicType = ()> + DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<K, Refused> {
        self.send(Self::url::<K>(None).get(name, &Default::default()))
            .await
    }

    /// A JSON merge patch of a cluster-scoped `K`, as the user.
    pub async fn merge_patch_cluster<K: Resource<DynamicType = ()> + DeserializeOwned>(
        &self,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<K, Refused> {
        let pp = kube::api::PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        self.send(Self::url::<K>(None).patch(name, &pp, &kube::api::Patch::Merge(patch)))
            .await
    }

    fn tenants(ns: &str) -> Request {
        Request::new(Tenant::url_path(&(), Some(ns)))
    }

    /// Whether the user may list Tenants in `ns`: a list of at most one, as them (the API
    /// server's own answer, message included, rather than a guess of the portal's).
    pub async fn may_list_tenants(&self, ns: &str) -> Result<(), Refused> {
        let lp = ListParams::default().limit(1);
        self.send::<kube::core::ObjectList<Tenant>>(Self::tenants(ns).list(&lp))
            .await
            .map(|_| ())
    }

    /// Whether the user may list Tenants in every namespace (a platform admin): one list of
    /// at most one, cluster-wide, as them.
    pub async fn may_list_all_tenants(&self) -> Result<(), Refused> {
        let lp = ListParams::default().limit(1);
        let all = Request::new(Tenant::url_path(&(), None));
        self.send::<kube::core::ObjectList<Tenant>>(all.list(&lp))
            .await
            .map(|_| ())
    }

    pub async fn get_tenant(&self, ns: &str, name: &str) -> Result<Tenant, Refused> {
        self.send(Self::tenants(ns).get(name, &Default::default()))
            .await
    }

    pub async fn create_tenant(&self, ns: &str, t: &Tenant) -> Result<Tenant, Refused> {
        let body = serde_json::to_vec(t).map_err(|e| Refused {
            code: 400,
            reason: "BadRequest".into(),
            message: e.to_string(),
            fields: vec![],
        })?;
        self.send(Self::tenants(ns).create(&post_params(), body))
            .await
    }

    /// Replace a Tenant (its `metadata.resourceVersion` makes a concurrent change a 409).
    pub async fn replace_tenant(&self, ns: &str, t: &Tenant) -> Result<Tenant, Refused> {
        let name = t.metadata.name.clone().unwrap_or_default();
        let body = serde_json::to_vec(t).map_err(|e| Refused {
            code: 400,
            reason: "BadRequest".into(),
            message: e.to_string(),
            fields: vec![],
        })?;
        self.send(Self::tenants(ns).replace(&name, &post_params(), body))
            .await
    }
}

/// The portal's writes carry their own field manager, so `managedFields` tell them apart.
fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    }
}

/// The field manager of the portal's writes.
pub const FIELD_MANAGER: &str = "partnerkit-portal";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowed_non_system_groups_pass() {
        let allowed = vec!["support".to_string(), "system:masters".to_string()];
        let id = Identity::new(
            "alice@acme.example",
            &["support".into(), "system:masters".into(), "other".into()],
            &allowed,
        );
        assert_eq!(id.groups, vec!["support".to_string()]);
    }
}
