//! The `http` grant: `wasi:http/outgoing-handler` (WASI 0.2), linked only
//! for a plugin whose manifest grants `http`, so any `wasi:http` client
//! works, the SDK's included. The host sends every request itself:
//!
//! - the URL must match the manifest's `http` allow-list (`allow_list.rs`);
//! - the address connected to must be public unless `HTTP_ALLOW_PRIVATE`
//!   lists it for every plugin or for this one (`plugin=host:port`)
//!   (`infra::outbound`, checked after resolving, so no rebinding);
//! - redirects are not followed: a 3xx goes back to the plugin, whose next
//!   request is checked again;
//! - `{{secret:NAME}}` in a header value becomes the credential NAME, when
//!   the manifest lists it under `secrets`, and `{{oauth:NAME}}` becomes
//!   `Bearer <access token>` when it lists NAME under `oauth`
//!   (`secret_headers.rs`): the plugin never holds the value. A request
//!   with an OAuth token that gets 401 is sent once more with a refreshed
//!   token (its body is buffered for that, up to `OAUTH_BODY_LIMIT`);
//! - the response body is capped (`limits.http_response_kb`), every phase
//!   ends by the call's deadline, and each request counts against
//!   `limits.http_requests`;
//! - each request is logged, counted and audited (`http_request`: method,
//!   host, status, bytes, duration, secrets used — never headers or bodies).

mod allow_list;
mod record;
mod secret_headers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use wasmtime::component::Linker;
use wasmtime_wasi_http::{
    Error, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

use self::allow_list::AllowList;
use self::record::{RequestRecord, describe, outcome_of};
use self::secret_headers::{InjectError, Placeholder, UsedTokens};
use crate::infra::outbound::{self, Destination, Sent, Timeouts};
use crate::infra::services::HostServices;
use crate::infra::store::AuditEntry;
use crate::runtime::{
    Budget, CallSetup, CallState, Extension, Grant, GrantInput, OverBudget, RefusalTally,
    RevealedSecrets, count_refusals,
};

/// Requests one call may make.
pub static HTTP_REQUESTS: Budget = Budget::new("http_requests", "HTTP requests", 10, 100);
/// The largest response body a plugin may receive, in KiB.
pub static HTTP_RESPONSE_KB: Budget =
    Budget::new("http_response_kb", "KiB per HTTP response", 1024, 16 * 1024);

/// The largest request body sent with an OAuth token: it is kept to be
/// sent again after a 401.
const OAUTH_BODY_LIMIT: usize = 1 << 20;

/// No request waits longer than this to connect, even in a long call.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a request leaves of the call for the plugin to answer with its
/// error: a fifth of the call's time, at most this.
const MAX_MARGIN: Duration = Duration::from_secs(1);

/// `wasi:http` interfaces belong to this grant.
pub const PROVIDES: &[&str] = &["wasi:http/"];

pub fn link(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
}

/// What the grant keeps of the manifest: its allow-list and the
/// credentials it may inject.
struct HttpGrant {
    allow_list: AllowList,
    secrets: Vec<String>,
    oauth: Vec<String>,
    /// Where each credential may be put in, by label (`github`, `oauth:google`).
    bound_to: Vec<(String, AllowList)>,
}

pub fn configure(manifest: &GrantInput<'_>) -> Result<Grant, String> {
    let allow_list = AllowList::parse(manifest.http, manifest.settings)?;
    if allow_list.allows_anywhere() {
        tracing::warn!(
            plugin = %manifest.plugin,
            "plugin `{}` may send HTTP requests to ANY public host (`http = [\"*\"]` in its manifest)",
            manifest.plugin
        );
    }
    let bound_to = credential_bindings(manifest, &allow_list)?;
    Ok(Arc::new(HttpGrant {
        allow_list,
        secrets: manifest.secrets.to_vec(),
        oauth: manifest.oauth.to_vec(),
        bound_to,
    }))
}

/// Where each granted credential may be put into a request: the hosts the
/// manifest binds it to, or, for a name alone, the allow-list's exactly
/// named origins (never a wildcard's: `"*"` or `*.example.com` could be
/// any server). A host name alone means `https://host`.
fn credential_bindings(
    manifest: &GrantInput<'_>,
    allow_list: &AllowList,
) -> Result<Vec<(String, AllowList)>, String> {
    let labels = manifest
        .secrets
        .iter()
        .cloned()
        .chain(manifest.oauth.iter().map(|name| format!("oauth:{name}")));
    labels
        .map(|label| {
            let list = match manifest.credential_hosts.get(&label) {
                Some(hosts) => {
                    let origins: Vec<String> = hosts
                        .iter()
                        .map(|host| {
                            if host.contains("://") || host.contains("{{") {
                                host.clone()
                            } else {
                                format!("https://{}", host.trim())
                            }
                        })
                        .collect();
                    AllowList::parse(&origins, manifest.settings).map_err(|problem| {
                        format!("the hosts of credential `{label}`: {problem}")
                    })?
                }
                None => allow_list.exact_only(),
            };
            Ok((label, list))
        })
        .collect()
}

pub fn prepare(
    setup: &CallSetup<'_>,
    _wasi: &mut wasmtime_wasi::WasiCtxBuilder,
) -> anyhow::Result<Option<Extension>> {
    let grant = setup
        .grant
        .and_then(|grant| grant.clone().downcast::<HttpGrant>().ok());
    let context = setup.context;
    Ok(Some(Box::new(OutboundHttp {
        ctx: WasiHttpCtx::new(),
        hooks: PluginRequests {
            plugin: Arc::from(setup.plugin),
            grant: grant.unwrap_or_else(refusing_grant),
            services: context.services.clone(),
            audit: AuditEntry {
                correlation_id: Some(context.correlation_id.to_string()),
                user_id: Some(context.user_id),
                chat_id: Some(context.chat_id),
                plugin: Some(setup.plugin.to_string()),
                ..AuditEntry::new("http_request", "ok")
            },
            margin: (setup.timeout / 5).min(MAX_MARGIN),
            deadline: Instant::now() + setup.timeout,
            allowed: setup.limit(&HTTP_REQUESTS),
            made: 0,
            refused: 0,
            refusals: RefusalTally::default(),
            max_body: u64::from(setup.limit(&HTTP_RESPONSE_KB)) << 10,
            revealed: setup.revealed.clone(),
        },
    })))
}

impl HttpGrant {
    /// Why `placeholder`'s credential may not go into a request to
    /// `host:port`, if it may not: not granted, or not for that host.
    fn refuses(
        &self,
        placeholder: &Placeholder,
        https: bool,
        host: &str,
        port: u16,
    ) -> Option<String> {
        let (granted, kind, field) = match placeholder {
            Placeholder::Secret(name) => (self.secrets.contains(name), "secret", "secrets"),
            Placeholder::OAuth(name) => (self.oauth.contains(name), "OAuth credential", "oauth"),
        };
        let label = placeholder.label();
        if !granted {
            let name = label.trim_start_matches("oauth:");
            return Some(format!(
                "{kind} `{name}` is not granted to this plugin (list it under `{field}` in the manifest)"
            ));
        }
        let hosts = self
            .bound_to
            .iter()
            .find(|(known, _)| *known == label)
            .map(|(_, hosts)| hosts)
            .filter(|hosts| !hosts.is_empty());
        match hosts {
            Some(hosts) if hosts.allows(https, host, port) => None,
            Some(hosts) => Some(format!(
                "{DENIED_MARK}{kind} `{label}` is not sent to {host}: it is for {}",
                hosts.describe()
            )),
            None => Some(format!(
                "{DENIED_MARK}{kind} `{label}` is sent nowhere: the plugin's `http` list names no exact host for it; bind it in the manifest (`{{ name = \"{label}\", hosts = [\"api.example.com\"] }}`)"
            )),
        }
    }
}

/// Marks a refusal the SDK reports as `ErrorKind::Denied`: `[denied] sentence`.
pub const DENIED_MARK: &str = "[denied] ";

fn refusing_grant() -> Arc<HttpGrant> {
    Arc::new(HttpGrant {
        allow_list: AllowList::nowhere(),
        secrets: Vec::new(),
        oauth: Vec::new(),
        bound_to: Vec::new(),
    })
}

/// The per-call state `wasi:http` works on.
struct OutboundHttp {
    ctx: WasiHttpCtx,
    hooks: PluginRequests,
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        let (table, outbound) = self.table_and_extension_or(|| OutboundHttp {
            ctx: WasiHttpCtx::new(),
            hooks: PluginRequests::refusing(),
        });
        WasiHttpCtxView {
            ctx: &mut outbound.ctx,
            table,
            hooks: &mut outbound.hooks,
        }
    }
}

/// One call's requests: the grant, its budget and what to audit.
struct PluginRequests {
    plugin: Arc<str>,
    grant: Arc<HttpGrant>,
    services: Arc<HostServices>,
    /// Every request's audit entry starts as this.
    audit: AuditEntry,
    /// What each request leaves of the call for the plugin to answer.
    margin: Duration,
    deadline: Instant,
    allowed: u32,
    made: u32,
    /// Requests refused past the budget.
    refused: u32,
    /// Refusals by outcome: after the first, counted and summarised once
    /// when the call ends.
    refusals: RefusalTally,
    max_body: u64,
    /// A secret injected here is masked in the call's output, should the
    /// server echo it back to the plugin.
    revealed: RevealedSecrets,
}

type SendFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl PluginRequests {
    fn refusing() -> Self {
        Self {
            plugin: Arc::from("?"),
            grant: refusing_grant(),
            services: Arc::default(),
            audit: AuditEntry::new("http_request", "denied"),
            margin: Duration::ZERO,
            deadline: Instant::now(),
            allowed: 0,
            made: 0,
            refused: 0,
            refusals: RefusalTally::default(),
            max_body: 0,
            revealed: RevealedSecrets::default(),
        }
    }

    /// Every check that needs no network, in order; the request as it
    /// will be sent (secrets still as placeholders) and where it goes.
    fn check(
        &mut self,
        request: &http::Request<WasiBody>,
        record: &mut RequestRecord,
    ) -> Result<(bool, String, u16), (Error, String, &'static str)> {
        if self.made >= self.allowed {
            self.refused += 1;
            let text = OverBudget {
                key: HTTP_REQUESTS.key,
                unit: HTTP_REQUESTS.unit,
                limit: self.allowed,
            }
            .to_string();
            return Err((Error::InternalError(Some(text.clone())), text, "denied"));
        }
        self.made += 1;
        let uri = request.uri();
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                let text = "only http and https URLs can be requested".to_string();
                return Err((Error::HttpRequestUriInvalid, text, "denied"));
            }
        };
        let host = uri.host().unwrap_or_default().to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        record.host = host.clone();
        if !self.grant.allow_list.allows(https, &host, port) {
            let text = format!(
                "{}://{host}:{port} is not in the plugin's `http` allow-list ({})",
                if https { "https" } else { "http" },
                self.grant.allow_list.describe()
            );
            return Err((Error::HttpRequestDenied, text, "denied"));
        }
        let placeholders = secret_headers::named(request.headers())
            .map_err(|text| (Error::InternalError(Some(text.clone())), text, "denied"))?;
        record.secrets = placeholders.iter().map(Placeholder::label).collect();
        for placeholder in &placeholders {
            if let Some(text) = self.grant.refuses(placeholder, https, &host, port) {
                return Err((Error::InternalError(Some(text.clone())), text, "denied"));
            }
        }
        // A credential never crosses the internet in clear text: over plain
        // http only to a local service the operator listed.
        if !https
            && !record.secrets.is_empty()
            && !self
                .services
                .http
                .allowance()
                .lists(&self.plugin, &host, port)
        {
            let text = format!(
                "a secret is sent only over https (or to a host:port HTTP_ALLOW_PRIVATE gives this plugin), not to http://{host}:{port}"
            );
            return Err((Error::InternalError(Some(text.clone())), text, "denied"));
        }
        Ok((https, host, port))
    }
}

impl Drop for PluginRequests {
    fn drop(&mut self) {
        if self.refused > 0 {
            count_refusals(&self.plugin, &HTTP_REQUESTS, self.refused);
        }
        let repeated: u32 = self.refusals.repeated().map(|(_, count)| count).sum();
        if repeated == 0 && self.refused == 0 {
            return;
        }
        tracing::warn!(
            target: "plugin",
            plugin = %self.plugin,
            limits = %format!("{} (limit {}, {} refused)", HTTP_REQUESTS.key, self.allowed, self.refused),
            repeated_refusals = repeated,
            "the call's HTTP requests were refused (the first of each kind is logged above; the rest only counted)"
        );
        if repeated > 0
            && let Some(writer) = &self.services.audit
        {
            let mut entry = self.audit.clone();
            entry.created_at = chrono::Utc::now();
            entry.status = "denied".to_string();
            entry.error = Some(format!("{repeated} more requests refused in this call"));
            entry.metadata = sqlx::types::Json(serde_json::json!({
                "repeated": self.refusals.repeated()
                    .map(|(outcome, count)| (outcome.to_string(), serde_json::json!(count)))
                    .collect::<serde_json::Map<_, _>>(),
            }));
            writer.record_from_plugin(entry);
        }
    }
}

impl WasiHttpHooks for PluginRequests {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> SendFuture {
        let mut record = RequestRecord {
            plugin: self.plugin.clone(),
            method: request.method().to_string(),
            host: String::new(),
            secrets: Vec::new(),
            audit: self.audit.clone(),
            services: self.services.clone(),
            started: Instant::now(),
        };
        let (https, host, port) = match self.check(&request, &mut record) {
            Ok(destination) => destination,
            Err((error, text, outcome)) => {
                if self.refusals.first(outcome) {
                    record.finish(outcome, None, 0, Some(text));
                } else {
                    record.count(outcome);
                }
                return Box::new(async move { Err(error) });
            }
        };
        // The request ends a little before the call does, so the plugin
        // gets its typed error in time to answer with it.
        let remaining = self
            .deadline
            .saturating_duration_since(Instant::now())
            .saturating_sub(self.margin);
        let limit = |asked: Option<Duration>| asked.map_or(remaining, |asked| asked.min(remaining));
        let timeouts = Timeouts {
            connect: limit(options.and_then(|o| o.connect_timeout)).min(CONNECT_TIMEOUT),
            first_byte: limit(options.and_then(|o| o.first_byte_timeout)),
            between_bytes: limit(options.and_then(|o| o.between_bytes_timeout)),
        };
        let max_body = self.max_body;
        let services = self.services.clone();
        let revealed = self.revealed.clone();
        let plugin = self.plugin.clone();
        Box::new(async move {
            let destination = Destination {
                plugin: &plugin,
                https,
                host: &host,
                port,
            };
            let wire = Wire {
                destination,
                services: &services,
                timeouts,
                max_body,
            };
            let sent = if record.secrets.is_empty() {
                wire.send(request).await
            } else {
                wire.send_with_credentials(request, &revealed).await
            };
            let sent = match sent {
                Ok(sent) => sent,
                Err(Refused::Credential(text)) => {
                    record.finish("failed", None, 0, Some(text.clone()));
                    return Err(Error::InternalError(Some(text)));
                }
                Err(Refused::Network(error)) => {
                    let outcome = outcome_of(&error);
                    record.finish(outcome, None, 0, Some(describe(&error, &host, max_body)));
                    return Err(error);
                }
            };
            let status = sent.response.status().as_u16();
            let response = sent.response.map(|body| {
                body.on_end(Box::new(move |bytes, clean| {
                    let (outcome, error) = if clean {
                        ("ok", None)
                    } else if bytes > max_body {
                        ("too_large", Some(format!("response over {max_body} bytes")))
                    } else {
                        (
                            "failed",
                            Some("the response body did not arrive whole".into()),
                        )
                    };
                    record.finish(outcome, Some(status), bytes, error);
                }))
                .boxed_unsync()
            });
            let io: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, io))
        })
    }
}

/// Why a request was not sent (or got no response).
enum Refused {
    /// A credential could not be put in: the text says why.
    Credential(String),
    Network(Error),
}

impl From<InjectError> for Refused {
    fn from(error: InjectError) -> Self {
        Refused::Credential(error.text)
    }
}

/// Where and how one checked request goes out.
struct Wire<'a> {
    destination: Destination<'a>,
    services: &'a HostServices,
    timeouts: Timeouts,
    max_body: u64,
}

impl Wire<'_> {
    async fn send<B>(&self, request: http::Request<B>) -> Result<Sent, Refused>
    where
        B: hyper::body::Body<Data = bytes::Bytes, Error = Error> + Send + 'static,
    {
        outbound::send(
            request,
            self.destination,
            &self.services.http,
            self.timeouts,
            self.max_body,
        )
        .await
        .map_err(Refused::Network)
    }

    /// Puts the credentials in; with an OAuth token, a 401 refreshes it
    /// (unless someone already did, or it was obtained moments ago) and
    /// sends the request once more.
    async fn send_with_credentials(
        &self,
        request: http::Request<WasiBody>,
        revealed: &RevealedSecrets,
    ) -> Result<Sent, Refused> {
        let (parts, body) = request.into_parts();
        let mut headers = parts.headers.clone();
        let used = secret_headers::inject(
            &mut headers,
            self.services,
            revealed,
            &UsedTokens::default(),
        )
        .await?;
        if used.0.is_empty() {
            let mut request = http::Request::from_parts(parts, body);
            *request.headers_mut() = headers;
            return self.send(request).await;
        }
        let body = http_body_util::Limited::new(body, OAUTH_BODY_LIMIT)
            .collect()
            .await
            .map_err(|_| {
                Refused::Network(Error::HttpRequestBodySize(Some(OAUTH_BODY_LIMIT as u64)))
            })?
            .to_bytes();
        let again = |headers: http::HeaderMap| {
            let mut request = http::Request::new(
                http_body_util::Full::new(body.clone())
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            );
            *request.method_mut() = parts.method.clone();
            *request.uri_mut() = parts.uri.clone();
            *request.version_mut() = parts.version;
            *request.headers_mut() = headers;
            request
        };
        let sent = self.send(again(headers)).await?;
        if sent.response.status() != http::StatusCode::UNAUTHORIZED {
            return Ok(sent);
        }
        // With no newer token, sending again would only be refused again:
        // the plugin gets this 401.
        let Some(fresh) = secret_headers::renew(self.services, &used).await? else {
            return Ok(sent);
        };
        drop(sent);
        let mut headers = parts.headers.clone();
        secret_headers::inject(&mut headers, self.services, revealed, &fresh).await?;
        self.send(again(headers)).await
    }
}
