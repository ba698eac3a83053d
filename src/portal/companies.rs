//! Companies (the partner's tenants), Create Company and Edit.
//!
//! Lists come from the operator's watch cache (the World's per-namespace index), so they are
//! live (kubectl and GitOps changes show at the next view) and cost no API list per page; but
//! first, as the user, a list of at most one Tenant asks the API server whether this person
//! may list the partner's tenants at all. Every write is the user's own request.

use std::collections::BTreeMap;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::PrivateCookieJar;
use kube::ResourceExt;
use serde::{Deserialize, Serialize};

use super::as_user::Refused;
use super::auth::signed_in;
use super::session::Session;
use super::{BASE, CSRF_FIELD, Peer, St, check_post, see_other};
use crate::api::{AdminRef, Partner, Tenant, TenantSpec, conditions};
use crate::resources::{TEMPLATE_NAME, names};

/// Companies per page.
pub const PAGE_SIZE: usize = 50;
/// A list page with a company not Ready yet refreshes itself after this many seconds.
const PENDING_REFRESH: u32 = 5;

/// The partner of a URL: a valid name, and its namespace.
pub(super) fn partner_ns(st: &St, partner: &str) -> Option<String> {
    (crate::config::is_dns_label(partner) && partner.len() <= crate::api::MAX_NAME)
        .then(|| names::partner_namespace(&st.ctx.config, partner))
}

pub(super) fn partner_obj(st: &St, partner: &str) -> Option<Partner> {
    st.ctx
        .world
        .partner(partner)
        .and_then(|p| p.0.as_ref().ok().cloned())
}

pub(super) fn display_name(st: &St, partner: &str) -> String {
    partner_obj(st, partner)
        .map(|p| p.spec.display_name)
        .unwrap_or_else(|| partner.to_string())
}

pub(super) fn not_found(st: &St, s: &Session, what: &str) -> Response {
    st.message(
        StatusCode::NOT_FOUND,
        st.chrome(s, "Not found"),
        "Not found",
        what,
        None,
    )
}

/// The API server's refusal as a page.
pub(super) fn refused_page(st: &St, s: &Session, title: &str, r: &Refused) -> Response {
    let code = StatusCode::from_u16(r.code).unwrap_or(StatusCode::FORBIDDEN);
    st.message(
        code,
        st.chrome(s, title),
        title,
        "The cluster refused this request:",
        Some(&r.message),
    )
}

// ---------------------------------------------------------------------------------------------
// Home
// ---------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct PartnerLink {
    name: String,
    display_name: String,
}

/// `GET /portal/`: the partners the user administers (from the partners' effective admins).
/// One: straight to its Companies. Every other partner is listed only to those the API server
/// lets list Tenants in every namespace (platform admins); nobody else learns their names.
pub async fn home(
    State(st): State<St>,
    peer: Peer,
    headers: HeaderMap,
    jar: PrivateCookieJar,
) -> Response {
    let (s, jar) = match signed_in(&st, &headers, &peer, jar) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let mut mine = Vec::new();
    let mut all = Vec::new();
    for p in st.ctx.world.partners.state() {
        let Ok(partner) = p.0.as_ref() else { continue };
        let link = PartnerLink {
            name: p.name_any(),
            display_name: partner.spec.display_name.clone(),
        };
        let admin = partner
            .spec
            .admins
            .iter()
            .any(|a| a.email.eq_ignore_ascii_case(&s.email))
            || partner
                .status
                .as_ref()
                .is_some_and(|st| st.admins.iter().any(|a| a.eq_ignore_ascii_case(&s.email)));
        if admin {
            mine.push(link);
        } else {
            all.push(link);
        }
    }
    mine.sort_by(|a, b| a.name.cmp(&b.name));
    all.sort_by(|a, b| a.name.cmp(&b.name));
    let who = st.identity(&s);
    let platform_admin = st.as_user(&who).may_list_all_tenants().await.is_ok();
    let mut own = Vec::new();
    if !platform_admin {
        if mine.len() == 1 {
            return see_other(jar, &format!("{BASE}/partners/{}/companies", mine[0].name));
        }
        all.clear();
        if mine.is_empty() {
            // A tenant admin: their own companies.
            own = super::tenant_view::companies_of(&st, &s.email);
            if own.len() == 1 {
                return see_other(
                    jar,
                    &format!("{BASE}/company/{}/{}", own[0].partner, own[0].id),
                );
            }
        }
    }
    let chrome = st.chrome(&s, "Partners");
    let page = minijinja::context! {
        mine => super::value(&mine),
        others => super::value(&all),
        own => super::value(&own),
    };
    (jar, st.render(StatusCode::OK, "home.html", &chrome, page)).into_response()
}

// ---------------------------------------------------------------------------------------------
// Companies
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    page: Option<usize>,
    created: Option<String>,
    saved: Option<String>,
}

/// One row of the Companies table.
#[derive(Serialize)]
pub struct Row {
    pub name: String,
    pub id: String,
    pub apps: Vec<String>,
    pub admins: Vec<String>,
    /// `Ready`, `Pending`, or the reason it is not ready.
    pub status: String,
    pub message: String,
    pub ready: bool,
    pub pending: bool,
}

/// What the rows of one partner's page are computed from, looked up once per page.
pub struct Inherited {
    partner: Option<Partner>,
    template: Option<TenantSpec>,
    partner_admins: Vec<String>,
}

impl Inherited {
    pub fn of(st: &St, partner: &str, ns: &str) -> Inherited {
        let partner = partner_obj(st, partner);
        let partner_admins = partner
            .as_ref()
            .map(|p| st.ctx.world.partner_admins(p, ns))
            .unwrap_or_default();
        Inherited {
            partner,
            template: template_spec(st, ns),
            partner_admins,
        }
    }
}

/// A tenant's status as the list shows it: Ready, Pending (not yet reconciled at its current
/// generation), or the Ready condition's reason and message. Its BizApps and admins are
/// computed from the specs (the tenant's, its template's, its partner's) by the functions the
/// controller writes them into the status with: the operator's cache keeps statuses without
/// those lists (`controller::world::slim_tenant`). So a change the controller has not applied
/// yet shows at once, beside the row's status.
pub fn row(st: &St, inherited: &Inherited, t: &crate::controller::world::TenantObj) -> Row {
    let id = t.name_any();
    let tenant = match t.0.as_ref() {
        Ok(t) => t,
        Err(invalid) => {
            return Row {
                name: id.clone(),
                id,
                apps: vec![],
                admins: vec![],
                status: crate::controller::INVALID_SPEC.into(),
                message: invalid.error.clone(),
                ready: false,
                pending: false,
            };
        }
    };
    let display = |app: &str| {
        st.ctx
            .config
            .catalog_app(app)
            .map(|a| {
                if a.display_name.is_empty() {
                    a.name.clone()
                } else {
                    a.display_name.clone()
                }
            })
            .unwrap_or_else(|| app.to_string())
    };
    let status = tenant.status.clone().unwrap_or_default();
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == conditions::READY);
    let current = status.observed_generation.is_some()
        && status.observed_generation == tenant.metadata.generation;
    let (label, message, ok, pending) = match ready {
        Some(c) if current && c.status == "True" => {
            ("Ready".to_string(), String::new(), true, false)
        }
        Some(c) if current && c.status == "False" => {
            (c.reason.clone(), c.message.clone(), false, false)
        }
        _ => (
            "Pending".to_string(),
            "partnerkit has not finished setting this company up yet.".to_string(),
            false,
            true,
        ),
    };
    let admins = crate::resources::effective_admins(&tenant.spec, &inherited.partner_admins)
        .into_iter()
        .map(|a| a.email)
        .collect();
    let template = inherited
        .template
        .as_ref()
        .filter(|_| tenant.spec.inherit_from_template);
    // A refused combination (an app not in the catalog, or not entitled) shows no apps: the
    // row's status says why.
    let apps = inherited
        .partner
        .as_ref()
        .and_then(|p| {
            crate::resources::effective_biz_apps(
                &st.ctx.config.catalog,
                &p.spec.entitlements,
                template,
                &tenant.spec,
            )
            .ok()
        })
        .unwrap_or_default()
        .iter()
        .filter(|a| a.enabled)
        .map(|a| display(&a.name))
        .collect();
    Row {
        name: tenant.spec.display_name.clone(),
        id,
        apps,
        admins,
        status: label,
        message,
        ready: ok,
        pending,
    }
}

/// `GET /portal/partners/{partner}/companies?q=&page=`.
pub async fn list(
    State(st): State<St>,
    peer: Peer,
    headers: HeaderMap,
    jar: PrivateCookieJar,
    Path(partner): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    let (s, jar) = match signed_in(&st, &headers, &peer, jar) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let Some(ns) = partner_ns(&st, &partner) else {
        return (jar, not_found(&st, &s, "There is no such partner.")).into_response();
    };
    let who = st.identity(&s);
    if let Err(r) = st.as_user(&who).may_list_tenants(&ns).await {
        return (jar, refused_page(&st, &s, "Companies", &r)).into_response();
    }
    let query = q.q.clone().unwrap_or_default();
    let needle = query.trim().to_lowercase();
    // The namespace's tenants from the watch cache, in name order; the template is not a company.
    let matching: Vec<_> = st
        .ctx
        .world
        .tenants_in(&ns)
        .into_iter()
        .filter(|t| t.name_any() != TEMPLATE_NAME)
        .filter(|t| {
            needle.is_empty()
                || t.name_any().contains(&needle)
                || t.0
                    .as_ref()
                    .is_ok_and(|t| t.spec.display_name.to_lowercase().contains(&needle))
        })
        .collect();
    let total = matching.len();
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let page = q.page.unwrap_or(1).clamp(1, pages);
    let inherited = Inherited::of(&st, &partner, &ns);
    let rows: Vec<Row> = matching
        .iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .map(|t| row(&st, &inherited, t))
        .collect();
    let mut chrome = st.chrome(&s, "Companies");
    chrome.partner = Some((partner.clone(), display_name(&st, &partner)));
    if rows.iter().any(|r| r.pending) {
        chrome.refresh = Some(PENDING_REFRESH);
    }
    let page_ctx = minijinja::context! {
        rows => super::value(&rows),
        q => query,
        page => page,
        pages => pages,
        total => total,
        prev => (page > 1).then(|| page - 1),
        next => (page < pages).then(|| page + 1),
        created => q.created,
        saved => q.saved,
    };
    (
        jar,
        st.render(StatusCode::OK, "companies.html", &chrome, page_ctx),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// The company form (Create Company, Edit)
// ---------------------------------------------------------------------------------------------

/// One BizApp toggle.
#[derive(Serialize, Debug)]
pub struct AppToggle {
    pub name: String,
    pub label: String,
    pub on: bool,
    /// Off and not changeable: a premium app the partner is not entitled to.
    pub disabled: bool,
    /// Why it is disabled, or where its value comes from.
    pub note: String,
    /// The value the template (or catalog) gives: a toggle equal to it follows the template.
    pub inherited: bool,
    /// Whether the company sets this app itself (Edit).
    pub own: bool,
}

/// What the form shows and was sent.
#[derive(Serialize, Default, Debug)]
pub struct FormState {
    /// Edit: the company being edited; Create: None.
    pub editing: Option<String>,
    pub name: String,
    pub id: String,
    pub admins: String,
    pub apps: Vec<AppToggle>,
    /// Edit: the version the form was made from (a concurrent change is refused).
    pub version: String,
    /// Messages beside fields: `name`, `id`, `apps`, `admins`, `profiles`, and `form` (the
    /// whole form).
    pub errors: BTreeMap<String, String>,
    pub action: String,
    /// The Template page: the partner's template tenant (profiles instead of admins).
    pub template: bool,
    /// Template: the profiles, one `profile.key=value` a line.
    pub profiles: String,
    /// Template: profiles with a value the one-line form cannot hold (kept, not editable here).
    pub profiles_readonly: bool,
}

/// The apps of the form: each catalog app with the value the template gives it (`inherited`),
/// the company's own value where it sets one, and premium apps the partner is not entitled to
/// disabled.
pub(super) fn toggles(
    st: &St,
    partner: Option<&Partner>,
    template: Option<&TenantSpec>,
    own: &BTreeMap<String, bool>,
    chosen: Option<&BTreeMap<String, bool>>,
) -> Vec<AppToggle> {
    let entitlements = partner
        .map(|p| p.spec.entitlements.clone())
        .unwrap_or_default();
    let empty = TenantSpec {
        display_name: String::new(),
        inherit_from_template: true,
        biz_apps: BTreeMap::new(),
        profiles: BTreeMap::new(),
        admins: vec![],
        deletion_policy: Default::default(),
    };
    let inherited: BTreeMap<String, bool> = crate::resources::effective_biz_apps(
        &st.ctx.config.catalog,
        &entitlements,
        template,
        &empty,
    )
    .map(|v| v.into_iter().map(|a| (a.name, a.enabled)).collect())
    .unwrap_or_default();
    st.ctx
        .config
        .catalog
        .iter()
        .map(|app| {
            let entitled = !app.premium
                || entitlements
                    .biz_apps
                    .as_ref()
                    .is_none_or(|l| l.iter().any(|e| e == &app.name));
            let inh = inherited.get(&app.name).copied().unwrap_or(!app.premium);
            let own_value = own.get(&app.name).copied();
            let on = chosen
                .and_then(|c| c.get(&app.name).copied())
                .or(own_value)
                .unwrap_or(inh)
                && entitled;
            let label = if app.display_name.is_empty() {
                app.name.clone()
            } else {
                app.display_name.clone()
            };
            let note = if !entitled {
                "Premium: your partner's plan does not include this app. Ask the platform to add it to your entitlements.".to_string()
            } else if own_value.is_some() {
                format!(
                    "Set for this company (the template says {}).",
                    if inh { "on" } else { "off" }
                )
            } else {
                format!(
                    "Inherited from the template ({}).",
                    if inh { "on" } else { "off" }
                )
            };
            AppToggle {
                name: app.name.clone(),
                label,
                on,
                disabled: !entitled,
                note,
                inherited: inh,
                own: own_value.is_some(),
            }
        })
        .collect()
}

pub(super) fn template_spec(st: &St, ns: &str) -> Option<TenantSpec> {
    st.ctx
        .world
        .tenant(ns, TEMPLATE_NAME)
        .and_then(|t| t.0.as_ref().ok().map(|t| t.spec.clone()))
}

pub(super) fn render_form(
    st: &St,
    s: &Session,
    partner: &str,
    form: FormState,
    code: StatusCode,
    jar: PrivateCookieJar,
) -> Response {
    let title = if form.template {
        "Template"
    } else if form.editing.is_some() {
        "Edit company"
    } else {
        "Create Company"
    };
    let mut chrome = st.chrome(s, title);
    chrome.partner = Some((partner.to_string(), display_name(st, partner)));
    (jar, st.render(code, "company_form.html", &chrome, &form)).into_response()
}

/// `GET /portal/partners/{partner}/companies/new`: Create Company, admins defaulting to the
/// signed-in user.
pub async fn new_form(
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
    let p = partner_obj(&st, &partner);
    let form = FormState {
        admins: s.email.clone(),
        apps: toggles(
            &st,
            p.as_ref(),
            template_spec(&st, &ns).as_ref(),
            &BTreeMap::new(),
            None,
        ),
        action: format!("{BASE}/partners/{partner}/companies"),
        ..FormState::default()
    };
    render_form(&st, &s, &partner, form, StatusCode::OK, jar)
}

/// The submitted form: `csrf`, `name`, `id`, `admins` (one e-mail per line or comma),
/// `version`, and `app.<name>=on` per app switched on.
pub(super) struct Submitted {
    pub csrf: Option<String>,
    pub name: String,
    pub id: String,
    pub admins: String,
    pub version: String,
    pub apps_on: Vec<String>,
    pub profiles: String,
}

pub(super) fn submitted(fields: Vec<(String, String)>) -> Submitted {
    let mut f = Submitted {
        csrf: None,
        name: String::new(),
        id: String::new(),
        admins: String::new(),
        version: String::new(),
        apps_on: vec![],
        profiles: String::new(),
    };
    for (k, v) in fields {
        match k.as_str() {
            CSRF_FIELD => f.csrf = Some(v),
            "name" => f.name = v,
            "id" => f.id = v,
            "admins" => f.admins = v,
            "version" => f.version = v,
            "profiles" => f.profiles = v,
            other => {
                if let Some(app) = other.strip_prefix("app.") {
                    f.apps_on.push(app.to_string());
                }
            }
        }
    }
    f
}

/// A Company ID made from a name: lower-case letters and digits, other runs as one '-', at
/// most 50 characters (`Globex Corporation` -> `globex-corporation`).
pub fn propose_id(name: &str) -> String {
    let mut id = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            id.push(c);
        } else if !id.is_empty() && !id.ends_with('-') {
            id.push('-');
        }
    }
    let mut id: String = id.chars().take(crate::api::MAX_NAME).collect();
    while id.ends_with('-') {
        id.pop();
    }
    id
}

/// The spec fields the form decides, checked: (display name, BizApp overrides, admins), or the
/// messages beside the fields. An app's override is written only where the toggle differs from
/// what the template gives, so untouched apps keep following the template.
pub(super) fn read_fields(
    f: &Submitted,
    toggles: &[AppToggle],
    errors: &mut BTreeMap<String, String>,
) -> (String, BTreeMap<String, bool>, Vec<AdminRef>) {
    let name = f.name.trim().to_string();
    if name.is_empty() {
        errors.insert("name".into(), "Enter the company's name.".into());
    } else if name.chars().count() > 256 {
        errors.insert("name".into(), "At most 256 characters.".into());
    }
    let mut apps = BTreeMap::new();
    for t in toggles.iter().filter(|t| !t.disabled) {
        let on = f.apps_on.iter().any(|a| a == &t.name);
        if on != t.inherited {
            apps.insert(t.name.clone(), on);
        }
    }
    let mut admins: Vec<AdminRef> = Vec::new();
    let mut bad = Vec::new();
    for e in f
        .admins
        .split(['\n', ',', '\r'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        if !crate::config::is_email(e) {
            bad.push(e.to_string());
        } else if !admins.iter().any(|a| a.email.eq_ignore_ascii_case(e)) {
            admins.push(AdminRef {
                email: e.to_string(),
            });
        }
    }
    if !bad.is_empty() {
        errors.insert(
            "admins".into(),
            format!("Not e-mail addresses: {}.", bad.join(", ")),
        );
    }
    (name, apps, admins)
}

/// The field an API refusal concerns, from the causes it names or its message.
pub(super) fn field_of(r: &Refused) -> &'static str {
    let text = r
        .fields
        .iter()
        .map(|(f, _)| f.as_str())
        .chain([r.message.as_str()])
        .collect::<Vec<_>>()
        .join(" ");
    if r.code == 409 && r.reason == "AlreadyExists" {
        "id"
    } else if r.code != 422 && r.code != 400 {
        // Forbidden, Conflict, unavailable: about the whole request, not one field.
        "form"
    } else if text.contains("metadata.name") {
        "id"
    } else if text.contains("spec.displayName") || text.contains("displayName") {
        "name"
    } else if text.contains("spec.bizApps") || text.contains("bizApps") {
        "apps"
    } else if text.contains("spec.profiles") || text.contains("profile") {
        "profiles"
    } else if text.contains("spec.admins") || text.contains("admins") {
        "admins"
    } else {
        "form"
    }
}

/// `POST /portal/partners/{partner}/companies`: Create.
pub async fn create(
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
    let p = partner_obj(&st, &partner);
    let template = template_spec(&st, &ns);
    let base = toggles(&st, p.as_ref(), template.as_ref(), &BTreeMap::new(), None);
    let mut errors = BTreeMap::new();
    let (name, apps, admins) = read_fields(&f, &base, &mut errors);
    let id = if f.id.trim().is_empty() {
        propose_id(&name)
    } else {
        f.id.trim().to_string()
    };
    if !crate::config::is_dns_label(&id) || id.len() > crate::api::MAX_NAME {
        errors.insert(
            "id".into(),
            "Use lower-case letters, digits and '-', starting and ending with a letter or digit, at most 50 characters.".into(),
        );
    } else if id == TEMPLATE_NAME {
        errors.insert(
            "id".into(),
            "\"template\" is reserved for the partner's template.".into(),
        );
    } else if !st.ctx.world.tenants_named(&id).is_empty()
        || st
            .ctx
            .world
            .namespace(&names::workspace(&st.ctx.config, &id))
            .is_some()
    {
        // Company IDs are unique platform-wide (DESIGN.md): say so before the controller
        // would refuse it as NameConflict.
        errors.insert(
            "id".into(),
            format!("The Company ID \"{id}\" is taken. Choose another."),
        );
    }
    // Keep what was sent, whatever happens next.
    let chosen: BTreeMap<String, bool> = base
        .iter()
        .map(|t| (t.name.clone(), f.apps_on.iter().any(|a| a == &t.name)))
        .collect();
    let form = |errors: BTreeMap<String, String>| FormState {
        editing: None,
        name: f.name.clone(),
        id: if f.id.trim().is_empty() {
            id.clone()
        } else {
            f.id.clone()
        },
        admins: f.admins.clone(),
        apps: toggles(
            &st,
            p.as_ref(),
            template.as_ref(),
            &BTreeMap::new(),
            Some(&chosen),
        ),
        version: String::new(),
        errors,
        action: format!("{BASE}/partners/{partner}/companies"),
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
    let mut tenant = Tenant::new(
        &id,
        TenantSpec {
            display_name: name,
            inherit_from_template: true,
            biz_apps: apps,
            profiles: BTreeMap::new(),
            admins,
            deletion_policy: Default::default(),
        },
    );
    tenant.metadata.namespace = Some(ns.clone());
    let who = st.identity(&s);
    match st.as_user(&who).create_tenant(&ns, &tenant).await {
        Ok(_) => {
            tracing::info!(user = %s.email, tenant = %id, namespace = %ns, "portal: company created");
            super::until_cached(|| st.ctx.world.tenant(&ns, &id).is_some()).await;
            see_other(
                jar,
                &format!("{BASE}/partners/{partner}/companies?created={id}"),
            )
        }
        Err(r) => {
            let field = field_of(&r);
            let text = if field == "id" && r.code == 409 {
                format!("The Company ID \"{id}\" is taken. ({})", r.message)
            } else {
                r.message.clone()
            };
            let mut errors = BTreeMap::new();
            errors.insert(field.to_string(), text);
            let code = StatusCode::from_u16(r.code).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            render_form(&st, &s, &partner, form(errors), code, jar)
        }
    }
}

/// `GET /portal/partners/{partner}/companies/{id}`: Edit, read fresh from the API as the
/// user (who must be allowed to read it).
pub async fn edit_form(
    State(st): State<St>,
    peer: Peer,
    headers: HeaderMap,
    jar: PrivateCookieJar,
    Path((partner, id)): Path<(String, String)>,
) -> Response {
    let (s, jar) = match signed_in(&st, &headers, &peer, jar) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let Some(ns) = partner_ns(&st, &partner) else {
        return (jar, not_found(&st, &s, "There is no such partner.")).into_response();
    };
    if !crate::config::is_dns_label(&id) || id == TEMPLATE_NAME {
        return (jar, not_found(&st, &s, "There is no such company.")).into_response();
    }
    let who = st.identity(&s);
    let t = match st.as_user(&who).get_tenant(&ns, &id).await {
        Ok(t) => t,
        Err(r) => return (jar, refused_page(&st, &s, "Edit company", &r)).into_response(),
    };
    let p = partner_obj(&st, &partner);
    let template = template_spec(&st, &ns).filter(|_| t.spec.inherit_from_template);
    let form = FormState {
        editing: Some(id.clone()),
        name: t.spec.display_name.clone(),
        id: id.clone(),
        admins: t
            .spec
            .admins
            .iter()
            .map(|a| a.email.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        apps: toggles(&st, p.as_ref(), template.as_ref(), &t.spec.biz_apps, None),
        version: super::form_version(&t.metadata),
        errors: BTreeMap::new(),
        action: format!("{BASE}/partners/{partner}/companies/{id}"),
        ..FormState::default()
    };
    render_form(&st, &s, &partner, form, StatusCode::OK, jar)
}

/// `POST /portal/partners/{partner}/companies/{id}`: Save. The Tenant is read as the user,
/// the form's fields set on it (profiles, deletion policy and the rest kept), and replaced
/// with the version the form was made from: a change made meanwhile is refused, not lost.
pub async fn save(
    State(st): State<St>,
    peer: Peer,
    headers: HeaderMap,
    jar: PrivateCookieJar,
    Path((partner, id)): Path<(String, String)>,
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
    if !crate::config::is_dns_label(&id) || id == TEMPLATE_NAME {
        return (jar, not_found(&st, &s, "There is no such company.")).into_response();
    }
    let who = st.identity(&s);
    let api = st.as_user(&who);
    let mut t = match api.get_tenant(&ns, &id).await {
        Ok(t) => t,
        Err(r) => return (jar, refused_page(&st, &s, "Edit company", &r)).into_response(),
    };
    let p = partner_obj(&st, &partner);
    let template = template_spec(&st, &ns).filter(|_| t.spec.inherit_from_template);
    let base = toggles(&st, p.as_ref(), template.as_ref(), &BTreeMap::new(), None);
    let mut errors = BTreeMap::new();
    let (name, apps, admins) = read_fields(&f, &base, &mut errors);
    let chosen: BTreeMap<String, bool> = base
        .iter()
        .map(|x| (x.name.clone(), f.apps_on.iter().any(|a| a == &x.name)))
        .collect();
    let own = t.spec.biz_apps.clone();
    let form = |errors: BTreeMap<String, String>| FormState {
        editing: Some(id.clone()),
        name: f.name.clone(),
        id: id.clone(),
        admins: f.admins.clone(),
        apps: toggles(&st, p.as_ref(), template.as_ref(), &own, Some(&chosen)),
        version: f.version.clone(),
        errors,
        action: format!("{BASE}/partners/{partner}/companies/{id}"),
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
    // Apps the portal cannot show as choices (not in the catalog, or premium without
    // entitlement) keep whatever the Tenant says.
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
    t.spec.admins = admins;
    // Written with the version just read: the API server refuses it (409) if anything changed
    // since, and the form's generation says whether the spec did since the form was made.
    let before = t.metadata.resource_version.clone();
    t.metadata.managed_fields = None;
    t.status = None;
    let saved = super::save_spec(
        t,
        &f.version,
        || api.get_tenant(&ns, &id),
        |t| {
            let (api, ns) = (&api, &ns);
            async move { api.replace_tenant(ns, &t).await }
        },
    )
    .await;
    match saved {
        Ok(_) => {
            tracing::info!(user = %s.email, tenant = %id, namespace = %ns, "portal: company saved");
            super::until_cached_past(|| st.ctx.world.tenant(&ns, &id), before).await;
            see_other(
                jar,
                &format!("{BASE}/partners/{partner}/companies?saved={id}"),
            )
        }
        Err(r) => {
            let (field, text) = if r.code == 409 {
                (
                    "form",
                    format!(
                        "Someone changed this company while you were editing it. Open it again to see their change, then make yours. ({})",
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
    fn ids_are_proposed_from_names() {
        assert_eq!(propose_id("Globex Corporation"), "globex-corporation");
        assert_eq!(propose_id("  Ünïcode & Co. 42 "), "n-code-co-42");
        assert_eq!(propose_id("<script>"), "script");
        assert_eq!(propose_id("---"), "");
        let long = propose_id(&"ab ".repeat(40));
        assert!(long.len() <= 50 && !long.ends_with('-'), "{long}");
    }

    #[test]
    fn refusals_land_beside_their_field() {
        let r = |code: u16, reason: &str, message: &str, fields: &[&str]| Refused {
            code,
            reason: reason.into(),
            message: message.into(),
            fields: fields
                .iter()
                .map(|f| (f.to_string(), String::new()))
                .collect(),
        };
        assert_eq!(field_of(&r(409, "AlreadyExists", "x", &[])), "id");
        assert_eq!(
            field_of(&r(422, "Invalid", "bad", &["spec.admins[0].email"])),
            "admins"
        );
        assert_eq!(
            field_of(&r(422, "Invalid", "spec.displayName: too long", &[])),
            "name"
        );
        assert_eq!(
            field_of(&r(403, "Forbidden", "tenants is forbidden", &[])),
            "form"
        );
    }
}
