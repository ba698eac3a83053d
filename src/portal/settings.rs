//! Settings: the partner's branding — logo, primary brand colour, support channel (e-mail or
//! link) — editable for licensing partners (`entitlements.branding`); others see why. Saved as
//! the user (partner admins may change `spec.branding` of their own Partner and nothing else:
//! the admission policy decides). The colour themes the portal's pages for the partner
//! (`brand.css`, served from the portal like every other asset).

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::PrivateCookieJar;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::auth::signed_in;
use super::companies::{display_name, not_found, partner_ns, refused_page};
use super::session::Session;
use super::{BASE, Peer, St, check_post, see_other};
use crate::api::Partner;

#[derive(Serialize, Default)]
struct SettingsPage {
    logo_url: String,
    primary_color: String,
    /// `email` or `url`.
    support_kind: String,
    support_email: String,
    support_url: String,
    /// A licensing partner may edit; others see why not.
    licensing: bool,
    version: String,
    errors: std::collections::BTreeMap<String, String>,
    saved: bool,
}

fn from_partner(p: &Partner) -> SettingsPage {
    let b = p.spec.branding.clone().unwrap_or_default();
    let support = b.support.unwrap_or_default();
    SettingsPage {
        logo_url: b.logo_url.unwrap_or_default(),
        primary_color: b.primary_color.unwrap_or_else(|| "#333333".into()),
        support_kind: if support.url.is_some() {
            "url"
        } else {
            "email"
        }
        .into(),
        support_email: support.email.unwrap_or_default(),
        support_url: support.url.unwrap_or_default(),
        licensing: p.spec.entitlements.branding,
        version: super::form_version(&p.metadata),
        ..SettingsPage::default()
    }
}

fn render(st: &St, s: &Session, partner: &str, page: SettingsPage, code: StatusCode) -> Response {
    let mut chrome = st.chrome(s, "Settings");
    chrome.partner = Some((partner.to_string(), display_name(st, partner)));
    st.render(code, "settings.html", &chrome, &page)
}

#[derive(Deserialize)]
pub struct SavedQuery {
    saved: Option<String>,
}

/// `GET /portal/partners/{partner}/settings`: the Partner read as the user.
pub async fn form(
    State(st): State<St>,
    peer: Peer,
    headers: HeaderMap,
    jar: PrivateCookieJar,
    Path(partner): Path<String>,
    axum::extract::Query(q): axum::extract::Query<SavedQuery>,
) -> Response {
    let (s, jar) = match signed_in(&st, &headers, &peer, jar) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    if partner_ns(&st, &partner).is_none() {
        return (jar, not_found(&st, &s, "There is no such partner.")).into_response();
    }
    let who = st.identity(&s);
    let p: Partner = match st.as_user(&who).get_cluster(&partner).await {
        Ok(p) => p,
        Err(r) => return (jar, refused_page(&st, &s, "Settings", &r)).into_response(),
    };
    let page = SettingsPage {
        saved: q.saved.is_some(),
        ..from_partner(&p)
    };
    (jar, render(&st, &s, &partner, page, StatusCode::OK)).into_response()
}

#[derive(Deserialize)]
pub struct SettingsForm {
    csrf: Option<String>,
    version: Option<String>,
    logo_url: Option<String>,
    primary_color: Option<String>,
    support_kind: Option<String>,
    support_email: Option<String>,
    support_url: Option<String>,
}

/// `POST /portal/partners/{partner}/settings`: a merge patch of `spec.branding` (with the
/// version the form was made from), as the user.
pub async fn save(
    State(st): State<St>,
    peer: Peer,
    headers: HeaderMap,
    jar: PrivateCookieJar,
    Path(partner): Path<String>,
    Form(f): Form<SettingsForm>,
) -> Response {
    let (s, jar) = match signed_in(&st, &headers, &peer, jar) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    if let Err(r) = check_post(&st, &headers, &s, f.csrf.as_deref()) {
        return *r;
    }
    if partner_ns(&st, &partner).is_none() {
        return (jar, not_found(&st, &s, "There is no such partner.")).into_response();
    }
    let who = st.identity(&s);
    let api = st.as_user(&who);
    let p: Partner = match api.get_cluster(&partner).await {
        Ok(p) => p,
        Err(r) => return (jar, refused_page(&st, &s, "Settings", &r)).into_response(),
    };
    let trimmed = |v: &Option<String>| v.as_deref().unwrap_or_default().trim().to_string();
    let mut page = SettingsPage {
        logo_url: trimmed(&f.logo_url),
        primary_color: trimmed(&f.primary_color),
        support_kind: if f.support_kind.as_deref() == Some("url") {
            "url"
        } else {
            "email"
        }
        .into(),
        support_email: trimmed(&f.support_email),
        support_url: trimmed(&f.support_url),
        licensing: p.spec.entitlements.branding,
        version: trimmed(&f.version),
        ..SettingsPage::default()
    };
    if !page.licensing {
        page.errors.insert(
            "form".into(),
            "Branding is for licensing partners: ask the platform to enable it for your partner."
                .into(),
        );
        return (jar, render(&st, &s, &partner, page, StatusCode::FORBIDDEN)).into_response();
    }
    if !page.logo_url.is_empty() && !crate::config::is_https_url(&page.logo_url) {
        page.errors.insert(
            "logo_url".into(),
            "An https:// address of the logo image.".into(),
        );
    }
    if !crate::config::is_color(&page.primary_color) {
        page.errors.insert(
            "primary_color".into(),
            "A colour as #RRGGBB, e.g. #0055ff.".into(),
        );
    }
    let support = if page.support_kind == "url" {
        if !crate::config::is_https_url(&page.support_url) {
            page.errors.insert(
                "support".into(),
                "An https:// address of your support page.".into(),
            );
        }
        json!({"url": page.support_url, "email": null})
    } else {
        if !crate::config::is_email(&page.support_email) {
            page.errors
                .insert("support".into(), "An e-mail address for support.".into());
        }
        json!({"email": page.support_email, "url": null})
    };
    if !page.errors.is_empty() {
        return (
            jar,
            render(&st, &s, &partner, page, StatusCode::UNPROCESSABLE_ENTITY),
        )
            .into_response();
    }
    let logo = if page.logo_url.is_empty() {
        serde_json::Value::Null
    } else {
        json!(page.logo_url)
    };
    let patch = json!({"spec": {"branding": {
        "logoUrl": logo,
        "primaryColor": page.primary_color,
        "support": support,
    }}});
    let before = p.metadata.resource_version.clone();
    let saved = super::save_spec(
        p,
        &page.version,
        || api.get_cluster::<Partner>(&partner),
        |p| {
            let mut patch = patch.clone();
            patch["metadata"] = json!({"resourceVersion": p.metadata.resource_version});
            let (api, partner) = (&api, &partner);
            async move { api.merge_patch_cluster::<Partner>(partner, &patch).await }
        },
    )
    .await;
    match saved {
        Ok(_) => {
            tracing::info!(user = %s.email, partner = %partner, "portal: branding saved");
            super::until_cached_past(|| st.ctx.world.partner(&partner), before).await;
            see_other(jar, &format!("{BASE}/partners/{partner}/settings?saved=1"))
        }
        Err(r) => {
            let text = if r.code == 409 {
                format!(
                    "Someone changed the partner while you were editing. Open Settings again to see their change, then make yours. ({})",
                    r.message
                )
            } else {
                r.message.clone()
            };
            page.errors.insert("form".into(), text);
            let code = StatusCode::from_u16(r.code).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            (jar, render(&st, &s, &partner, page, code)).into_response()
        }
    }
}

/// The brand colour as CSS for the partner's pages: a licensing partner's primary colour (from
/// the watch cache), else the platform's default; text in black or white, whichever reads
/// better on it. Empty without a session.
pub async fn brand_css(
    State(st): State<St>,
    jar: PrivateCookieJar,
    Path(partner): Path<String>,
) -> Response {
    let signed_in = super::session::read(&jar).is_some_and(|s| s.user.is_some() && !s.expired());
    let color = signed_in
        .then(|| st.ctx.world.partner(&partner))
        .flatten()
        .and_then(|p| p.0.as_ref().ok().cloned())
        .map(|p| crate::resources::customer_branding(&p, &st.ctx.config))
        .and_then(|b| b.get("primaryColor").cloned())
        .filter(|c| crate::config::is_color(c));
    let body = match color {
        Some(c) => format!(":root {{ --brand: {c}; --brand-text: {}; }}\n", text_on(&c)),
        None => String::new(),
    };
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    r
}

/// Black or white text on `#RRGGBB`, by the WCAG contrast of each.
pub fn text_on(color: &str) -> &'static str {
    let channel = |i: usize| {
        let v = u8::from_str_radix(&color[i..i + 2], 16).unwrap_or(0) as f64 / 255.0;
        if v <= 0.03928 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    let l = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
    // Contrast with white: 1.05 / (l + 0.05); with black: (l + 0.05) / 0.05.
    if 1.05 / (l + 0.05) >= (l + 0.05) / 0.05 {
        "#ffffff"
    } else {
        "#000000"
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_reads_on_the_brand_colour() {
        assert_eq!(super::text_on("#333333"), "#ffffff");
        assert_eq!(super::text_on("#0055ff"), "#ffffff");
        assert_eq!(super::text_on("#ffee00"), "#000000");
        assert_eq!(super::text_on("#ffffff"), "#000000");
    }
}
