//! The host's own HTTP/1.1 client for requests plugins make: it resolves
//! the name itself and connects only to an address it has checked (so a
//! name that resolves to a public address when checked and a private one
//! when connecting — DNS rebinding — has no gap to use), speaks TLS with
//! the webpki roots, and caps and times the response body. What a plugin
//! may ask for (its allow-list, its secrets) is the `http` capability's
//! business; this module is only the wire.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self};
use wasmtime_wasi_http::Error;
use wasmtime_wasi_http::io::TokioIo;

/// `HTTP_ALLOW_PRIVATE`: private `host:port` pairs the operator lets
/// plugins reach anyway (a self-hosted service on the LAN, the tests' local
/// server), each for every plugin or, written `plugin=host:port`, for that
/// plugin alone. A pair matches the URL's host as written or the address
/// connected to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrivateAllowance {
    pairs: Vec<AllowedPair>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedPair {
    /// `None`: every plugin.
    plugin: Option<String>,
    host: String,
    port: u16,
}

impl AllowedPair {
    fn serves(&self, plugin: &str, port: u16) -> bool {
        self.port == port && self.plugin.as_deref().is_none_or(|only| only == plugin)
    }
}

impl PrivateAllowance {
    /// `"127.0.0.1:8080, nas=nas.local:5000, [::1]:9000"`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut pairs = Vec::new();
        for item in text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let (plugin, pair) = match item.split_once('=') {
                Some((plugin, pair)) => (Some(plugin_name(item, plugin.trim())?), pair.trim()),
                None => (None, item),
            };
            let (host, port) = pair
                .rsplit_once(':')
                .ok_or_else(|| format!("`{item}` is not host:port or plugin=host:port"))?;
            let port: u16 = port
                .parse()
                .map_err(|_| format!("`{item}` has no valid port"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() {
                return Err(format!("`{item}` has no host"));
            }
            pairs.push(AllowedPair {
                plugin,
                host: host.to_ascii_lowercase(),
                port,
            });
        }
        Ok(Self { pairs })
    }

    /// Whether the operator listed `host:port` for `plugin` as written (a
    /// name or an address literal), before any resolving.
    pub fn lists(&self, plugin: &str, host: &str, port: u16) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.pairs
            .iter()
            .any(|pair| pair.serves(plugin, port) && pair.host.eq_ignore_ascii_case(host))
    }

    /// Whether `plugin` may connect to the private `address` that `host`
    /// resolved to.
    pub fn allows(&self, plugin: &str, host: &str, address: SocketAddr) -> bool {
        let ip = address.ip().to_string();
        self.pairs.iter().any(|pair| {
            pair.serves(plugin, address.port())
                && (pair.host.eq_ignore_ascii_case(host) || pair.host == ip)
        })
    }
}

/// The `plugin` of `plugin=host:port`, spelled as a manifest's `name` is.
fn plugin_name(item: &str, plugin: &str) -> Result<String, String> {
    let valid = plugin.starts_with(|c: char| c.is_ascii_lowercase())
        && plugin
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if valid {
        Ok(plugin.to_string())
    } else {
        Err(format!(
            "`{item}`: `{plugin}` is not a plugin name (a-z, 0-9, '_' or '-', starting with a letter)"
        ))
    }
}

/// How plugins' requests leave the host: which private destinations the
/// operator allows and which certificate authorities are trusted (the
/// webpki roots, plus `HTTP_CA_FILE` for a self-hosted service behind a
/// private CA).
#[derive(Clone)]
pub struct OutboundClient {
    allowance: PrivateAllowance,
    tls: Arc<rustls::ClientConfig>,
    /// Extra authorities trusted, for `Debug`.
    extra_roots: usize,
}

impl Default for OutboundClient {
    fn default() -> Self {
        Self {
            allowance: PrivateAllowance::default(),
            tls: default_tls(),
            extra_roots: 0,
        }
    }
}

impl std::fmt::Debug for OutboundClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundClient")
            .field("allowance", &self.allowance)
            .field("extra_roots", &self.extra_roots)
            .finish()
    }
}

impl OutboundClient {
    /// `ca_pem`: PEM certificates trusted besides the webpki roots.
    pub fn new(allowance: PrivateAllowance, ca_pem: Option<&[u8]>) -> Result<Self, String> {
        let Some(pem) = ca_pem else {
            return Ok(Self {
                allowance,
                ..Self::default()
            });
        };
        let mut roots = webpki_root_store();
        let mut extra_roots = 0;
        for certificate in CertificateDer::pem_slice_iter(pem) {
            let certificate =
                certificate.map_err(|error| format!("not a PEM certificate file: {error}"))?;
            roots
                .add(certificate)
                .map_err(|error| format!("a certificate cannot be trusted: {error}"))?;
            extra_roots += 1;
        }
        if extra_roots == 0 {
            return Err("holds no PEM certificate".into());
        }
        Ok(Self {
            allowance,
            tls: Arc::new(tls_config(roots)),
            extra_roots,
        })
    }

    pub fn allowance(&self) -> &PrivateAllowance {
        &self.allowance
    }
}

/// Whether `ip` is on the public internet: not loopback, private, link-local
/// (the cloud metadata service at 169.254.169.254 included), shared
/// (carrier-grade NAT), multicast, broadcast, documentation or reserved —
/// nor an IPv6 form that carries an IPv4 address or leads inside (mapped,
/// IPv4-compatible, 6to4, Teredo, NAT64, site-local, discard-only).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let segments = v6.segments();
            let (first, second) = (segments[0], segments[1]);
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || segments[..6] == [0; 6] // IPv4-compatible ::a.b.c.d (embeds v4; deprecated)
                || (first & 0xfe00) == 0xfc00 // unique local, fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local, fe80::/10
                || (first & 0xffc0) == 0xfec0 // site-local, fec0::/10 (deprecated, still routed inside)
                || (first == 0x2001 && second == 0x0db8) // documentation
                || (first == 0x2001 && second == 0) // Teredo, 2001::/32 (embeds v4)
                || first == 0x2002 // 6to4, 2002::/16 (embeds v4)
                || (first == 0x0100 && segments[1..4] == [0; 3]) // discard-only, 100::/64
                || (first == 0x0064 && second == 0xff9b)) // NAT64 (embeds v4)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_unspecified()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared, 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

/// Where one request goes, as the capability checked it.
#[derive(Clone, Copy)]
pub struct Destination<'a> {
    /// Who asks: `HTTP_ALLOW_PRIVATE` may allow a private address to one
    /// plugin only.
    pub plugin: &'a str,
    pub https: bool,
    /// As written in the URL (a name or an address literal).
    pub host: &'a str,
    pub port: u16,
}

/// How long each phase of a request may take, within the call's deadline.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub between_bytes: Duration,
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// Resolves `destination`, skips every address that is not public (unless
/// allowed), connects to the first that answers and speaks TLS when asked.
/// Returns the stream and the address it is connected to.
async fn connect(
    destination: &Destination<'_>,
    client: &OutboundClient,
    timeout: Duration,
) -> Result<(Box<dyn Stream>, SocketAddr), Error> {
    let host = destination
        .host
        .trim_start_matches('[')
        .trim_end_matches(']');
    let addresses: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, destination.port)],
        Err(_) => tokio::time::timeout(timeout, tokio::net::lookup_host((host, destination.port)))
            .await
            .map_err(|_| Error::DnsTimeout)?
            .map_err(|error| Error::DnsError {
                rcode: Some(error.to_string()),
                info_code: None,
            })?
            .collect(),
    };
    if addresses.is_empty() {
        return Err(Error::DestinationNotFound);
    }
    let mut last = Error::DestinationIpProhibited;
    for address in addresses {
        if !is_public(address.ip()) && !client.allowance.allows(destination.plugin, host, address) {
            continue;
        }
        let tcp = match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
            Err(_) => {
                last = Error::ConnectionTimeout;
                continue;
            }
            Ok(Err(error)) => {
                last = if error.kind() == std::io::ErrorKind::ConnectionRefused {
                    Error::ConnectionRefused
                } else {
                    Error::Connect(error)
                };
                continue;
            }
            Ok(Ok(tcp)) => tcp,
        };
        let _ = tcp.set_nodelay(true);
        if !destination.https {
            return Ok((Box::new(tcp), address));
        }
        let name = match host.parse::<IpAddr>() {
            Ok(ip) => ServerName::from(ip),
            Err(_) => {
                ServerName::try_from(host.to_string()).map_err(|_| Error::HttpRequestUriInvalid)?
            }
        };
        let connector = TlsConnector::from(client.tls.clone());
        let tls = tokio::time::timeout(timeout, connector.connect(name, tcp))
            .await
            .map_err(|_| Error::ConnectionTimeout)?
            .map_err(tls_error)?;
        return Ok((Box::new(tls), address));
    }
    Err(last)
}

/// A certificate the roots do not vouch for is `TLS-certificate-error`.
fn tls_error(error: std::io::Error) -> Error {
    let certificate = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|inner| matches!(inner, rustls::Error::InvalidCertificate(_)));
    if certificate {
        Error::TlsCertificateError
    } else {
        Error::Tls(error)
    }
}

fn webpki_root_store() -> rustls::RootCertStore {
    rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    }
}

fn tls_config(roots: rustls::RootCertStore) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(builder) => builder.with_root_certificates(roots).with_no_client_auth(),
        // The ring provider supports the default versions; kept total anyway.
        Err(_) => rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    }
}

/// The webpki roots alone, built once.
fn default_tls() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| Arc::new(tls_config(webpki_root_store())))
        .clone()
}

/// What came back, and where from.
pub struct Sent {
    pub response: http::Response<CappedBody>,
    pub address: SocketAddr,
}

/// Sends `request` (its URI absolute) to `destination` and returns the
/// response head; its body streams through [`CappedBody`], which fails past
/// `max_body` bytes or when the body stalls.
pub async fn send<B>(
    mut request: http::Request<B>,
    destination: Destination<'_>,
    client: &OutboundClient,
    timeouts: Timeouts,
    max_body: u64,
) -> Result<Sent, Error>
where
    B: Body<Data = Bytes, Error = Error> + Send + 'static,
{
    let (stream, address) = connect(&destination, client, timeouts.connect).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(Error::Hyper)?;
    // The connection is driven on its own task; it ends with the response
    // body (or when the plugin drops it).
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "plugin HTTP connection ended with an error");
        }
    });
    // On the wire, HTTP/1.1 wants the path only (the Host header is set).
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str())
        .to_string();
    *request.uri_mut() = path.parse().map_err(|_| Error::HttpRequestUriInvalid)?;
    let response = tokio::time::timeout(timeouts.first_byte, sender.send_request(request))
        .await
        .map_err(|_| Error::HttpResponseTimeout)?
        .map_err(|error| {
            if error.is_timeout() {
                Error::HttpResponseTimeout
            } else {
                Error::Hyper(error)
            }
        })?;
    if let Some(length) = response
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())
        && length > max_body
    {
        return Err(Error::HttpResponseBodySize(Some(max_body)));
    }
    Ok(Sent {
        response: response.map(|incoming| CappedBody {
            incoming,
            received: 0,
            max: max_body,
            stall: Box::pin(tokio::time::sleep(timeouts.between_bytes)),
            between_bytes: timeouts.between_bytes,
            on_end: None,
        }),
        address,
    })
}

/// Called once when a response body ends (completely, cut, or dropped):
/// the bytes received, and whether it ended cleanly.
pub type BodyEnd = Box<dyn FnOnce(u64, bool) + Send>;

/// A response body that fails past its cap or when no byte arrives for
/// `between_bytes`, and reports how it ended.
pub struct CappedBody {
    incoming: Incoming,
    received: u64,
    max: u64,
    stall: Pin<Box<tokio::time::Sleep>>,
    between_bytes: Duration,
    on_end: Option<BodyEnd>,
}

impl CappedBody {
    /// `on_end` runs once, when the body ends or is dropped.
    pub fn on_end(mut self, on_end: BodyEnd) -> Self {
        self.on_end = Some(on_end);
        self
    }

    fn end(&mut self, clean: bool) {
        if let Some(on_end) = self.on_end.take() {
            on_end(self.received, clean);
        }
    }
}

impl Drop for CappedBody {
    fn drop(&mut self) {
        self.end(false);
    }
}

impl Body for CappedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.incoming).poll_frame(cx) {
            Poll::Ready(None) => {
                this.end(true);
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(error))) => {
                this.end(false);
                Poll::Ready(Some(Err(Error::Hyper(error))))
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    if this.received > this.max {
                        this.end(false);
                        return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(this.max)))));
                    }
                }
                let deadline = tokio::time::Instant::now() + this.between_bytes;
                this.stall.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => match this.stall.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.end(false);
                    Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::7f00:1",
            "::127.0.0.1",
            "::a9fe:a9fe",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "fec0::1",
            "feff::1",
            "100::1",
            "100::ffff:ffff:ffff:ffff",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "1.1.1.1",
            "140.82.112.3",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "2003::1",
            "100:0:0:1::1",
            "1::1",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn the_allowance_matches_host_or_address_with_the_port() {
        let allowance = PrivateAllowance::parse("127.0.0.1:8080, NAS.local:5000, [::1]:9").unwrap();
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert!(allowance.allows("p", "localhost", local));
        assert!(!allowance.allows("p", "localhost", "127.0.0.1:8081".parse().unwrap()));
        assert!(allowance.allows("p", "nas.local", "192.168.1.5:5000".parse().unwrap()));
        assert!(allowance.allows("p", "::1", "[::1]:9".parse().unwrap()));
        assert!(allowance.lists("p", "nas.local", 5000) && allowance.lists("p", "[::1]", 9));
        assert!(
            !allowance.lists("p", "localhost", 8080),
            "listed by address, not by name"
        );
        assert_eq!(
            PrivateAllowance::parse("localhost").unwrap_err(),
            "`localhost` is not host:port or plugin=host:port"
        );
        assert_eq!(
            PrivateAllowance::parse("a:b").unwrap_err(),
            "`a:b` has no valid port"
        );
    }

    #[test]
    fn a_pair_given_to_one_plugin_is_not_the_others() {
        let allowance = PrivateAllowance::parse(
            "nas=nas.local:5000, home-assistant = 10.0.0.9:8123, 10.0.0.2:80",
        )
        .unwrap();
        let nas: SocketAddr = "192.168.1.5:5000".parse().unwrap();
        assert!(allowance.allows("nas", "nas.local", nas));
        assert!(!allowance.allows("weather", "nas.local", nas));
        assert!(allowance.lists("nas", "nas.local", 5000));
        assert!(!allowance.lists("nas-backup", "nas.local", 5000));
        let ha: SocketAddr = "10.0.0.9:8123".parse().unwrap();
        assert!(allowance.allows("home-assistant", "ha.lan", ha));
        assert!(!allowance.allows("nas", "ha.lan", ha));
        let shared: SocketAddr = "10.0.0.2:80".parse().unwrap();
        assert!(
            allowance.allows("nas", "10.0.0.2", shared)
                && allowance.allows("any", "10.0.0.2", shared)
        );
        for (bad, reason) in [
            ("=nas.local:5000", "`` is not a plugin name"),
            ("NAS=nas.local:5000", "`NAS` is not a plugin name"),
            ("nas=nas.local", "is not host:port"),
            ("nas=:5000", "has no host"),
        ] {
            let error = PrivateAllowance::parse(bad).unwrap_err();
            assert!(error.contains(reason), "{bad}: {error}");
        }
    }
}
