//! Partner admin invitations: the token ([`token`]), the e-mail ([`mail`]) and the acceptance
//! page ([`web`]). The controller that drives a PartnerAdminInvite through its phases is
//! [`crate::controller::invite`].
//!
//! ```text
//!  kubectl apply PartnerAdminInvite ─► controller: token (256 bits, OS) ─► status.tokenHash
//!        │                                  │
//!        │                  e-mail (SMTP, retried) or Secret <invite>-link ─► phase Sent
//!        ▼                                  ▼
//!  invitee opens <acceptUrl>/<ns>/<name>?token=… ─► GET: the page ─► POST: hash matches,
//!  not expired, not used ─► phase Accepted ─► partner controller: e-mail in every admin binding
//! ```

pub mod mail;
pub mod token;
pub mod web;

/// `<`, `>`, `&`, `"` and `'` as HTML entities: for text and attribute values of the page and
/// the e-mail (five characters do not justify a crate).
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            super::escape_html(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(super::escape_html("plain ünïcode"), "plain ünïcode");
    }
}
