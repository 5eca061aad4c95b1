//! The one-time authorization `wasmbot oauth add` runs: the device grant
//! (RFC 8628: a URL and a code to enter, while this side polls) where the
//! provider offers it, otherwise the authorization code with PKCE and a
//! loopback redirect — the operator may open the URL on another machine
//! and paste the address the browser ended on.

use std::time::Duration;

use oauth2::basic::{BasicClient, BasicTokenResponse};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    DeviceAuthorizationUrl, PkceCodeChallenge, RedirectUrl, Scope,
    StandardDeviceAuthorizationResponse, TokenResponse, TokenUrl,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use super::provider::Provider;
use super::tokens::{TokenSet, describe, token_client};

/// How long the operator has to approve.
const APPROVAL_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// What to authorize, and as which client.
pub struct Authorization {
    pub provider: Provider,
    pub client_id: String,
    pub client_secret: Option<Zeroizing<String>>,
    /// The loopback port the code flow listens on (0: any free one).
    pub redirect_port: u16,
}

/// What the provider granted.
pub struct Granted {
    pub tokens: TokenSet,
    pub expires_in: Option<Duration>,
    /// As granted (the provider may narrow what was asked).
    pub scopes: Vec<String>,
}

impl Authorization {
    fn client_secret(&self) -> Option<ClientSecret> {
        self.client_secret
            .as_ref()
            .map(|secret| ClientSecret::new(secret.to_string()))
    }

    fn scopes(&self) -> Vec<Scope> {
        self.provider
            .scopes
            .iter()
            .cloned()
            .map(Scope::new)
            .collect()
    }

    fn granted(&self, response: BasicTokenResponse) -> Granted {
        let scopes = response
            .scopes()
            .map(|scopes| scopes.iter().map(|s| s.to_string()).collect())
            .unwrap_or_else(|| self.provider.scopes.clone());
        Granted {
            tokens: TokenSet {
                client_secret: self.client_secret.as_ref().map(|s| s.to_string()),
                access_token: response.access_token().secret().clone(),
                refresh_token: response.refresh_token().map(|t| t.secret().clone()),
            },
            expires_in: response.expires_in(),
            scopes,
        }
    }

    /// The device grant: `say` shows where to go and what to type.
    pub async fn device(&self, say: &dyn Fn(String)) -> anyhow::Result<Granted> {
        let device_url = self
            .provider
            .device_url
            .clone()
            .ok_or_else(|| anyhow::anyhow!("this provider has no device authorization URL"))?;
        let mut client = BasicClient::new(ClientId::new(self.client_id.clone()))
            .set_token_uri(token_url(&self.provider.token_url)?)
            .set_device_authorization_url(
                DeviceAuthorizationUrl::new(device_url.clone())
                    .map_err(|_| anyhow::anyhow!("the device URL `{device_url}` is not valid"))?,
            )
            .set_auth_type(AuthType::RequestBody);
        if let Some(secret) = self.client_secret() {
            client = client.set_client_secret(secret);
        }
        let http = token_client()?;
        let details: StandardDeviceAuthorizationResponse = client
            .exchange_device_code()
            .add_scopes(self.scopes())
            .request_async(&http)
            .await
            .map_err(|error| {
                anyhow::anyhow!("device authorization failed: {}", describe(&error))
            })?;
        let at = details
            .verification_uri_complete()
            .map(|complete| complete.secret().clone())
            .unwrap_or_else(|| details.verification_uri().to_string());
        say(format!(
            "Open {at}\nand enter the code {}\nWaiting for the approval…",
            details.user_code().secret()
        ));
        let response = client
            .exchange_device_access_token(&details)
            .request_async(&http, tokio::time::sleep, Some(APPROVAL_TIMEOUT))
            .await
            .map_err(|error| {
                anyhow::anyhow!("the authorization was not granted: {}", describe(&error))
            })?;
        Ok(self.granted(response))
    }

    /// The code grant with PKCE: `say` shows the URL; the answer comes to a
    /// loopback listener (a browser on this machine) or as a pasted address
    /// on `pasted` (a browser anywhere else).
    pub async fn code(
        &self,
        say: &dyn Fn(String),
        pasted: mpsc::Receiver<String>,
    ) -> anyhow::Result<Granted> {
        let listener = TcpListener::bind(("127.0.0.1", self.redirect_port))
            .await
            .map_err(|error| {
                anyhow::anyhow!(
                    "cannot listen on 127.0.0.1:{} for the redirect: {error}",
                    self.redirect_port
                )
            })?;
        let redirect = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
        let auth_url = AuthUrl::new(self.provider.auth_url.clone()).map_err(|_| {
            anyhow::anyhow!(
                "the authorization URL `{}` is not valid",
                self.provider.auth_url
            )
        })?;
        let mut client = BasicClient::new(ClientId::new(self.client_id.clone()))
            .set_auth_uri(auth_url)
            .set_token_uri(token_url(&self.provider.token_url)?)
            .set_redirect_uri(RedirectUrl::new(redirect.clone())?)
            .set_auth_type(AuthType::RequestBody);
        if let Some(secret) = self.client_secret() {
            client = client.set_client_secret(secret);
        }
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(CsrfToken::new_random)
            .add_scopes(self.scopes())
            .set_pkce_challenge(challenge);
        for (key, value) in &self.provider.auth_params {
            request = request.add_extra_param(key.clone(), value.clone());
        }
        let (url, state) = request.url();
        say(format!(
            "Open this address in a browser and allow access:\n{url}\n\
             Waiting for the redirect to {redirect}/ — if the browser is on another machine, \
             paste here the address it ends on (it starts with {redirect}) and press Enter."
        ));
        // Once stdin is closed (`printf SECRET | wasmbot oauth add …`) only
        // the browser can answer. Only a redirect carrying this
        // authorization's state ends the wait: anyone can send the loopback
        // listener a request, and a forged `?error=` must not end the flow.
        let expected = state.secret().as_str();
        let mut pasted = Some(pasted);
        let answer = tokio::time::timeout(APPROVAL_TIMEOUT, async {
            loop {
                let next_line = async {
                    match pasted.as_mut() {
                        Some(lines) => lines.recv().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        match answer_browser(stream, expected).await {
                            Some(Heard::Ours(answer)) => break answer,
                            Some(Heard::Foreign) => say(
                                "Ignored a redirect that is not this authorization's (its state does not match); still waiting.".into()
                            ),
                            None => {}
                        }
                    }
                    line = next_line => {
                        let Some(line) = line else {
                            pasted = None;
                            continue;
                        };
                        match parse_redirect(line.trim()).map(|heard| heard.of(expected)) {
                            Some(Heard::Ours(answer)) => break answer,
                            Some(Heard::Foreign) => say(
                                "That address belongs to another authorization (its state does not match); paste the one this browser visit ended on.".into()
                            ),
                            None => say(format!(
                                "That is not the address the browser ended on (it starts with {redirect}/?code=); try again."
                            )),
                        }
                    }
                }
            }
        })
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {} minutes", APPROVAL_TIMEOUT.as_secs() / 60))?;
        let code = match answer {
            RedirectAnswer::Code(code) => code,
            RedirectAnswer::Refused(error) => {
                anyhow::bail!("the provider did not grant access: {error}")
            }
        };
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(verifier)
            .request_async(&token_client()?)
            .await
            .map_err(|error| anyhow::anyhow!("exchanging the code failed: {}", describe(&error)))?;
        Ok(self.granted(response))
    }
}

fn token_url(url: &str) -> anyhow::Result<TokenUrl> {
    TokenUrl::new(url.to_string())
        .map_err(|_| anyhow::anyhow!("the token URL `{url}` is not valid"))
}

enum RedirectAnswer {
    Code(Zeroizing<String>),
    Refused(String),
}

/// A redirect's answer and the state it carries.
struct Redirect {
    answer: RedirectAnswer,
    state: Option<String>,
}

/// A redirect heard, told apart by its state.
enum Heard {
    /// This authorization's.
    Ours(RedirectAnswer),
    /// Another's: an old link, or forged.
    Foreign,
}

impl Redirect {
    fn of(self, expected: &str) -> Heard {
        match self.state {
            Some(state) if state == expected => Heard::Ours(self.answer),
            _ => Heard::Foreign,
        }
    }
}

/// `…?code=X&state=Y` (or `?error=access_denied&state=Y`), from a full
/// address or a path.
fn parse_redirect(target: &str) -> Option<Redirect> {
    let query = target.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    let mut code = None;
    let mut state = None;
    let mut error = None;
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "code" => code = Some(Zeroizing::new(value.into_owned())),
            "state" => state = Some(value.into_owned()),
            "error" => error = Some(value.into_owned()),
            _ => {}
        }
    }
    let answer = match error {
        Some(error) => RedirectAnswer::Refused(error),
        None => RedirectAnswer::Code(code?),
    };
    Some(Redirect { answer, state })
}

/// Reads one request from the browser and answers it; what it heard if it
/// was a redirect (not, say, `/favicon.ico`).
async fn answer_browser(mut stream: tokio::net::TcpStream, expected: &str) -> Option<Heard> {
    let mut head = Vec::with_capacity(1024);
    let mut buffer = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    if read.is_err() {
        return None;
    }
    let text = String::from_utf8_lossy(&head);
    let target = text.lines().next()?.split_whitespace().nth(1)?.to_string();
    let heard = parse_redirect(&target).map(|redirect| redirect.of(expected));
    let body = match heard {
        Some(Heard::Ours(_)) => {
            "wasmbot: received. You can close this tab and return to the terminal."
        }
        Some(Heard::Foreign) => {
            "wasmbot: this is not the redirect of the authorization in progress (an old or forged link); ignored."
        }
        None => "wasmbot: waiting for the authorization redirect.",
    };
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
    heard
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_are_read_from_addresses_and_paths() {
        let heard = |target: &str| parse_redirect(target).map(|redirect| redirect.of("abc"));
        let Some(Heard::Ours(RedirectAnswer::Code(code))) =
            heard("http://127.0.0.1:8080/?state=abc&code=4%2F0A&scope=x")
        else {
            panic!("a code was expected");
        };
        assert_eq!(code.as_str(), "4/0A");
        assert!(matches!(
            heard("/?error=access_denied&state=abc"),
            Some(Heard::Ours(RedirectAnswer::Refused(e))) if e == "access_denied"
        ));
        assert!(heard("/favicon.ico").is_none());
        assert!(heard("http://127.0.0.1:8080/?state=abc").is_none());
    }

    #[test]
    fn redirects_with_another_state_are_foreign() {
        let heard = |target: &str| parse_redirect(target).map(|redirect| redirect.of("abc"));
        assert!(matches!(
            heard("/?code=x&state=wrong"),
            Some(Heard::Foreign)
        ));
        assert!(matches!(heard("/?code=x"), Some(Heard::Foreign)));
        assert!(matches!(
            heard("/?error=access_denied&state=wrong"),
            Some(Heard::Foreign)
        ));
        assert!(matches!(
            heard("/?error=access_denied"),
            Some(Heard::Foreign)
        ));
    }
}
