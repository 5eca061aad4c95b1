//! What both vector backends speak: the host's own types, free of any
//! engine's, so the embedded engine and the Qdrant server behave the same.

use std::fmt;

/// Larger vectors than any embedding model in use; bounds memory per call.
pub const MAX_DIMENSION: u32 = 8192;
pub const MAX_POINTS_PER_UPSERT: usize = 256;
pub const MAX_SEARCH_LIMIT: u32 = 100;
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
pub const MAX_FILTER_CONDITIONS: usize = 16;
pub const MAX_FILTER_KEY_BYTES: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Distance {
    Cosine,
    Dot,
    Euclid,
}

/// What a collection was created with; ensuring it again must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CollectionSpec {
    pub dimension: u32,
    pub distance: Distance,
}

impl CollectionSpec {
    /// Ensuring an existing collection must ask for what it was created with.
    pub fn must_equal(
        &self,
        wanted: &CollectionSpec,
        collection: &CollectionName,
    ) -> Result<(), VectorFailure> {
        if self == wanted {
            return Ok(());
        }
        Err(VectorFailure::DimensionMismatch(format!(
            "collection {collection} exists with {self}, not {wanted}"
        )))
    }
}

impl fmt::Display for CollectionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dimension {}, {:?} distance",
            self.dimension, self.distance
        )
    }
}

/// A plugin's collection: the plugin is part of its identity, so two plugins
/// naming "notes" get two collections.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CollectionName {
    pub plugin: String,
    pub name: String,
}

impl CollectionName {
    /// Names a plugin may use: 1-64 of a-z, 0-9, `-`, `_`; never a `.` or a
    /// `/`, so a name is safe as a folder and unambiguous in `qualified`.
    pub fn is_valid(name: &str) -> bool {
        (1..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    }

    /// The Qdrant server's collection name (names hold no `.`, so this is unambiguous).
    pub fn qualified(&self) -> String {
        format!("wasmbot.{}.{}", self.plugin, self.name)
    }
}

impl fmt::Display for CollectionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub id: u64,
    pub vector: Vec<f32>,
    pub payload: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: u64,
    pub score: f32,
    pub payload: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Text(String),
    Integer(i64),
    Boolean(bool),
}

/// An exact-match condition on one payload field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldMatch {
    pub key: String,
    pub value: FieldValue,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VectorFailure {
    #[error("{0}")]
    InvalidInput(String),
    #[error("no collection {0} (call ensure-collection first)")]
    NoSuchCollection(String),
    #[error("{0}")]
    DimensionMismatch(String),
    #[error("no embeddings provider is configured (EMBEDDINGS_URL)")]
    NotConfigured,
    #[error("{0}")]
    Unavailable(String),
    /// The plugin's collections would hold more points than its quota.
    #[error("{0}")]
    QuotaExceeded(String),
}

impl VectorFailure {
    pub fn no_such_collection(collection: &CollectionName) -> Self {
        Self::NoSuchCollection(collection.to_string())
    }

    pub fn wrong_dimension(spec: &CollectionSpec, got: usize) -> Self {
        Self::DimensionMismatch(format!(
            "the collection has dimension {}, the vector has {got}",
            spec.dimension
        ))
    }
}

/// Every vector must have the collection's dimension and finite values.
pub fn check_vector(spec: &CollectionSpec, vector: &[f32]) -> Result<(), VectorFailure> {
    if vector.len() != spec.dimension as usize {
        return Err(VectorFailure::wrong_dimension(spec, vector.len()));
    }
    if vector.iter().any(|v| !v.is_finite()) {
        return Err(VectorFailure::InvalidInput(
            "vectors must hold finite numbers (no NaN or infinity)".into(),
        ));
    }
    Ok(())
}
