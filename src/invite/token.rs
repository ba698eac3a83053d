//! Acceptance tokens: 256 random bits from the operating system, sent once in the invitation
//! link and never stored: the cluster keeps only their SHA-256 (`status.tokenHash`), and a
//! presented token is checked by hashing it and comparing the hashes in constant time.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq as _;

/// Random bytes per token (256 bits).
pub const TOKEN_BYTES: usize = 32;
/// Length of a token in its URL form (unpadded base64url of [`TOKEN_BYTES`]).
pub const TOKEN_CHARS: usize = 43;
/// Prefix of a stored hash: says which function made it.
pub const HASH_PREFIX: &str = "sha256:";

/// A fresh acceptance token. It has no `Display`, and its `Debug` is redacted, so that it cannot
/// reach a log line, an Event or a status by accident: the only way out is [`Token::expose`],
/// used to build the link.
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The operating system gave no random bytes.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct NoRandomness;

impl Token {
    /// 256 bits from the OS's random number generator (getrandom(2) on Linux).
    pub fn generate() -> Result<Token, NoRandomness> {
        use ring::rand::SecureRandom as _;
        let mut bytes = [0u8; TOKEN_BYTES];
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| NoRandomness)?;
        Ok(Token(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The hash stored in the cluster.
    pub fn hash(&self) -> String {
        hash_of(&self.0)
    }

    /// The token itself: only for the link in the e-mail (or the link Secret).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// `sha256:<hex>` of a token's URL form.
pub fn hash_of(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = String::with_capacity(HASH_PREFIX.len() + 64);
    out.push_str(HASH_PREFIX);
    for b in digest.as_ref() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Has the shape of a token: [`TOKEN_CHARS`] characters of the base64url alphabet that decode to
/// [`TOKEN_BYTES`] bytes. Anything else is malformed (a truncated or mangled link).
pub fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_CHARS
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && URL_SAFE_NO_PAD
            .decode(token)
            .is_ok_and(|b| b.len() == TOKEN_BYTES)
}

/// Whether `token` is the one whose hash is `stored`: the hashes are compared in constant time,
/// so the time a wrong guess takes says nothing about how close it was.
pub fn verify(token: &str, stored: &str) -> bool {
    let presented = hash_of(token);
    presented.len() == stored.len() && bool::from(presented.as_bytes().ct_eq(stored.as_bytes()))
}

/// The acceptance link: `<acceptUrl>/<namespace>/<name>?token=<token>`.
pub fn link(accept_url: &str, namespace: &str, name: &str, token: &Token) -> String {
    format!(
        "{}/{namespace}/{name}?token={}",
        accept_url.trim_end_matches('/'),
        token.expose()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_random_bits_in_url_form() {
        let a = Token::generate().unwrap();
        let b = Token::generate().unwrap();
        assert_eq!(a.expose().len(), TOKEN_CHARS);
        assert!(well_formed(a.expose()));
        assert_ne!(a.expose(), b.expose(), "two tokens must differ");
        assert_eq!(
            URL_SAFE_NO_PAD.decode(a.expose()).unwrap().len(),
            TOKEN_BYTES
        );
    }

    #[test]
    fn the_hash_verifies_its_token_and_nothing_else() {
        let t = Token::generate().unwrap();
        let h = t.hash();
        assert!(h.starts_with(HASH_PREFIX) && h.len() == HASH_PREFIX.len() + 64);
        assert!(
            !h.contains(t.expose()),
            "the hash must not contain the token"
        );
        assert!(verify(t.expose(), &h));
        let other = Token::generate().unwrap();
        assert!(!verify(other.expose(), &h));
        // One character off.
        let mut off = t.expose().to_string();
        let last = off.pop().unwrap();
        off.push(if last == 'A' { 'B' } else { 'A' });
        assert!(!verify(&off, &h));
        assert!(!verify(t.expose(), ""));
        assert!(!verify(t.expose(), "sha256:00"));
    }

    #[test]
    fn known_sha256() {
        assert_eq!(
            hash_of("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn malformed_tokens_are_recognised() {
        let t = Token::generate().unwrap();
        assert!(well_formed(t.expose()));
        for bad in [
            "",
            "short",
            &t.expose()[..42],
            &format!("{}A", t.expose()),
            &t.expose().replace(|c: char| c.is_ascii_alphabetic(), "+"),
            "===========================================",
            "%2e%2e%2f%2e%2e%2fetc%2fpasswd%00aaaaaaaaaaa",
        ] {
            assert!(!well_formed(bad), "{bad:?} must be malformed");
        }
    }

    #[test]
    fn debug_never_shows_the_token() {
        let t = Token::generate().unwrap();
        let shown = format!("{t:?}");
        assert!(!shown.contains(t.expose()));
        assert_eq!(shown, "Token(<redacted>)");
    }

    #[test]
    fn links_join_the_base_url_cleanly() {
        let t = Token::generate().unwrap();
        for base in [
            "https://portal.example/invites",
            "https://portal.example/invites/",
        ] {
            assert_eq!(
                link(base, "partner-acme", "invite-bob", &t),
                format!(
                    "https://portal.example/invites/partner-acme/invite-bob?token={}",
                    t.expose()
                )
            );
        }
    }
}
