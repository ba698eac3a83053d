//! The portal's session: one cookie, authenticated and encrypted (AES-256-GCM through
//! axum-extra's `PrivateCookieJar`), holding who signed in, their groups, the CSRF token of
//! their forms and when the session ends. Nothing is stored on the server, so any replica that
//! has the same key accepts it (see [`load_key`]).
//!
//! Cookie attributes: `HttpOnly`, `SameSite=Lax`, `Path=/portal`, `Max-Age` = the session's
//! remaining life, and `Secure` when the request reached the portal over TLS (a trusted proxy's
//! `X-Forwarded-Proto: https`). The expiry is also inside the encrypted value, so a browser
//! that keeps the cookie longer gains nothing.

use axum_extra::extract::cookie::{Cookie, Key, PrivateCookieJar, SameSite};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The cookie's name.
pub const COOKIE: &str = "partnerkit_portal";
/// Where the cookie is sent: the portal's pages only, not the invitation page.
pub const PATH: &str = "/portal";

/// A session. `user` is None before sign-in (the session then only carries the CSRF token of
/// the sign-in form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The Kubernetes user name (`userPrefix` + e-mail).
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The e-mail the user signed in with (without `userPrefix`).
    #[serde(rename = "m", default)]
    pub email: String,
    /// Groups as the proxy (or demo sign-in) named them.
    #[serde(rename = "g", default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// The CSRF token every form of this session carries (256 bits, URL-safe base64).
    #[serde(rename = "c")]
    pub csrf: String,
    /// Seconds since the epoch after which the session is void.
    #[serde(rename = "e")]
    pub expires: i64,
}

impl Session {
    /// A fresh session (a new CSRF token) lasting `ttl`.
    pub fn new(
        user: Option<String>,
        email: String,
        groups: Vec<String>,
        ttl: std::time::Duration,
    ) -> Session {
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
        Session {
            user,
            email,
            groups,
            csrf: random_token(),
            expires: now().saturating_add(ttl),
        }
    }

    pub fn expired(&self) -> bool {
        now() >= self.expires
    }

    /// Whether `token` is this session's CSRF token (compared in constant time).
    pub fn csrf_ok(&self, token: &str) -> bool {
        use subtle::ConstantTimeEq;
        !self.csrf.is_empty() && bool::from(self.csrf.as_bytes().ct_eq(token.as_bytes()))
    }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// 256 random bits from the OS, URL-safe base64 without padding.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    // ring's SystemRandom is the OS's randomness; it fails only if the OS cannot give any.
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .expect("the operating system's random number generator");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// What the request's session cookie holds, if it decrypts and parses (expired or not).
pub fn read(jar: &PrivateCookieJar) -> Option<Session> {
    let c = jar.get(COOKIE)?;
    serde_json::from_str(c.value()).ok()
}

/// The jar with `session` stored (the cookie replaced).
pub fn store(jar: PrivateCookieJar, session: &Session, secure: bool) -> PrivateCookieJar {
    let value = serde_json::to_string(session).unwrap_or_default();
    let remaining = session.expires.saturating_sub(now()).max(0);
    let cookie = Cookie::build((COOKIE, value))
        .path(PATH)
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(remaining))
        .build();
    jar.add(cookie)
}

/// The jar with the session cookie removed (sign-out).
pub fn clear(jar: PrivateCookieJar) -> PrivateCookieJar {
    jar.remove(Cookie::build(COOKIE).path(PATH).build())
}

/// The cookie key: from `portal.sessionSecret` (key `key`, at least 32 bytes, in the
/// operator's namespace) when configured, so that every replica shares it; else one generated
/// for this process. The 64-byte key the cookie crate needs is SHA-512 of the Secret's value.
pub fn key_from_secret(secret: &[u8]) -> Option<Key> {
    (secret.len() >= 32)
        .then(|| Key::from(ring::digest::digest(&ring::digest::SHA512, secret).as_ref()))
}

/// Reads `portal.sessionSecret` (or generates a key when it is not configured).
pub async fn load_key(
    client: &kube::Client,
    namespace: &str,
    secret: Option<&str>,
) -> Result<Key, String> {
    let Some(name) = secret else {
        return Ok(Key::generate());
    };
    let api: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(client.clone(), namespace);
    let s = api
        .get(name)
        .await
        .map_err(|e| format!("portal.sessionSecret: reading Secret {namespace}/{name}: {e}"))?;
    let value = s
        .data
        .as_ref()
        .and_then(|d| d.get("key"))
        .map(|b| b.0.clone())
        .or_else(|| {
            s.string_data
                .as_ref()
                .and_then(|d| d.get("key"))
                .map(|v| v.clone().into_bytes())
        })
        .ok_or_else(|| {
            format!("portal.sessionSecret: Secret {namespace}/{name} has no key \"key\"")
        })?;
    key_from_secret(&value).ok_or_else(|| {
        format!(
            "portal.sessionSecret: the key \"key\" of Secret {namespace}/{name} has {} bytes; at least 32 are needed (e.g. `head -c 64 /dev/urandom`)",
            value.len()
        )
    })
}

/// Reads `portal.oidc.clientSecretSecret` (key `clientSecret`, in the operator's namespace,
/// like the session key): None when it is not configured (a public client).
pub async fn load_client_secret(
    client: &kube::Client,
    namespace: &str,
    secret: Option<&str>,
) -> Result<Option<String>, String> {
    let Some(name) = secret else {
        return Ok(None);
    };
    let api: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(client.clone(), namespace);
    let s = api.get(name).await.map_err(|e| {
        format!("portal.oidc.clientSecretSecret: reading Secret {namespace}/{name}: {e}")
    })?;
    let value = s
        .data
        .as_ref()
        .and_then(|d| d.get("clientSecret"))
        .map(|b| b.0.clone())
        .ok_or_else(|| {
            format!(
                "portal.oidc.clientSecretSecret: Secret {namespace}/{name} has no key \"clientSecret\""
            )
        })?;
    let value = String::from_utf8(value).map_err(|_| {
        format!("portal.oidc.clientSecretSecret: the key \"clientSecret\" of Secret {namespace}/{name} is not UTF-8 text")
    })?;
    let value = value.trim().to_string();
    if value.is_empty() {
        return Err(format!(
            "portal.oidc.clientSecretSecret: the key \"clientSecret\" of Secret {namespace}/{name} is empty"
        ));
    }
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_check_csrf() {
        let s = Session::new(
            Some("alice@acme.example".into()),
            "alice@acme.example".into(),
            vec![],
            std::time::Duration::from_secs(60),
        );
        assert!(!s.expired());
        assert!(s.csrf_ok(&s.csrf.clone()));
        assert!(!s.csrf_ok("wrong"));
        assert!(!s.csrf_ok(""));
        assert_eq!(s.csrf.len(), 43);
        let old = Session {
            expires: now() - 1,
            ..s.clone()
        };
        assert!(old.expired());
        assert_ne!(
            Session::new(
                None,
                String::new(),
                vec![],
                std::time::Duration::from_secs(1)
            )
            .csrf,
            s.csrf
        );
    }

    #[test]
    fn keys_need_32_bytes_and_are_stable() {
        assert!(key_from_secret(&[7u8; 31]).is_none());
        let a = key_from_secret(&[7u8; 32]).unwrap();
        let b = key_from_secret(&[7u8; 32]).unwrap();
        assert_eq!(a.master(), b.master());
        assert_ne!(a.master(), key_from_secret(&[8u8; 32]).unwrap().master());
    }
}
