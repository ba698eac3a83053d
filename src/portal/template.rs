//! Template: the partner's template tenant — its name, BizApps (over the catalog's defaults)
//! and profiles, which every inheriting company follows live. Read and saved as the user.

use std::collections::BTreeMap;

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::PrivateCookieJar;

use super::auth::signed_in;
use super::companies::{
    AppToggle, FormState, field_of, not_found, partner_ns, partner_obj, read_fields, refused_page,
    render_form, submitted, toggles,
};
use super::{BASE, Peer, St, check_post, see_other};
use crate::resources::TEMPLATE_NAME;

/// Profiles as the form's text: `profile.key=value`, one a line, sorted; and whether every
/// value fits on one line (else the text is shown read-only).
pub fn profiles_text(profiles: &BTreeMap<String, BTreeMap<String, String>>) -> (String, bool) {
    let mut lines = Vec::new();
    let mut one_line = true;
    for (name, data) in profiles {
        for (key, value) in data {
            one_line &= !value.contains(['\n', '\r']);
            lines.push(format!("{name}.{key}={value}"));
        }
    }
    (lines.join("\n"), one_line)
}

/// The form's text back into profiles; an error names the first line it cannot read.
pub fn parse_profiles(text: &str) -> Result<BTreeMap<String, BTreeMap<String, String>>, String> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let parsed = line.split_once('=').and_then(|(path, value)| {
            let (name, key) = path.trim().split_once('.')?;
            (!name.is_empty() && !key.is_empty())
                .then(|| (name.to_string(), key.to_string(), value.to_string()))
        });
        let Some((name, key, value)) = parsed else {
            return Err(format!(
                "Line {}: write profile.key=value, e.g. wifi.ssid=acme.",
                n + 1
            ));
        };
        out.entry(name).or_default().insert(key, value);
    }
    Ok(out)
}

/// The template's toggles say what the catalog gives, not what a template gives.
fn catalog_notes(mut apps: Vec<AppToggle>) -> Vec<AppToggle> {
    for a in apps.iter_mut().filter(|a| !a.disabled) {
        let default = if a.inherited { "on" } else { "off" };
        a.note = if a.own {
            format!("Set in the template (the catalog's default is {default}).")
        } else {
            format!("The catalog's default ({default}).")
        };
    }
    apps
}

/// `GET /portal/partners/{partner}/template`.
pub async fn form(
    State(st): State<St>,
    peer: Peer,
    headers: HeaderMap,
    jar: PrivateCookieJar,
    Path(partner): Path<String>,
) -> Response {
    let (s, jar) = match signed_in(&st, &headers, &peer, jar) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let Some(ns) = partner_ns(&st, &partner) else {
        return (jar, not_found(&st, &s, "There is no such partner.")).into_response();
    };
    let who = st.identity(&s);
    let t = match st.as_user(&who).get_tenant(&ns, TEMPLATE_NAME).await {
        Ok(t) => t,
        Err(r) => return (jar, refused_page(&st, &s, "Template", &r)).into_response(),
    };
    let p = partner_obj(&st, &partner);
    let (profiles, editable) = profiles_text(&t.spec.profiles);
    let form = FormState {
        editing: Some(TEMPLATE_NAME.into()),
        template: true,
        name: t.spec.display_name.clone(),
        id: TEMPLATE_NAME.into(),
        apps: catalog_notes(toggles(&st, p.as_ref(), None, &t.spec.biz_apps, None)),
        profiles,
        profiles_readonly: !editable,
        version: super::form_version(&t.metadata),
        action: format!("{BASE}/partners/{partner}/template"),
        ..FormState::default()
    };
    render_form(&st, &s, &partner, form, StatusCode::OK, jar)
}

/// `POST /portal/partners/{partner}/template`: Save (with the version the form was made from).
pub async fn save(
    State(st): State<St>,
    peer: Peer,
    headers: HeaderMap,
    jar: PrivateCookieJar,
    Path(partner): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let (s, jar) = match signed_in(&st, &headers, &peer, jar) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let f = submitted(fields);
    if let Err(r) = check_post(&st, &headers, &s, f.csrf.as_deref()) {
        return *r;
    }
    let Some(ns) = partner_ns(&st, &partner) else {
        return (jar, not_found(&st, &s, "There is no such partner.")).into_response();
    };
    let who = st.identity(&s);
    let api = st.as_user(&who);
    let mut t = match api.get_tenant(&ns, TEMPLATE_NAME).await {
        Ok(t) => t,
        Err(r) => return (jar, refused_page(&st, &s, "Template", &r)).into_response(),
    };
    let p = partner_obj(&st, &partner);
    let base = toggles(&st, p.as_ref(), None, &BTreeMap::new(), None);
    let mut errors = BTreeMap::new();
    let (name, apps, _) = read_fields(&f, &base, &mut errors);
    let (_, editable) = profiles_text(&t.spec.profiles);
    let profiles = if editable {
        match parse_profiles(&f.profiles) {
            Ok(p) => Some(p),
            Err(e) => {
                errors.insert("profiles".into(), e);
                None
            }
        }
    } else {
        None
    };
    let chosen: BTreeMap<String, bool> = base
        .iter()
        .map(|x| (x.name.clone(), f.apps_on.iter().any(|a| a == &x.name)))
        .collect();
    let own = t.spec.biz_apps.clone();
    let form = |errors: BTreeMap<String, String>| FormState {
        editing: Some(TEMPLATE_NAME.into()),
        template: true,
        name: f.name.clone(),
        id: TEMPLATE_NAME.into(),
        apps: catalog_notes(toggles(&st, p.as_ref(), None, &own, Some(&chosen))),
        profiles: f.profiles.clone(),
        profiles_readonly: !editable,
        version: f.version.clone(),
        errors,
        action: format!("{BASE}/partners/{partner}/template"),
        ..FormState::default()
    };
    if !errors.is_empty() {
        return render_form(
            &st,
            &s,
            &partner,
            form(errors),
            StatusCode::UNPROCESSABLE_ENTITY,
            jar,
        );
    }
    let mut biz_apps: BTreeMap<String, bool> = t
        .spec
        .biz_apps
        .iter()
        .filter(|(k, _)| !base.iter().any(|x| &x.name == *k && !x.disabled))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    biz_apps.extend(apps);
    t.spec.display_name = name;
    t.spec.biz_apps = biz_apps;
    if let Some(p) = profiles {
        t.spec.profiles = p;
    }
    let before = t.metadata.resource_version.clone();
    t.metadata.managed_fields = None;
    t.status = None;
    let saved = super::save_spec(
        t,
        &f.version,
        || api.get_tenant(&ns, TEMPLATE_NAME),
        |t| {
            let (api, ns) = (&api, &ns);
            async move { api.replace_tenant(ns, &t).await }
        },
    )
    .await;
    match saved {
        Ok(_) => {
            tracing::info!(user = %s.email, namespace = %ns, "portal: template saved");
            super::until_cached_past(|| st.ctx.world.tenant(&ns, TEMPLATE_NAME), before).await;
            see_other(jar, &format!("{BASE}/partners/{partner}/template"))
        }
        Err(r) => {
            let (field, text) = if r.code == 409 {
                (
                    "form",
                    format!(
                        "Someone changed the template while you were editing it. Open it again to see their change, then make yours. ({})",
                        r.message
                    ),
                )
            } else {
                (field_of(&r), r.message.clone())
            };
            let mut errors = BTreeMap::new();
            errors.insert(field.to_string(), text);
            let code = StatusCode::from_u16(r.code).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            render_form(&st, &s, &partner, form(errors), code, jar)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_round_trip_through_the_text() {
        let p: BTreeMap<String, BTreeMap<String, String>> = [
            (
                "wifi".to_string(),
                [
                    ("ssid".to_string(), "acme".to_string()),
                    ("security".to_string(), "wpa3=yes".to_string()),
                ]
                .into(),
            ),
            (
                "vpn".to_string(),
                [("a.b".to_string(), String::new())].into(),
            ),
        ]
        .into();
        let (text, editable) = profiles_text(&p);
        assert!(editable);
        assert_eq!(text, "vpn.a.b=\nwifi.security=wpa3=yes\nwifi.ssid=acme");
        assert_eq!(parse_profiles(&text).unwrap(), p);
        assert_eq!(parse_profiles("\n  \n").unwrap(), BTreeMap::new());
        assert_eq!(
            parse_profiles("wifi.ssid=x\nnonsense").unwrap_err(),
            "Line 2: write profile.key=value, e.g. wifi.ssid=acme."
        );
        assert!(parse_profiles(".key=v").is_err() && parse_profiles("wifi.=v").is_err());
        let multi: BTreeMap<String, BTreeMap<String, String>> = [(
            "x".to_string(),
            [("k".to_string(), "a\nb".to_string())].into(),
        )]
        .into();
        assert!(!profiles_text(&multi).1);
    }
}
