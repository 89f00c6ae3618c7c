//! The token endpoint's grants (authorization code with PKCE, refresh token with rotation and
//! reuse detection, client credentials), revocation (RFC 7009) and introspection (RFC 7662),
//! and the access-token lookup `auth::authenticate` uses.
//!
//! Single use is one conditional `UPDATE … WHERE used_at IS NULL`: whichever request updates the
//! row wins; every other one — a replay, or a request racing the winner on another node — finds
//! nothing to update and is treated as reuse, which revokes the grant (the winner's new tokens
//! included). So a code or a refresh token never yields two live token sets.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sha2::{Digest, Sha256};

use super::installations::{load_client, token_hash};
use super::model::{CodeRow, InstallationRow, TokenRow};
use super::{ACCESS_PREFIX, OAuthError, REFRESH_PREFIX, parse_scope_param};
use crate::app::App;
use crate::apps::model::{AppRow, ClientRow};
use crate::apps::service::{Status, client_secret_hash};
use crate::platform::crypto;
use crate::platform::db::schema::{app_installations, app_secrets, oauth_codes, oauth_tokens};
use crate::platform::ids::{AppId, GrantId, InstallationId, OrgId, UserId};
use crate::{transaction, with_conn};

type OResult<T> = std::result::Result<T, OAuthError>;

/// A client's credentials as presented: HTTP Basic (`client_secret_basic`), form fields
/// (`client_secret_post`), or a `client_id` alone (`none`, public clients).
#[derive(Debug, Clone, Default)]
pub struct ClientCredentials {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// The credentials came in an `Authorization: Basic` header.
    pub basic: bool,
}

/// An authenticated client.
pub struct Client {
    pub app: AppRow,
    pub settings: ClientRow,
}

/// Authenticates the client of a token, revocation or introspection request.
pub async fn authenticate_client(app: &App, creds: &ClientCredentials) -> OResult<Client> {
    let bad = || OAuthError::invalid_client("client authentication failed");
    let id = creds.client_id.as_deref().ok_or_else(|| OAuthError::invalid_client("client_id is required"))?;
    let id: AppId = id.parse().map_err(|_| bad())?;
    let (row, settings) = load_client(app, &id).await?.ok_or_else(bad)?;
    match (settings.is_public(), creds.client_secret.as_deref()) {
        (true, None) => {}
        (true, Some(_)) => return Err(OAuthError::invalid_client("a public client has no client secret")),
        (false, None) => {
            return Err(OAuthError::invalid_client("this client must authenticate with its client secret"));
        }
        (false, Some(secret)) => {
            if secret.len() > 200 {
                return Err(bad());
            }
            let hash = client_secret_hash(app, secret);
            let now = app.clock.now_ms();
            let found: i64 = with_conn!(app.db, c => {
                app_secrets::table
                    .filter(app_secrets::secret_hash.eq(&hash))
                    .filter(app_secrets::app_id.eq(&row.id))
                    .filter(app_secrets::expires_at.is_null().or(app_secrets::expires_at.gt(now)))
                    .count()
                    .get_result(c).await?
            });
            if found == 0 {
                return Err(bad());
            }
        }
    }
    // The app's owner organization is suspended or deleted: its client credentials are refused.
    if app.org_states.denial(row.org_id.as_str()).is_some() {
        return Err(OAuthError::invalid_client("the organization that owns this client is suspended or deleted"));
    }
    Ok(Client { app: row, settings })
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

/// Who a new set of tokens is for.
struct Subject<'a> {
    grant: &'a GrantId,
    app_id: &'a AppId,
    installation: Option<&'a InstallationId>,
    org: &'a OrgId,
    user: Option<&'a UserId>,
    scopes: &'a [String],
}

/// Mints tokens (an access token, and a refresh token when `refresh`), returning their rows
/// (hashes only) and the response carrying the plain tokens.
fn mint(app: &App, settings: &ClientRow, s: &Subject<'_>, refresh: bool) -> (Vec<TokenRow>, TokenResponse) {
    let now = app.clock.now_ms();
    let access = format!("{ACCESS_PREFIX}{}", crypto::random_base62(43));
    let scopes = serde_json::to_string(s.scopes).unwrap_or_else(|_| "[]".into());
    let row = |kind: &str, token: &str, ttl_secs: i64| TokenRow {
        token_hash: token_hash(app, token),
        kind: kind.into(),
        grant_id: s.grant.clone(),
        app_id: s.app_id.clone(),
        installation_id: s.installation.cloned(),
        org_id: s.org.clone(),
        user_id: s.user.cloned(),
        scopes: scopes.clone(),
        expires_at: now + ttl_secs * 1000,
        used_at: None,
        revoked_at: None,
        created_at: now,
    };
    let mut rows = vec![row("access", &access, settings.access_token_ttl_secs)];
    let refresh_token = refresh.then(|| format!("{REFRESH_PREFIX}{}", crypto::random_base62(43)));
    if let Some(t) = &refresh_token {
        rows.push(row("refresh", t, settings.refresh_token_ttl_secs));
    }
    let response = TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: settings.access_token_ttl_secs,
        refresh_token,
        scope: s.scopes.join(" "),
    };
    (rows, response)
}

/// Revokes every token of a grant, on every node. Returns how many were live.
pub async fn revoke_grant(app: &App, grant: &GrantId) -> Result<usize, crate::error::Error> {
    let now = app.clock.now_ms();
    let hashes: Vec<String> = transaction!(app.db, c => {
        let h: Vec<String> = diesel::update(oauth_tokens::table.filter(oauth_tokens::grant_id.eq(grant)).filter(oauth_tokens::revoked_at.is_null()))
            .set(oauth_tokens::revoked_at.eq(now))
            .returning(oauth_tokens::token_hash)
            .get_results(c).await?;
        Ok::<_, crate::error::Error>(h)
    })?;
    let n = hashes.len();
    crate::auth::forget_tokens(app, hashes).await;
    Ok(n)
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters.
fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// `grant_type=authorization_code`.
pub async fn exchange_code(
    app: &App,
    client: &Client,
    code: Option<&str>,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
) -> OResult<TokenResponse> {
    let code = code.filter(|c| !c.is_empty()).ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    if code.len() > 200 {
        return Err(OAuthError::invalid_grant("unknown authorization code"));
    }
    let hash = super::installations::code_hash(app, code);
    let row: Option<CodeRow> = with_conn!(app.db, c => {
        oauth_codes::table.find(&hash).select(CodeRow::as_select()).first(c).await.optional()?
    });
    let Some(row) = row.filter(|r| r.app_id == client.app.id) else {
        return Err(OAuthError::invalid_grant("unknown authorization code"));
    };
    if row.used_at.is_some() {
        return Err(replayed(app, &hash).await);
    }
    let now = app.clock.now_ms();
    if row.expires_at <= now {
        return Err(OAuthError::invalid_grant("the authorization code has expired"));
    }
    if redirect_uri != Some(row.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant("redirect_uri does not match the authorization request"));
    }
    match (&row.code_challenge, verifier) {
        (Some(challenge), Some(v)) => {
            if !valid_verifier(v) || s256(v) != *challenge {
                return Err(OAuthError::invalid_grant("code_verifier does not match the code_challenge"));
            }
        }
        (Some(_), None) => return Err(OAuthError::invalid_grant("code_verifier is required (PKCE)")),
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier sent, but the authorization request had no code_challenge",
            ));
        }
        (None, None) => {}
    }
    let grant = GrantId::generate(now);
    let scopes: Vec<String> = serde_json::from_str(&row.scopes).unwrap_or_default();
    let subject = Subject {
        grant: &grant,
        app_id: &row.app_id,
        installation: Some(&row.installation_id),
        org: &row.org_id,
        user: Some(&row.user_id),
        scopes: &scopes,
    };
    let (rows, response) = mint(app, &client.settings, &subject, true);
    let outcome = transaction!(app.db, c => {
        let n = diesel::update(oauth_codes::table.find(&hash).filter(oauth_codes::used_at.is_null()))
            .set((oauth_codes::used_at.eq(now), oauth_codes::grant_id.eq(&grant)))
            .execute(c).await?;
        if n == 0 {
            return Ok(Exchange::Raced);
        }
        let installed: Option<InstallationRow> = app_installations::table
            .find(&row.installation_id)
            .filter(app_installations::uninstalled_at.is_null())
            .select(InstallationRow::as_select())
            .first(c).await.optional()?;
        if installed.is_none() {
            return Ok(Exchange::Uninstalled);
        }
        for r in &rows {
            diesel::insert_into(oauth_tokens::table).values(r).execute(c).await?;
        }
        Ok::<_, crate::error::Error>(Exchange::Issued)
    })?;
    match outcome {
        Exchange::Issued => Ok(response),
        Exchange::Raced => Err(replayed(app, &hash).await),
        Exchange::Uninstalled => Err(OAuthError::invalid_grant("the app was uninstalled")),
    }
}

enum Exchange {
    Issued,
    Raced,
    Uninstalled,
}

/// A code presented again: the tokens issued from it are revoked (RFC 6749 §4.1.2).
async fn replayed(app: &App, hash: &str) -> OAuthError {
    let grant: Result<Option<Option<GrantId>>, crate::error::Error> = async {
        Ok(with_conn!(app.db, c => {
            oauth_codes::table.find(hash).select(oauth_codes::grant_id).first(c).await.optional()?
        }))
    }
    .await;
    match grant {
        Ok(Some(Some(g))) => {
            if let Err(e) = revoke_grant(app, &g).await {
                return e.into();
            }
        }
        Ok(_) => {}
        Err(e) => return e.into(),
    }
    tracing::warn!("an authorization code was used twice; the tokens issued from it are revoked");
    OAuthError::invalid_grant("the authorization code was already used; the tokens issued from it are revoked")
}

/// `grant_type=refresh_token`: a new access and refresh token in the same grant; the presented
/// refresh token is used up.
pub async fn refresh(app: &App, client: &Client, token: Option<&str>, scope: Option<&str>) -> OResult<TokenResponse> {
    let token =
        token.filter(|t| !t.is_empty()).ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let unknown = || OAuthError::invalid_grant("unknown refresh token");
    if !token.starts_with(REFRESH_PREFIX) || token.len() > 200 {
        return Err(unknown());
    }
    let hash = token_hash(app, token);
    let row: Option<TokenRow> = with_conn!(app.db, c => {
        oauth_tokens::table.find(&hash).select(TokenRow::as_select()).first(c).await.optional()?
    });
    let Some(row) = row.filter(|r| r.kind == "refresh" && r.app_id == client.app.id) else {
        return Err(unknown());
    };
    if row.revoked_at.is_some() {
        return Err(OAuthError::invalid_grant("the refresh token has been revoked"));
    }
    if row.used_at.is_some() {
        return Err(reused(app, &row.grant_id).await);
    }
    let now = app.clock.now_ms();
    if row.expires_at <= now {
        return Err(OAuthError::invalid_grant("the refresh token has expired"));
    }
    let held = row.scope_list();
    let scopes = match scope.map(parse_scope_param) {
        Some(asked) if !asked.is_empty() => {
            if let Some(bad) = asked.iter().find(|s| !held.contains(s)) {
                return Err(OAuthError::invalid_scope(format!("`{bad}` was not granted")));
            }
            asked
        }
        _ => held,
    };
    let subject = Subject {
        grant: &row.grant_id,
        app_id: &row.app_id,
        installation: row.installation_id.as_ref(),
        org: &row.org_id,
        user: row.user_id.as_ref(),
        scopes: &scopes,
    };
    let (rows, response) = mint(app, &client.settings, &subject, true);
    let outcome = transaction!(app.db, c => {
        let n = diesel::update(oauth_tokens::table.find(&hash).filter(oauth_tokens::used_at.is_null()).filter(oauth_tokens::revoked_at.is_null()))
            .set(oauth_tokens::used_at.eq(now))
            .execute(c).await?;
        if n == 0 {
            return Ok(Exchange::Raced);
        }
        if let Some(ins) = &row.installation_id {
            let live: i64 = app_installations::table.find(ins).filter(app_installations::uninstalled_at.is_null()).count().get_result(c).await?;
            if live == 0 {
                return Ok(Exchange::Uninstalled);
            }
        }
        for r in &rows {
            diesel::insert_into(oauth_tokens::table).values(r).execute(c).await?;
        }
        Ok::<_, crate::error::Error>(Exchange::Issued)
    })?;
    match outcome {
        Exchange::Issued => Ok(response),
        Exchange::Raced => Err(reused(app, &row.grant_id).await),
        Exchange::Uninstalled => Err(OAuthError::invalid_grant("the app was uninstalled")),
    }
}

/// A refresh token presented after it was used: the whole grant is revoked (OAuth 2.1 §4.3.1).
async fn reused(app: &App, grant: &GrantId) -> OAuthError {
    if let Err(e) = revoke_grant(app, grant).await {
        return e.into();
    }
    tracing::warn!(grant = %grant, "a used refresh token was presented again; the grant is revoked");
    OAuthError::invalid_grant("the refresh token was already used; every token of this grant is revoked")
}

/// Scopes a client-credentials token never carries (see [`client_credentials`]).
const SELF_EXCLUDED_SCOPES: &[&str] = &["org:write", "billing:read", "billing:write", "features:write"];

/// `grant_type=client_credentials`: the app acting as itself on its owner organization, within
/// its requested scopes but for the organization's management (members, billing, flags). No
/// refresh token (RFC 6749 §4.4.3).
pub async fn client_credentials(app: &App, client: &Client, scope: Option<&str>) -> OResult<TokenResponse> {
    if client.settings.is_public() {
        return Err(OAuthError::new("unauthorized_client", "a public client cannot use client_credentials"));
    }
    if client.app.status() == Status::Deprecated {
        return Err(OAuthError::new("unauthorized_client", "this application has been deprecated"));
    }
    // Acting as itself on its owner organization, an app never manages that organization's
    // members, bill or flags: whoever created it may hold fewer rights there than it requests of
    // the organizations that install it.
    let offered: Vec<String> =
        client.app.scope_list().into_iter().filter(|s| !SELF_EXCLUDED_SCOPES.contains(&s.as_str())).collect();
    let scopes = match scope.map(parse_scope_param) {
        Some(asked) if !asked.is_empty() => {
            if let Some(bad) = asked.iter().find(|s| !offered.contains(s)) {
                return Err(OAuthError::invalid_scope(format!(
                    "`{bad}` is not a scope this application holds as itself"
                )));
            }
            asked
        }
        _ => offered,
    };
    let now = app.clock.now_ms();
    let grant = GrantId::generate(now);
    let subject = Subject {
        grant: &grant,
        app_id: &client.app.id,
        installation: None,
        org: &client.app.org_id,
        user: None,
        scopes: &scopes,
    };
    let (rows, response) = mint(app, &client.settings, &subject, false);
    transaction!(app.db, c => {
        for r in &rows {
            diesel::insert_into(oauth_tokens::table).values(r).execute(c).await?;
        }
        Ok::<_, crate::error::Error>(())
    })?;
    Ok(response)
}

async fn find_token(app: &App, token: &str) -> OResult<Option<TokenRow>> {
    if !(token.starts_with(ACCESS_PREFIX) || token.starts_with(REFRESH_PREFIX)) || token.len() > 200 {
        return Ok(None);
    }
    let hash = token_hash(app, token);
    Ok(with_conn!(app.db, c => {
        oauth_tokens::table.find(&hash).select(TokenRow::as_select()).first(c).await.optional()?
    }))
}

/// RFC 7009: revokes one of the client's tokens; a refresh token takes its whole grant with it.
/// Unknown tokens, and other clients' tokens, are answered the same way (nothing to revoke).
pub async fn revoke(app: &App, client: &Client, token: Option<&str>) -> OResult<()> {
    let token = token.ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let Some(row) = find_token(app, token).await?.filter(|r| r.app_id == client.app.id) else {
        return Ok(());
    };
    if row.kind == "refresh" {
        revoke_grant(app, &row.grant_id).await?;
        return Ok(());
    }
    let now = app.clock.now_ms();
    let hash = row.token_hash.clone();
    transaction!(app.db, c => {
        diesel::update(oauth_tokens::table.find(&hash).filter(oauth_tokens::revoked_at.is_null()))
            .set(oauth_tokens::revoked_at.eq(now))
            .execute(c).await?;
        Ok::<_, crate::error::Error>(())
    })?;
    crate::auth::forget_tokens(app, vec![hash]).await;
    Ok(())
}

/// RFC 7662: what one of the client's tokens is, or `{"active": false}`.
pub async fn introspect(app: &App, client: &Client, token: Option<&str>) -> OResult<serde_json::Value> {
    let token = token.ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let inactive = serde_json::json!({ "active": false });
    let Some(row) = find_token(app, token).await?.filter(|r| r.app_id == client.app.id) else {
        return Ok(inactive);
    };
    let now = app.clock.now_ms();
    if row.revoked_at.is_some() || row.expires_at <= now || row.used_at.is_some() {
        return Ok(inactive);
    }
    if let Some(ins) = &row.installation_id {
        let live: i64 = with_conn!(app.db, c => {
            app_installations::table.find(ins).filter(app_installations::uninstalled_at.is_null()).count().get_result(c).await?
        });
        if live == 0 {
            return Ok(inactive);
        }
    }
    Ok(serde_json::json!({
        "active": true,
        "scope": row.scope_list().join(" "),
        "client_id": row.app_id,
        "token_type": if row.kind == "access" { "Bearer" } else { "refresh_token" },
        "exp": row.expires_at / 1000,
        "iat": row.created_at / 1000,
        "sub": row.user_id.as_ref().map(|u| u.to_string()).unwrap_or_else(|| row.app_id.to_string()),
        "organization_id": row.org_id,
        "installation_id": row.installation_id,
    }))
}

/// What an access token resolves to, for `auth::authenticate` (which caches it per node).
pub async fn load_access_token(
    app: &App,
    hash: &str,
) -> Result<Option<crate::auth::TokenCredential>, crate::error::Error> {
    use crate::platform::db::schema::app_clients;
    let found: Option<(TokenRow, Option<String>)> = with_conn!(app.db, c => {
        oauth_tokens::table
            .inner_join(app_clients::table.on(app_clients::app_id.eq(oauth_tokens::app_id)))
            .filter(oauth_tokens::token_hash.eq(hash))
            .filter(oauth_tokens::kind.eq("access"))
            .select((TokenRow::as_select(), app_clients::rate_limit))
            .first(c).await.optional()?
    });
    let Some((row, rate_limit)) = found else {
        return Ok(None);
    };
    let uninstalled = match &row.installation_id {
        Some(ins) => {
            let live: i64 = with_conn!(app.db, c => {
                app_installations::table.find(ins).filter(app_installations::uninstalled_at.is_null()).count().get_result(c).await?
            });
            live == 0
        }
        None => false,
    };
    let rate_override = rate_limit
        .as_deref()
        .and_then(|s| serde_json::from_str::<crate::limits::policy::Override>(s).ok())
        .filter(|o| !o.is_empty())
        .map(|o| std::sync::Arc::new(crate::limits::policy::Override { above_plan: false, ..o }));
    Ok(Some(crate::auth::TokenCredential {
        scopes: std::sync::Arc::new(row.scope_list()),
        app_id: row.app_id,
        installation_id: row.installation_id,
        org_id: row.org_id,
        user_id: row.user_id,
        expires_at: row.expires_at,
        revoked: row.revoked_at.is_some() || uninstalled,
        rate_override,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc_7636_appendix_b() {
        assert_eq!(s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert!(valid_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
        assert!(!valid_verifier("short"));
        assert!(!valid_verifier(&"a b".repeat(20)));
    }
}
