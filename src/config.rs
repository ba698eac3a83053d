//! The operator's configuration file (`--config PATH` or `PARTNERKIT_CONFIG`; the chart
//! renders it into a ConfigMap). Every key is optional except the catalog.

use serde::{Deserialize, Serialize};

/// One BizApp the platform offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CatalogApp {
    /// DNS label; the key in BizApps maps and ConfigMaps.
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    /// A premium app is off unless the template or tenant turns it on and the partner is entitled.
    #[serde(default)]
    pub premium: bool,
}

/// Branding as configured (the platform default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DefaultBranding {
    #[serde(default)]
    pub logo_url: Option<String>,
    #[serde(default)]
    pub primary_color: Option<String>,
    #[serde(default)]
    pub support: Option<SupportChannel>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SupportChannel {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespacePrefixes {
    #[serde(default = "default_partner_prefix")]
    pub partner: String,
    #[serde(default = "default_tenant_prefix")]
    pub tenant: String,
}

impl Default for NamespacePrefixes {
    fn default() -> Self {
        NamespacePrefixes { partner: default_partner_prefix(), tenant: default_tenant_prefix() }
    }
}

fn default_partner_prefix() -> String {
    "partner-".into()
}
fn default_tenant_prefix() -> String {
    "tenant-".into()
}

/// SMTP delivery of invitations (used by the invitation flow).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Smtp {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// none | starttls | tls
    #[serde(default = "default_tls")]
    pub tls: String,
    pub from: String,
    /// Secret (in the operator's namespace) with keys `username` and `password`.
    #[serde(default)]
    pub credentials_secret: Option<String>,
}

fn default_smtp_port() -> u16 {
    587
}
fn default_tls() -> String {
    "starttls".into()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Invites {
    /// Public base URL of the acceptance page.
    #[serde(default)]
    pub accept_url: Option<String>,
    #[serde(default)]
    pub smtp: Option<Smtp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Listen {
    #[serde(default = "default_metrics")]
    pub metrics: String,
    #[serde(default = "default_health")]
    pub health: String,
    #[serde(default = "default_web")]
    pub web: String,
}

impl Default for Listen {
    fn default() -> Self {
        Listen { metrics: default_metrics(), health: default_health(), web: default_web() }
    }
}

fn default_metrics() -> String {
    "0.0.0.0:8080".into()
}
fn default_health() -> String {
    "0.0.0.0:8081".into()
}
fn default_web() -> String {
    "0.0.0.0:8443".into()
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    pub catalog: Vec<CatalogApp>,
    #[serde(default)]
    pub default_branding: DefaultBranding,
    #[serde(default)]
    pub namespace_prefixes: NamespacePrefixes,
    /// Prepended to e-mails in RBAC subjects, e.g. "oidc:".
    #[serde(default)]
    pub user_prefix: String,
    #[serde(default)]
    pub invites: Invites,
    #[serde(default)]
    pub listen: Listen,
}
