//! The host's side-effecting services that capabilities lend to plugins.
//! Each is optional so a bare runtime (tests, `plugins check`) needs none.

use std::path::PathBuf;
use std::sync::Arc;

use crate::infra::alert::Alerter;
use crate::infra::audit::AuditWriter;
use crate::infra::cache::CacheStore;
use crate::infra::health::HealthMonitor;
use crate::infra::llm::LlmClient;
use crate::infra::oauth::OAuthTokens;
use crate::infra::outbound::OutboundClient;
use crate::infra::schedule::JobsAdded;
use crate::infra::store::Store;
use crate::infra::vault::Vault;
use crate::infra::vectors::{EmbeddingsClient, VectorStore};

#[derive(Default, Clone)]
pub struct HostServices {
    pub store: Option<Store>,
    /// Present when `ENCRYPTION_KEY` is set.
    pub vault: Option<Arc<Vault>>,
    pub audit: Option<Arc<AuditWriter>>,
    /// Present when `ANTHROPIC_API_KEY` or `ANTHROPIC_AUTH_TOKEN` is set.
    pub llm: Option<Arc<LlmClient>>,
    /// Redis when `REDIS_URL` is set, in-process otherwise.
    pub cache: CacheStore,
    /// The Qdrant server or the embedded engine; none in a bare runtime.
    pub vectors: Option<VectorStore>,
    /// Present when `EMBEDDINGS_URL` is set.
    pub embeddings: Option<Arc<EmbeddingsClient>>,
    /// The health monitor's latest results (and on-demand checks).
    pub health: Option<Arc<HealthMonitor>>,
    /// Operational alerts (the Telegram admin chat under `run`; the log otherwise).
    pub alerter: Alerter,
    /// How plugins granted `http` reach the world: `HTTP_ALLOW_PRIVATE`
    /// (private `host:port` pairs allowed anyway) and `HTTP_CA_FILE`.
    pub http: OutboundClient,
    /// `FILES_DIR`: where each plugin granted `files` has its own folder
    /// (`data/files` when unset).
    pub files_dir: Option<PathBuf>,
    /// OAuth 2 tokens kept fresh by the host; present with a store and a vault.
    pub oauth: Option<Arc<OAuthTokens>>,
    /// Rung when a job is added or a webhook delivery kept here.
    pub jobs_added: JobsAdded,
    /// `MEDIA_MAX_MB`: how large a file plugins may fetch or send.
    pub media: MediaLimits,
}

/// `MEDIA_MAX_MB` when unset: Telegram's own limit on what a bot may download.
pub const DEFAULT_MEDIA_MAX_MB: u64 = 20;
/// What `MEDIA_MAX_MB` may say: Telegram lets a bot upload at most 50 MB.
pub const MAX_MEDIA_MAX_MB: u64 = 50;

/// The size cap on files going through plugins, both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaLimits {
    pub max_bytes: u64,
}

impl Default for MediaLimits {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MEDIA_MAX_MB << 20,
        }
    }
}
