//! The database: SQLite (the embedded default) or PostgreSQL, chosen by
//! `DATABASE_URL`, with the same operations and the same migrations in two
//! dialects. Every query runs under a timeout.

mod audit;
mod conversation;
mod credentials;
mod inbox;
mod jobs;
mod oauth;
mod pool;
mod sanitize;
mod state;
mod tool_calls;
mod webhook_deliveries;
mod webhooks;

pub use audit::{AuditEntry, KeyedAuditEntry, RejectedAudit};
pub use conversation::{PendingPrompt, StoredButton, unix_now};
pub use credentials::{CredentialInfo, StoredCredential};
pub use inbox::{Claimant, ClaimedUpdate, InboxCounts, InboxOutcome, InboxUpdate};
pub use jobs::{ClaimRoom, NewJob, StoredJob, TooManyJobs};
pub use oauth::OAuthRow;
pub use pool::{Store, StoreError, StoreResult, now};
pub use sanitize::{clean_capped, clean_text};
pub use state::{OverQuota, StateQuota, StateUsage};
pub use tool_calls::{CompletedToolCall, StartedToolCall, ToolLogRow};
pub use webhook_deliveries::{DELIVERY_MEMORY_MS, Replayed};
pub use webhooks::StoredWebhook;
