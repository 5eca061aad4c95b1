//! The embedded default: Qdrant's in-process engine (`qdrant-edge`), one
//! shard per collection under `VECTORS_DIR/<plugin>/<name>/`. The engine is
//! synchronous, so every call runs on a blocking thread, one call per
//! collection at a time (its flush refuses concurrent writers), and each
//! write is flushed before it returns so it survives a restart.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use qdrant_edge::{
    Condition, CountRequest, CreateIndex, DEFAULT_VECTOR_NAME, Distance as EdgeDistance,
    EdgeConfigBuilder, EdgeShard, EdgeVectorParamsBuilder, FieldCondition, FieldIndexOperations,
    Filter, JsonPath, Match, NamedQuery, PayloadFieldSchema, PayloadSchemaType, PointId,
    PointInsertOperations, PointOperations, PointStruct, QueryEnum, SearchRequest, UpdateOperation,
    WithPayloadInterface, WithVector,
};

use super::model::{
    CollectionName, CollectionSpec, Distance, FieldMatch, FieldValue, Hit, Point, VectorFailure,
    check_vector,
};
use crate::infra::sync::lock;

/// Our record of what a collection was created with, beside the engine's files.
const SPEC_FILE: &str = "wasmbot-collection.json";

struct Collection {
    spec: CollectionSpec,
    shard: Mutex<EdgeShard>,
    /// Payload fields with an index, read from the engine at open: a filter
    /// on one reads the index instead of every point's payload.
    indexed: Mutex<HashSet<String>>,
}

impl Collection {
    fn new(spec: CollectionSpec, shard: EdgeShard) -> Arc<Self> {
        let indexed: HashSet<String> = (shard.info().payload_schema.keys())
            .map(|key| key.to_string())
            .collect();
        Arc::new(Self {
            spec,
            indexed: Mutex::new(indexed),
            shard: Mutex::new(shard),
        })
    }

    /// Indexes each filtered field the first time it is filtered on, typed by
    /// the value asked for; the engine keeps the index up to date from then.
    fn index_fields(&self, shard: &EdgeShard, filter: &[FieldMatch]) -> Result<(), VectorFailure> {
        let mut indexed = lock(&self.indexed);
        let mut created = false;
        for condition in filter {
            if indexed.contains(&condition.key) {
                continue;
            }
            let schema = match condition.value {
                FieldValue::Text(_) => PayloadSchemaType::Keyword,
                FieldValue::Integer(_) => PayloadSchemaType::Integer,
                FieldValue::Boolean(_) => PayloadSchemaType::Bool,
            };
            let index = CreateIndex {
                field_name: json_path(&condition.key)?,
                field_schema: Some(PayloadFieldSchema::FieldType(schema)),
            };
            shard
                .update(UpdateOperation::FieldIndexOperation(
                    FieldIndexOperations::CreateIndex(index),
                ))
                .map_err(engine_failure)?;
            indexed.insert(condition.key.clone());
            created = true;
        }
        if created {
            shard.flush();
        }
        Ok(())
    }
}

pub struct EmbeddedVectors {
    dir: PathBuf,
    open: Mutex<HashMap<CollectionName, Arc<Collection>>>,
}

impl EmbeddedVectors {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            open: Mutex::new(HashMap::new()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, collection: &CollectionName) -> PathBuf {
        self.dir.join(&collection.plugin).join(&collection.name)
    }

    pub async fn ensure(
        self: &Arc<Self>,
        collection: CollectionName,
        spec: CollectionSpec,
    ) -> Result<(), VectorFailure> {
        let this = self.clone();
        blocking(move || {
            if let Some(existing) = this.find(&collection)? {
                return existing.spec.must_equal(&spec, &collection);
            }
            let path = this.path(&collection);
            std::fs::create_dir_all(&path).map_err(|e| io_failure(&path, e))?;
            write_spec(&path, &spec)?;
            let shard = open_shard(&path, &spec)?;
            lock(&this.open).insert(collection, Collection::new(spec, shard));
            Ok(())
        })
        .await
    }

    /// The payload fields the engine holds an index for, sorted.
    pub async fn indexed_fields(
        self: &Arc<Self>,
        collection: CollectionName,
    ) -> Result<Vec<String>, VectorFailure> {
        let this = self.clone();
        blocking(move || {
            let found = this.require(&collection)?;
            let info = lock(&found.shard).info();
            let mut fields: Vec<String> =
                info.payload_schema.keys().map(|k| k.to_string()).collect();
            fields.sort();
            Ok(fields)
        })
        .await
    }

    /// Every collection of `plugin` on disk (an open one has its spec there too).
    pub async fn list(
        self: &Arc<Self>,
        plugin: String,
    ) -> Result<Vec<(String, CollectionSpec)>, VectorFailure> {
        let folder = self.dir.join(&plugin);
        blocking(move || {
            let entries = match std::fs::read_dir(&folder) {
                Ok(entries) => entries,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(error) => return Err(io_failure(&folder, error)),
            };
            let mut found = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| io_failure(&folder, e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if !CollectionName::is_valid(&name) {
                    continue;
                }
                if let Some(spec) = read_spec(&entry.path())? {
                    found.push((name, spec));
                }
            }
            Ok(found)
        })
        .await
    }

    /// Closes the collection, waiting for a call in progress, then removes its files.
    pub async fn drop_collection(
        self: &Arc<Self>,
        collection: CollectionName,
    ) -> Result<bool, VectorFailure> {
        let this = self.clone();
        blocking(move || {
            // Held throughout, so nobody reopens the collection half removed.
            let mut open = lock(&this.open);
            if let Some(closing) = open.remove(&collection) {
                drop(lock(&closing.shard));
            }
            let path = this.path(&collection);
            if read_spec(&path)?.is_none() {
                return Ok(false);
            }
            // The spec goes first: without it the folder is no collection.
            let spec = path.join(SPEC_FILE);
            std::fs::remove_file(&spec).map_err(|e| io_failure(&spec, e))?;
            std::fs::remove_dir_all(&path).map_err(|e| io_failure(&path, e))?;
            Ok(true)
        })
        .await
    }

    pub async fn upsert(
        self: &Arc<Self>,
        collection: CollectionName,
        points: Vec<Point>,
    ) -> Result<(), VectorFailure> {
        self.write(collection, move |spec| {
            let mut persisted = Vec::with_capacity(points.len());
            for point in points {
                check_vector(spec, &point.vector)?;
                let payload = serde_json::Value::Object(point.payload);
                persisted.push(PointStruct::new(point.id, point.vector, payload).into());
            }
            Ok(PointOperations::UpsertPoints(
                PointInsertOperations::PointsList(persisted),
            ))
        })
        .await
    }

    /// Points held in all of `collection.plugin`'s collections, and how many
    /// of `ids` `collection` does not hold yet (an upsert of them adds that many).
    pub async fn usage(
        self: &Arc<Self>,
        collection: CollectionName,
        ids: Vec<u64>,
    ) -> Result<(u64, u64), VectorFailure> {
        let this = self.clone();
        let names = self.list(collection.plugin.clone()).await?;
        blocking(move || {
            let mut held = 0;
            for (name, _) in names {
                let other = CollectionName {
                    plugin: collection.plugin.clone(),
                    name,
                };
                if let Some(found) = this.find(&other)? {
                    // Without a filter the estimate is the segments' own
                    // count of live points: no scan on the write path.
                    let count = CountRequest {
                        filter: None,
                        exact: false,
                    };
                    held += lock(&found.shard).count(count).map_err(engine_failure)? as u64;
                }
            }
            let wanted: HashSet<u64> = ids.into_iter().collect();
            let existing = match this.find(&collection)? {
                Some(found) => {
                    let ids: Vec<PointId> = wanted.iter().map(|&id| PointId::NumId(id)).collect();
                    lock(&found.shard)
                        .retrieve(
                            &ids,
                            Some(WithPayloadInterface::Bool(false)),
                            Some(WithVector::Bool(false)),
                        )
                        .map_err(engine_failure)?
                        .len()
                }
                None => 0,
            };
            Ok((held, (wanted.len() - existing.min(wanted.len())) as u64))
        })
        .await
    }

    pub async fn delete(
        self: &Arc<Self>,
        collection: CollectionName,
        ids: Vec<u64>,
    ) -> Result<(), VectorFailure> {
        self.write(collection, move |_| {
            Ok(PointOperations::DeletePoints {
                ids: ids.into_iter().map(PointId::NumId).collect(),
            })
        })
        .await
    }

    pub async fn delete_matching(
        self: &Arc<Self>,
        collection: CollectionName,
        filter: Vec<FieldMatch>,
    ) -> Result<(), VectorFailure> {
        self.write(collection, move |_| {
            let filter = to_filter(&filter)?.ok_or_else(|| {
                VectorFailure::InvalidInput("delete-matching needs a filter".into())
            })?;
            Ok(PointOperations::DeletePointsByFilter(filter))
        })
        .await
    }

    pub async fn search(
        self: &Arc<Self>,
        collection: CollectionName,
        vector: Vec<f32>,
        limit: u32,
        filter: Vec<FieldMatch>,
    ) -> Result<Vec<Hit>, VectorFailure> {
        let this = self.clone();
        blocking(move || {
            let found = this.require(&collection)?;
            check_vector(&found.spec, &vector)?;
            let request = SearchRequest {
                query: QueryEnum::Nearest(NamedQuery::default_dense(vector)),
                filter: to_filter(&filter)?,
                params: None,
                limit: limit as usize,
                offset: 0,
                with_payload: Some(WithPayloadInterface::Bool(true)),
                with_vector: Some(WithVector::Bool(false)),
                score_threshold: None,
            };
            let shard = lock(&found.shard);
            found.index_fields(&shard, &filter)?;
            let scored = shard.search(request).map_err(engine_failure)?;
            Ok(scored
                .into_iter()
                .filter_map(|point| match point.id {
                    PointId::NumId(id) => Some(Hit {
                        id,
                        score: point.score,
                        payload: point.payload.map(|p| p.0).unwrap_or_default(),
                    }),
                    // Only numeric ids are ever written through this interface.
                    PointId::Uuid(_) => None,
                })
                .collect())
        })
        .await
    }

    /// Applies one point operation built from the collection's spec, then flushes.
    async fn write(
        self: &Arc<Self>,
        collection: CollectionName,
        build: impl FnOnce(&CollectionSpec) -> Result<PointOperations, VectorFailure> + Send + 'static,
    ) -> Result<(), VectorFailure> {
        let this = self.clone();
        blocking(move || {
            let found = this.require(&collection)?;
            let operation = build(&found.spec)?;
            let shard = lock(&found.shard);
            shard
                .update(UpdateOperation::PointOperation(operation))
                .map_err(engine_failure)?;
            shard.flush();
            Ok(())
        })
        .await
    }

    fn require(&self, collection: &CollectionName) -> Result<Arc<Collection>, VectorFailure> {
        self.find(collection)?
            .ok_or_else(|| VectorFailure::no_such_collection(collection))
    }

    /// An open collection, opening it from disk when it exists there.
    fn find(&self, collection: &CollectionName) -> Result<Option<Arc<Collection>>, VectorFailure> {
        let mut open = lock(&self.open);
        if let Some(found) = open.get(collection) {
            return Ok(Some(found.clone()));
        }
        let path = self.path(collection);
        let Some(spec) = read_spec(&path)? else {
            return Ok(None);
        };
        let found = Collection::new(spec, open_shard(&path, &spec)?);
        open.insert(collection.clone(), found.clone());
        Ok(Some(found))
    }
}

fn open_shard(path: &Path, spec: &CollectionSpec) -> Result<EdgeShard, VectorFailure> {
    let distance = match spec.distance {
        Distance::Cosine => EdgeDistance::Cosine,
        Distance::Dot => EdgeDistance::Dot,
        Distance::Euclid => EdgeDistance::Euclid,
    };
    let config = EdgeConfigBuilder::new()
        .vector(
            DEFAULT_VECTOR_NAME,
            EdgeVectorParamsBuilder::new(spec.dimension as usize, distance).build(),
        )
        .build();
    EdgeShard::load(path, Some(config)).map_err(|error| {
        VectorFailure::Unavailable(format!(
            "cannot open the vector collection at {}: {error}",
            path.display()
        ))
    })
}

fn read_spec(path: &Path) -> Result<Option<CollectionSpec>, VectorFailure> {
    let file = path.join(SPEC_FILE);
    match std::fs::read(&file) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|error| {
            VectorFailure::Unavailable(format!("{} is damaged: {error}", file.display()))
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(io_failure(&file, error)),
    }
}

/// Written whole and renamed into place, so a crash never leaves half a spec.
fn write_spec(path: &Path, spec: &CollectionSpec) -> Result<(), VectorFailure> {
    let file = path.join(SPEC_FILE);
    let partial = path.join(format!("{SPEC_FILE}.partial"));
    let json = serde_json::to_vec(spec).map_err(|e| VectorFailure::Unavailable(e.to_string()))?;
    std::fs::write(&partial, json).map_err(|e| io_failure(&partial, e))?;
    std::fs::rename(&partial, &file).map_err(|e| io_failure(&file, e))
}

fn to_filter(conditions: &[FieldMatch]) -> Result<Option<Filter>, VectorFailure> {
    if conditions.is_empty() {
        return Ok(None);
    }
    let mut must = Vec::with_capacity(conditions.len());
    for condition in conditions {
        let key = json_path(&condition.key)?;
        let value = match &condition.value {
            FieldValue::Text(text) => Match::from(text.clone()),
            FieldValue::Integer(number) => Match::from(*number),
            FieldValue::Boolean(flag) => Match::from(*flag),
        };
        must.push(Condition::Field(FieldCondition::new_match(key, value)));
    }
    Ok(Some(Filter {
        must: Some(must),
        ..Filter::default()
    }))
}

fn json_path(key: &str) -> Result<JsonPath, VectorFailure> {
    JsonPath::try_from(key).map_err(|_| {
        VectorFailure::InvalidInput(format!("{key:?} is not a payload field name or path"))
    })
}

/// Runs engine work off the async threads; a panic in the engine becomes an error.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, VectorFailure> + Send + 'static,
) -> Result<T, VectorFailure> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|error| {
            tracing::error!(%error, "the embedded vector engine failed");
            Err(VectorFailure::Unavailable(
                "the embedded vector engine failed".into(),
            ))
        })
}

fn engine_failure(error: impl std::fmt::Display) -> VectorFailure {
    tracing::warn!(%error, "embedded vector engine error");
    VectorFailure::Unavailable(format!("the embedded vector engine refused: {error}"))
}

fn io_failure(path: &Path, error: std::io::Error) -> VectorFailure {
    VectorFailure::Unavailable(format!("{}: {error}", path.display()))
}
