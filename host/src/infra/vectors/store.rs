//! Where collections live: a Qdrant server when `QDRANT_URL` is set, the
//! embedded Qdrant engine under `VECTORS_DIR` otherwise; both check input
//! the same way (`model.rs`) and answer the same typed errors.

use std::sync::Arc;

use super::embedded::EmbeddedVectors;
use super::model::{
    CollectionName, CollectionSpec, FieldMatch, Hit, MAX_DIMENSION, MAX_FILTER_CONDITIONS,
    MAX_FILTER_KEY_BYTES, MAX_POINTS_PER_UPSERT, MAX_SEARCH_LIMIT, Point, VectorFailure,
};
use super::server::ServerVectors;
use super::settings::VectorSettings;
use crate::infra::sync::lock;

/// One quota check-and-write at a time per plugin: the lock of each plugin
/// that wrote (a few bytes per plugin; plugins are few).
fn quota_lock(plugin: &str) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    > = std::sync::OnceLock::new();
    let locks = LOCKS.get_or_init(Default::default);
    lock(locks).entry(plugin.to_string()).or_default().clone()
}

/// Where collections live; cheap to clone.
#[derive(Clone)]
pub enum VectorStore {
    Embedded(Arc<EmbeddedVectors>),
    Server(Arc<ServerVectors>),
}

impl VectorStore {
    pub fn from_settings(settings: &VectorSettings) -> Result<Self, VectorFailure> {
        Ok(match &settings.qdrant {
            Some(qdrant) => Self::Server(Arc::new(ServerVectors::new(qdrant)?)),
            None => Self::embedded(settings.dir.clone()),
        })
    }

    pub fn embedded(dir: std::path::PathBuf) -> Self {
        Self::Embedded(Arc::new(EmbeddedVectors::new(dir)))
    }

    /// For the start-up log: "qdrant server" or the embedded engine's folder.
    pub fn describe(&self) -> String {
        match self {
            Self::Embedded(store) => format!("embedded ({})", store.dir().display()),
            Self::Server(_) => "qdrant server".into(),
        }
    }

    pub async fn ensure(
        &self,
        collection: &CollectionName,
        spec: CollectionSpec,
    ) -> Result<(), VectorFailure> {
        if spec.dimension == 0 || spec.dimension > MAX_DIMENSION {
            return Err(VectorFailure::InvalidInput(format!(
                "a dimension must be 1-{MAX_DIMENSION}, got {}",
                spec.dimension
            )));
        }
        match self {
            Self::Embedded(store) => store.ensure(collection.clone(), spec).await,
            Self::Server(store) => store.ensure(collection, spec).await,
        }
    }

    /// `plugin`'s collections and their shapes, by name.
    pub async fn list(&self, plugin: &str) -> Result<Vec<(String, CollectionSpec)>, VectorFailure> {
        let mut found = match self {
            Self::Embedded(store) => store.list(plugin.to_string()).await?,
            Self::Server(store) => store.list(plugin).await?,
        };
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(found)
    }

    /// Removes the collection and its points; false when there was none.
    pub async fn drop_collection(
        &self,
        collection: &CollectionName,
    ) -> Result<bool, VectorFailure> {
        match self {
            Self::Embedded(store) => store.drop_collection(collection.clone()).await,
            Self::Server(store) => store.drop_collection(collection).await,
        }
    }

    pub async fn upsert(
        &self,
        collection: &CollectionName,
        points: Vec<Point>,
    ) -> Result<(), VectorFailure> {
        if points.len() > MAX_POINTS_PER_UPSERT {
            return Err(VectorFailure::InvalidInput(format!(
                "upsert takes at most {MAX_POINTS_PER_UPSERT} points, got {}",
                points.len()
            )));
        }
        if points.is_empty() {
            return Ok(());
        }
        match self {
            Self::Embedded(store) => store.upsert(collection.clone(), points).await,
            Self::Server(store) => store.upsert(collection, points).await,
        }
    }

    /// [`Self::upsert`] unless the plugin's collections would then hold more
    /// than `max_points` points. One check-and-write at a time per plugin in
    /// this process; replicas sharing a Qdrant server may each add one batch
    /// past the quota when they write at the same moment.
    pub async fn upsert_within(
        &self,
        collection: &CollectionName,
        points: Vec<Point>,
        max_points: u64,
    ) -> Result<(), VectorFailure> {
        let lock = quota_lock(&collection.plugin);
        let _turn = lock.lock().await;
        let ids: Vec<u64> = points.iter().map(|point| point.id).collect();
        let (held, added) = match self {
            Self::Embedded(store) => store.usage(collection.clone(), ids).await?,
            Self::Server(store) => store.usage(collection, &ids).await?,
        };
        if held + added > max_points {
            return Err(VectorFailure::QuotaExceeded(format!(
                "quota exceeded: this plugin may keep {max_points} vector points; it holds {held} and the upsert adds {added} (delete some, or the operator raises the quota)"
            )));
        }
        self.upsert(collection, points).await
    }

    pub async fn search(
        &self,
        collection: &CollectionName,
        vector: Vec<f32>,
        limit: u32,
        filter: Vec<FieldMatch>,
    ) -> Result<Vec<Hit>, VectorFailure> {
        if limit == 0 || limit > MAX_SEARCH_LIMIT {
            return Err(VectorFailure::InvalidInput(format!(
                "a search limit must be 1-{MAX_SEARCH_LIMIT}, got {limit}"
            )));
        }
        check_filter(&filter)?;
        match self {
            Self::Embedded(store) => {
                store
                    .search(collection.clone(), vector, limit, filter)
                    .await
            }
            Self::Server(store) => store.search(collection, vector, limit, &filter).await,
        }
    }

    pub async fn delete(
        &self,
        collection: &CollectionName,
        ids: Vec<u64>,
    ) -> Result<(), VectorFailure> {
        match self {
            Self::Embedded(store) => store.delete(collection.clone(), ids).await,
            Self::Server(store) => store.delete(collection, ids).await,
        }
    }

    pub async fn delete_matching(
        &self,
        collection: &CollectionName,
        filter: Vec<FieldMatch>,
    ) -> Result<(), VectorFailure> {
        if filter.is_empty() {
            return Err(VectorFailure::InvalidInput(
                "delete-matching needs at least one condition (it would remove every point)".into(),
            ));
        }
        check_filter(&filter)?;
        match self {
            Self::Embedded(store) => store.delete_matching(collection.clone(), filter).await,
            Self::Server(store) => store.delete_matching(collection, &filter).await,
        }
    }
}

fn check_filter(filter: &[FieldMatch]) -> Result<(), VectorFailure> {
    if filter.len() > MAX_FILTER_CONDITIONS {
        return Err(VectorFailure::InvalidInput(format!(
            "a filter takes at most {MAX_FILTER_CONDITIONS} conditions"
        )));
    }
    match filter
        .iter()
        .find(|c| c.key.is_empty() || c.key.len() > MAX_FILTER_KEY_BYTES)
    {
        Some(bad) => Err(VectorFailure::InvalidInput(format!(
            "filter keys must be 1-{MAX_FILTER_KEY_BYTES} bytes, got {:?}",
            bad.key
        ))),
        None => Ok(()),
    }
}
