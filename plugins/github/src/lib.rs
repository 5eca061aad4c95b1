//! `/github`: how many unread notifications the token's owner has, and the
//! latest few. The token is the `github` secret, injected by the host into
//! the request's Authorization header: this plugin never sees it.

mod notifications;

use wasmbot_sdk::prelude::*;

/// What GitHub answers when the token is missing, expired or revoked.
const REFUSED: &str = "GitHub refused the token. Store a token with `wasmbot secrets set github`.";

fn handle(_msg: Message) -> HandlerResult {
    let api_url = config::require("api_url")?;
    let response = http::Request::get(format!(
        "{}/notifications",
        api_url.trim().trim_end_matches('/')
    ))
    .bearer_secret("github")
    .header("Accept", "application/vnd.github+json")
    .header("X-GitHub-Api-Version", "2022-11-28")
    .header("User-Agent", "wasmbot")
    .send()?;
    if response.status == 401 {
        return Ok(Reply::text(REFUSED));
    }
    let response = response.error_for_status()?;
    let list = notifications::parse(&response.body)?;
    let more_pages = response
        .header("link")
        .is_some_and(notifications::has_next_page);
    Ok(Reply::text(notifications::summary(list, more_pages)))
}

wasmbot_sdk::handler!(handle);
