//! Vector memory for this plugin (needs `capabilities = ["vectors"]`):
//! collections of points searched by similarity, and `embed` to turn text
//! into vectors with the host's embeddings provider. Payloads are any serde
//! type that serializes to a JSON object.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::wasmbot::plugin0_1_0::vectors as wit;
pub use crate::bindings::wasmbot::plugin0_1_0::vectors::{
    CollectionInfo, Distance, FieldMatch, FieldValue, Point, ScoredPoint, VectorError,
};

impl VectorError {
    /// What to tell the user.
    pub fn user_message(&self) -> String {
        match self {
            VectorError::NotConfigured => {
                "I can't do that: no embeddings provider is configured on this bot. \
                 The operator can enable one by setting EMBEDDINGS_URL."
                    .into()
            }
            VectorError::Unavailable(_) => {
                "My memory is temporarily unavailable. Please try again in a few minutes.".into()
            }
            VectorError::InvalidInput(why) => format!("That didn't work: {why}"),
            VectorError::NoSuchCollection(name) => format!("No collection {name} yet."),
            VectorError::DimensionMismatch(why) => format!("Vector size mismatch: {why}"),
            VectorError::QuotaExceeded(_) => {
                "My memory is full: nothing more can be kept until something is forgotten.".into()
            }
            VectorError::OverBudget(_) => {
                "That was too much for one message; please try again with less.".into()
            }
        }
    }
}

impl From<VectorError> for String {
    fn from(error: VectorError) -> Self {
        error.user_message()
    }
}

impl FieldMatch {
    /// `key` equals the text `value`.
    pub fn text(key: &str, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: FieldValue::Text(value.into()),
        }
    }

    /// `key` equals the integer `value`.
    pub fn integer(key: &str, value: i64) -> Self {
        Self {
            key: key.into(),
            value: FieldValue::Integer(value),
        }
    }

    /// `key` equals the boolean `value`.
    pub fn boolean(key: &str, value: bool) -> Self {
        Self {
            key: key.into(),
            value: FieldValue::Boolean(value),
        }
    }
}

impl ScoredPoint {
    /// The payload as `T`.
    pub fn payload_as<T: DeserializeOwned>(&self) -> Result<T, VectorError> {
        serde_json::from_str(&self.payload)
            .map_err(|error| VectorError::InvalidInput(format!("unexpected payload: {error}")))
    }
}

/// Creates `collection` unless it exists (with the same dimension and distance).
pub fn ensure_collection(
    collection: &str,
    dimension: u32,
    distance: Distance,
) -> Result<(), VectorError> {
    wit::ensure_collection(collection, dimension, distance)
}

/// This plugin's collections, by name.
pub fn list_collections() -> Result<Vec<CollectionInfo>, VectorError> {
    wit::list_collections()
}

/// Removes `collection` with every point in it; false when there was none.
pub fn drop_collection(collection: &str) -> Result<bool, VectorError> {
    wit::drop_collection(collection)
}

/// Inserts or replaces one point.
pub fn upsert<P: Serialize>(
    collection: &str,
    id: u64,
    vector: Vec<f32>,
    payload: &P,
) -> Result<(), VectorError> {
    let payload = serde_json::to_string(payload)
        .map_err(|error| VectorError::InvalidInput(format!("payload: {error}")))?;
    wit::upsert(
        collection,
        &[Point {
            id,
            vector,
            payload,
        }],
    )
}

/// Inserts or replaces many points (at most 256).
pub fn upsert_many(collection: &str, points: &[Point]) -> Result<(), VectorError> {
    wit::upsert(collection, points)
}

/// The `limit` closest points matching every condition in `filter`, best first.
pub fn search(
    collection: &str,
    vector: &[f32],
    limit: u32,
    filter: &[FieldMatch],
) -> Result<Vec<ScoredPoint>, VectorError> {
    wit::search(collection, vector, limit, filter)
}

/// Removes points by id.
pub fn delete(collection: &str, ids: &[u64]) -> Result<(), VectorError> {
    wit::delete(collection, ids)
}

/// Removes every point matching every condition in `filter` (not empty).
pub fn delete_matching(collection: &str, filter: &[FieldMatch]) -> Result<(), VectorError> {
    wit::delete_matching(collection, filter)
}

/// One embedding per text, in order.
pub fn embed(texts: &[String]) -> Result<Vec<Vec<f32>>, VectorError> {
    wit::embed(texts)
}

/// The embedding of one text.
pub fn embed_one(text: &str) -> Result<Vec<f32>, VectorError> {
    embed(&[text.to_string()])?
        .pop()
        .ok_or_else(|| VectorError::Unavailable("no embedding returned".into()))
}
