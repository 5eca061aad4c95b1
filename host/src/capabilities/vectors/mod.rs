//! `wasmbot:plugin/vectors`: similarity search over collections of points,
//! each collection private to the plugin that ensured it, and `embed` for
//! turning text into vectors. A Qdrant server when `QDRANT_URL` is set, the
//! embedded Qdrant engine under `VECTORS_DIR` otherwise; both check input
//! the same way (`model.rs`) and answer the same typed errors.

mod embedded;
mod embeddings;
mod model;
mod server;
mod settings;

pub use embedded::EmbeddedVectors;
pub use embeddings::EmbeddingsClient;
pub use model::{
    CollectionName, CollectionSpec, Distance, FieldMatch, FieldValue, Hit, Point, VectorFailure,
};
pub use server::ServerVectors;
pub use settings::{EmbeddingsSettings, QdrantSettings, VectorSettings};

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use crate::runtime::CallState;
use crate::runtime::bindings_vectors::{self as wit, VectorError};
use model::{
    MAX_DIMENSION, MAX_FILTER_CONDITIONS, MAX_PAYLOAD_BYTES, MAX_POINTS_PER_UPSERT,
    MAX_SEARCH_LIMIT,
};

const ALERT_KEY_EMBEDDINGS: &str = "embeddings";

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
        .find(|c| c.key.is_empty() || c.key.len() > 256)
    {
        Some(bad) => Err(VectorFailure::InvalidInput(format!(
            "filter keys must be 1-256 bytes, got {:?}",
            bad.key
        ))),
        None => Ok(()),
    }
}

/// Collection names a plugin may use: 1-64 of a-z, 0-9, `-`, `_`.
fn collection_name(plugin: &str, name: &str) -> Result<CollectionName, VectorError> {
    if !CollectionName::is_valid(name) {
        return Err(VectorError::InvalidInput(format!(
            "collection name {name:?} is not 1-64 characters a-z, 0-9, '-' or '_'"
        )));
    }
    Ok(CollectionName {
        plugin: plugin.to_string(),
        name: name.to_string(),
    })
}

fn payload_object(
    payload: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, VectorError> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(VectorError::InvalidInput(format!(
            "a payload must be at most {MAX_PAYLOAD_BYTES} bytes, got {}",
            payload.len()
        )));
    }
    match serde_json::from_str(payload) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(VectorError::InvalidInput(
            "a payload must be a JSON object (\"{}\" for none)".into(),
        )),
        Err(error) => Err(VectorError::InvalidInput(format!(
            "a payload is not valid JSON: {error}"
        ))),
    }
}

fn field_matches(filter: Vec<wit::FieldMatch>) -> Vec<FieldMatch> {
    filter
        .into_iter()
        .map(|condition| FieldMatch {
            key: condition.key,
            value: match condition.value {
                wit::FieldValue::Text(text) => FieldValue::Text(text),
                wit::FieldValue::Integer(number) => FieldValue::Integer(number),
                wit::FieldValue::Boolean(flag) => FieldValue::Boolean(flag),
            },
        })
        .collect()
}

impl From<wit::Distance> for Distance {
    fn from(distance: wit::Distance) -> Self {
        match distance {
            wit::Distance::Cosine => Distance::Cosine,
            wit::Distance::Dot => Distance::Dot,
            wit::Distance::Euclid => Distance::Euclid,
        }
    }
}

impl From<Distance> for wit::Distance {
    fn from(distance: Distance) -> Self {
        match distance {
            Distance::Cosine => wit::Distance::Cosine,
            Distance::Dot => wit::Distance::Dot,
            Distance::Euclid => wit::Distance::Euclid,
        }
    }
}

impl From<VectorFailure> for VectorError {
    fn from(failure: VectorFailure) -> Self {
        match failure {
            VectorFailure::InvalidInput(why) => VectorError::InvalidInput(why),
            VectorFailure::NoSuchCollection(name) => VectorError::NoSuchCollection(name),
            VectorFailure::DimensionMismatch(why) => VectorError::DimensionMismatch(why),
            VectorFailure::NotConfigured => VectorError::NotConfigured,
            VectorFailure::Unavailable(why) => VectorError::Unavailable(why),
        }
    }
}

impl CallState {
    fn vectors(&self) -> Result<&VectorStore, VectorError> {
        self.services()
            .vectors
            .as_ref()
            .ok_or_else(|| VectorError::Unavailable("this host has no vector store".into()))
    }
}

pub fn link(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    wit::add_to_linker::<CallState, HasSelf<CallState>>(linker, |state| state)
}

impl wit::Host for CallState {
    async fn ensure_collection(
        &mut self,
        name: String,
        dimension: u32,
        distance: wit::Distance,
    ) -> Result<(), VectorError> {
        let collection = collection_name(self.plugin(), &name)?;
        let spec = CollectionSpec {
            dimension,
            distance: distance.into(),
        };
        Ok(self.vectors()?.ensure(&collection, spec).await?)
    }

    async fn list_collections(&mut self) -> Result<Vec<wit::CollectionInfo>, VectorError> {
        let found = self.vectors()?.list(self.plugin()).await?;
        Ok(found
            .into_iter()
            .map(|(name, spec)| wit::CollectionInfo {
                name,
                dimension: spec.dimension,
                distance: spec.distance.into(),
            })
            .collect())
    }

    async fn drop_collection(&mut self, name: String) -> Result<bool, VectorError> {
        let collection = collection_name(self.plugin(), &name)?;
        Ok(self.vectors()?.drop_collection(&collection).await?)
    }

    async fn upsert(
        &mut self,
        collection: String,
        points: Vec<wit::Point>,
    ) -> Result<(), VectorError> {
        let collection = collection_name(self.plugin(), &collection)?;
        let points = points
            .into_iter()
            .map(|point| {
                Ok(Point {
                    id: point.id,
                    payload: payload_object(&point.payload)?,
                    vector: point.vector,
                })
            })
            .collect::<Result<Vec<_>, VectorError>>()?;
        Ok(self.vectors()?.upsert(&collection, points).await?)
    }

    async fn search(
        &mut self,
        collection: String,
        vector: Vec<f32>,
        limit: u32,
        filter: Vec<wit::FieldMatch>,
    ) -> Result<Vec<wit::ScoredPoint>, VectorError> {
        let collection = collection_name(self.plugin(), &collection)?;
        let hits = self
            .vectors()?
            .search(&collection, vector, limit, field_matches(filter))
            .await?;
        Ok(hits
            .into_iter()
            .map(|hit| wit::ScoredPoint {
                id: hit.id,
                score: hit.score,
                payload: serde_json::Value::Object(hit.payload).to_string(),
            })
            .collect())
    }

    async fn delete(&mut self, collection: String, ids: Vec<u64>) -> Result<(), VectorError> {
        let collection = collection_name(self.plugin(), &collection)?;
        Ok(self.vectors()?.delete(&collection, ids).await?)
    }

    async fn delete_matching(
        &mut self,
        collection: String,
        filter: Vec<wit::FieldMatch>,
    ) -> Result<(), VectorError> {
        let collection = collection_name(self.plugin(), &collection)?;
        Ok(self
            .vectors()?
            .delete_matching(&collection, field_matches(filter))
            .await?)
    }

    async fn embed(&mut self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, VectorError> {
        let services = self.services().clone();
        let Some(client) = &services.embeddings else {
            return Err(VectorError::NotConfigured);
        };
        let outcome = client.embed(&texts).await;
        if let Err(VectorFailure::Unavailable(why)) = &outcome {
            services.alerter.alert(
                ALERT_KEY_EMBEDDINGS,
                format!("⚠️ Embeddings are failing ({}): {why}", client.model()),
            );
        }
        Ok(outcome?)
    }
}
