//! DataLoaders for relations, one per request so results never cross principals. Callers have
//! already checked that the caller may see what they ask for.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};

use crate::accounts::model::{OrgRow, UserRow};
use crate::accounts::service;
use crate::app::App;
use crate::apps::model::AppRow;
use crate::platform::ids::{AppId, OrgId, UserId};

pub struct AppLoader(pub Arc<App>);

/// The request's DataLoader, created on first use (most requests never load a relation).
pub struct Loaders {
    app: Arc<App>,
    cell: std::sync::OnceLock<DataLoader<AppLoader>>,
}

impl Loaders {
    pub fn get(&self) -> &DataLoader<AppLoader> {
        self.cell.get_or_init(|| DataLoader::new(AppLoader(self.app.clone()), tokio::spawn))
    }
}

pub fn loaders(app: Arc<App>) -> Loaders {
    Loaders { app, cell: std::sync::OnceLock::new() }
}

impl Loader<UserId> for AppLoader {
    type Value = UserRow;
    type Error = Arc<crate::error::Error>;

    async fn load(&self, keys: &[UserId]) -> Result<HashMap<UserId, UserRow>, Self::Error> {
        let rows = service::load_users(&self.0, keys).await.map_err(Arc::new)?;
        Ok(rows.into_iter().map(|r| (r.id.clone(), r)).collect())
    }
}

impl Loader<OrgId> for AppLoader {
    type Value = OrgRow;
    type Error = Arc<crate::error::Error>;

    async fn load(&self, keys: &[OrgId]) -> Result<HashMap<OrgId, OrgRow>, Self::Error> {
        let rows = service::load_orgs(&self.0, keys).await.map_err(Arc::new)?;
        Ok(rows.into_iter().map(|r| (r.id.clone(), r)).collect())
    }
}

impl Loader<AppId> for AppLoader {
    type Value = AppRow;
    type Error = Arc<crate::error::Error>;

    async fn load(&self, keys: &[AppId]) -> Result<HashMap<AppId, AppRow>, Self::Error> {
        let rows = crate::apps::service::load_apps(&self.0, keys).await.map_err(Arc::new)?;
        Ok(rows.into_iter().map(|r| (r.id.clone(), r)).collect())
    }
}

/// Turns a loader failure into the client-facing error (logged once if internal).
pub fn loader_error(e: Arc<crate::error::Error>) -> async_graphql::Error {
    crate::graphql::errors::to_graphql(&e)
}
