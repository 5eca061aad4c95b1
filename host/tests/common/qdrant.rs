//! A fake Qdrant server on 127.0.0.1 speaking Qdrant's real gRPC API (the
//! `qdrant.*` services and messages `qdrant-client` sends) for the calls
//! wasmbot makes: health check; create, describe, list and delete
//! collections; upsert, query, delete by ids or by filter, count and get by
//! ids. Points live in
//! memory. Scores follow Qdrant's definitions (cosine on vectors normalised
//! at insert, dot product, euclidean distance lowest first), a keyword match
//! is equality and a text match a substring, as on a Qdrant field without a
//! full-text index. With an API key, a request without the `api-key` header
//! is refused as Qdrant does.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use qdrant_client::Payload;
use qdrant_client::qdrant::condition::ConditionOneOf;
use qdrant_client::qdrant::r#match::MatchValue;
use qdrant_client::qdrant::point_id::PointIdOptions;
use qdrant_client::qdrant::points_selector::PointsSelectorOneOf;
use qdrant_client::qdrant::vector_input::Variant as InputVariant;
use qdrant_client::qdrant::vectors::VectorsOptions;
use qdrant_client::qdrant::vectors_config::Config as VectorsConfigOneOf;
use qdrant_client::qdrant::{
    CollectionConfig, CollectionDescription, CollectionInfo, CollectionOperationResponse,
    CollectionParams, CountPoints, CountResponse, CountResult, CreateCollection,
    CreateFieldIndexCollection, DeleteCollection, DeletePoints, Distance, FieldType, Filter,
    GetCollectionInfoRequest, GetCollectionInfoResponse, GetPoints, GetResponse, HealthCheckReply,
    HealthCheckRequest, ListCollectionsRequest, ListCollectionsResponse, PointId,
    PointsOperationResponse, QueryPoints, QueryResponse, RetrievedPoint, ScoredPoint, UpdateResult,
    UpdateStatus, UpsertPoints, Value, VectorParams, VectorsConfig, query, vector,
};
use serde_json::Value as Json;
use tonic::Status;

struct Collection {
    size: usize,
    distance: Distance,
    points: BTreeMap<u64, (Vec<f32>, HashMap<String, Value>)>,
    /// Payload indexes asked for; like Qdrant, an existing one is kept.
    indexes: HashMap<String, FieldType>,
}

#[derive(Default)]
pub struct FakeQdrant {
    collections: Mutex<HashMap<String, Collection>>,
    api_key: Option<String>,
    /// Every call as `Service/Method collection`, in order.
    calls: Mutex<Vec<String>>,
}

impl FakeQdrant {
    /// Starts the server; returns it and its gRPC URL (for QDRANT_URL).
    pub async fn start(api_key: Option<&str>) -> (Arc<Self>, String) {
        let fake = Arc::new(Self {
            api_key: api_key.map(str::to_string),
            ..Self::default()
        });
        let router = axum::Router::new()
            .route("/qdrant.Qdrant/HealthCheck", unary(&fake, Self::health))
            .route("/qdrant.Collections/Create", unary(&fake, Self::create))
            .route("/qdrant.Collections/Get", unary(&fake, Self::describe))
            .route("/qdrant.Collections/List", unary(&fake, Self::list))
            .route("/qdrant.Collections/Delete", unary(&fake, Self::remove))
            .route("/qdrant.Points/Upsert", unary(&fake, Self::upsert))
            .route("/qdrant.Points/Query", unary(&fake, Self::query))
            .route("/qdrant.Points/Delete", unary(&fake, Self::delete))
            .route("/qdrant.Points/Count", unary(&fake, Self::count))
            .route("/qdrant.Points/Get", unary(&fake, Self::get))
            .route(
                "/qdrant.Points/CreateFieldIndex",
                unary(&fake, Self::create_index),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let server = tonic::transport::Server::builder()
            .add_routes(tonic::service::Routes::from(router))
            .serve_with_incoming(incoming);
        tokio::spawn(async move { server.await.unwrap() });
        (fake, url)
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    /// The collections' names, sorted.
    pub fn collections(&self) -> Vec<String> {
        let mut names: Vec<String> = self.collections.lock().unwrap().keys().cloned().collect();
        names.sort();
        names
    }

    /// How many points `collection` holds (None: no such collection).
    pub fn points(&self, collection: &str) -> Option<usize> {
        let collections = self.collections.lock().unwrap();
        collections.get(collection).map(|c| c.points.len())
    }

    fn record(&self, call: &str, collection: &str) {
        self.calls
            .lock()
            .unwrap()
            .push(format!("{call} {collection}").trim_end().to_string());
    }

    fn health(&self, _: HealthCheckRequest) -> Result<HealthCheckReply, Status> {
        self.record("Qdrant/HealthCheck", "");
        Ok(HealthCheckReply {
            title: "qdrant - vector search engine (wasmbot test fake)".into(),
            version: "1.15.0".into(),
            commit: None,
        })
    }

    fn create(&self, request: CreateCollection) -> Result<CollectionOperationResponse, Status> {
        let name = request.collection_name;
        self.record("Collections/Create", &name);
        let params = match request.vectors_config.and_then(|v| v.config) {
            Some(VectorsConfigOneOf::Params(params)) => params,
            _ => {
                return Err(Status::invalid_argument(
                    "the fake takes one unnamed vector",
                ));
            }
        };
        let distance = Distance::try_from(params.distance)
            .map_err(|_| Status::invalid_argument("unknown distance"))?;
        let mut collections = self.collections.lock().unwrap();
        if collections.contains_key(&name) {
            return Err(Status::already_exists(format!(
                "Wrong input: Collection `{name}` already exists!"
            )));
        }
        collections.insert(
            name,
            Collection {
                size: params.size as usize,
                distance,
                points: BTreeMap::new(),
                indexes: HashMap::new(),
            },
        );
        Ok(CollectionOperationResponse {
            result: true,
            time: 0.0,
        })
    }

    fn describe(
        &self,
        request: GetCollectionInfoRequest,
    ) -> Result<GetCollectionInfoResponse, Status> {
        let name = request.collection_name;
        self.record("Collections/Get", &name);
        let collections = self.collections.lock().unwrap();
        let collection = found(&collections, &name)?;
        let params = VectorParams {
            size: collection.size as u64,
            distance: collection.distance as i32,
            ..VectorParams::default()
        };
        let config = CollectionConfig {
            params: Some(CollectionParams {
                shard_number: 1,
                vectors_config: Some(VectorsConfig {
                    config: Some(VectorsConfigOneOf::Params(params)),
                }),
                ..CollectionParams::default()
            }),
            ..CollectionConfig::default()
        };
        Ok(GetCollectionInfoResponse {
            result: Some(CollectionInfo {
                points_count: Some(collection.points.len() as u64),
                config: Some(config),
                ..CollectionInfo::default()
            }),
            time: 0.0,
        })
    }

    fn list(&self, _: ListCollectionsRequest) -> Result<ListCollectionsResponse, Status> {
        self.record("Collections/List", "");
        Ok(ListCollectionsResponse {
            collections: self
                .collections()
                .into_iter()
                .map(|name| CollectionDescription { name })
                .collect(),
            time: 0.0,
        })
    }

    fn remove(&self, request: DeleteCollection) -> Result<CollectionOperationResponse, Status> {
        let name = request.collection_name;
        self.record("Collections/Delete", &name);
        let existed = self.collections.lock().unwrap().remove(&name).is_some();
        Ok(CollectionOperationResponse {
            result: existed,
            time: 0.0,
        })
    }

    fn upsert(&self, request: UpsertPoints) -> Result<PointsOperationResponse, Status> {
        let name = request.collection_name;
        self.record("Points/Upsert", &name);
        let mut collections = self.collections.lock().unwrap();
        let collection = found_mut(&mut collections, &name)?;
        let mut accepted = Vec::with_capacity(request.points.len());
        for point in request.points {
            let id = numeric_id(point.id)?;
            let vector = dense_vector(point.vectors.and_then(|v| v.vectors_options))?;
            if vector.len() != collection.size {
                return Err(Status::invalid_argument(format!(
                    "Wrong input: Vector dimension error: expected dim: {}, got {}",
                    collection.size,
                    vector.len()
                )));
            }
            let vector = match collection.distance {
                Distance::Cosine => normalised(&vector),
                _ => vector,
            };
            accepted.push((id, (vector, point.payload)));
        }
        collection.points.extend(accepted);
        Ok(completed())
    }

    fn query(&self, request: QueryPoints) -> Result<QueryResponse, Status> {
        let name = request.collection_name;
        self.record("Points/Query", &name);
        let collections = self.collections.lock().unwrap();
        let collection = found(&collections, &name)?;
        let wanted = match request.query.and_then(|q| q.variant) {
            Some(query::Variant::Nearest(input)) => match input.variant {
                Some(InputVariant::Dense(dense)) => dense.data,
                _ => return Err(Status::unimplemented("the fake takes dense vectors only")),
            },
            _ => return Err(Status::unimplemented("the fake takes nearest queries only")),
        };
        if wanted.len() != collection.size {
            return Err(Status::invalid_argument(format!(
                "Wrong input: Vector dimension error: expected dim: {}, got {}",
                collection.size,
                wanted.len()
            )));
        }
        let with_payload = request.with_payload.is_some();
        let mut scored = Vec::new();
        for (id, (vector, payload)) in &collection.points {
            if !passes(request.filter.as_ref(), payload)? {
                continue;
            }
            scored.push(ScoredPoint {
                id: Some(PointId::from(*id)),
                payload: if with_payload {
                    payload.clone()
                } else {
                    HashMap::new()
                },
                score: score(collection.distance, &wanted, vector),
                ..ScoredPoint::default()
            });
        }
        // Higher is closer, except for a distance.
        scored.sort_by(|a, b| match collection.distance {
            Distance::Euclid | Distance::Manhattan => a.score.total_cmp(&b.score),
            _ => b.score.total_cmp(&a.score),
        });
        scored.truncate(request.limit.unwrap_or(10) as usize);
        Ok(QueryResponse {
            result: scored,
            ..QueryResponse::default()
        })
    }

    fn delete(&self, request: DeletePoints) -> Result<PointsOperationResponse, Status> {
        let name = request.collection_name;
        self.record("Points/Delete", &name);
        let mut collections = self.collections.lock().unwrap();
        let collection = found_mut(&mut collections, &name)?;
        match request.points.and_then(|p| p.points_selector_one_of) {
            Some(PointsSelectorOneOf::Points(list)) => {
                for id in list.ids {
                    collection.points.remove(&numeric_id(Some(id))?);
                }
            }
            Some(PointsSelectorOneOf::Filter(filter)) => {
                let mut doomed = Vec::new();
                for (id, (_, payload)) in &collection.points {
                    if passes(Some(&filter), payload)? {
                        doomed.push(*id);
                    }
                }
                for id in doomed {
                    collection.points.remove(&id);
                }
            }
            None => return Err(Status::invalid_argument("no points selector")),
        }
        Ok(completed())
    }

    /// Exact counts only: that is all wasmbot asks for.
    fn count(&self, request: CountPoints) -> Result<CountResponse, Status> {
        let name = request.collection_name;
        self.record("Points/Count", &name);
        if request.filter.is_some() {
            return Err(Status::unimplemented(
                "the fake counts whole collections only",
            ));
        }
        let collections = self.collections.lock().unwrap();
        let collection = collections.get(&name).ok_or_else(|| missing(&name))?;
        Ok(CountResponse {
            result: Some(CountResult {
                count: collection.points.len() as u64,
            }),
            ..CountResponse::default()
        })
    }

    /// The points of those ids that exist, ids only (wasmbot asks for no
    /// payload and no vectors).
    fn get(&self, request: GetPoints) -> Result<GetResponse, Status> {
        let name = request.collection_name;
        self.record("Points/Get", &name);
        let collections = self.collections.lock().unwrap();
        let collection = collections.get(&name).ok_or_else(|| missing(&name))?;
        let mut result = Vec::new();
        for id in request.ids {
            let id = numeric_id(Some(id))?;
            if collection.points.contains_key(&id) {
                result.push(RetrievedPoint {
                    id: Some(id.into()),
                    ..RetrievedPoint::default()
                });
            }
        }
        Ok(GetResponse {
            result,
            ..GetResponse::default()
        })
    }

    /// Indexes change speed, not answers: the fake records what was asked.
    fn create_index(
        &self,
        request: CreateFieldIndexCollection,
    ) -> Result<PointsOperationResponse, Status> {
        let name = request.collection_name;
        self.record("Points/CreateFieldIndex", &name);
        let mut collections = self.collections.lock().unwrap();
        let collection = found_mut(&mut collections, &name)?;
        let field_type = request
            .field_type
            .and_then(|t| FieldType::try_from(t).ok())
            .ok_or_else(|| Status::invalid_argument("a field index needs a field type"))?;
        collection
            .indexes
            .entry(request.field_name)
            .or_insert(field_type);
        Ok(completed())
    }

    /// A collection's payload indexes as `field:type`, sorted.
    pub fn indexes(&self, collection: &str) -> Vec<String> {
        let collections = self.collections.lock().unwrap();
        let mut found: Vec<String> = collections
            .get(collection)
            .map(|c| {
                c.indexes
                    .iter()
                    .map(|(field, kind)| format!("{field}:{kind:?}"))
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        found
    }

    fn authorize(&self, metadata: &tonic::metadata::MetadataMap) -> Result<(), Status> {
        let Some(key) = &self.api_key else {
            return Ok(());
        };
        match metadata.get("api-key").and_then(|v| v.to_str().ok()) {
            Some(given) if given == key => Ok(()),
            _ => Err(Status::permission_denied("Invalid api-key")),
        }
    }
}

/// One gRPC method: the request decoded from its protobuf frame, the answer
/// (or the status) framed back, exactly as Qdrant's own server does.
fn unary<Req, Resp>(
    fake: &Arc<FakeQdrant>,
    method: fn(&FakeQdrant, Req) -> Result<Resp, Status>,
) -> axum::routing::MethodRouter
where
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
{
    let fake = fake.clone();
    axum::routing::post(move |request: axum::extract::Request| async move {
        let call = Call { fake, method };
        let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::<Resp, Req>::default());
        grpc.unary(call, request.map(tonic::body::Body::new))
            .await
            .map(axum::body::Body::new)
    })
}

struct Call<Req, Resp> {
    fake: Arc<FakeQdrant>,
    method: fn(&FakeQdrant, Req) -> Result<Resp, Status>,
}

impl<Req: Send + 'static, Resp: Send + 'static> tonic::server::UnaryService<Req>
    for Call<Req, Resp>
{
    type Response = Resp;
    type Future = std::future::Ready<Result<tonic::Response<Resp>, Status>>;

    fn call(&mut self, request: tonic::Request<Req>) -> Self::Future {
        let answer = self
            .fake
            .authorize(request.metadata())
            .and_then(|()| (self.method)(&self.fake, request.into_inner()))
            .map(tonic::Response::new);
        std::future::ready(answer)
    }
}

fn found<'a>(
    collections: &'a HashMap<String, Collection>,
    name: &str,
) -> Result<&'a Collection, Status> {
    collections.get(name).ok_or_else(|| missing(name))
}

fn found_mut<'a>(
    collections: &'a mut HashMap<String, Collection>,
    name: &str,
) -> Result<&'a mut Collection, Status> {
    collections.get_mut(name).ok_or_else(|| missing(name))
}

fn missing(name: &str) -> Status {
    Status::not_found(format!("Not found: Collection `{name}` doesn't exist!"))
}

fn completed() -> PointsOperationResponse {
    PointsOperationResponse {
        result: Some(UpdateResult {
            operation_id: Some(0),
            status: UpdateStatus::Completed as i32,
        }),
        ..PointsOperationResponse::default()
    }
}

fn numeric_id(id: Option<PointId>) -> Result<u64, Status> {
    match id.and_then(|id| id.point_id_options) {
        Some(PointIdOptions::Num(id)) => Ok(id),
        _ => Err(Status::unimplemented("the fake takes numeric ids only")),
    }
}

/// The one dense vector of a point, in either of the encodings clients send.
#[allow(deprecated)]
fn dense_vector(vectors: Option<VectorsOptions>) -> Result<Vec<f32>, Status> {
    let Some(VectorsOptions::Vector(given)) = vectors else {
        return Err(Status::invalid_argument(
            "the fake takes one unnamed vector",
        ));
    };
    match given.vector {
        Some(vector::Vector::Dense(dense)) => Ok(dense.data),
        None if !given.data.is_empty() => Ok(given.data),
        _ => Err(Status::unimplemented("the fake takes dense vectors only")),
    }
}

fn normalised(vector: &[f32]) -> Vec<f32> {
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm == 0.0 {
        return vector.to_vec();
    }
    vector.iter().map(|v| v / norm).collect()
}

fn score(distance: Distance, query: &[f32], stored: &[f32]) -> f32 {
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    match distance {
        Distance::Cosine => dot(&normalised(query), stored),
        Distance::Euclid => query
            .iter()
            .zip(stored)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f32>()
            .sqrt(),
        _ => dot(query, stored),
    }
}

/// Whether a payload meets every `must` condition (the only kind wasmbot sends).
fn passes(filter: Option<&Filter>, payload: &HashMap<String, Value>) -> Result<bool, Status> {
    let Some(filter) = filter else {
        return Ok(true);
    };
    if !filter.should.is_empty() || !filter.must_not.is_empty() {
        return Err(Status::unimplemented(
            "the fake takes `must` conditions only",
        ));
    }
    let json = Json::from(Payload::from(payload.clone()));
    for condition in &filter.must {
        let Some(ConditionOneOf::Field(field)) = &condition.condition_one_of else {
            return Err(Status::unimplemented(
                "the fake takes field conditions only",
            ));
        };
        let Some(wanted) = field.r#match.as_ref().and_then(|m| m.match_value.as_ref()) else {
            return Err(Status::unimplemented(
                "the fake takes match conditions only",
            ));
        };
        let at = field
            .key
            .split('.')
            .try_fold(&json, |value, part| value.get(part));
        // Like Qdrant, an array field matches when any element does.
        let values: Vec<&Json> = match at {
            Some(Json::Array(items)) => items.iter().collect(),
            Some(value) => vec![value],
            None => Vec::new(),
        };
        let equals = |value: &Json| match wanted {
            MatchValue::Keyword(keyword) => Ok(value.as_str() == Some(keyword)),
            MatchValue::Text(text) => Ok(value.as_str().is_some_and(|v| v.contains(text.as_str()))),
            MatchValue::Integer(number) => Ok(value.as_i64() == Some(*number)),
            MatchValue::Boolean(flag) => Ok(value.as_bool() == Some(*flag)),
            other => Err(Status::unimplemented(format!(
                "the fake has no {other:?} match"
            ))),
        };
        let mut matched = false;
        for value in values {
            matched |= equals(value)?;
        }
        if !matched {
            return Ok(false);
        }
    }
    Ok(true)
}
