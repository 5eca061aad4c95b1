//! `wasmbot:plugin/vectors`: similarity search over collections of points,
//! each collection private to the plugin that ensured it, and `embed` for
//! turning text into vectors. The backend is the host's `VectorStore`.

use crate::infra::vectors::{
    CollectionName, CollectionSpec, Distance, FieldMatch, FieldValue, MAX_PAYLOAD_BYTES, Point,
    VectorFailure, VectorStore,
};
use crate::runtime::CallState;
use crate::runtime::bindings::vectors::{self as wit, VectorError};
use crate::runtime::{Budget, HOST_CALLS};

/// Kept per plugin, over all its collections; `limits.vector_points`, `PLUGIN_VECTOR_POINTS`.
pub static VECTOR_POINTS: Budget =
    Budget::new("vector_points", "vector points", 100_000, 10_000_000);

/// Counted per call; `limits.vector_writes` in the manifest, `PLUGIN_VECTOR_WRITES` for the operator.
pub static VECTOR_WRITES: Budget = Budget::new("vector_writes", "vector writes", 100, 10000);

/// Counted per call; `limits.embedding_requests` in the manifest, `PLUGIN_EMBEDDING_REQUESTS` for the operator.
pub static EMBEDDING_REQUESTS: Budget =
    Budget::new("embedding_requests", "embedding requests", 10, 100);

const ALERT_KEY_EMBEDDINGS: &str = "embeddings";
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
            VectorFailure::QuotaExceeded(why) => VectorError::QuotaExceeded(why),
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

impl wit::Host for CallState {
    async fn ensure_collection(
        &mut self,
        name: String,
        dimension: u32,
        distance: wit::Distance,
    ) -> Result<(), VectorError> {
        self.spend(&VECTOR_WRITES)?;
        let collection = collection_name(self.plugin(), &name)?;
        let spec = CollectionSpec {
            dimension,
            distance: distance.into(),
        };
        Ok(self.vectors()?.ensure(&collection, spec).await?)
    }

    async fn list_collections(&mut self) -> Result<Vec<wit::CollectionInfo>, VectorError> {
        self.spend(&HOST_CALLS)?;
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
        self.spend(&VECTOR_WRITES)?;
        let collection = collection_name(self.plugin(), &name)?;
        Ok(self.vectors()?.drop_collection(&collection).await?)
    }

    async fn upsert(
        &mut self,
        collection: String,
        points: Vec<wit::Point>,
    ) -> Result<(), VectorError> {
        self.spend(&VECTOR_WRITES)?;
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
        let max_points = u64::from(self.quota(&VECTOR_POINTS));
        let stored = self
            .vectors()?
            .upsert_within(&collection, points, max_points)
            .await;
        if matches!(stored, Err(VectorFailure::QuotaExceeded(_))) {
            self.over_quota("vectors");
        }
        Ok(stored?)
    }

    async fn search(
        &mut self,
        collection: String,
        vector: Vec<f32>,
        limit: u32,
        filter: Vec<wit::FieldMatch>,
    ) -> Result<Vec<wit::ScoredPoint>, VectorError> {
        self.spend(&HOST_CALLS)?;
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
        self.spend(&VECTOR_WRITES)?;
        let collection = collection_name(self.plugin(), &collection)?;
        Ok(self.vectors()?.delete(&collection, ids).await?)
    }

    async fn delete_matching(
        &mut self,
        collection: String,
        filter: Vec<wit::FieldMatch>,
    ) -> Result<(), VectorError> {
        self.spend(&VECTOR_WRITES)?;
        let collection = collection_name(self.plugin(), &collection)?;
        Ok(self
            .vectors()?
            .delete_matching(&collection, field_matches(filter))
            .await?)
    }

    async fn embed(&mut self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, VectorError> {
        self.spend(&EMBEDDING_REQUESTS)?;
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

over_budget_is!(VectorError);
