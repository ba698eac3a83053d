//! The invitation e-mail (plain text and HTML, naming the partner and carrying the link) and its
//! delivery over SMTP with `lettre`, as `invites.smtp` configures it.

use std::collections::BTreeMap;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::escape_html;
use crate::config::Smtp;

/// Why a message could not be built or delivered. The texts come from lettre and name the
/// address or the SMTP server's answer; they never contain the message (nor the link).
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("address {address:?}: {reason}")]
    Address { address: String, reason: String },
    #[error("building the message: {0}")]
    Build(String),
    #[error("SMTP {host}:{port}: {reason}")]
    Smtp {
        host: String,
        port: u16,
        reason: String,
    },
}

/// What the e-mail says.
pub struct Invitation<'a> {
    /// The partner's name (`acme`) and display name (`Acme Corp`).
    pub partner: &'a str,
    pub partner_display_name: &'a str,
    pub email: &'a str,
    /// The acceptance link (it carries the token).
    pub link: &'a str,
    /// When the link stops working (RFC 3339).
    pub expires_at: &'a str,
    /// The branding the page shows (`partnerkit-branding` keys: logoUrl, primaryColor,
    /// supportEmail or supportUrl).
    pub branding: &'a BTreeMap<String, String>,
}

impl Invitation<'_> {
    pub fn subject(&self) -> String {
        format!(
            "You are invited to administer {} ({})",
            self.partner_display_name, self.partner
        )
    }

    pub fn text(&self) -> String {
        let support = support_line(self.branding)
            .map(|s| format!("\nQuestions? {s}\n"))
            .unwrap_or_default();
        format!(
            "Hello,\n\n\
             you are invited to become an administrator of {display} ({partner}): you will be able\n\
             to create and manage its customer tenants and to invite further administrators.\n\n\
             Accept the invitation here (as {email}; the link works once and until {expires}):\n\n\
             {link}\n\n\
             If you did not expect this invitation, ignore this e-mail: nothing happens unless you\n\
             accept.\n{support}",
            display = self.partner_display_name,
            partner = self.partner,
            email = self.email,
            expires = self.expires_at,
            link = self.link,
        )
    }

    pub fn html(&self) -> String {
        let color = self
            .branding
            .get("primaryColor")
            .filter(|c| crate::config::is_color(c))
            .map(String::as_str)
            .unwrap_or("#333333");
        let logo = self
            .branding
            .get("logoUrl")
            .filter(|u| crate::config::is_https_url(u))
            .map(|u| {
                format!(
                    "<p><img src=\"{}\" alt=\"{}\" style=\"max-height:48px\"></p>",
                    escape_html(u),
                    escape_html(self.partner_display_name)
                )
            })
            .unwrap_or_default();
        let support = support_line(self.branding)
            .map(|s| format!("<p style=\"color:#666\">Questions? {}</p>", escape_html(&s)))
            .unwrap_or_default();
        format!(
            "<!doctype html><html><body style=\"font-family:sans-serif;max-width:600px\">{logo}\
             <h2 style=\"color:{color}\">Invitation to administer {display}</h2>\
             <p>You are invited to become an administrator of <b>{display}</b> ({partner}): you \
             will be able to create and manage its customer tenants and to invite further \
             administrators.</p>\
             <p><a href=\"{link}\" style=\"display:inline-block;padding:10px 18px;background:{color};\
             color:#fff;text-decoration:none;border-radius:4px\">Review and accept</a></p>\
             <p>Or open this link: <a href=\"{link}\">{link}</a></p>\
             <p>It is for <b>{email}</b>, works once, and expires at {expires}.</p>\
             <p style=\"color:#666\">If you did not expect this invitation, ignore this e-mail: \
             nothing happens unless you accept.</p>{support}</body></html>",
            display = escape_html(self.partner_display_name),
            partner = escape_html(self.partner),
            link = escape_html(self.link),
            email = escape_html(self.email),
            expires = escape_html(self.expires_at),
        )
    }

    /// The whole message, from `from` to the invitee.
    pub fn message(&self, from: &str) -> Result<Message, MailError> {
        let mailbox = |a: &str| {
            a.parse::<Mailbox>().map_err(|e| MailError::Address {
                address: a.to_string(),
                reason: e.to_string(),
            })
        };
        Message::builder()
            .from(mailbox(from)?)
            .to(mailbox(self.email)?)
            .subject(self.subject())
            .multipart(MultiPart::alternative_plain_html(self.text(), self.html()))
            .map_err(|e| MailError::Build(e.to_string()))
    }
}

fn support_line(branding: &BTreeMap<String, String>) -> Option<String> {
    branding
        .get("supportEmail")
        .map(|e| format!("Write to {e}."))
        .or_else(|| branding.get("supportUrl").map(|u| format!("See {u}.")))
}

/// The transport for `smtp`: `none` speaks plain SMTP (a relay on a trusted network only),
/// `starttls` requires STARTTLS (never falls back to plain text), `tls` is TLS from the first
/// byte (SMTPS, usually port 465). Certificates are checked against the system's roots.
pub fn transport(
    smtp: &Smtp,
    credentials: Option<(String, String)>,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    let smtp_err = |e: lettre::transport::smtp::Error| MailError::Smtp {
        host: smtp.host.clone(),
        port: smtp.port,
        reason: e.to_string(),
    };
    let builder = match smtp.tls.as_str() {
        "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.as_str()),
        "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host).map_err(smtp_err)?,
        _ => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host).map_err(smtp_err)?,
    };
    let mut builder = builder.port(smtp.port).timeout(Some(smtp.timeout()));
    if let Some((user, password)) = credentials {
        builder = builder.credentials(Credentials::new(user, password));
    }
    Ok(builder.build())
}

/// One delivery attempt, within `timeout` as a whole (lettre's own timeout covers single
/// socket operations; a server that stops answering mid-dialogue must not hold a reconcile).
pub async fn send(
    smtp: &Smtp,
    credentials: Option<(String, String)>,
    message: Message,
) -> Result<(), MailError> {
    let transport = transport(smtp, credentials)?;
    let err = |reason: String| MailError::Smtp {
        host: smtp.host.clone(),
        port: smtp.port,
        reason,
    };
    match tokio::time::timeout(smtp.timeout(), transport.send(message)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(err(flatten(&e))),
        Err(_) => Err(err(format!(
            "no answer within {} (invites.smtp.timeout)",
            smtp.timeout
        ))),
    }
}

/// An error with its causes, on one line ("connection refused", "STARTTLS not offered", …).
fn flatten(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn branding() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("logoUrl".into(), "https://acme.example/logo.png".into()),
            ("primaryColor".into(), "#aa0000".into()),
            ("supportEmail".into(), "help@acme.example".into()),
        ])
    }

    fn invitation<'a>(b: &'a BTreeMap<String, String>, display: &'a str) -> Invitation<'a> {
        Invitation {
            partner: "acme",
            partner_display_name: display,
            email: "bob@acme.example",
            link: "https://portal.example/invites/partner-acme/invite-bob?token=T0KEN",
            expires_at: "2026-11-25T10:00:00Z",
            branding: b,
        }
    }

    #[test]
    fn both_parts_name_the_partner_and_carry_the_link() {
        let b = branding();
        let inv = invitation(&b, "Acme Corp");
        for body in [inv.text(), inv.html()] {
            assert!(body.contains("Acme Corp"), "{body}");
            assert!(body.contains("acme"));
            assert!(body.contains("bob@acme.example"));
            assert!(body.contains("2026-11-25T10:00:00Z"));
            assert!(body.contains("help@acme.example"));
        }
        assert!(inv.text().contains(inv.link));
        assert!(inv.html().contains(
            "href=\"https://portal.example/invites/partner-acme/invite-bob?token=T0KEN\""
        ));
        assert!(inv.html().contains("#aa0000"));
        assert!(inv.html().contains("https://acme.example/logo.png"));
        assert_eq!(
            inv.subject(),
            "You are invited to administer Acme Corp (acme)"
        );
    }

    #[test]
    fn html_escapes_what_users_wrote() {
        let b = BTreeMap::from([(
            "primaryColor".to_string(),
            "red;}</style><script>".to_string(),
        )]);
        let inv = invitation(&b, "<script>alert(1)</script> & Co");
        let html = inv.html();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co"));
        // A colour that is not #RRGGBB is not used at all.
        assert!(html.contains("#333333") && !html.contains("red;"));
    }

    #[test]
    fn the_message_is_multipart_alternative_from_and_to_the_right_people() {
        let b = branding();
        let inv = invitation(&b, "Acme Corp");
        let m = inv.message("portal@platform.example").unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        assert!(raw.contains("From: portal@platform.example"), "{raw}");
        assert!(raw.contains("To: bob@acme.example"));
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("text/plain") && raw.contains("text/html"));
        assert!(matches!(
            inv.message("not an address"),
            Err(MailError::Address { .. })
        ));
    }

    #[tokio::test]
    async fn a_refused_connection_names_the_server() {
        // Port 9 (discard) on loopback: nothing listens.
        let smtp = Smtp {
            host: "127.0.0.1".into(),
            port: 9,
            tls: "none".into(),
            from: "portal@platform.example".into(),
            credentials_secret: None,
            attempts: 1,
            retry_backoff: "1s".into(),
            timeout: "5s".into(),
        };
        let b = branding();
        let m = invitation(&b, "Acme").message(&smtp.from).unwrap();
        let e = send(&smtp, None, m).await.unwrap_err().to_string();
        assert!(e.starts_with("SMTP 127.0.0.1:9: "), "{e}");
        assert!(!e.contains("T0KEN"));
    }

    #[tokio::test]
    async fn a_server_that_stops_answering_times_out() {
        // Accepts the connection and never says a word.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let _held = tokio::spawn(async move {
            let mut conns = Vec::new();
            while let Ok((c, _)) = listener.accept().await {
                conns.push(c);
            }
        });
        let smtp = Smtp {
            host: "127.0.0.1".into(),
            port,
            tls: "none".into(),
            from: "portal@platform.example".into(),
            credentials_secret: None,
            attempts: 1,
            retry_backoff: "1s".into(),
            timeout: "300ms".into(),
        };
        let b = branding();
        let m = invitation(&b, "Acme").message(&smtp.from).unwrap();
        let started = std::time::Instant::now();
        let e = send(&smtp, None, m).await.unwrap_err().to_string();
        assert!(e.contains("no answer within 300ms"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn every_tls_mode_builds_a_transport() {
        for tls in ["none", "starttls", "tls"] {
            let smtp = Smtp {
                host: "smtp.example".into(),
                port: 587,
                tls: tls.into(),
                from: "portal@platform.example".into(),
                credentials_secret: None,
                attempts: 1,
                retry_backoff: "1s".into(),
                timeout: "5s".into(),
            };
            transport(&smtp, Some(("user".into(), "secret".into()))).unwrap();
        }
    }
}
