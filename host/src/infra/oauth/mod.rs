//! OAuth 2 as a host service: the operator authorizes once
//! (`wasmbot oauth add`), the host keeps the tokens encrypted and fresh, and
//! plugins only ever name a credential (`{{oauth:NAME}}` in a header).

pub mod authorize;
pub mod provider;
mod tokens;

pub use tokens::{AccessToken, OAuthTokens, TokenError, TokenSet, describe, token_client};
