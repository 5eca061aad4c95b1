//! The host's vector stores (embedded or Qdrant server) and the
//! embeddings client, lent to plugins by the `vectors` capability.

mod embedded;
mod embeddings;
mod model;
mod server;
mod settings;
mod store;

pub use embedded::EmbeddedVectors;
pub use embeddings::EmbeddingsClient;
pub use model::{
    CollectionName, CollectionSpec, Distance, FieldMatch, FieldValue, Hit, MAX_PAYLOAD_BYTES,
    Point, VectorFailure,
};
pub use server::ServerVectors;
pub use settings::{EmbeddingsSettings, QdrantSettings, VectorSettings};
pub use store::VectorStore;
