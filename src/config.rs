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
        NamespacePrefixes {
            partner: default_partner_prefix(),
            tenant: default_tenant_prefix(),
        }
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
    /// Secret (in the operator's namespace) with keys `username` and `password`; read at each
    /// delivery, so a rotated password is used without a restart.
    #[serde(default)]
    pub credentials_secret: Option<String>,
    /// Delivery attempts per invitation before it goes `Failed` (1-20).
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Wait after the first failed attempt; it doubles after each further one, up to 10m.
    #[serde(default = "default_retry_backoff")]
    pub retry_backoff: String,
    /// How long one attempt (connect, TLS, the SMTP dialogue) may take.
    #[serde(default = "default_smtp_timeout")]
    pub timeout: String,
}

fn default_smtp_port() -> u16 {
    587
}
fn default_attempts() -> u32 {
    6
}
fn default_retry_backoff() -> String {
    "5s".into()
}
fn default_smtp_timeout() -> String {
    "30s".into()
}

/// The longest wait between two delivery attempts.
pub const MAX_RETRY_BACKOFF: std::time::Duration = std::time::Duration::from_secs(600);

impl Smtp {
    /// The wait after failed attempt number `attempt` (1-based): `retryBackoff` doubled per
    /// further attempt, capped at [`MAX_RETRY_BACKOFF`].
    pub fn backoff(&self, attempt: u32) -> std::time::Duration {
        let first =
            parse_duration(&self.retry_backoff).unwrap_or(std::time::Duration::from_secs(5));
        first
            .checked_mul(1u32 << attempt.saturating_sub(1).min(20))
            .unwrap_or(MAX_RETRY_BACKOFF)
            .min(MAX_RETRY_BACKOFF)
    }
    /// The time limit of one attempt.
    pub fn timeout(&self) -> std::time::Duration {
        parse_duration(&self.timeout).unwrap_or(std::time::Duration::from_secs(30))
    }
}

/// A duration as Kubernetes writes them: `72h`, `1h30m`, `500ms`, `10s` (no sign).
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    if s.is_empty() || !s.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let d: jiff::SignedDuration = s.parse().ok()?;
    std::time::Duration::try_from(d).ok()
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
    /// How invitations are delivered; without it, each link goes into a Secret
    /// `<invite>-link` in the partner namespace for a partner admin to forward.
    #[serde(default)]
    pub smtp: Option<Smtp>,
    /// Behind a reverse proxy: the request header carrying the client's address (e.g.
    /// `X-Forwarded-For`, whose last entry is taken: the one the proxy added). Used to rate-limit
    /// the acceptance page per client; unset, the connection's peer address is used.
    #[serde(default)]
    pub client_ip_header: Option<String>,
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
        Listen {
            metrics: default_metrics(),
            health: default_health(),
            web: default_web(),
        }
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

/// Leader election: every replica watches and serves the web pages; one, the holder of a
/// `coordination.k8s.io/v1` Lease in the operator's namespace, reconciles, writes and sends mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeaderElection {
    /// Elect a leader (default true). Off, this process reconciles at once: run one replica.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The Lease's name, in the operator's namespace (POD_NAMESPACE).
    #[serde(default = "default_lease_name")]
    pub lease_name: String,
    /// How long the Lease holds without renewal: a standby takes over at most this long (plus
    /// about a second) after a leader stopped renewing. Whole seconds, at least 2s.
    #[serde(default = "default_lease_duration")]
    pub lease_duration: String,
    /// How long before the Lease expires its holder renews it; less than leaseDuration.
    #[serde(default = "default_renew_before")]
    pub renew_before: String,
    /// This replica's identity in the Lease: `POD_NAME`, else `<hostname>-<pid>`. From the
    /// environment, not the file.
    #[serde(skip)]
    pub identity: Option<String>,
}

impl Default for LeaderElection {
    fn default() -> Self {
        LeaderElection {
            enabled: true,
            lease_name: default_lease_name(),
            lease_duration: default_lease_duration(),
            renew_before: default_renew_before(),
            identity: None,
        }
    }
}

impl LeaderElection {
    /// `leaseDuration` in whole seconds (15 if it does not parse; `validate` refuses that).
    pub fn duration_seconds(&self) -> u64 {
        parse_duration(&self.lease_duration).map_or(15, |d| d.as_secs())
    }
    /// `renewBefore` in whole seconds.
    pub fn renew_before_seconds(&self) -> u64 {
        parse_duration(&self.renew_before).map_or(5, |d| d.as_secs())
    }
}

fn default_true() -> bool {
    true
}

/// How partnerkit uses the API server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiServer {
    /// Most requests partnerkit has at the API server at once (watches count only until their
    /// response starts); more wait their turn in the operator. A 429 Too Many Requests, 503
    /// or 504 answer is retried with backoff, after its Retry-After. 1 to 10000; the default,
    /// 200, is the API server's own default limit of mutating requests.
    #[serde(default = "default_max_requests_in_flight")]
    pub max_requests_in_flight: u32,
}

impl Default for ApiServer {
    fn default() -> Self {
        ApiServer {
            max_requests_in_flight: default_max_requests_in_flight(),
        }
    }
}

fn default_max_requests_in_flight() -> u32 {
    200
}
fn default_lease_name() -> String {
    "partnerkit".into()
}
fn default_lease_duration() -> String {
    "15s".into()
}
fn default_renew_before() -> String {
    "5s".into()
}

/// The web Partner Portal, served on `listen.web` beside the invitation page. Without this key
/// the portal is off (only the invitation page is served).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Portal {
    /// How people sign in: `oidc` (OpenID Connect against `portal.oidc`), `proxy` (behind an
    /// authenticating proxy such as oauth2-proxy) or `demo` (pick a user; loopback
    /// `listen.web` only).
    pub auth: String,
    /// `auth: proxy`: where the identity comes from and whom to believe.
    #[serde(default)]
    pub proxy: Option<PortalProxy>,
    /// `auth: oidc`: the OpenID Connect provider.
    #[serde(default)]
    pub oidc: Option<PortalOidc>,
    /// Secret in the operator's namespace whose key `key` (at least 32 bytes) signs and
    /// encrypts session cookies and CSRF tokens, so that every replica accepts them. Unset: a
    /// key generated per process (sessions then end when the process does, and work on that
    /// replica only: fine for `demo` and a single replica).
    #[serde(default)]
    pub session_secret: Option<String>,
    /// How long a session lasts after sign-in (default 8h; 1s to 168h).
    #[serde(default = "default_session_ttl")]
    pub session_ttl: String,
    /// The groups the portal passes on when it acts as a user (`Impersonate-Group`); groups
    /// the proxy names that are not listed here are dropped, and `system:` groups never pass.
    /// The chart grants the operator `impersonate` on exactly these groups. Empty (default):
    /// the portal acts with the user name alone.
    #[serde(default)]
    pub impersonate_groups: Vec<String>,
}

fn default_session_ttl() -> String {
    "8h".into()
}

/// The sign-in modes of the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortalAuth {
    Demo,
    Proxy,
    Oidc,
}

impl Portal {
    /// `auth` as an enum (None when it is not one of the three; `problems` names that).
    pub fn auth(&self) -> Option<PortalAuth> {
        match self.auth.as_str() {
            "demo" => Some(PortalAuth::Demo),
            "proxy" => Some(PortalAuth::Proxy),
            "oidc" => Some(PortalAuth::Oidc),
            _ => None,
        }
    }
    /// `sessionTtl` as a duration (8h if it does not parse; `problems` refuses that).
    pub fn session_ttl(&self) -> std::time::Duration {
        parse_duration(&self.session_ttl).unwrap_or(std::time::Duration::from_secs(8 * 3600))
    }
}

/// `portal.proxy`: an authenticating reverse proxy in front of the portal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortalProxy {
    /// The request header carrying the signed-in user's e-mail (`userPrefix` is prepended).
    #[serde(default = "default_user_header")]
    pub user_header: String,
    /// The request header carrying the user's groups, comma-separated.
    #[serde(default = "default_groups_header")]
    pub groups_header: String,
    /// The proxies' addresses (CIDRs, e.g. 10.0.0.0/8 or 127.0.0.1/32): the headers are
    /// believed only on connections from these; any other request is refused (403).
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

fn default_user_header() -> String {
    "X-Forwarded-Email".into()
}
fn default_groups_header() -> String {
    "X-Forwarded-Groups".into()
}

impl PortalProxy {
    /// Whether `ip` is in one of `trustedProxies` (IPv4-mapped IPv6 peers count as IPv4).
    pub fn trusts(&self, ip: std::net::IpAddr) -> bool {
        self.trusted_proxies
            .iter()
            .filter_map(|c| Cidr::parse(c))
            .any(|c| c.contains(ip))
    }
}

/// `portal.oidc`: OpenID Connect authorization code flow with PKCE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortalOidc {
    /// The provider's issuer (`iss`), an https URL; its `/.well-known/openid-configuration`
    /// is read. `http://` is accepted for a loopback host only (tests, a provider on the node).
    pub issuer_url: String,
    /// The portal's client ID at the provider (the ID token's `aud`).
    pub client_id: String,
    /// Secret in the operator's namespace whose key `clientSecret` is the client secret.
    /// Unset: a public client (PKCE alone), if the provider allows it.
    #[serde(default)]
    pub client_secret_secret: Option<String>,
    /// Where the provider sends the browser back: the portal's public URL followed by
    /// `/portal/oidc/callback` (registered at the provider as a redirect URI). Default: the
    /// origin of `invites.acceptUrl` followed by `/portal/oidc/callback`.
    #[serde(default)]
    pub redirect_url: String,
    /// The scopes asked for (default openid, email, profile; add `groups` for providers
    /// such as Dex that want it).
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The claim naming the user (`userPrefix` is prepended).
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// The claim listing the user's groups (only those of `impersonateGroups` are used).
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
}

fn default_scopes() -> Vec<String> {
    ["openid", "email", "profile"].map(String::from).to_vec()
}
fn default_username_claim() -> String {
    "email".into()
}
fn default_groups_claim() -> String {
    "groups".into()
}

/// An IP network as `address/prefix` (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse().ok()?, Some(p)),
            None => (s.parse().ok()?, None),
        };
        let max = if matches!(addr, std::net::IpAddr::V4(_)) {
            32
        } else {
            128
        };
        let prefix = match prefix {
            Some(p) if !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()) => {
                p.parse::<u8>().ok().filter(|p| *p <= max)?
            }
            Some(_) => return None,
            None => max,
        };
        Some(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let bits = |a: IpAddr| -> u128 {
            match a {
                IpAddr::V4(v) => u128::from(u32::from(v)) << 96,
                IpAddr::V6(v) => u128::from(v),
            }
        };
        if ip.is_ipv4() != self.addr.is_ipv4() {
            return false;
        }
        let mask = if self.prefix == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(self.prefix))
        };
        // IPv4 addresses sit in the top 32 bits, so one mask serves both families.
        bits(ip) & mask == bits(self.addr) & mask
    }
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
    #[serde(default)]
    pub leader_election: LeaderElection,
    #[serde(default)]
    pub api_server: ApiServer,
    /// The web Partner Portal (off without this key).
    #[serde(default)]
    pub portal: Option<Portal>,
    /// The operator's own ServiceAccount (namespace, name), from the environment
    /// (`POD_NAMESPACE`, `PARTNERKIT_SERVICE_ACCOUNT`; the chart sets both), not from the file.
    /// When known, partnerkit binds it to `partnerkit-invite-links` in each partner namespace,
    /// so that its right to Secrets covers partner namespaces only.
    #[serde(skip)]
    pub operator_account: Option<(String, String)>,
}

// ---------------------------------------------------------------------------------------------
// Loading and validation
// ---------------------------------------------------------------------------------------------

/// The longest namespace prefix: Partner and Tenant names are at most [`crate::api::MAX_NAME`]
/// (50) characters, so a prefix of at most 13 keeps every namespace name within 63.
pub const MAX_NAMESPACE_PREFIX: usize = 63 - crate::api::MAX_NAME;

impl Config {
    /// Reads and validates the configuration file at `path`.
    pub fn load(path: impl AsRef<std::path::Path>) -> crate::Result<Config> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| crate::Error::Config(format!("config {}: {e}", path.display())))?;
        Config::from_yaml(&text, &path.display().to_string())
    }

    /// Parses and validates a configuration text; `source_name` (a path, "ConfigMap x", …)
    /// prefixes every error message: `config <source_name>: <key>: <reason>`.
    pub fn from_yaml(text: &str, source_name: &str) -> crate::Result<Config> {
        let mut config: Config = serde_saphyr::from_str(text).map_err(|e| {
            // serde-saphyr names the unknown key or the expected type, with line and column;
            // quote the offending line so that the key is in the message as well.
            let mut msg = e.without_snippet().to_string().trim().replace('\n', " ");
            if let Some(loc) = e.location() {
                if !msg.contains(&format!("line {}", loc.line())) {
                    msg = format!("{msg} at line {}, column {}", loc.line(), loc.column());
                }
                let line = usize::try_from(loc.line())
                    .ok()
                    .and_then(|n| text.lines().nth(n.checked_sub(1)?));
                if let Some(line) = line.map(str::trim).filter(|l| !l.is_empty()) {
                    let shown: String = line.chars().take(100).collect();
                    msg = format!("{msg}: `{shown}`");
                }
            }
            crate::Error::Config(format!("config {source_name}: {msg}"))
        })?;
        config.fill_defaults();
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(crate::Error::Config(format!(
                "config {source_name}: {}",
                problems.join("; ")
            )))
        }
    }

    /// Defaults that depend on other keys: `portal.oidc.redirectUrl` from the origin of
    /// `invites.acceptUrl` (the portal's public address) when it is not set.
    fn fill_defaults(&mut self) {
        let accept = self.invites.accept_url.clone();
        if let Some(oidc) = self.portal.as_mut().and_then(|p| p.oidc.as_mut())
            && oidc.redirect_url.is_empty()
            && let Some(origin) = accept.as_deref().and_then(url_origin)
        {
            oidc.redirect_url = format!("{origin}/portal/oidc/callback");
        }
    }

    /// Every semantic problem of an already-parsed configuration, each as `<key>: <reason>`,
    /// in file order. Empty when the configuration is valid.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();

        if self.catalog.is_empty() {
            p.push("catalog: at least one app is required".to_string());
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, app) in self.catalog.iter().enumerate() {
            if !is_dns_label(&app.name) {
                p.push(format!(
                    "catalog[{i}].name: {:?} is not a DNS label",
                    app.name
                ));
            } else if !seen.insert(app.name.as_str()) {
                p.push(format!("catalog[{i}].name: duplicate app {:?}", app.name));
            }
        }

        let b = &self.default_branding;
        if let Some(url) = &b.logo_url
            && !is_https_url(url)
        {
            p.push(format!(
                "defaultBranding.logoUrl: {url:?} is not an https URL"
            ));
        }
        if let Some(color) = &b.primary_color
            && !is_color(color)
        {
            p.push(format!(
                "defaultBranding.primaryColor: {color:?} is not #RRGGBB"
            ));
        }
        if let Some(support) = &b.support {
            match (&support.email, &support.url) {
                (Some(email), None) => {
                    if !is_email(email) {
                        p.push(format!(
                            "defaultBranding.support.email: {email:?} is not an e-mail address"
                        ));
                    }
                }
                (None, Some(url)) => {
                    if !is_https_url(url) {
                        p.push(format!(
                            "defaultBranding.support.url: {url:?} is not an https URL"
                        ));
                    }
                }
                _ => p.push(
                    "defaultBranding.support: exactly one of email or url must be set".to_string(),
                ),
            }
        }

        let np = &self.namespace_prefixes;
        for (key, prefix) in [("partner", &np.partner), ("tenant", &np.tenant)] {
            if !is_namespace_prefix(prefix) {
                p.push(format!(
                    "namespacePrefixes.{key}: {prefix:?} must be a DNS-label prefix of at most {MAX_NAMESPACE_PREFIX} characters ending in '-'"
                ));
            }
        }
        let both_valid = is_namespace_prefix(&np.partner) && is_namespace_prefix(&np.tenant);
        if both_valid
            && (np.partner.starts_with(np.tenant.as_str())
                || np.tenant.starts_with(np.partner.as_str()))
        {
            p.push(format!(
                "namespacePrefixes: partner {:?} and tenant {:?} must differ and neither may start with the other (partner namespaces and workspaces must never collide)",
                np.partner, np.tenant
            ));
        }

        if self.user_prefix.chars().any(char::is_whitespace) {
            p.push(format!(
                "userPrefix: {:?} must not contain whitespace",
                self.user_prefix
            ));
        }

        if let Some(url) = &self.invites.accept_url
            && !is_http_url(url)
        {
            p.push(format!("invites.acceptUrl: {url:?} must be an http(s) URL"));
        }
        if let Some(smtp) = &self.invites.smtp {
            if !is_host(&smtp.host) {
                p.push(format!(
                    "invites.smtp.host: {:?} is not a host name or IP address",
                    smtp.host
                ));
            }
            if smtp.port == 0 {
                p.push("invites.smtp.port: must be 1-65535".to_string());
            }
            if !matches!(smtp.tls.as_str(), "none" | "starttls" | "tls") {
                p.push(format!(
                    "invites.smtp.tls: {:?} must be none, starttls or tls",
                    smtp.tls
                ));
            }
            if !is_email(&smtp.from) {
                p.push(format!(
                    "invites.smtp.from: {:?} is not an e-mail address",
                    smtp.from
                ));
            }
            if let Some(secret) = &smtp.credentials_secret
                && !is_dns_subdomain(secret)
            {
                p.push(format!(
                    "invites.smtp.credentialsSecret: {secret:?} is not a Secret name"
                ));
            }
            if !(1..=20).contains(&smtp.attempts) {
                p.push(format!(
                    "invites.smtp.attempts: {} must be 1-20",
                    smtp.attempts
                ));
            }
            for (key, value) in [
                ("retryBackoff", &smtp.retry_backoff),
                ("timeout", &smtp.timeout),
            ] {
                if parse_duration(value).is_none_or(|d| d.is_zero()) {
                    p.push(format!(
                        "invites.smtp.{key}: {value:?} is not a positive duration such as 5s, 1m or 500ms"
                    ));
                }
            }
            if self.invites.accept_url.is_none() {
                p.push(
                    "invites.acceptUrl: required when invites.smtp is set (the e-mail links to it)"
                        .to_string(),
                );
            }
        }
        if let Some(h) = &self.invites.client_ip_header
            && (h.is_empty()
                || !h
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'))
        {
            p.push(format!(
                "invites.clientIpHeader: {h:?} is not an HTTP header name"
            ));
        }

        let le = &self.leader_election;
        if !is_dns_subdomain(&le.lease_name) {
            p.push(format!(
                "leaderElection.leaseName: {:?} is not a Lease name",
                le.lease_name
            ));
        }
        let whole_seconds =
            |v: &str| parse_duration(v).filter(|d| d.subsec_nanos() == 0 && !d.is_zero());
        match (
            whole_seconds(&le.lease_duration),
            whole_seconds(&le.renew_before),
        ) {
            (None, _) => p.push(format!(
                "leaderElection.leaseDuration: {:?} is not a whole number of seconds such as 15s",
                le.lease_duration
            )),
            (Some(d), _) if d.as_secs() < 2 => p.push(format!(
                "leaderElection.leaseDuration: {:?} must be at least 2s",
                le.lease_duration
            )),
            (Some(_), None) => p.push(format!(
                "leaderElection.renewBefore: {:?} is not a whole number of seconds such as 5s",
                le.renew_before
            )),
            (Some(d), Some(r)) if r >= d => p.push(format!(
                "leaderElection.renewBefore: {:?} must be less than leaseDuration ({:?})",
                le.renew_before, le.lease_duration
            )),
            _ => {}
        }

        let in_flight = self.api_server.max_requests_in_flight;
        if !(1..=10_000).contains(&in_flight) {
            p.push(format!(
                "apiServer.maxRequestsInFlight: {in_flight} is not between 1 and 10000"
            ));
        }

        for (key, addr) in [
            ("metrics", &self.listen.metrics),
            ("health", &self.listen.health),
            ("web", &self.listen.web),
        ] {
            if !is_host_port(addr) {
                p.push(format!("listen.{key}: {addr:?} is not a host:port"));
            }
        }
        if let Some(portal) = &self.portal {
            self.portal_problems(portal, &mut p);
        }
        p
    }

    fn portal_problems(&self, portal: &Portal, p: &mut Vec<String>) {
        match portal.auth() {
            None => p.push(format!(
                "portal.auth: {:?} must be proxy, demo or oidc",
                portal.auth
            )),
            Some(PortalAuth::Oidc) => {
                if portal.oidc.is_none() {
                    p.push(
                        "portal.oidc: required when portal.auth is oidc (issuerUrl, clientId, redirectUrl, at least)"
                            .to_string(),
                    );
                }
            }
            Some(PortalAuth::Demo) => {
                if is_host_port(&self.listen.web) && !is_loopback_host_port(&self.listen.web) {
                    p.push(format!(
                        "portal.auth: demo lets anyone sign in as anyone, so it is only allowed on a loopback listen.web (127.0.0.1, [::1] or localhost), not {:?}",
                        self.listen.web
                    ));
                }
            }
            Some(PortalAuth::Proxy) => {
                if portal.proxy.is_none() {
                    p.push(
                        "portal.proxy: required when portal.auth is proxy (trustedProxies, at least)"
                            .to_string(),
                    );
                }
            }
        }
        if let Some(proxy) = &portal.proxy {
            for (key, h) in [
                ("userHeader", &proxy.user_header),
                ("groupsHeader", &proxy.groups_header),
            ] {
                if !is_header_name(h) {
                    p.push(format!(
                        "portal.proxy.{key}: {h:?} is not an HTTP header name"
                    ));
                }
            }
            if proxy.trusted_proxies.is_empty() {
                p.push(
                    "portal.proxy.trustedProxies: at least one CIDR is required (the proxies' addresses; the identity headers are believed from these only)"
                        .to_string(),
                );
            }
            for (i, c) in proxy.trusted_proxies.iter().enumerate() {
                if Cidr::parse(c).is_none() {
                    p.push(format!(
                        "portal.proxy.trustedProxies[{i}]: {c:?} is not a CIDR such as 10.0.0.0/8 or 127.0.0.1/32"
                    ));
                }
            }
        }
        if let Some(oidc) = &portal.oidc {
            if !is_https_or_loopback_http(&oidc.issuer_url) {
                p.push(format!(
                    "portal.oidc.issuerUrl: {:?} is not an https URL (http only on a loopback host)",
                    oidc.issuer_url
                ));
            }
            if !is_https_or_loopback_http(&oidc.redirect_url) {
                p.push(if oidc.redirect_url.is_empty() {
                    "portal.oidc.redirectUrl: required (or invites.acceptUrl, whose origin it then takes), such as https://portal.platform.example/portal/oidc/callback".to_string()
                } else {
                    format!(
                        "portal.oidc.redirectUrl: {:?} is not an https URL (http only on a loopback host), such as https://portal.platform.example/portal/oidc/callback",
                        oidc.redirect_url
                    )
                });
            } else if !oidc.redirect_url.ends_with("/portal/oidc/callback") {
                p.push(format!(
                    "portal.oidc.redirectUrl: {:?} must end with /portal/oidc/callback (where the portal takes the provider's answer)",
                    oidc.redirect_url
                ));
            }
            if !oidc.scopes.iter().any(|s| s == "openid") {
                p.push("portal.oidc.scopes: must contain openid".to_string());
            }
            if oidc.client_id.trim().is_empty() {
                p.push("portal.oidc.clientId: must not be empty".to_string());
            }
            if let Some(s) = &oidc.client_secret_secret
                && !is_dns_subdomain(s)
            {
                p.push(format!(
                    "portal.oidc.clientSecretSecret: {s:?} is not a Secret name"
                ));
            }
            for (key, claim) in [
                ("usernameClaim", &oidc.username_claim),
                ("groupsClaim", &oidc.groups_claim),
            ] {
                if claim.trim().is_empty() {
                    p.push(format!("portal.oidc.{key}: must not be empty"));
                }
            }
        }
        if let Some(s) = &portal.session_secret
            && !is_dns_subdomain(s)
        {
            p.push(format!("portal.sessionSecret: {s:?} is not a Secret name"));
        }
        match parse_duration(&portal.session_ttl) {
            Some(d) if d.as_secs() >= 1 && d.as_secs() <= 7 * 24 * 3600 => {}
            _ => p.push(format!(
                "portal.sessionTtl: {:?} must be a duration from 1s to 168h, such as 8h",
                portal.session_ttl
            )),
        }
        for (i, g) in portal.impersonate_groups.iter().enumerate() {
            if g.is_empty() || g.starts_with("system:") || g.chars().any(char::is_control) {
                p.push(format!(
                    "portal.impersonateGroups[{i}]: {g:?} is not a group the portal may act with (not empty, not system:)"
                ));
            }
        }
    }

    /// The catalog entry of a BizApp, if the platform offers it.
    pub fn catalog_app(&self, name: &str) -> Option<&CatalogApp> {
        self.catalog.iter().find(|a| a.name == name)
    }

    /// Names of the catalog's premium apps, in catalog order.
    pub fn premium_apps(&self) -> impl Iterator<Item = &str> {
        self.catalog
            .iter()
            .filter(|a| a.premium)
            .map(|a| a.name.as_str())
    }
}

// Small validators mirroring the CRD schema patterns of `crate::api` (no regex dependency).

/// RFC 1123 label: 1-63 lower-case alphanumerics or '-', starting and ending alphanumeric.
pub(crate) fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A label value: at most 63 characters, alphanumerics, '-', '_' or '.', starting and ending
/// alphanumeric (or empty).
pub(crate) fn is_label_value(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b.first().is_none_or(u8::is_ascii_alphanumeric)
        && b.last().is_none_or(u8::is_ascii_alphanumeric)
}

/// RFC 1123 subdomain: dot-separated DNS labels, at most 253 characters.
pub(crate) fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// A namespace prefix: a DNS label's beginning ending in '-', at most 13 characters, so that
/// prefix + a 50-character name is still a DNS label.
pub(crate) fn is_namespace_prefix(s: &str) -> bool {
    s.len() >= 2
        && s.len() <= MAX_NAMESPACE_PREFIX
        && s.ends_with('-')
        && is_dns_label(&s[..s.len() - 1])
}

/// `#RRGGBB`.
pub(crate) fn is_color(s: &str) -> bool {
    s.len() == 7 && s.starts_with('#') && s[1..].bytes().all(|c| c.is_ascii_hexdigit())
}

/// The `api::EMAIL` pattern: local part of `[A-Za-z0-9._%+-]`, '@', a domain of two or more labels.
pub(crate) fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let domain_label = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    };
    s.len() <= 254
        && !local.is_empty()
        && local
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._%+-".contains(&c))
        && domain.split('.').count() >= 2
        && domain.split('.').all(domain_label)
}

fn is_url_with_scheme(s: &str, schemes: &[&str]) -> bool {
    schemes.iter().any(|scheme| {
        s.strip_prefix(scheme)
            .and_then(|rest| rest.strip_prefix("://"))
            .is_some_and(|rest| {
                rest.chars()
                    .next()
                    .is_some_and(|c| !c.is_whitespace() && !"/$.?#".contains(c))
                    && !rest.chars().any(char::is_whitespace)
            })
    })
}

/// The `api::HTTPS_URL` pattern.
pub(crate) fn is_https_url(s: &str) -> bool {
    is_url_with_scheme(s, &["https"])
}

/// Like [`is_https_url`], also allowing `http://` (e.g. a portal behind a local proxy).
pub(crate) fn is_http_url(s: &str) -> bool {
    is_url_with_scheme(s, &["http", "https"])
}

/// `scheme://authority` of an http(s) URL.
fn url_origin(s: &str) -> Option<String> {
    let (scheme, rest) = s.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (is_http_url(s) && !authority.is_empty()).then(|| format!("{scheme}://{authority}"))
}

/// An https URL, or an http URL whose host is a loopback address or `localhost`.
pub(crate) fn is_https_or_loopback_http(s: &str) -> bool {
    if is_https_url(s) {
        return true;
    }
    let Some(rest) = s.strip_prefix("http://").filter(|_| is_http_url(s)) else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|c| c.is_ascii_digit()) => h,
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A host name (DNS subdomain, case-insensitive) or an IP address.
fn is_host(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
        || (!s.is_empty() && is_dns_subdomain(&s.to_ascii_lowercase()))
}

/// A token of RFC 9110 as used in header names: letters, digits, '-' and '_'.
pub(crate) fn is_header_name(h: &str) -> bool {
    !h.is_empty()
        && h.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// `host:port` whose host is a loopback address or `localhost`.
pub(crate) fn is_loopback_host_port(s: &str) -> bool {
    if let Ok(a) = s.parse::<std::net::SocketAddr>() {
        return a.ip().is_loopback();
    }
    s.rsplit_once(':')
        .is_some_and(|(host, _)| host.eq_ignore_ascii_case("localhost"))
}

/// `host:port` with a host name, IPv4 address or `[IPv6]` address, and a port number.
pub(crate) fn is_host_port(s: &str) -> bool {
    if s.parse::<std::net::SocketAddr>().is_ok() {
        return true;
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return false;
    };
    !port.is_empty()
        && port.bytes().all(|c| c.is_ascii_digit())
        && port.parse::<u16>().is_ok()
        && is_host(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example configuration of DESIGN.md, verbatim.
    pub(crate) const DESIGN_EXAMPLE: &str = include_str!("../tests/fixtures/config-design.yaml");

    const SRC: &str = "/etc/partnerkit/config.yaml";

    fn err(yaml: &str) -> String {
        match Config::from_yaml(yaml, SRC) {
            Ok(c) => panic!("expected an error, got {c:?}"),
            Err(crate::Error::Config(m)) => m,
            Err(e) => panic!("expected a config error, got {e}"),
        }
    }

    /// A minimal valid file with `extra` appended.
    fn with(extra: &str) -> String {
        format!("catalog: [{{name: mail}}]\n{extra}")
    }

    #[test]
    fn design_example_is_valid() {
        let c = Config::from_yaml(DESIGN_EXAMPLE, SRC).unwrap();
        assert_eq!(
            c.catalog,
            vec![
                CatalogApp {
                    name: "mail".into(),
                    display_name: "Mail".into(),
                    premium: false
                },
                CatalogApp {
                    name: "crm".into(),
                    display_name: "CRM".into(),
                    premium: true
                },
            ]
        );
        assert_eq!(
            c.default_branding.logo_url.as_deref(),
            Some("https://platform.example/logo.png")
        );
        assert_eq!(c.default_branding.primary_color.as_deref(), Some("#333333"));
        assert_eq!(
            c.default_branding.support,
            Some(SupportChannel {
                email: None,
                url: Some("https://help.platform.example".into())
            })
        );
        assert_eq!(c.namespace_prefixes, NamespacePrefixes::default());
        assert_eq!(c.user_prefix, "");
        assert_eq!(
            c.invites.accept_url.as_deref(),
            Some("https://portal.platform.example/invites")
        );
        assert_eq!(
            c.invites.smtp,
            Some(Smtp {
                host: "smtp.platform.example".into(),
                port: 587,
                tls: "starttls".into(),
                from: "portal@platform.example".into(),
                credentials_secret: Some("partnerkit-smtp".into()),
                attempts: 6,
                retry_backoff: "5s".into(),
                timeout: "30s".into(),
            })
        );
        assert_eq!(c.listen, Listen::default());
        assert_eq!(c.catalog_app("crm").map(|a| a.premium), Some(true));
        assert!(c.catalog_app("nope").is_none());
        assert_eq!(c.premium_apps().collect::<Vec<_>>(), vec!["crm"]);
    }

    #[test]
    fn minimal_file_gets_defaults() {
        let c = Config::from_yaml("catalog:\n  - name: mail\n", SRC).unwrap();
        assert_eq!(
            c.catalog,
            vec![CatalogApp {
                name: "mail".into(),
                display_name: String::new(),
                premium: false
            }]
        );
        assert_eq!(c.default_branding, DefaultBranding::default());
        assert_eq!(c.namespace_prefixes.partner, "partner-");
        assert_eq!(c.namespace_prefixes.tenant, "tenant-");
        assert_eq!(c.user_prefix, "");
        assert_eq!(c.invites, Invites::default());
        assert_eq!(c.listen.metrics, "0.0.0.0:8080");
        assert_eq!(c.listen.health, "0.0.0.0:8081");
        assert_eq!(c.listen.web, "0.0.0.0:8443");
    }

    #[test]
    fn smtp_defaults() {
        let c = Config::from_yaml(
            &with("invites: {acceptUrl: \"https://p.example/i\", smtp: {host: mail.example, from: a@b.example}}\n"),
            SRC,
        )
        .unwrap();
        let smtp = c.invites.smtp.unwrap();
        assert_eq!(
            (
                smtp.port,
                smtp.tls.as_str(),
                smtp.credentials_secret.clone()
            ),
            (587, "starttls", None)
        );
        assert_eq!(smtp.attempts, 6);
        // 5s, doubling, capped at 10 minutes.
        let waits: Vec<u64> = (1..=10).map(|a| smtp.backoff(a).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 600, 600, 600]);
        assert_eq!(smtp.timeout(), std::time::Duration::from_secs(30));
    }

    #[test]
    fn smtp_retries_and_timeouts_are_checked() {
        let e = err(&with(
            "invites: {acceptUrl: \"https://p.example/i\", smtp: {host: h.example, from: a@b.example, attempts: 0, retryBackoff: soon, timeout: 0s}}\n",
        ));
        for key in [
            "invites.smtp.attempts: 0 must be 1-20",
            "invites.smtp.retryBackoff: \"soon\" is not a positive duration",
            "invites.smtp.timeout: \"0s\" is not a positive duration",
        ] {
            assert!(e.contains(key), "{key} in {e}");
        }
        let c = Config::from_yaml(
            &with("invites: {acceptUrl: \"https://p.example/i\", smtp: {host: h.example, from: a@b.example, attempts: 3, retryBackoff: 250ms}}\n"),
            SRC,
        )
        .unwrap();
        let smtp = c.invites.smtp.unwrap();
        assert_eq!(smtp.backoff(1), std::time::Duration::from_millis(250));
        assert_eq!(smtp.backoff(3), std::time::Duration::from_millis(1000));
    }

    #[test]
    fn leader_election_defaults_and_checks() {
        let c = Config::from_yaml(&with(""), SRC).unwrap();
        assert!(c.leader_election.enabled);
        assert_eq!(c.leader_election.lease_name, "partnerkit");
        assert_eq!(
            (
                c.leader_election.duration_seconds(),
                c.leader_election.renew_before_seconds()
            ),
            (15, 5)
        );
        let c = Config::from_yaml(
            &with("leaderElection: {enabled: false, leaseName: my-lease, leaseDuration: 30s, renewBefore: 10s}\n"),
            SRC,
        )
        .unwrap();
        assert!(!c.leader_election.enabled);
        assert_eq!(c.leader_election.duration_seconds(), 30);
        for (yaml, want) in [
            (
                "{leaseName: My_Lease}",
                "leaderElection.leaseName: \"My_Lease\" is not a Lease name",
            ),
            (
                "{leaseDuration: 1500ms}",
                "leaderElection.leaseDuration: \"1500ms\" is not a whole number of seconds",
            ),
            (
                "{leaseDuration: 1s, renewBefore: 1s}",
                "leaderElection.leaseDuration: \"1s\" must be at least 2s",
            ),
            (
                "{renewBefore: soon}",
                "leaderElection.renewBefore: \"soon\" is not a whole number of seconds",
            ),
            (
                "{leaseDuration: 5s, renewBefore: 5s}",
                "leaderElection.renewBefore: \"5s\" must be less than leaseDuration (\"5s\")",
            ),
        ] {
            let e = err(&with(&format!("leaderElection: {yaml}\n")));
            assert!(e.contains(want), "{want} in {e}");
        }
        assert!(err(&with("leaderElection: {lease: x}\n")).contains("leaderElection"));
    }

    #[test]
    fn api_server_in_flight_limit_defaults_to_the_servers_and_is_bounded() {
        let c = Config::from_yaml(&with(""), SRC).unwrap();
        assert_eq!(c.api_server.max_requests_in_flight, 200);
        let c = Config::from_yaml(&with("apiServer: {maxRequestsInFlight: 50}\n"), SRC).unwrap();
        assert_eq!(c.api_server.max_requests_in_flight, 50);
        for (n, want) in [(0, "0 is not between 1 and 10000"), (10001, "10001 is not")] {
            let e = err(&with(&format!("apiServer: {{maxRequestsInFlight: {n}}}\n")));
            assert!(
                e.contains(&format!("apiServer.maxRequestsInFlight: {want}")),
                "{e}"
            );
        }
        assert!(err(&with("apiServer: {maxInFlight: 5}\n")).contains("maxInFlight"));
    }

    #[test]
    fn smtp_needs_an_accept_url() {
        assert_eq!(
            err(&with(
                "invites: {smtp: {host: h.example, from: a@b.example}}\n"
            )),
            format!(
                "config {SRC}: invites.acceptUrl: required when invites.smtp is set (the e-mail links to it)"
            )
        );
    }

    #[test]
    fn client_ip_header_is_a_header_name() {
        assert!(
            err(&with("invites: {clientIpHeader: \"X Forwarded\"}\n"))
                .contains("invites.clientIpHeader: \"X Forwarded\" is not an HTTP header name")
        );
        let c =
            Config::from_yaml(&with("invites: {clientIpHeader: X-Forwarded-For}\n"), SRC).unwrap();
        assert_eq!(
            c.invites.client_ip_header.as_deref(),
            Some("X-Forwarded-For")
        );
    }

    #[test]
    fn durations_parse_as_kubernetes_writes_them() {
        use std::time::Duration;
        assert_eq!(parse_duration("72h"), Some(Duration::from_secs(72 * 3600)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        for bad in ["", "h", "-5s", "5", "five seconds", "+5s"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn load_reads_a_file_and_names_it() {
        let dir =
            std::env::temp_dir().join(format!("partnerkit-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.yaml");
        std::fs::write(&good, DESIGN_EXAMPLE).unwrap();
        assert_eq!(Config::load(&good).unwrap().catalog.len(), 2);
        let bad = dir.join("bad.yaml");
        std::fs::write(&bad, "catalog: []\n").unwrap();
        let e = Config::load(&bad).unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "config {}: catalog: at least one app is required",
                bad.display()
            )),
            "{e}"
        );
        let missing = dir.join("missing.yaml");
        let e = Config::load(&missing).unwrap_err().to_string();
        assert!(e.contains(&format!("config {}", missing.display())), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn catalog_is_required() {
        assert_eq!(
            err("catalog: []\n"),
            format!("config {SRC}: catalog: at least one app is required")
        );
        let e = err("userPrefix: x\n");
        assert!(
            e.starts_with(&format!("config {SRC}: ")) && e.contains("catalog"),
            "{e}"
        );
    }

    #[test]
    fn catalog_name_must_be_a_dns_label() {
        assert_eq!(
            err("catalog: [{name: mail}, {name: CRM}]\n"),
            format!(r#"config {SRC}: catalog[1].name: "CRM" is not a DNS label"#)
        );
    }

    #[test]
    fn catalog_names_are_unique() {
        assert_eq!(
            err("catalog: [{name: mail}, {name: crm}, {name: crm}]\n"),
            format!(r#"config {SRC}: catalog[2].name: duplicate app "crm""#)
        );
    }

    #[test]
    fn unknown_keys_are_named_with_their_position() {
        let e = err("catalog: [{name: mail}]\ncolour: red\n");
        assert!(e.starts_with(&format!("config {SRC}: ")), "{e}");
        assert!(e.contains("colour"), "{e}");
        assert!(e.contains("line 2"), "{e}");
        let e = err("catalog: [{name: mail, premum: true}]\n");
        assert!(e.contains("premum") && e.contains("line 1"), "{e}");
        let e = err(&with("listen:\n  metric: \"0.0.0.0:1\"\n"));
        assert!(e.contains("metric") && e.contains("line 3"), "{e}");
    }

    #[test]
    fn type_errors_name_the_position() {
        let e = err(&with(
            "invites: {smtp: {host: h.example, from: a@b.example, port: lots}}\n",
        ));
        assert!(e.contains("line 2") && e.contains("port: lots"), "{e}");
    }

    #[test]
    fn namespace_prefixes_are_short_dns_prefixes() {
        let reason = "must be a DNS-label prefix of at most 13 characters ending in '-'";
        for bad in [
            "tenant",
            "Tenant-",
            "-",
            "",
            "tenants-of-the-platform-",
            "-t-",
            "t_-",
        ] {
            let e = err(&with(&format!("namespacePrefixes: {{tenant: {bad:?}}}\n")));
            assert_eq!(
                e,
                format!("config {SRC}: namespacePrefixes.tenant: {bad:?} {reason}")
            );
        }
        let e = err(&with("namespacePrefixes: {partner: \"p\"}\n"));
        assert!(
            e.contains(&format!("namespacePrefixes.partner: \"p\" {reason}")),
            "{e}"
        );
        for good in ["t-", "ws-", "thirteenchar-"] {
            assert!(good.len() <= MAX_NAMESPACE_PREFIX);
            Config::from_yaml(
                &with(&format!("namespacePrefixes: {{tenant: {good}}}\n")),
                SRC,
            )
            .unwrap();
        }
    }

    #[test]
    fn namespace_prefixes_must_not_overlap() {
        for (p, t) in [("x-", "x-"), ("p-", "p-t-"), ("t-a-", "t-")] {
            let e = err(&with(&format!(
                "namespacePrefixes: {{partner: {p}, tenant: {t}}}\n"
            )));
            assert!(
                e.contains("namespacePrefixes: partner") && e.contains("must differ"),
                "{e}"
            );
        }
    }

    #[test]
    fn primary_color_must_be_rrggbb() {
        assert_eq!(
            err(&with("defaultBranding: {primaryColor: blue}\n")),
            format!(r#"config {SRC}: defaultBranding.primaryColor: "blue" is not #RRGGBB"#)
        );
        for bad in ["#12345", "#1234567", "123456", "#12345g"] {
            assert!(
                err(&with(&format!(
                    "defaultBranding: {{primaryColor: {bad:?}}}\n"
                )))
                .contains("primaryColor")
            );
        }
        Config::from_yaml(&with("defaultBranding: {primaryColor: \"#aBc123\"}\n"), SRC).unwrap();
    }

    #[test]
    fn logo_and_support_urls_must_be_https() {
        assert_eq!(
            err(&with(
                "defaultBranding: {logoUrl: http://x.example/l.png}\n"
            )),
            format!(
                r#"config {SRC}: defaultBranding.logoUrl: "http://x.example/l.png" is not an https URL"#
            )
        );
        assert_eq!(
            err(&with(
                "defaultBranding: {support: {url: \"ftp://x.example\"}}\n"
            )),
            format!(
                r#"config {SRC}: defaultBranding.support.url: "ftp://x.example" is not an https URL"#
            )
        );
        assert!(
            err(&with("defaultBranding: {logoUrl: \"https://a b\"}\n"))
                .contains("defaultBranding.logoUrl")
        );
    }

    #[test]
    fn support_needs_exactly_one_channel() {
        let msg = format!(
            "config {SRC}: defaultBranding.support: exactly one of email or url must be set"
        );
        assert_eq!(err(&with("defaultBranding: {support: {}}\n")), msg);
        assert_eq!(
            err(&with(
                "defaultBranding: {support: {email: a@b.example, url: \"https://b.example\"}}\n"
            )),
            msg
        );
        assert_eq!(
            err(&with("defaultBranding: {support: {email: nobody}}\n")),
            format!(
                r#"config {SRC}: defaultBranding.support.email: "nobody" is not an e-mail address"#
            )
        );
        let c = Config::from_yaml(
            &with("defaultBranding: {support: {email: help@platform.example}}\n"),
            SRC,
        )
        .unwrap();
        assert_eq!(
            c.default_branding.support.unwrap().email.as_deref(),
            Some("help@platform.example")
        );
    }

    #[test]
    fn smtp_tls_is_an_enum() {
        assert_eq!(
            err(&with(
                "invites: {acceptUrl: \"https://p.example/i\", smtp: {host: h.example, from: a@b.example, tls: ssl}}\n"
            )),
            format!(r#"config {SRC}: invites.smtp.tls: "ssl" must be none, starttls or tls"#)
        );
        for ok in ["none", "starttls", "tls"] {
            Config::from_yaml(
                &with(&format!(
                    "invites: {{acceptUrl: \"https://p.example/i\", smtp: {{host: h.example, from: a@b.example, tls: {ok}}}}}\n"
                )),
                SRC,
            )
            .unwrap();
        }
    }

    #[test]
    fn smtp_fields_are_checked() {
        let e = err(&with(
            "invites: {smtp: {host: \"bad host\", from: nobody, port: 0, credentialsSecret: Bad_Name}}\n",
        ));
        for key in [
            "invites.smtp.host",
            "invites.smtp.from",
            "invites.smtp.port",
            "invites.smtp.credentialsSecret",
        ] {
            assert!(e.contains(key), "{key} in {e}");
        }
        Config::from_yaml(
            &with("invites: {acceptUrl: \"http://127.0.0.1:8443/invites\", smtp: {host: 127.0.0.1, port: 8025, tls: none, from: a@b.example}}\n"),
            SRC,
        )
        .unwrap();
    }

    #[test]
    fn accept_url_must_be_http_or_https() {
        assert_eq!(
            err(&with("invites: {acceptUrl: portal.example/invites}\n")),
            format!(
                r#"config {SRC}: invites.acceptUrl: "portal.example/invites" must be an http(s) URL"#
            )
        );
        Config::from_yaml(
            &with("invites: {acceptUrl: \"http://127.0.0.1:8443/invites\"}\n"),
            SRC,
        )
        .unwrap();
    }

    #[test]
    fn listen_addresses_are_host_port() {
        for (key, bad) in [
            ("metrics", "8080"),
            ("health", "0.0.0.0"),
            ("web", "localhost:http"),
            ("web", ":8443"),
            ("metrics", "h:70000"),
        ] {
            assert_eq!(
                err(&with(&format!("listen: {{{key}: {bad:?}}}\n"))),
                format!("config {SRC}: listen.{key}: {bad:?} is not a host:port")
            );
        }
        Config::from_yaml(&with("listen: {metrics: \"localhost:9090\", health: \"[::1]:8081\", web: \"127.0.0.1:0\"}\n"), SRC)
            .unwrap();
    }

    #[test]
    fn user_prefix_without_whitespace() {
        assert!(err(&with("userPrefix: \"oidc: \"\n")).contains("userPrefix"));
        assert_eq!(
            Config::from_yaml(&with("userPrefix: \"oidc:\"\n"), SRC)
                .unwrap()
                .user_prefix,
            "oidc:"
        );
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let e = err(
            "catalog: [{name: A}]\ndefaultBranding: {primaryColor: red}\nlisten: {web: nope}\n",
        );
        assert!(
            e.contains("catalog[0].name")
                && e.contains("defaultBranding.primaryColor")
                && e.contains("listen.web"),
            "{e}"
        );
        assert_eq!(e.matches("; ").count(), 2, "{e}");
    }

    #[test]
    fn portal_is_off_by_default_and_proxy_gets_defaults() {
        assert_eq!(Config::from_yaml(&with(""), SRC).unwrap().portal, None);
        let c = Config::from_yaml(
            &with("portal: {auth: proxy, proxy: {trustedProxies: [\"10.0.0.0/8\", \"::1\"]}}\n"),
            SRC,
        )
        .unwrap();
        let portal = c.portal.unwrap();
        assert_eq!(portal.auth(), Some(PortalAuth::Proxy));
        let proxy = portal.proxy.as_ref().unwrap();
        assert_eq!(proxy.user_header, "X-Forwarded-Email");
        assert_eq!(proxy.groups_header, "X-Forwarded-Groups");
        assert_eq!(
            portal.session_ttl(),
            std::time::Duration::from_secs(8 * 3600)
        );
        assert_eq!(portal.session_secret, None);
        assert!(portal.impersonate_groups.is_empty());
        assert!(proxy.trusts("10.1.2.3".parse().unwrap()));
        assert!(
            proxy.trusts("::ffff:10.0.0.1".parse().unwrap()),
            "IPv4-mapped"
        );
        assert!(proxy.trusts("::1".parse().unwrap()));
        assert!(!proxy.trusts("11.0.0.1".parse().unwrap()));
        assert!(!proxy.trusts("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn https_or_loopback_http_urls() {
        for ok in [
            "https://id.example",
            "https://id.example/realms/p",
            "http://127.0.0.1:5556/dex",
            "http://localhost/x",
            "http://[::1]:80/",
        ] {
            assert!(is_https_or_loopback_http(ok), "{ok}");
        }
        for bad in [
            "http://id.example",
            "http://127.0.0.1.evil.example/",
            "http://localhost.evil.example",
            "ftp://127.0.0.1/",
            "",
        ] {
            assert!(!is_https_or_loopback_http(bad), "{bad}");
        }
    }

    #[test]
    fn portal_design_example_parses_with_oidc() {
        let c = Config::from_yaml(
            &with("invites: {acceptUrl: https://portal.platform.example/invites}\nportal:\n  auth: oidc\n  oidc: {issuerUrl: https://id.platform.example, clientId: partnerkit,\n         clientSecretSecret: partnerkit-oidc, usernameClaim: email, groupsClaim: groups}\n  proxy: {userHeader: X-Forwarded-Email, groupsHeader: X-Forwarded-Groups,\n          trustedProxies: [\"10.0.0.0/8\"]}\n"),
            SRC,
        )
        .unwrap();
        let portal = c.portal.unwrap();
        assert_eq!(portal.auth(), Some(PortalAuth::Oidc));
        let oidc = portal.oidc.unwrap();
        assert_eq!(
            (oidc.username_claim.as_str(), oidc.groups_claim.as_str()),
            ("email", "groups")
        );
        assert_eq!(
            oidc.redirect_url, "https://portal.platform.example/portal/oidc/callback",
            "from invites.acceptUrl's origin"
        );
        assert_eq!(oidc.scopes, ["openid", "email", "profile"]);
        // Without acceptUrl nor redirectUrl, or without the oidc block: named.
        let e = err(&with(
            "portal: {auth: oidc, oidc: {issuerUrl: https://id.example, clientId: p}}\n",
        ));
        assert!(e.contains("portal.oidc.redirectUrl: required"), "{e}");
        assert!(
            err(&with("portal: {auth: oidc}\n"))
                .contains("portal.oidc: required when portal.auth is oidc")
        );
        // http only on loopback; the callback path; openid.
        let e = err(&with(
            "portal: {auth: oidc, oidc: {issuerUrl: \"http://127.0.0.1:5556/dex\", clientId: p, redirectUrl: \"http://portal.example/portal/oidc/callback\", scopes: [email]}}\n",
        ));
        assert!(!e.contains("portal.oidc.issuerUrl"), "{e}");
        assert!(
            e.contains("portal.oidc.redirectUrl: \"http://portal.example/portal/oidc/callback\" is not an https URL"),
            "{e}"
        );
        assert!(e.contains("portal.oidc.scopes: must contain openid"), "{e}");
        let e = err(&with(
            "portal: {auth: oidc, oidc: {issuerUrl: \"http://localhost:5556\", clientId: p, redirectUrl: \"https://portal.example/callback\"}}\n",
        ));
        assert_eq!(
            e,
            format!(
                "config {SRC}: portal.oidc.redirectUrl: \"https://portal.example/callback\" must end with /portal/oidc/callback (where the portal takes the provider's answer)"
            )
        );
    }

    #[test]
    fn portal_fields_are_checked_and_named() {
        let e = err(&with(
            "portal:\n  auth: proxy\n  proxy: {userHeader: \"X Email\", trustedProxies: [\"10.0.0.0/33\", nonsense]}\n  oidc: {issuerUrl: \"http://id.example\", clientId: \"\", clientSecretSecret: Bad_Name}\n  sessionSecret: Not_A_Name\n  sessionTtl: 200ms\n  impersonateGroups: [\"system:masters\"]\n",
        ));
        for want in [
            "portal.proxy.userHeader: \"X Email\" is not an HTTP header name",
            "portal.proxy.trustedProxies[0]: \"10.0.0.0/33\" is not a CIDR",
            "portal.proxy.trustedProxies[1]: \"nonsense\" is not a CIDR",
            "portal.oidc.issuerUrl: \"http://id.example\" is not an https URL (http only on a loopback host)",
            "portal.oidc.clientId: must not be empty",
            "portal.oidc.clientSecretSecret: \"Bad_Name\" is not a Secret name",
            "portal.sessionSecret: \"Not_A_Name\" is not a Secret name",
            "portal.sessionTtl: \"200ms\" must be a duration from 1s to 168h",
            "portal.impersonateGroups[0]: \"system:masters\"",
        ] {
            assert!(e.contains(want), "{want} in {e}");
        }
        assert_eq!(
            err(&with("portal: {auth: saml}\n")),
            format!("config {SRC}: portal.auth: \"saml\" must be proxy, demo or oidc")
        );
        assert!(
            err(&with("portal: {auth: proxy}\n"))
                .contains("portal.proxy: required when portal.auth is proxy")
        );
        assert!(
            err(&with("portal: {auth: proxy, proxy: {}}\n"))
                .contains("portal.proxy.trustedProxies: at least one CIDR is required")
        );
        let e = err(&with("portal: {auth: proxy, proxy: {trustedProxy: []}}\n"));
        assert!(e.contains("trustedProxy") && e.contains("line 2"), "{e}");
        assert!(err(&with("portal: {proxy: {trustedProxies: []}}\n")).contains("auth"));
    }

    #[test]
    fn portal_demo_only_on_loopback() {
        for web in [
            "0.0.0.0:8443",
            "10.0.0.5:80",
            "[::]:8443",
            "portal.example:443",
        ] {
            let e = err(&with(&format!(
                "listen: {{web: \"{web}\"}}\nportal: {{auth: demo}}\n"
            )));
            assert!(
                e.contains("portal.auth: demo lets anyone sign in as anyone, so it is only allowed on a loopback listen.web")
                    && e.contains(web),
                "{e}"
            );
        }
        // The default listen.web is 0.0.0.0:8443: refused too.
        assert!(err(&with("portal: {auth: demo}\n")).contains("loopback"));
        for web in [
            "127.0.0.1:0",
            "[::1]:8443",
            "localhost:8443",
            "127.0.0.2:80",
        ] {
            Config::from_yaml(
                &with(&format!(
                    "listen: {{web: \"{web}\"}}\nportal: {{auth: demo}}\n"
                )),
                SRC,
            )
            .unwrap_or_else(|e| panic!("{web}: {e}"));
        }
    }

    #[test]
    fn cidrs() {
        let c = |s: &str| Cidr::parse(s).unwrap_or_else(|| panic!("{s}"));
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert!(c("0.0.0.0/0").contains(ip("203.0.113.7")));
        assert!(!c("0.0.0.0/0").contains(ip("2001:db8::1")));
        assert!(c("192.168.1.0/24").contains(ip("192.168.1.255")));
        assert!(!c("192.168.1.0/24").contains(ip("192.168.2.0")));
        assert!(c("10.0.0.1").contains(ip("10.0.0.1")) && !c("10.0.0.1").contains(ip("10.0.0.2")));
        assert!(c("2001:db8::/32").contains(ip("2001:db8:ffff::1")));
        assert!(!c("2001:db8::/32").contains(ip("2001:db9::1")));
        for bad in [
            "",
            "10.0.0.0/",
            "10.0.0.0/x",
            "10.0.0.0/33",
            "::/129",
            "host/8",
            "10.0.0.0/+8",
        ] {
            assert_eq!(Cidr::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn validators() {
        assert!(
            is_dns_label("a")
                && is_dns_label("a-1")
                && !is_dns_label("a-")
                && !is_dns_label(&"a".repeat(64))
        );
        assert!(
            is_email("alice@acme.example")
                && !is_email("alice@acme")
                && !is_email("@a.example")
                && !is_email("a@-a.example")
        );
        assert!(
            is_https_url("https://x")
                && !is_https_url("https://")
                && !is_https_url("https:///x")
                && !is_https_url("http://x")
        );
        assert!(is_http_url("http://x") && is_http_url("https://x"));
    }
}
