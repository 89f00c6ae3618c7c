//! The authorization request (RFC 6749 §4.1.1) and the consent it ends in: an installation of
//! the app in an organization (by a member whose role manages installs: OWNER, ADMIN, MEMBER) holding the granted scopes, and a single-use
//! authorization code for the redirect. Also listing and uninstalling installations; an
//! uninstall revokes every token of the installation on every node.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::model::{CodeRow, InstallationRow};
use super::{CODE_PREFIX, CODE_TTL_MS, parse_scope_param};
use crate::app::App;
use crate::apps::model::{AppRow, ClientRow};
use crate::apps::service::Status;
use crate::auth::{Principal, Role, scopes_allow};
use crate::error::{Error, Result};
use crate::events::{NewAudit, PendingEvent};
use crate::platform::crypto;
use crate::platform::db::schema::{app_install_log, app_installations, apps, memberships, oauth_codes, oauth_tokens};
use crate::platform::ids::{AppId, InstallationId, OrgId, UserId};
use crate::{transaction, with_conn};

const CODE_DOMAIN: &str = "oauth_code";
const TOKEN_DOMAIN: &str = "oauth_token";

/// The keyed hash an authorization code is stored and looked up by.
pub fn code_hash(app: &App, code: &str) -> String {
    app.secret.keyed_hash(CODE_DOMAIN, code)
}

/// The keyed hash an access or refresh token is stored and looked up by.
pub fn token_hash(app: &App, token: &str) -> String {
    app.secret.keyed_hash(TOKEN_DOMAIN, token)
}

/// The parameters of an authorization request, as sent.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
}

/// Why an authorization request cannot go on.
#[derive(Debug, Clone)]
pub enum AuthorizeError {
    /// Shown to the user and never redirected: the client or the redirect URI cannot be trusted.
    Page(String),
    /// Sent back to the client's redirect URI as `error` (RFC 6749 §4.1.2.1).
    Redirect { redirect_uri: String, state: Option<String>, error: &'static str, description: String },
}

impl AuthorizeError {
    /// The redirect location of a redirected error.
    pub fn location(&self) -> Option<String> {
        match self {
            AuthorizeError::Page(_) => None,
            AuthorizeError::Redirect { redirect_uri, state, error, description } => Some(with_query(
                redirect_uri,
                &[("error", error), ("error_description", description)],
                state.as_deref(),
            )),
        }
    }
}

/// A checked authorization request: the client, the exact redirect URI, the scopes asked for.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    pub app: AppRow,
    pub client: ClientRow,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
}

fn with_query(uri: &str, pairs: &[(&str, &str)], state: Option<&str>) -> String {
    match url::Url::parse(uri) {
        Ok(mut url) => {
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in pairs {
                    q.append_pair(k, v);
                }
                if let Some(s) = state {
                    q.append_pair("state", s);
                }
            }
            url.to_string()
        }
        Err(_) => uri.to_string(),
    }
}

/// Checks an authorization request in the RFC's order: the client and redirect URI first (errors
/// shown, never redirected), then everything else (errors redirected with the `state`).
pub async fn check_request(
    app: &App,
    params: &AuthorizeParams,
) -> std::result::Result<AuthorizeRequest, AuthorizeError> {
    let page = |m: &str| AuthorizeError::Page(m.to_string());
    let client_id = params
        .client_id
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| page("The request names no client (`client_id` is missing)."))?;
    let Ok(app_id) = client_id.parse::<AppId>() else {
        return Err(page("The application asking for access is not known here (unknown `client_id`)."));
    };
    let found = load_client(app, &app_id).await.map_err(|e| {
        e.log();
        page("The authorization server could not read the application; try again.")
    })?;
    let Some((row, client)) = found else {
        return Err(page("The application asking for access is not known here (unknown `client_id`)."));
    };
    let registered = client.redirect_uri_list();
    let redirect_uri = match params.redirect_uri.as_deref() {
        Some(uri) if registered.iter().any(|r| r == uri) => uri.to_string(),
        Some(_) => {
            return Err(page("The redirect URI is not one the application registered; you were not sent to it."));
        }
        None if registered.len() == 1 => registered[0].clone(),
        None => return Err(page("The request names no redirect URI (`redirect_uri` is missing).")),
    };
    let state = params.state.clone();
    let redirect = |error: &'static str, description: &str| AuthorizeError::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: state.clone(),
        error,
        description: description.to_string(),
    };
    match params.response_type.as_deref() {
        Some("code") => {}
        None => return Err(redirect("invalid_request", "response_type is required")),
        Some(_) => return Err(redirect("unsupported_response_type", "only response_type=code is supported")),
    }
    if state.as_ref().is_some_and(|s| s.len() > 2048) {
        return Err(redirect("invalid_request", "state is longer than 2048 characters"));
    }
    let code_challenge = match (params.code_challenge.as_deref(), params.code_challenge_method.as_deref()) {
        (None, None) => None,
        (None, Some(_)) => return Err(redirect("invalid_request", "code_challenge_method without code_challenge")),
        (Some(_), Some("plain")) => {
            return Err(redirect("invalid_request", "code_challenge_method=plain is not accepted; use S256"));
        }
        (Some(_), None) => return Err(redirect("invalid_request", "code_challenge_method=S256 is required")),
        (Some(ch), Some("S256")) => {
            let ok = ch.len() == 43 && ch.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return Err(redirect(
                    "invalid_request",
                    "code_challenge must be the base64url SHA-256 of the verifier (43 characters)",
                ));
            }
            Some(ch.to_string())
        }
        (Some(_), Some(_)) => return Err(redirect("invalid_request", "code_challenge_method must be S256")),
    };
    if client.is_public() && code_challenge.is_none() {
        return Err(redirect("invalid_request", "a public client must use PKCE (code_challenge with S256)"));
    }
    if row.status() == Status::Deprecated {
        return Err(redirect(
            "unauthorized_client",
            "this application has been deprecated and can no longer be installed",
        ));
    }
    let offered = row.scope_list();
    let scopes = match params.scope.as_deref().map(parse_scope_param) {
        None => offered.clone(),
        Some(asked) if asked.is_empty() => offered.clone(),
        Some(asked) => {
            if let Some(bad) = asked.iter().find(|s| !offered.contains(s)) {
                return Err(redirect("invalid_scope", &format!("`{bad}` is not a scope this application requests")));
            }
            asked
        }
    };
    Ok(AuthorizeRequest { app: row, client, redirect_uri, scopes, state, code_challenge })
}

/// An app with its client settings.
pub async fn load_client(app: &App, id: &AppId) -> Result<Option<(AppRow, ClientRow)>> {
    use crate::platform::db::schema::app_clients;
    Ok(with_conn!(app.db, c => {
        apps::table
            .inner_join(app_clients::table)
            .filter(apps::id.eq(id))
            .select((AppRow::as_select(), ClientRow::as_select()))
            .first(c).await.optional()?
    }))
}

/// The organizations where the user may install the app: those where their role manages installs
/// (OWNER, ADMIN, MEMBER; and, while the app is not in the marketplace, only its owner organization).
pub async fn installable_orgs(app: &App, user: &UserId, target: &AppRow) -> Result<Vec<(OrgId, String)>> {
    use crate::platform::db::schema::organizations;
    let rows: Vec<(OrgId, String, String)> = with_conn!(app.db, c => {
        memberships::table
            .inner_join(organizations::table)
            .filter(memberships::user_id.eq(user))
            .select((memberships::org_id, organizations::name, memberships::role))
            .order(memberships::org_id.asc())
            .load(c).await?
    });
    Ok(rows
        .into_iter()
        .filter(|(_, _, role)| Role::parse(role).is_some_and(may_install))
        .filter(|(org, _, _)| target.status() == Status::Active || *org == target.org_id)
        .map(|(org, name, _)| (org, name))
        .collect())
}

/// Whether a role manages installations (the teams matrix: OWNER, ADMIN, MEMBER).
fn may_install(role: Role) -> bool {
    scopes_allow(&role.scopes(), "apps:write")
}

/// The user's consent: installs the app in `org` with the requested scopes the user may grant
/// (or updates the installation, adding scopes), and issues a code for the redirect. Returns the
/// redirect location and the installation.
pub async fn approve(
    app: &App,
    user: &UserId,
    ip: Option<std::net::IpAddr>,
    org: &OrgId,
    req: &AuthorizeRequest,
) -> Result<(String, InstallationRow)> {
    let role = crate::accounts::service::role_in(app, user, org).await?.ok_or(Error::NotFound("organization"))?;
    if !may_install(role) {
        return Err(Error::forbidden("your role in this organization does not manage app installations"));
    }
    if req.app.status() != Status::Active && req.app.org_id != *org {
        return Err(Error::forbidden(
            "this application is not in the marketplace yet: only its own organization may authorize it",
        ));
    }
    let may_grant = role.scopes();
    let granted: Vec<String> = req.scopes.iter().filter(|s| scopes_allow(&may_grant, s)).cloned().collect();
    if granted.is_empty() {
        return Err(Error::forbidden("you may not grant any of the scopes this application asks for"));
    }
    let now = app.clock.now_ms();
    let code = format!("{CODE_PREFIX}{}", crypto::random_base62(43));
    let hash = code_hash(app, &code);
    let app_id = req.app.id.clone();
    let owner_org = req.app.org_id.clone();
    let granted_json = serde_json::to_string(&granted).unwrap_or_else(|_| "[]".into());
    let (installation, event) = transaction!(app.db, c => {
        let existing: Option<InstallationRow> = app_installations::table
            .filter(app_installations::app_id.eq(&app_id))
            .filter(app_installations::org_id.eq(org))
            .select(InstallationRow::as_select())
            .first(c).await.optional()?;
        let (installation, action) = match existing {
            Some(old) if old.uninstalled_at.is_none() => {
                let mut scopes = old.scope_list();
                for s in &granted {
                    if !scopes.contains(s) {
                        scopes.push(s.clone());
                    }
                }
                scopes.sort();
                let row: InstallationRow = diesel::update(app_installations::table.find(&old.id))
                    .set((app_installations::scopes.eq(serde_json::to_string(&scopes).unwrap_or_default()), app_installations::updated_at.eq(now)))
                    .returning(InstallationRow::as_returning())
                    .get_result(c).await?;
                (row, "install.updated")
            }
            Some(old) => {
                let row: InstallationRow = diesel::update(app_installations::table.find(&old.id))
                    .set((
                        app_installations::scopes.eq(&granted_json),
                        app_installations::installed_by.eq(Some(user)),
                        app_installations::updated_at.eq(now),
                        app_installations::uninstalled_at.eq(None::<i64>),
                    ))
                    .returning(InstallationRow::as_returning())
                    .get_result(c).await?;
                diesel::update(apps::table.find(&app_id)).set(apps::install_count.eq(apps::install_count + 1)).execute(c).await?;
                (row, "install.created")
            }
            None => {
                let row = InstallationRow {
                    id: InstallationId::generate(now),
                    app_id: app_id.clone(),
                    org_id: org.clone(),
                    scopes: granted_json.clone(),
                    installed_by: Some(user.clone()),
                    created_at: now,
                    updated_at: now,
                    uninstalled_at: None,
                };
                diesel::insert_into(app_installations::table).values(&row).execute(c).await?;
                diesel::update(apps::table.find(&app_id)).set(apps::install_count.eq(apps::install_count + 1)).execute(c).await?;
                (row, "install.created")
            }
        };
        if action == "install.created" {
            diesel::insert_into(app_install_log::table)
                .values((app_install_log::app_id.eq(&app_id), app_install_log::org_id.eq(org), app_install_log::kind.eq("install"), app_install_log::at.eq(now)))
                .execute(c).await?;
        }
        diesel::insert_into(oauth_codes::table)
            .values(CodeRow {
                code_hash: hash.clone(),
                app_id: app_id.clone(),
                installation_id: installation.id.clone(),
                org_id: org.clone(),
                user_id: user.clone(),
                redirect_uri: req.redirect_uri.clone(),
                scopes: granted_json.clone(),
                code_challenge: req.code_challenge.clone(),
                grant_id: None,
                expires_at: now + CODE_TTL_MS,
                used_at: None,
                created_at: now,
            })
            .execute(c).await?;
        let data = install_data(&installation, &req.app.name);
        let event = crate::outbox!(
            c,
            PendingEvent::new(app, org, action, data.clone()),
            NewAudit::raw(app, org, "user", user.as_str(), ip, action, "installation", installation.id.as_str(), serde_json::json!({ "scopes": granted }))
        );
        // The app's owner sees its installs too.
        let event2 = (owner_org != *org).then(|| PendingEvent::new(app, &owner_org, action, data));
        if let Some(e) = &event2 {
            diesel::insert_into(crate::platform::db::schema::events::table).values(&e.row).execute(c).await?;
        }
        Ok::<_, Error>((installation, (event, event2)))
    })?;
    event.0.publish(app).await;
    if let Some(e) = event.1 {
        e.publish(app).await;
    }
    let location = with_query(&req.redirect_uri, &[("code", &code)], req.state.as_deref());
    Ok((location, installation))
}

/// The user's refusal: the redirect back with `error=access_denied`.
pub fn deny(req: &AuthorizeRequest) -> String {
    with_query(
        &req.redirect_uri,
        &[("error", "access_denied"), ("error_description", "the user denied the request")],
        req.state.as_deref(),
    )
}

pub(crate) fn install_data(row: &InstallationRow, app_name: &str) -> serde_json::Value {
    serde_json::json!({
        "installation": {
            "id": row.id, "appId": row.app_id, "appName": app_name, "organizationId": row.org_id,
            "scopes": row.scope_list(), "uninstalledAt": row.uninstalled_at.map(crate::platform::clock::rfc3339),
        }
    })
}

/// The apps installed in the principal's organization now, newest first (`apps:read`).
pub async fn list_installations(app: &App, principal: &Principal) -> Result<Vec<(InstallationRow, AppRow)>> {
    principal.require_scope("apps:read")?;
    Ok(with_conn!(app.db, c => {
        app_installations::table
            .inner_join(apps::table)
            .filter(app_installations::org_id.eq(&principal.org_id))
            .filter(app_installations::uninstalled_at.is_null())
            .order(app_installations::id.desc())
            .select((InstallationRow::as_select(), AppRow::as_select()))
            .load(c).await?
    }))
}

/// Uninstalls an app from the principal's organization (`apps:write`): every token of the
/// installation stops working on every node at once.
pub async fn uninstall(app: &App, principal: &Principal, id: &str) -> Result<InstallationRow> {
    principal.require_scope("apps:write")?;
    let id: InstallationId = id.parse().map_err(|_| Error::NotFound("installation"))?;
    let now = app.clock.now_ms();
    let org = principal.org_id.clone();
    let (row, hashes, events) = transaction!(app.db, c => {
        let row: Option<InstallationRow> = diesel::update(
                app_installations::table.find(&id)
                    .filter(app_installations::org_id.eq(&org))
                    .filter(app_installations::uninstalled_at.is_null()))
            .set((app_installations::uninstalled_at.eq(now), app_installations::updated_at.eq(now)))
            .returning(InstallationRow::as_returning())
            .get_result(c).await.optional()?;
        let Some(row) = row else {
            return Err(Error::NotFound("installation"));
        };
        let hashes: Vec<String> = diesel::update(
                oauth_tokens::table.filter(oauth_tokens::installation_id.eq(&row.id)).filter(oauth_tokens::revoked_at.is_null()))
            .set(oauth_tokens::revoked_at.eq(now))
            .returning(oauth_tokens::token_hash)
            .get_results(c).await?;
        diesel::insert_into(app_install_log::table)
            .values((app_install_log::app_id.eq(&row.app_id), app_install_log::org_id.eq(&org), app_install_log::kind.eq("uninstall"), app_install_log::at.eq(now)))
            .execute(c).await?;
        let target: AppRow = diesel::update(apps::table.find(&row.app_id))
            .set(apps::install_count.eq(apps::install_count - 1))
            .returning(AppRow::as_returning())
            .get_result(c).await?;
        let data = install_data(&row, &target.name);
        let event = crate::outbox!(
            c,
            PendingEvent::new(app, &org, "install.deleted", data.clone()),
            NewAudit::by(app, principal, "install.deleted", "installation", row.id.as_str(), serde_json::json!({ "appId": row.app_id }))
        );
        let owner_event = (target.org_id != org).then(|| PendingEvent::new(app, &target.org_id, "install.deleted", data));
        if let Some(e) = &owner_event {
            diesel::insert_into(crate::platform::db::schema::events::table).values(&e.row).execute(c).await?;
        }
        Ok::<_, Error>((row, hashes, (event, owner_event)))
    })?;
    crate::auth::forget_tokens(app, hashes).await;
    events.0.publish(app).await;
    if let Some(e) = events.1 {
        e.publish(app).await;
    }
    Ok(row)
}
