//! A Qdrant server (`QDRANT_URL`) through `qdrant-client` over gRPC. The
//! collection's spec is read once and remembered, so vectors are checked
//! here exactly as the embedded engine checks them.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use qdrant_client::qdrant::r#match::MatchValue;
use qdrant_client::qdrant::point_id::PointIdOptions;
use qdrant_client::qdrant::vectors_config::Config as VectorsConfig;
use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
    DeletePointsBuilder, Distance as QdrantDistance, FieldType, Filter, GetPointsBuilder, PointId,
    PointStruct, PointsIdsList, QueryPointsBuilder, UpsertPointsBuilder, VectorParamsBuilder,
};
use qdrant_client::{Payload, Qdrant, QdrantError};

use super::model::{
    CollectionName, CollectionSpec, Distance, FieldMatch, FieldValue, Hit, Point, VectorFailure,
    check_vector,
};
use super::settings::QdrantSettings;
use crate::infra::sync::lock;

pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub struct ServerVectors {
    client: Qdrant,
    specs: Mutex<HashMap<CollectionName, CollectionSpec>>,
    /// Payload fields this replica has had indexed, per collection.
    indexed: Mutex<HashSet<(CollectionName, String)>>,
}

impl ServerVectors {
    /// Connects lazily: a server that is down at start-up is reported by each call.
    pub fn new(settings: &QdrantSettings) -> Result<Self, VectorFailure> {
        let mut builder = Qdrant::from_url(settings.url.as_str())
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(2))
            .skip_compatibility_check();
        if let Some(key) = &settings.api_key {
            builder = builder.api_key(key.expose().to_string());
        }
        let client = builder.build().map_err(|error| {
            VectorFailure::Unavailable(format!("QDRANT_URL is not usable: {error}"))
        })?;
        Ok(Self {
            client,
            specs: Mutex::new(HashMap::new()),
            indexed: Mutex::new(HashSet::new()),
        })
    }

    /// The server's own health check, for the health monitor.
    pub async fn ping(&self) -> Result<String, String> {
        let reply = self
            .client
            .health_check()
            .await
            .map_err(|error| describe(&error))?;
        Ok(format!("version {}", reply.version))
    }

    pub async fn ensure(
        &self,
        collection: &CollectionName,
        spec: CollectionSpec,
    ) -> Result<(), VectorFailure> {
        if let Some(existing) = self.spec(collection).await? {
            return existing.must_equal(&spec, collection);
        }
        let distance = match spec.distance {
            Distance::Cosine => QdrantDistance::Cosine,
            Distance::Dot => QdrantDistance::Dot,
            Distance::Euclid => QdrantDistance::Euclid,
        };
        let created = self
            .client
            .create_collection(
                CreateCollectionBuilder::new(collection.qualified()).vectors_config(
                    VectorParamsBuilder::new(u64::from(spec.dimension), distance),
                ),
            )
            .await;
        match created {
            Ok(_) => {
                lock(&self.specs).insert(collection.clone(), spec);
                Ok(())
            }
            // Another replica created it first: it must agree with us.
            Err(error) if code(&error) == Some(tonic::Code::AlreadyExists) => {
                match self.spec(collection).await? {
                    Some(existing) => existing.must_equal(&spec, collection),
                    None => Err(failure(error)),
                }
            }
            Err(error) => Err(failure(error)),
        }
    }

    /// `plugin`'s collections: the server's names under `wasmbot.PLUGIN.`.
    pub async fn list(&self, plugin: &str) -> Result<Vec<(String, CollectionSpec)>, VectorFailure> {
        let listed = self.client.list_collections().await.map_err(failure)?;
        let prefix = format!("wasmbot.{plugin}.");
        let mut found = Vec::new();
        for description in listed.collections {
            let Some(name) = description.name.strip_prefix(&prefix) else {
                continue;
            };
            if !CollectionName::is_valid(name) {
                continue;
            }
            let collection = CollectionName {
                plugin: plugin.to_string(),
                name: name.to_string(),
            };
            // Dropped by another replica between the two calls: not listed.
            if let Some(spec) = self.spec(&collection).await? {
                found.push((collection.name, spec));
            }
        }
        Ok(found)
    }

    pub async fn drop_collection(
        &self,
        collection: &CollectionName,
    ) -> Result<bool, VectorFailure> {
        self.forget(collection);
        let removed = self
            .client
            .delete_collection(collection.qualified())
            .await
            .map_err(failure)?;
        Ok(removed.result)
    }

    pub async fn upsert(
        &self,
        collection: &CollectionName,
        points: Vec<Point>,
    ) -> Result<(), VectorFailure> {
        let first = points.first().map_or(&[][..], |p| &p.vector[..]);
        let spec = self.checked(collection, first).await?;
        let mut structs = Vec::with_capacity(points.len());
        for point in points {
            check_vector(&spec, &point.vector)?;
            structs.push(PointStruct::new(
                point.id,
                point.vector,
                Payload::from(point.payload),
            ));
        }
        self.client
            .upsert_points(UpsertPointsBuilder::new(collection.qualified(), structs).wait(true))
            .await
            .map_err(|error| self.failed(collection, error))?;
        Ok(())
    }

    /// Points held in all of `plugin`'s collections.
    pub async fn points_of(&self, plugin: &str) -> Result<u64, VectorFailure> {
        let mut held = 0;
        for (name, _) in self.list(plugin).await? {
            let collection = CollectionName {
                plugin: plugin.to_string(),
                name,
            };
            let counted = self
                .client
                // Without a filter Qdrant's estimate is its stored count: no scan.
                .count(CountPointsBuilder::new(collection.qualified()).exact(false))
                .await
                .map_err(|error| self.failed(&collection, error))?;
            held += counted.result.map_or(0, |result| result.count);
        }
        Ok(held)
    }

    /// Points held in all of `plugin`'s collections, and how many of `ids`
    /// `collection` does not hold yet (an upsert of them adds that many).
    pub async fn usage(
        &self,
        collection: &CollectionName,
        ids: &[u64],
    ) -> Result<(u64, u64), VectorFailure> {
        let held = self.points_of(&collection.plugin).await?;
        let wanted: HashSet<u64> = ids.iter().copied().collect();
        let existing = match self
            .client
            .get_points(
                GetPointsBuilder::new(
                    collection.qualified(),
                    wanted.iter().map(|&id| id.into()).collect::<Vec<PointId>>(),
                )
                .with_payload(false)
                .with_vectors(false),
            )
            .await
        {
            Ok(found) => found.result.len(),
            Err(error) if code(&error) == Some(tonic::Code::NotFound) => 0,
            Err(error) => return Err(self.failed(collection, error)),
        };
        Ok((held, (wanted.len() - existing.min(wanted.len())) as u64))
    }

    pub async fn search(
        &self,
        collection: &CollectionName,
        vector: Vec<f32>,
        limit: u32,
        filter: &[FieldMatch],
    ) -> Result<Vec<Hit>, VectorFailure> {
        self.checked(collection, &vector).await?;
        self.index_fields(collection, filter).await?;
        let mut query = QueryPointsBuilder::new(collection.qualified())
            .query(vector)
            .limit(u64::from(limit))
            .with_payload(true);
        if let Some(filter) = to_filter(filter) {
            query = query.filter(filter);
        }
        let response = self
            .client
            .query(query)
            .await
            .map_err(|error| self.failed(collection, error))?;
        Ok(response
            .result
            .into_iter()
            .filter_map(|point| {
                let id = match point.id?.point_id_options? {
                    PointIdOptions::Num(id) => id,
                    // Only numeric ids are ever written through this interface.
                    PointIdOptions::Uuid(_) => return None,
                };
                let payload = serde_json::Map::from(Payload::from(point.payload));
                Some(Hit {
                    id,
                    score: point.score,
                    payload,
                })
            })
            .collect())
    }

    pub async fn delete(
        &self,
        collection: &CollectionName,
        ids: Vec<u64>,
    ) -> Result<(), VectorFailure> {
        self.require(collection).await?;
        let ids = PointsIdsList {
            ids: ids.into_iter().map(Into::into).collect(),
        };
        self.client
            .delete_points(
                DeletePointsBuilder::new(collection.qualified())
                    .points(ids)
                    .wait(true),
            )
            .await
            .map_err(|error| self.failed(collection, error))?;
        Ok(())
    }

    pub async fn delete_matching(
        &self,
        collection: &CollectionName,
        filter: &[FieldMatch],
    ) -> Result<(), VectorFailure> {
        self.require(collection).await?;
        let filter = to_filter(filter)
            .ok_or_else(|| VectorFailure::InvalidInput("delete-matching needs a filter".into()))?;
        self.client
            .delete_points(
                DeletePointsBuilder::new(collection.qualified())
                    .points(filter)
                    .wait(true),
            )
            .await
            .map_err(|error| self.failed(collection, error))?;
        Ok(())
    }

    /// The spec `vector` must fit. A remembered spec that disagrees is read
    /// again first: another replica may have dropped and re-created the collection.
    async fn checked(
        &self,
        collection: &CollectionName,
        vector: &[f32],
    ) -> Result<CollectionSpec, VectorFailure> {
        let spec = self.require(collection).await?;
        if check_vector(&spec, vector).is_ok() {
            return Ok(spec);
        }
        lock(&self.specs).remove(collection);
        let fresh = self.require(collection).await?;
        check_vector(&fresh, vector)?;
        Ok(fresh)
    }

    /// Asks the server to index each filtered field the first time this
    /// replica filters on it (typed by the value asked for), as the embedded
    /// engine does; Qdrant keeps an existing index as it is.
    async fn index_fields(
        &self,
        collection: &CollectionName,
        filter: &[FieldMatch],
    ) -> Result<(), VectorFailure> {
        for condition in filter {
            let field = (collection.clone(), condition.key.clone());
            if lock(&self.indexed).contains(&field) {
                continue;
            }
            let field_type = match condition.value {
                FieldValue::Text(_) => FieldType::Keyword,
                FieldValue::Integer(_) => FieldType::Integer,
                FieldValue::Boolean(_) => FieldType::Bool,
            };
            self.client
                .create_field_index(
                    CreateFieldIndexCollectionBuilder::new(
                        collection.qualified(),
                        &condition.key,
                        field_type,
                    )
                    .wait(true),
                )
                .await
                .map_err(|error| self.failed(collection, error))?;
            lock(&self.indexed).insert(field);
        }
        Ok(())
    }

    /// Forgets what this replica knew of a collection that is gone.
    fn forget(&self, collection: &CollectionName) {
        lock(&self.specs).remove(collection);
        lock(&self.indexed).retain(|(indexed, _)| indexed != collection);
    }

    /// A failed call's error; a collection the server no longer has is forgotten.
    fn failed(&self, collection: &CollectionName, error: QdrantError) -> VectorFailure {
        if code(&error) == Some(tonic::Code::NotFound) {
            self.forget(collection);
            return VectorFailure::no_such_collection(collection);
        }
        failure(error)
    }

    async fn require(&self, collection: &CollectionName) -> Result<CollectionSpec, VectorFailure> {
        self.spec(collection)
            .await?
            .ok_or_else(|| VectorFailure::no_such_collection(collection))
    }

    /// The collection's spec: remembered, or read from the server (None: no such collection).
    async fn spec(
        &self,
        collection: &CollectionName,
    ) -> Result<Option<CollectionSpec>, VectorFailure> {
        if let Some(spec) = lock(&self.specs).get(collection) {
            return Ok(Some(*spec));
        }
        let info = match self.client.collection_info(collection.qualified()).await {
            Ok(info) => info,
            Err(error) if code(&error) == Some(tonic::Code::NotFound) => return Ok(None),
            Err(error) => return Err(failure(error)),
        };
        let params = info
            .result
            .and_then(|info| info.config)
            .and_then(|config| config.params)
            .and_then(|params| params.vectors_config)
            .and_then(|vectors| vectors.config);
        let spec = match params {
            Some(VectorsConfig::Params(params)) => {
                let distance = match QdrantDistance::try_from(params.distance) {
                    Ok(QdrantDistance::Cosine) => Distance::Cosine,
                    Ok(QdrantDistance::Dot) => Distance::Dot,
                    Ok(QdrantDistance::Euclid) => Distance::Euclid,
                    _ => return Err(foreign(collection)),
                };
                CollectionSpec {
                    dimension: u32::try_from(params.size).map_err(|_| foreign(collection))?,
                    distance,
                }
            }
            _ => return Err(foreign(collection)),
        };
        lock(&self.specs).insert(collection.clone(), spec);
        Ok(Some(spec))
    }
}

/// A collection under our name that this interface did not create (named vectors, Manhattan…).
fn foreign(collection: &CollectionName) -> VectorFailure {
    VectorFailure::Unavailable(format!(
        "collection {} on the Qdrant server has a layout wasmbot does not use",
        collection.qualified()
    ))
}

fn to_filter(conditions: &[FieldMatch]) -> Option<Filter> {
    if conditions.is_empty() {
        return None;
    }
    Some(Filter::must(conditions.iter().map(|condition| {
        let key = condition.key.clone();
        match &condition.value {
            // Spelled out: qdrant-client turns a text with a space into a
            // full-text match, and this interface promises equality.
            FieldValue::Text(text) => Condition::matches(key, MatchValue::Keyword(text.clone())),
            FieldValue::Integer(number) => Condition::matches(key, *number),
            FieldValue::Boolean(flag) => Condition::matches(key, *flag),
        }
    })))
}

fn code(error: &QdrantError) -> Option<tonic::Code> {
    match error {
        QdrantError::ResponseError { status } => Some(status.code()),
        _ => None,
    }
}

/// A short cause: the client's own connection errors are a page of nested transport errors.
fn describe(error: &QdrantError) -> String {
    match error {
        QdrantError::ResponseError { status } if status.message().contains("Failed to connect") => {
            let why = ["refused", "timed out", "dns error"]
                .into_iter()
                .find(|cause| status.message().contains(cause))
                .map_or(String::new(), |cause| format!(" ({cause})"));
            format!("cannot connect to the Qdrant server{why}")
        }
        QdrantError::ResponseError { status } => {
            format!("Qdrant answered {:?}: {}", status.code(), status.message())
        }
        other => other.to_string(),
    }
}

fn failure(error: QdrantError) -> VectorFailure {
    let text = describe(&error);
    tracing::warn!(error = %text, "Qdrant call failed");
    match code(&error) {
        Some(tonic::Code::InvalidArgument) => VectorFailure::InvalidInput(text),
        Some(tonic::Code::NotFound) => VectorFailure::NoSuchCollection(text),
        _ => VectorFailure::Unavailable(format!(
            "the vector store (Qdrant) is not available: {text}"
        )),
    }
}
