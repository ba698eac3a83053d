//! `auth: oidc`: the OpenID Connect authorization code flow with PKCE (S256), `state` and
//! `nonce`, against `portal.oidc.issuerUrl`.
//!
//! 1. `GET /portal/sign-in` makes a fresh `state`, `nonce` and PKCE verifier, keeps them in a
//!    short-lived encrypted cookie of their own (`partnerkit_oidc`, path `/portal/oidc`, 10
//!    minutes) and sends the browser to the provider's `authorization_endpoint` (from
//!    `/.well-known/openid-configuration`).
//! 2. `GET /portal/oidc/callback?code&state`: the `state` must equal the cookie's (else the
//!    sign-in is refused: a forged or replayed callback), the code is exchanged at the
//!    `token_endpoint` with the verifier and the client secret, and the ID token is checked:
//!    signature against the provider's JWKS (RS256/384/512, PS256/384/512, ES256/384; never
//!    `none` or HMAC), `iss` = the issuer, `aud` contains the client ID (and `azp`, if there
//!    are several audiences, is the client ID), `exp` in the future (60 s leeway), `nonce` =
//!    the cookie's. The user is `userPrefix` + the `usernameClaim` (an `email` claim must not
//!    be `email_verified: false`), the groups the `groupsClaim`, kept only if
//!    `impersonateGroups` lets them pass.
//! 3. The session cookie then holds the user, the groups and the expiry, nothing else: no
//!    token, no code. Neither is ever logged.
//!
//! The provider's metadata and keys are fetched on the first sign-in and kept; the keys are
//! fetched again when a token names a key ID they lack (key rotation), at most every 10 s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use axum_extra::extract::cookie::{Cookie, PrivateCookieJar, SameSite};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use super::session::{self, Session, random_token};
use super::{BASE, Chrome, St, see_other};
use crate::config::PortalOidc;

/// The cookie carrying one sign-in's `state`, `nonce` and PKCE verifier.
pub const FLOW_COOKIE: &str = "partnerkit_oidc";
/// Where it is sent: the callback only.
pub const FLOW_PATH: &str = "/portal/oidc";
/// The callback's path (the `redirectUrl` must end with it).
pub const CALLBACK_PATH: &str = "/portal/oidc/callback";
/// How long a sign-in at the provider may take.
const FLOW_TTL: i64 = 600;
/// How long one request to the provider may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read from the provider.
const MAX_BODY: usize = 1 << 20;

/// Why a sign-in failed (shown to the user; never carries a token or a code).
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider could not be reached or answered badly: {0}")]
    Provider(String),
    #[error("the sign-in could not be completed: {0}")]
    Refused(String),
}

type Https = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;
type HttpClient = hyper_util::client::legacy::Client<Https, Full<Bytes>>;

/// The provider's metadata (the fields the flow uses).
#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Vec<String>,
}

struct Meta {
    discovery: Discovery,
    keys: JwkSet,
    keys_fetched: Instant,
}

/// The configured provider, its client secret and what was learnt from it.
pub struct Provider {
    cfg: PortalOidc,
    client_secret: Option<String>,
    http: HttpClient,
    meta: tokio::sync::Mutex<Option<Arc<Meta>>>,
}

/// One sign-in in progress (the flow cookie's content).
#[derive(Serialize, Deserialize)]
struct Flow {
    #[serde(rename = "s")]
    state: String,
    #[serde(rename = "n")]
    nonce: String,
    #[serde(rename = "v")]
    verifier: String,
    #[serde(rename = "e")]
    expires: i64,
}

/// Who the ID token says signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The `usernameClaim`'s value (without `userPrefix`).
    pub name: String,
    pub groups: Vec<String>,
}

impl Provider {
    pub fn new(cfg: PortalOidc, client_secret: Option<String>) -> Result<Provider, String> {
        install_crypto();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| format!("portal.oidc: the system's CA certificates: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        let http =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(https);
        Ok(Provider {
            cfg,
            client_secret,
            http,
            meta: tokio::sync::Mutex::new(None),
        })
    }

    /// GET (or POST a form to) `url`, the JSON answer.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        form: Option<String>,
        what: &str,
    ) -> Result<T, OidcError> {
        let mut req = axum::http::Request::builder()
            .uri(url)
            .header("accept", "application/json");
        let body = match form {
            Some(f) => {
                req = req
                    .method("POST")
                    .header("content-type", "application/x-www-form-urlencoded");
                Full::new(Bytes::from(f))
            }
            None => Full::new(Bytes::new()),
        };
        let req = req
            .body(body)
            .map_err(|e| OidcError::Provider(format!("{what}: {e}")))?;
        let resp = tokio::time::timeout(HTTP_TIMEOUT, self.http.request(req))
            .await
            .map_err(|_| OidcError::Provider(format!("{what}: no answer in 10 s")))?
            .map_err(|e| OidcError::Provider(format!("{what}: {e}")))?;
        let status = resp.status();
        let body = tokio::time::timeout(
            HTTP_TIMEOUT,
            Limited::new(resp.into_body(), MAX_BODY).collect(),
        )
        .await
        .map_err(|_| OidcError::Provider(format!("{what}: the answer took over 10 s")))?
        .map_err(|e| OidcError::Provider(format!("{what}: {e}")))?
        .to_bytes();
        if !status.is_success() {
            // An OAuth error answer names its error; nothing else of the body is shown.
            #[derive(Deserialize)]
            struct OAuthError {
                error: String,
                #[serde(default)]
                error_description: Option<String>,
            }
            let why = serde_json::from_slice::<OAuthError>(&body)
                .map(|e| match e.error_description {
                    Some(d) => format!("{}: {d}", e.error),
                    None => e.error,
                })
                .unwrap_or_default();
            return Err(OidcError::Provider(format!("{what}: HTTP {status} {why}")));
        }
        serde_json::from_slice(&body).map_err(|e| OidcError::Provider(format!("{what}: {e}")))
    }

    /// The provider's metadata and keys: fetched once, the keys again on `refresh_keys`
    /// (a token names an unknown key) if the last fetch is over 10 s old.
    async fn meta(&self, refresh_keys: bool) -> Result<Arc<Meta>, OidcError> {
        let mut guard = self.meta.lock().await;
        if let Some(m) = guard.as_ref()
            && (!refresh_keys || m.keys_fetched.elapsed() < Duration::from_secs(10))
        {
            return Ok(m.clone());
        }
        let discovery = match guard.as_ref() {
            Some(m) => m.discovery.clone(),
            None => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    self.cfg.issuer_url.trim_end_matches('/')
                );
                let d: Discovery = self.call(&url, None, "discovery").await?;
                if d.issuer != self.cfg.issuer_url {
                    return Err(OidcError::Provider(format!(
                        "discovery: the provider calls itself {:?}, not portal.oidc.issuerUrl {:?}",
                        d.issuer, self.cfg.issuer_url
                    )));
                }
                // The code, the client secret and the keys travel over TLS (plain HTTP only
                // on loopback, as for the issuer).
                for (key, url) in [
                    ("authorization_endpoint", &d.authorization_endpoint),
                    ("token_endpoint", &d.token_endpoint),
                    ("jwks_uri", &d.jwks_uri),
                ] {
                    if !crate::config::is_https_or_loopback_http(url) {
                        return Err(OidcError::Provider(format!(
                            "discovery: {key} {url:?} is not an https URL"
                        )));
                    }
                }
                d
            }
        };
        let keys: JwkSet = self.call(&discovery.jwks_uri, None, "JWKS").await?;
        let m = Arc::new(Meta {
            discovery,
            keys,
            keys_fetched: Instant::now(),
        });
        *guard = Some(m.clone());
        Ok(m)
    }

    /// The provider's authorization URL for one sign-in.
    fn authorize_url(&self, meta: &Meta, flow: &Flow) -> Result<String, OidcError> {
        let mut url = url::Url::parse(&meta.discovery.authorization_endpoint)
            .map_err(|e| OidcError::Provider(format!("discovery: authorization_endpoint: {e}")))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.cfg.client_id)
            .append_pair("redirect_uri", &self.cfg.redirect_url)
            .append_pair("scope", &self.cfg.scopes.join(" "))
            .append_pair("state", &flow.state)
            .append_pair("nonce", &flow.nonce)
            .append_pair("code_challenge", &challenge(&flow.verifier))
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    /// The code for the ID token (the token endpoint's answer).
    async fn exchange(&self, meta: &Meta, code: &str, verifier: &str) -> Result<String, OidcError> {
        let basic = {
            let methods = &meta.discovery.token_endpoint_auth_methods_supported;
            !methods.is_empty() && !methods.iter().any(|m| m == "client_secret_post")
        };
        let form = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "authorization_code")
                .append_pair("code", code)
                .append_pair("redirect_uri", &self.cfg.redirect_url)
                .append_pair("code_verifier", verifier)
                .append_pair("client_id", &self.cfg.client_id);
            // client_secret_post where the provider offers it (it is what every provider takes in
            // the body); a public client (no secret) relies on PKCE alone.
            if let Some(secret) = &self.client_secret
                && !basic
            {
                form.append_pair("client_secret", secret);
            }
            form.finish()
        };
        #[derive(Deserialize)]
        struct TokenResponse {
            id_token: Option<String>,
        }
        let url = &meta.discovery.token_endpoint;
        let r: TokenResponse = if basic && self.client_secret.is_some() {
            self.call_basic(url, form).await?
        } else {
            self.call(url, Some(form), "token endpoint").await?
        };
        r.id_token.ok_or_else(|| {
            OidcError::Provider(
                "token endpoint: the answer has no id_token (is the scope openid?)".into(),
            )
        })
    }

    /// POST to the token endpoint with client_secret_basic.
    async fn call_basic<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        form: String,
    ) -> Result<T, OidcError> {
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let cred = format!(
            "{}:{}",
            enc(&self.cfg.client_id),
            enc(self.client_secret.as_deref().unwrap_or_default())
        );
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(cred)
        );
        let req = axum::http::Request::builder()
            .method("POST")
            .uri(url)
            .header("accept", "application/json")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", auth)
            .body(Full::new(Bytes::from(form)))
            .map_err(|e| OidcError::Provider(format!("token endpoint: {e}")))?;
        let resp = tokio::time::timeout(HTTP_TIMEOUT, self.http.request(req))
            .await
            .map_err(|_| OidcError::Provider("token endpoint: no answer in 10 s".into()))?
            .map_err(|e| OidcError::Provider(format!("token endpoint: {e}")))?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| OidcError::Provider(format!("token endpoint: {e}")))?
            .to_bytes();
        if !status.is_success() {
            return Err(OidcError::Provider(format!(
                "token endpoint: HTTP {status}"
            )));
        }
        serde_json::from_slice(&body)
            .map_err(|e| OidcError::Provider(format!("token endpoint: {e}")))
    }

    /// Check the ID token and say who it names.
    async fn verify(&self, id_token: &str, nonce: &str) -> Result<Identity, OidcError> {
        let header = jsonwebtoken::decode_header(id_token)
            .map_err(|e| OidcError::Refused(format!("the ID token is malformed ({e})")))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(OidcError::Refused(format!(
                "the ID token is signed with {:?}, which the portal does not accept",
                header.alg
            )));
        }
        let mut meta = self.meta(false).await?;
        let key = match find_key(&meta.keys, header.kid.as_deref(), header.alg) {
            Some(k) => k,
            None => {
                meta = self.meta(true).await?;
                find_key(&meta.keys, header.kid.as_deref(), header.alg).ok_or_else(|| {
                    OidcError::Refused(
                        "the ID token is signed by a key the provider does not publish".into(),
                    )
                })?
            }
        };
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[&self.cfg.issuer_url]);
        v.set_audience(&[&self.cfg.client_id]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.leeway = 60;
        let data =
            jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(id_token, &key, &v)
                .map_err(|e| {
                    use jsonwebtoken::errors::ErrorKind as K;
                    OidcError::Refused(match e.kind() {
                        K::InvalidSignature => "the ID token's signature does not verify".into(),
                        K::ExpiredSignature => "the ID token has expired".into(),
                        K::InvalidIssuer => "the ID token is from another issuer (iss)".into(),
                        K::InvalidAudience => "the ID token is not for this portal (aud)".into(),
                        K::MissingRequiredClaim(c) => format!("the ID token has no {c} claim"),
                        other => format!("the ID token is not valid ({other:?})"),
                    })
                })?;
        claims_identity(&data.claims, &self.cfg, nonce)
    }
}

/// The accepted signature algorithms (asymmetric only).
const ALGORITHMS: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// The JWKS key for `kid` (or, without a `kid`, the only key of the token's family).
fn find_key(keys: &JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
    let jwk = match kid {
        Some(kid) => keys.find(kid)?,
        None => {
            let mut fitting = keys
                .keys
                .iter()
                .filter(|k| DecodingKey::from_jwk(k).is_ok_and(|d| d.family() == alg.family()));
            let one = fitting.next()?;
            if fitting.next().is_some() {
                return None;
            }
            one
        }
    };
    DecodingKey::from_jwk(jwk)
        .ok()
        .filter(|d| d.family() == alg.family())
}

/// The checks beyond the signature and the registered claims: `nonce`, `azp`, the user name
/// and groups.
pub fn claims_identity(
    claims: &serde_json::Map<String, serde_json::Value>,
    cfg: &PortalOidc,
    nonce: &str,
) -> Result<Identity, OidcError> {
    use subtle::ConstantTimeEq;
    let got = claims.get("nonce").and_then(|v| v.as_str()).unwrap_or("");
    if nonce.is_empty() || !bool::from(got.as_bytes().ct_eq(nonce.as_bytes())) {
        return Err(OidcError::Refused(
            "the ID token's nonce is not this sign-in's".into(),
        ));
    }
    if let Some(serde_json::Value::Array(aud)) = claims.get("aud")
        && aud.len() > 1
        && claims.get("azp").and_then(|v| v.as_str()) != Some(cfg.client_id.as_str())
    {
        return Err(OidcError::Refused(
            "the ID token has several audiences and its azp is not this portal".into(),
        ));
    }
    let name = claims
        .get(&cfg.username_claim)
        .and_then(|v| v.as_str())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            OidcError::Refused(format!(
                "the ID token has no {:?} claim (portal.oidc.usernameClaim); does the provider need another scope?",
                cfg.username_claim
            ))
        })?;
    if cfg.username_claim == "email"
        && claims.get("email_verified").and_then(|v| v.as_bool()) == Some(false)
    {
        return Err(OidcError::Refused(
            "the provider says this e-mail address is not verified".into(),
        ));
    }
    let groups = match claims.get(&cfg.groups_claim) {
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|g| g.as_str())
            .map(String::from)
            .collect(),
        Some(serde_json::Value::String(g)) => vec![g.clone()],
        _ => vec![],
    };
    Ok(Identity {
        name: name.to_string(),
        groups,
    })
}

/// Whom the portal acts as for a verified sign-in: `userPrefix` + the `usernameClaim`'s value,
/// and only the groups `allowed` (`portal.impersonateGroups`) lets pass (the filter of every
/// request). A `system:` user is refused.
pub fn acting_as(
    who: &Identity,
    config: &crate::config::Config,
    allowed: &[String],
) -> Result<super::as_user::Identity, OidcError> {
    let user = crate::resources::user(config, &who.name);
    if user.starts_with("system:") {
        return Err(OidcError::Refused(
            "the portal does not act as system: users".into(),
        ));
    }
    Ok(super::as_user::Identity::new(&user, &who.groups, allowed))
}

/// The PKCE S256 challenge of `verifier`.
pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// `GET /portal/sign-in` with `auth: oidc`: off to the provider.
pub async fn start(st: &St, jar: PrivateCookieJar) -> Response {
    let Some(provider) = st.oidc.as_ref() else {
        return failed(st, jar, &OidcError::Provider("not configured".into()));
    };
    let meta = match provider.meta(false).await {
        Ok(m) => m,
        Err(e) => return failed(st, jar, &e),
    };
    let flow = Flow {
        state: random_token(),
        nonce: random_token(),
        verifier: random_token(),
        expires: now() + FLOW_TTL,
    };
    let url = match provider.authorize_url(&meta, &flow) {
        Ok(u) => u,
        Err(e) => return failed(st, jar, &e),
    };
    let cookie = Cookie::build((
        FLOW_COOKIE,
        serde_json::to_string(&flow).unwrap_or_default(),
    ))
    .path(FLOW_PATH)
    .http_only(true)
    // Lax: the provider's redirect back is a top-level GET navigation from its site.
    .same_site(SameSite::Lax)
    .secure(provider.cfg.redirect_url.starts_with("https:"))
    .max_age(cookie::time::Duration::seconds(FLOW_TTL))
    .build();
    // 303 to an absolute URL: the Location is the provider's.
    (
        jar.add(cookie),
        [(axum::http::header::LOCATION, url)],
        StatusCode::SEE_OTHER,
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /portal/oidc/callback`: the provider's answer.
pub async fn callback(
    State(st): State<St>,
    jar: PrivateCookieJar,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let flow: Option<Flow> = jar
        .get(FLOW_COOKIE)
        .and_then(|c| serde_json::from_str(c.value()).ok());
    // The flow is used once, whatever happens next.
    let jar = jar.remove(Cookie::build(FLOW_COOKIE).path(FLOW_PATH).build());
    let Some(flow) = flow.filter(|f| f.expires > now()) else {
        return failed(
            &st,
            jar,
            &OidcError::Refused(
                "this sign-in was not started here, or took over 10 minutes; sign in again".into(),
            ),
        );
    };
    {
        use subtle::ConstantTimeEq;
        let state = q.state.as_deref().unwrap_or_default();
        if !bool::from(state.as_bytes().ct_eq(flow.state.as_bytes())) {
            tracing::info!("portal: OIDC callback with a state that is not this browser's refused");
            return failed(
                &st,
                jar,
                &OidcError::Refused("the answer's state is not this sign-in's".into()),
            );
        }
    }
    if let Some(e) = q.error.as_deref() {
        let why = match q.error_description.as_deref() {
            Some(d) => format!("the identity provider said {e}: {d}"),
            None => format!("the identity provider said {e}"),
        };
        return failed(&st, jar, &OidcError::Refused(why));
    }
    let Some(code) = q.code.as_deref().filter(|c| !c.is_empty()) else {
        return failed(
            &st,
            jar,
            &OidcError::Refused("the identity provider sent no code".into()),
        );
    };
    let Some(provider) = st.oidc.as_ref() else {
        return failed(&st, jar, &OidcError::Provider("not configured".into()));
    };
    let who = async {
        let meta = provider.meta(false).await?;
        let id_token = provider.exchange(&meta, code, &flow.verifier).await?;
        provider.verify(&id_token, &flow.nonce).await
    }
    .await;
    let who = match who {
        Ok(w) => w,
        Err(e) => return failed(&st, jar, &e),
    };
    let acting = match acting_as(&who, &st.ctx.config, &st.cfg.impersonate_groups) {
        Ok(a) => a,
        Err(e) => return failed(&st, jar, &e),
    };
    tracing::info!(user = %acting.user, groups = acting.groups.len(), "portal: OIDC sign-in");
    let s = Session::new(
        Some(acting.user),
        who.name,
        acting.groups,
        st.cfg.session_ttl(),
    );
    let secure = provider.cfg.redirect_url.starts_with("https:");
    see_other(session::store(jar, &s, secure), &format!("{BASE}/"))
}

fn failed(st: &St, jar: PrivateCookieJar, e: &OidcError) -> Response {
    tracing::info!(error = %e, "portal: OIDC sign-in failed");
    let code = match e {
        OidcError::Provider(_) => StatusCode::BAD_GATEWAY,
        OidcError::Refused(_) => StatusCode::FORBIDDEN,
    };
    (
        jar,
        st.message(
            code,
            Chrome::default(),
            "Sign-in failed",
            &format!("Sign-in failed: {e}."),
            Some("Sign in again from the portal's start page."),
        ),
    )
        .into_response()
}

/// jsonwebtoken's crypto, on ring (the crypto rustls uses here): verification of the
/// asymmetric algorithms only. Installed once per process.
fn install_crypto() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = PROVIDER.install_default();
    });
}

static PROVIDER: jsonwebtoken::crypto::CryptoProvider = jsonwebtoken::crypto::CryptoProvider {
    signer_factory: |_, _| Err(jsonwebtoken::errors::ErrorKind::InvalidAlgorithm.into()),
    verifier_factory: ring_verifier,
    key_utils: jsonwebtoken::crypto::KeyUtils::new_unimplemented(),
};

struct RingVerifier {
    alg: Algorithm,
    key: DecodingKey,
}

fn ring_verifier(
    alg: &Algorithm,
    key: &DecodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn jsonwebtoken::crypto::JwtVerifier>> {
    if !ALGORITHMS.contains(alg) || key.family() != alg.family() {
        return Err(jsonwebtoken::errors::ErrorKind::InvalidAlgorithm.into());
    }
    Ok(Box::new(RingVerifier {
        alg: *alg,
        key: key.clone(),
    }))
}

impl jsonwebtoken::signature::Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> Result<(), jsonwebtoken::signature::Error> {
        use jsonwebtoken::DecodingKeyKind;
        use ring::signature as rs;
        let bad = |_| jsonwebtoken::signature::Error::new();
        match (self.alg, self.key.kind()) {
            (a, DecodingKeyKind::RsaModulusExponent { n, e }) => {
                let params: &rs::RsaParameters = match a {
                    Algorithm::RS256 => &rs::RSA_PKCS1_2048_8192_SHA256,
                    Algorithm::RS384 => &rs::RSA_PKCS1_2048_8192_SHA384,
                    Algorithm::RS512 => &rs::RSA_PKCS1_2048_8192_SHA512,
                    Algorithm::PS256 => &rs::RSA_PSS_2048_8192_SHA256,
                    Algorithm::PS384 => &rs::RSA_PSS_2048_8192_SHA384,
                    Algorithm::PS512 => &rs::RSA_PSS_2048_8192_SHA512,
                    _ => return Err(jsonwebtoken::signature::Error::new()),
                };
                rs::RsaPublicKeyComponents { n, e }
                    .verify(params, msg, sig)
                    .map_err(bad)
            }
            (Algorithm::ES256 | Algorithm::ES384, DecodingKeyKind::SecretOrDer(point)) => {
                let alg: &dyn rs::VerificationAlgorithm = if self.alg == Algorithm::ES256 {
                    &rs::ECDSA_P256_SHA256_FIXED
                } else {
                    &rs::ECDSA_P384_SHA384_FIXED
                };
                rs::UnparsedPublicKey::new(alg, point)
                    .verify(msg, sig)
                    .map_err(bad)
            }
            _ => Err(jsonwebtoken::signature::Error::new()),
        }
    }
}

impl jsonwebtoken::crypto::JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> PortalOidc {
        PortalOidc {
            issuer_url: "https://id.example".into(),
            client_id: "partnerkit".into(),
            client_secret_secret: None,
            username_claim: "email".into(),
            groups_claim: "groups".into(),
            redirect_url: "https://portal.example/portal/oidc/callback".into(),
            scopes: vec!["openid".into()],
        }
    }

    fn claims(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn pkce_challenge_is_base64url_sha256() {
        // Python: base64.urlsafe_b64encode(hashlib.sha256(v).digest()).rstrip(b"=")
        assert_eq!(
            challenge("dBjftJeZ4CVP-mJ92C9dS5-qE9wQ2j3F2eprdPE7kWk"),
            "t5aluN0a-rvUX41viBRKQ5SHLevpAS0cllAczSRGhis"
        );
    }

    #[test]
    fn nonce_name_and_groups_are_checked() {
        let c = cfg();
        let ok = claims(serde_json::json!({"nonce": "n1", "email": "a@b.example",
            "groups": ["g1", "g2"], "aud": ["partnerkit"]}));
        assert_eq!(
            claims_identity(&ok, &c, "n1").unwrap(),
            Identity {
                name: "a@b.example".into(),
                groups: vec!["g1".into(), "g2".into()]
            }
        );
        let e = claims_identity(&ok, &c, "n2").unwrap_err().to_string();
        assert!(e.contains("nonce"), "{e}");
        assert!(claims_identity(&ok, &c, "").is_err());
        let unverified = claims(serde_json::json!({"nonce": "n", "email": "a@b.example",
            "email_verified": false}));
        assert!(
            claims_identity(&unverified, &c, "n")
                .unwrap_err()
                .to_string()
                .contains("not verified")
        );
        let noname = claims(serde_json::json!({"nonce": "n"}));
        assert!(
            claims_identity(&noname, &c, "n")
                .unwrap_err()
                .to_string()
                .contains("usernameClaim")
        );
        let multi = claims(serde_json::json!({"nonce": "n", "email": "a@b.example",
            "aud": ["partnerkit", "other"], "azp": "other"}));
        assert!(claims_identity(&multi, &c, "n").is_err());
        let one_group =
            claims(serde_json::json!({"nonce": "n", "email": "a@b.example", "groups": "g"}));
        assert_eq!(
            claims_identity(&one_group, &c, "n").unwrap().groups,
            vec!["g"]
        );
    }

    /// A configured `usernameClaim` and `groupsClaim`, read from the config file as a
    /// platform writes it, name the user (with `userPrefix`) and the groups; the default
    /// claims are then not looked at, and a token without the configured claim is refused
    /// naming it.
    #[test]
    fn configured_claims_name_the_user_and_groups() {
        let config = crate::config::Config::from_yaml(
            "catalog: [{name: mail}]\nuserPrefix: \"oidc:\"\nportal:\n  auth: oidc\n  oidc: {issuerUrl: https://id.example, clientId: partnerkit, redirectUrl: \"https://portal.example/portal/oidc/callback\", usernameClaim: preferred_username, groupsClaim: roles}\n  impersonateGroups: [partner-admins, support]\n",
            "test",
        )
        .unwrap();
        let portal = config.portal.clone().unwrap();
        let c = portal.oidc.clone().unwrap();
        assert_eq!(c.username_claim, "preferred_username");
        assert_eq!(c.groups_claim, "roles");
        let token = claims(serde_json::json!({"nonce": "n", "aud": "partnerkit",
            "preferred_username": "alice@acme.example", "email": "other@acme.example",
            "email_verified": false, "roles": ["partner-admins", "system:masters", "auditors"],
            "groups": ["support"]}));
        let who = claims_identity(&token, &c, "n").unwrap();
        assert_eq!(who.name, "alice@acme.example");
        assert_eq!(
            who.groups,
            vec!["partner-admins", "system:masters", "auditors"]
        );
        let acting = acting_as(&who, &config, &portal.impersonate_groups).unwrap();
        assert_eq!(
            acting,
            crate::portal::as_user::Identity {
                user: "oidc:alice@acme.example".into(),
                groups: vec!["partner-admins".into()],
            }
        );

        // The configured claim missing (the default one present): refused, naming it.
        let without = claims(serde_json::json!({"nonce": "n", "aud": "partnerkit",
            "email": "alice@acme.example", "roles": ["partner-admins"]}));
        let e = claims_identity(&without, &c, "n").unwrap_err().to_string();
        assert_eq!(
            e,
            "the sign-in could not be completed: the ID token has no \"preferred_username\" claim (portal.oidc.usernameClaim); does the provider need another scope?"
        );
        // Empty or not a string: the same.
        for bad in [serde_json::json!(""), serde_json::json!(["alice"])] {
            let t = claims(serde_json::json!({"nonce": "n", "preferred_username": bad}));
            let e = claims_identity(&t, &c, "n").unwrap_err().to_string();
            assert!(e.contains("\"preferred_username\" claim"), "{e}");
        }
        // No groups claim: signed in with no groups (the default `groups` is not read).
        let no_roles = claims(
            serde_json::json!({"nonce": "n", "preferred_username": "bob",
            "groups": ["partner-admins"]}),
        );
        let who = claims_identity(&no_roles, &c, "n").unwrap();
        assert!(who.groups.is_empty(), "{who:?}");
        assert_eq!(
            acting_as(&who, &config, &portal.impersonate_groups)
                .unwrap()
                .user,
            "oidc:bob"
        );
        // A claim that makes a system: user is refused.
        let system = Identity {
            name: "system:admin".into(),
            groups: vec![],
        };
        let plain = crate::config::Config::from_yaml("catalog: [{name: mail}]\n", "test").unwrap();
        let e = acting_as(&system, &plain, &[]).unwrap_err().to_string();
        assert!(e.contains("system: users"), "{e}");
    }
}
