//! Plugins reaching the world on the operator's terms: `http` (allow-list,
//! private addresses, redirects, caps, secret injection), settings, and the
//! `files` folder — real components against a real local HTTP server that
//! speaks Open-Meteo's and GitHub's wire formats.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::{ask, install};
use wasmbot::chat::Dispatcher;
use wasmbot::infra::audit::AuditWriter;
use wasmbot::infra::outbound::{OutboundClient, PrivateAllowance};
use wasmbot::infra::services::HostServices;
use wasmbot::infra::store::Store;
use wasmbot::infra::vault::Vault;
use wasmbot::runtime::{PluginEngine, PluginLimits, PluginRegistry, SettingOverrides};

const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const SECRET: &str = "ghp_s3cr3t-token-value";

/// What the local server saw.
#[derive(Default)]
struct Seen {
    authorization: Vec<String>,
    queries: Vec<String>,
}

type Shared = Arc<Mutex<Seen>>;

/// A local server speaking the wire formats the plugins expect, plus the
/// routes the refusal tests need.
async fn serve() -> (SocketAddr, Shared) {
    let seen = Shared::default();
    let app = Router::new()
        .route("/v1/search", get(geocoding))
        .route("/v1/forecast", get(forecast))
        .route("/notifications", get(notifications))
        .route("/hello", get(|| async { "hello world" }))
        .route("/echo-auth", get(echo_auth))
        .route("/echo-auth-back", get(echo_auth_back))
        .route("/big", get(|| async { "x".repeat(10_000) }))
        .route("/big-stream", get(big_stream))
        .route("/slow", get(slow))
        .route("/redirect-away", get(redirect_away))
        .route("/redirect-home", get(redirect_home))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (address, seen)
}

/// The query's parameters, noted as seen under `what`.
fn note_query(seen: &Shared, what: &str, query: Option<String>) -> BTreeMap<String, String> {
    let query: BTreeMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    seen.lock()
        .unwrap()
        .queries
        .push(format!("{what} {query:?}"));
    query
}

fn json(status: StatusCode, body: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn geocoding(State(seen): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let query = note_query(&seen, "search", query);
    if query.get("name").map(String::as_str) != Some("Berlin") {
        return json(StatusCode::OK, r#"{"generationtime_ms":0.2}"#);
    }
    json(
        StatusCode::OK,
        r#"{"results":[{"id":2950159,"name":"Berlin","latitude":52.52437,"longitude":13.41053,"elevation":74.0,"feature_code":"PPLC","country_code":"DE","timezone":"Europe/Berlin","population":3426354,"country":"Germany","admin1":"Land Berlin"}],"generationtime_ms":0.9}"#,
    )
}

async fn forecast(State(seen): State<Shared>, RawQuery(query): RawQuery) -> Response {
    note_query(&seen, "forecast", query);
    json(
        StatusCode::OK,
        r#"{"latitude":52.52,"longitude":13.419998,"generationtime_ms":0.1,"utc_offset_seconds":3600,"timezone":"Europe/Berlin","timezone_abbreviation":"GMT+1","elevation":38.0,
"current_units":{"time":"iso8601","interval":"seconds","temperature_2m":"°C","apparent_temperature":"°C","relative_humidity_2m":"%","wind_speed_10m":"km/h","weather_code":"wmo code"},
"current":{"time":"2026-11-26T15:00","interval":900,"temperature_2m":7.4,"apparent_temperature":4.1,"relative_humidity_2m":81,"wind_speed_10m":13.2,"weather_code":3},
"daily_units":{"time":"iso8601","weather_code":"wmo code","temperature_2m_max":"°C","temperature_2m_min":"°C","precipitation_probability_max":"%"},
"daily":{"time":["2026-11-26","2026-11-27","2026-11-28"],"weather_code":[3,61,0],"temperature_2m_max":[8.1,6.5,4.0],"temperature_2m_min":[3.2,2.9,-1.5],"precipitation_probability_max":[10,80,0]}}"#,
    )
}

async fn notifications(State(seen): State<Shared>, headers: HeaderMap) -> Response {
    let authorization = header_text(&headers, "authorization");
    seen.lock()
        .unwrap()
        .authorization
        .push(authorization.clone());
    if authorization != format!("Bearer {SECRET}") {
        return json(
            StatusCode::UNAUTHORIZED,
            r#"{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest","status":"401"}"#,
        );
    }
    json(
        StatusCode::OK,
        r#"[{"id":"1","unread":true,"reason":"review_requested","updated_at":"2026-11-26T10:00:00Z","subject":{"title":"Add streaming replies","url":"https://api.github.com/repos/ada/wasmbot/pulls/7","type":"PullRequest"},"repository":{"id":1,"name":"wasmbot","full_name":"ada/wasmbot"}},
{"id":"2","unread":true,"reason":"mention","updated_at":"2026-11-25T09:00:00Z","subject":{"title":"Crash on empty manifest","url":"https://api.github.com/repos/ada/wasmbot/issues/5","type":"Issue"},"repository":{"id":1,"name":"wasmbot","full_name":"ada/wasmbot"}}]"#,
    )
}

fn header_text(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

async fn echo_auth(State(seen): State<Shared>, headers: HeaderMap) -> &'static str {
    let authorization = header_text(&headers, "authorization");
    seen.lock().unwrap().authorization.push(authorization);
    "received"
}

/// A careless server that sends the Authorization header back.
async fn echo_auth_back(headers: HeaderMap) -> String {
    header_text(&headers, "authorization")
}

/// 10 KB without a Content-Length: the cap must cut it while it streams.
async fn big_stream() -> Response {
    let chunks = (0..10).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'y'; 1000])));
    axum::body::Body::from_stream(futures_stream(chunks)).into_response()
}

fn futures_stream<I: Iterator>(items: I) -> futures_util::stream::Iter<I> {
    futures_util::stream::iter(items)
}

/// Never answers within any plugin's deadline.
async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(60)).await;
    "too late"
}

/// A redirect to a host not in the allow-list.
async fn redirect_away() -> Response {
    (
        StatusCode::FOUND,
        [(header::LOCATION, "http://127.0.0.2:9/hello")],
    )
        .into_response()
}

/// A redirect to an allowed URL (relative).
async fn redirect_home() -> Response {
    (StatusCode::FOUND, [(header::LOCATION, "/hello")]).into_response()
}

/// A host with `plugins` installed, settings and `HTTP_ALLOW_PRIVATE` as given.
struct TestHost {
    dispatcher: Dispatcher,
    registry: Arc<PluginRegistry>,
    store: Store,
    _audit: Arc<AuditWriter>,
}

async fn host(
    plugins: &Path,
    settings: &[(&str, String)],
    allow_private: &str,
    store: Store,
    files_dir: Option<&Path>,
) -> TestHost {
    let allowance = PrivateAllowance::parse(allow_private).unwrap();
    let client = OutboundClient::new(allowance, None).unwrap();
    host_with(plugins, settings, client, store, files_dir).await
}

async fn host_with(
    plugins: &Path,
    settings: &[(&str, String)],
    client: OutboundClient,
    store: Store,
    files_dir: Option<&Path>,
) -> TestHost {
    let overrides: SettingOverrides = settings
        .iter()
        .map(|(name, value)| (name.to_string(), value.clone()))
        .collect();
    let engine = Arc::new(
        PluginEngine::new(None, wasmbot::capabilities::ALL)
            .unwrap()
            .with_setting_overrides(overrides),
    );
    let registry = Arc::new(
        PluginRegistry::load(engine, plugins.to_path_buf(), PluginLimits::default())
            .await
            .unwrap(),
    );
    let audit = Arc::new(AuditWriter::start(store.clone(), 10_000));
    let services = HostServices {
        store: Some(store.clone()),
        vault: Some(Arc::new(Vault::from_hex("ENCRYPTION_KEY", KEY).unwrap())),
        audit: Some(audit.clone()),
        http: client,
        files_dir: files_dir.map(Path::to_path_buf),
        ..HostServices::default()
    };
    TestHost {
        dispatcher: Dispatcher::new(registry.clone(), None).with_services(services),
        registry,
        store,
        _audit: audit,
    }
}

/// The `fetch` plugin pointed at `server`, which it may reach.
async fn fetch_host(plugins: &Path, server: SocketAddr, store: &Store) -> TestHost {
    let settings = [("PLUGIN_FETCH_BASE_URL", format!("http://{server}"))];
    host(plugins, &settings, &server.to_string(), store.clone(), None).await
}

async fn store_secret(store: &Store, name: &str, value: &str) {
    let vault = Vault::from_hex("ENCRYPTION_KEY", KEY).unwrap();
    let stored = vault.encrypt(name, value.as_bytes(), 1).unwrap();
    store.put_credential(&stored).await.unwrap();
}

fn load_errors(registry: &PluginRegistry) -> Vec<String> {
    registry
        .snapshot()
        .errors()
        .iter()
        .map(|error| error.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn weather_answers_from_open_meteo_moved_by_settings() {
    let (server, seen) = serve().await;
    let dir = common::plugins_dir(&["weather"]);
    let base = format!("http://{server}");
    let t = common::stores::sqlite().await;
    let host = host(
        dir.path(),
        &[
            ("PLUGIN_WEATHER_GEOCODING_URL", base.clone()),
            ("PLUGIN_WEATHER_FORECAST_URL", base.clone()),
        ],
        &server.to_string(),
        t.store.clone(),
        None,
    )
    .await;
    assert!(
        load_errors(&host.registry).is_empty(),
        "{:?}",
        load_errors(&host.registry)
    );

    let reply = ask(&host.dispatcher, "/weather Berlin").await;
    assert!(reply.starts_with("Weather in Berlin, Germany"), "{reply}");
    assert!(reply.contains("7.4 °C"), "{reply}");
    assert!(reply.contains("80 %"), "{reply}");
    let queries = seen.lock().unwrap().queries.clone();
    assert!(queries[0].contains("\"name\": \"Berlin\""), "{queries:?}");
    assert!(
        queries[1].contains("\"latitude\": \"52.52437\""),
        "{queries:?}"
    );

    let reply = ask(&host.dispatcher, "/weather Atlantis").await;
    assert_eq!(reply, "I could not find a place called Atlantis.");
    let reply = ask(&host.dispatcher, "/weather").await;
    assert!(reply.to_lowercase().contains("/weather <city>"), "{reply}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_refusal_is_typed_and_nothing_unlisted_is_reached() {
    let (server, _seen) = serve().await;
    let dir = common::plugins_dir(&["fetch"]);
    common::set_limits(
        dir.path(),
        "fetch",
        "http_response_kb = 4\ntimeout_ms = 3000",
    );
    let base = format!("http://{server}");
    let t = common::stores::sqlite().await;
    let host = fetch_host(dir.path(), server, &t.store).await;
    assert!(
        load_errors(&host.registry).is_empty(),
        "{:?}",
        load_errors(&host.registry)
    );
    let d = &host.dispatcher;

    assert_eq!(
        ask(d, &format!("/fetch {base}/hello")).await,
        "200 11 bytes: hello world"
    );
    // A redirect to an allowed place is followed, each hop checked.
    assert_eq!(
        ask(d, &format!("/fetch {base}/redirect-home")).await,
        "200 11 bytes: hello world"
    );

    // Not in the allow-list: another host, another port, another scheme.
    for url in [
        "http://127.0.0.2:9/hello".to_string(),
        format!("https://{server}/hello"),
        "https://api.github.com/".to_string(),
    ] {
        let reply = ask(d, &format!("/fetch {url}")).await;
        assert!(
            reply.starts_with("error: ") && reply.contains("allow-list"),
            "{url}: {reply}"
        );
    }
    // A redirect to an unlisted host: returned, and refused when followed.
    let reply = ask(d, &format!("/fetch_once {base}/redirect-away")).await;
    assert!(
        reply.starts_with("302 0 bytes: location=http://127.0.0.2:9/hello"),
        "{reply}"
    );
    let reply = ask(d, &format!("/fetch {base}/redirect-away")).await;
    assert!(
        reply.contains("`127.0.0.2:9` is not in this plugin's `http` allow-list"),
        "{reply}"
    );

    // Over the 4 KiB cap, announced or streamed.
    for path in ["big", "big-stream"] {
        let reply = ask(d, &format!("/fetch {base}/{path}")).await;
        assert!(
            reply.starts_with("error: ") && reply.contains("larger than the plugin's limit"),
            "{path}: {reply}"
        );
    }
    // Too slow: cut inside the call's deadline, so the plugin still answers.
    let reply = ask(d, &format!("/fetch {base}/slow")).await;
    assert!(
        reply.starts_with("error: ") && reply.contains("did not answer in time"),
        "{reply}"
    );

    // An ungranted secret name is refused before anything is sent.
    let reply = ask(d, &format!("/fetch_secret {base}/echo-auth other")).await;
    assert!(reply.contains("secret `other` is not granted"), "{reply}");

    // Every request and refusal is audited with the host, never with headers.
    let entries = audited_requests(&host.store, 13).await;
    assert_eq!(entries.len(), 13, "{entries:?}");
    assert!(
        entries
            .iter()
            .any(|(status, meta)| status == "denied" && meta.contains("127.0.0.2"))
    );
    assert!(entries.iter().any(|(status, _)| status == "too_large"));
    assert!(entries.iter().any(|(status, _)| status == "timeout"));
    assert!(
        entries
            .iter()
            .any(|(status, meta)| status == "ok" && meta.contains("\"status\":200"))
    );
    for outcome in ["ok", "denied", "too_large", "timeout"] {
        let counted = common::counter(
            "wasmbot_plugin_http_requests_total",
            &[("plugin", "fetch"), ("outcome", outcome)],
        );
        assert!(counted >= 1, "{outcome}: {counted}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn private_addresses_need_the_operators_allowance() {
    let (server, seen) = serve().await;
    let dir = common::plugins_dir(&["fetch"]);
    let base = format!("http://{server}");
    let t = common::stores::sqlite().await;
    let settings = [("PLUGIN_FETCH_BASE_URL", base.clone())];
    // Listed in the manifest, but no HTTP_ALLOW_PRIVATE.
    let host = host(dir.path(), &settings, "", t.store.clone(), None).await;
    let reply = ask(&host.dispatcher, &format!("/fetch {base}/echo-auth")).await;
    assert!(
        reply.starts_with("error: ") && reply.contains("private address"),
        "{reply}"
    );
    assert!(
        seen.lock().unwrap().authorization.is_empty(),
        "nothing reached the server"
    );
    // The metadata address, even when listed, is never connected to.
    let metadata = "http://169.254.169.254".to_string();
    let host = self::host(
        dir.path(),
        &[("PLUGIN_FETCH_BASE_URL", metadata.clone())],
        &server.to_string(),
        t.store.clone(),
        None,
    )
    .await;
    let reply = ask(
        &host.dispatcher,
        &format!("/fetch {metadata}/latest/meta-data/"),
    )
    .await;
    assert!(reply.contains("private address"), "{reply}");
    // A name is checked by the address it resolves to: `localhost` is listed
    // but resolves to loopback, which is not allowed by name here.
    let local = format!("http://localhost:{}", server.port());
    let host = self::host(
        dir.path(),
        &[("PLUGIN_FETCH_BASE_URL", local.clone())],
        "",
        t.store.clone(),
        None,
    )
    .await;
    let reply = ask(&host.dispatcher, &format!("/fetch {local}/echo-auth")).await;
    assert!(reply.contains("resolves to a private address"), "{reply}");
    assert!(seen.lock().unwrap().authorization.is_empty());
    // Allowed by its address, the same name is reached.
    let host = self::host(
        dir.path(),
        &[("PLUGIN_FETCH_BASE_URL", local.clone())],
        &server.to_string(),
        t.store.clone(),
        None,
    )
    .await;
    let reply = ask(&host.dispatcher, &format!("/fetch {local}/hello")).await;
    assert_eq!(reply, "200 11 bytes: hello world");
    // A secret does not go over plain http to a host the operator did not
    // list by that name (here it is listed by address only).
    let reply = ask(
        &host.dispatcher,
        &format!("/fetch_secret {local}/echo-auth token"),
    )
    .await;
    assert!(
        reply.contains("a secret is sent only over https"),
        "{reply}"
    );
    assert!(seen.lock().unwrap().authorization.is_empty());
    // A pair given to another plugin is not `fetch`'s; given to `fetch`, it is.
    for (allow, reached) in [
        (format!("weather={server}"), false),
        (format!("fetch={server}"), true),
    ] {
        let host = self::host(
            dir.path(),
            &[("PLUGIN_FETCH_BASE_URL", base.clone())],
            &allow,
            t.store.clone(),
            None,
        )
        .await;
        let reply = ask(&host.dispatcher, &format!("/fetch {base}/hello")).await;
        if reached {
            assert_eq!(reply, "200 11 bytes: hello world", "{allow}");
        } else {
            assert!(reply.contains("private address"), "{allow}: {reply}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_injected_secret_reaches_the_server_and_nothing_else() {
    let (server, seen) = serve().await;
    let dir = common::plugins_dir(&["github", "fetch"]);
    let base = format!("http://{server}");
    let t = common::stores::sqlite().await;
    let settings = [
        ("PLUGIN_GITHUB_API_URL", base.clone()),
        ("PLUGIN_FETCH_BASE_URL", base.clone()),
    ];
    let host = host(
        dir.path(),
        &settings,
        &server.to_string(),
        t.store.clone(),
        None,
    )
    .await;

    // Not stored yet: a clear error, and nothing sent.
    let reply = ask(&host.dispatcher, "/github").await;
    assert!(reply.contains("secret `github` is not stored"), "{reply}");
    assert!(seen.lock().unwrap().authorization.is_empty());

    store_secret(&t.store, "github", SECRET).await;
    let reply = ask(&host.dispatcher, "/github").await;
    assert!(
        reply.starts_with("You have 2 unread notifications."),
        "{reply}"
    );
    assert!(
        reply.contains("ada/wasmbot — Add streaming replies (PullRequest)"),
        "{reply}"
    );
    assert_eq!(
        seen.lock().unwrap().authorization,
        [format!("Bearer {SECRET}")]
    );

    // A wrong token: GitHub's 401, explained.
    store_secret(&t.store, "github", "ghp_revoked").await;
    let reply = ask(&host.dispatcher, "/github").await;
    assert!(reply.contains("GitHub refused the token"), "{reply}");

    // The audit names the secret used for the host, never its value.
    let entries = audited_requests(&host.store, 3).await;
    let with_secret: Vec<_> = entries
        .iter()
        .filter(|(_, meta)| meta.contains("\"secrets\":[\"github\"]"))
        .collect();
    // Three requests asked for it: the first failed (not stored yet).
    assert_eq!(with_secret.len(), 3, "{entries:?}");
    assert_eq!(with_secret[0].0, "failed");
    assert!(
        with_secret
            .iter()
            .all(|(_, meta)| meta.contains("127.0.0.1"))
    );
    let everything = format!("{entries:?}");
    assert!(
        !everything.contains("s3cr3t") && !everything.contains("revoked"),
        "{everything}"
    );

    // A server that echoes the header hands the value to the plugin; the
    // host still masks it in what the plugin replies.
    store_secret(&t.store, "token", SECRET).await;
    let reply = ask(
        &host.dispatcher,
        &format!("/fetch_secret {base}/echo-auth-back token"),
    )
    .await;
    assert!(
        reply.starts_with("200 ") && reply.ends_with("Bearer [redacted]"),
        "{reply}"
    );
}

/// The same through the real binary, whose log must not carry the secret.
#[tokio::test(flavor = "multi_thread")]
async fn the_console_log_never_shows_an_injected_secret() {
    let (server, seen) = serve().await;
    let dir = common::plugins_dir(&["fetch"]);
    let data = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}/wasmbot.db", data.path().display());
    let store = Store::connect(&database).await.unwrap();
    store.migrate().await.unwrap();
    store_secret(&store, "token", SECRET).await;
    let base = format!("http://{server}");
    let allow = server.to_string();
    let plugins = dir.path().to_str().unwrap().to_string();
    let data_path = data.path().to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        let env = [
            ("PLUGINS_DIR", plugins.as_str()),
            ("DATABASE_URL", database.as_str()),
            ("ENCRYPTION_KEY", KEY),
            ("PLUGIN_FETCH_BASE_URL", base.as_str()),
            ("HTTP_ALLOW_PRIVATE", allow.as_str()),
            ("LOG_LEVEL", "trace"),
            ("LOG_FORMAT", "json"),
        ];
        let input = format!("/fetch_secret {base}/echo-auth token\n");
        common::chat_binary(&data_path, &env, &[], &input)
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains("200 8 bytes: received"), "{stdout}");
    assert_eq!(
        seen.lock().unwrap().authorization,
        [format!("Bearer {SECRET}")]
    );
    assert!(
        stderr.contains("plugin HTTP request"),
        "the request is logged: {stderr}"
    );
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "{stdout}\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_are_the_manifests_unless_the_operator_says_otherwise() {
    let dir = common::plugins_dir(&["fetch"]);
    let t = common::stores::sqlite().await;
    let host = host(dir.path(), &[], "", t.store.clone(), None).await;
    assert_eq!(
        ask(&host.dispatcher, "/settings").await,
        "base_url=http://127.0.0.1:9\ngreeting=hello"
    );
    let settings = [("PLUGIN_FETCH_GREETING", "bonjour".to_string())];
    let host = self::host(dir.path(), &settings, "", t.store.clone(), None).await;
    assert_eq!(ask(&host.dispatcher, "/setting greeting").await, "bonjour");
    assert_eq!(ask(&host.dispatcher, "/setting colour").await, "unset");

    // A typo in a variable, or a URL that is none, stops the plugin with one line.
    for (variable, value, expected) in [
        (
            "PLUGIN_FETCH_GREETNG",
            "hi",
            "PLUGIN_FETCH_GREETNG is set, but the manifest declares no setting `greetng` (settings: base_url, greeting)",
        ),
        (
            "PLUGIN_FETCH_BASE_URL",
            "localhost:8080",
            "`http` entry \"{{base_url}}\" from `PLUGIN_FETCH_BASE_URL`: not a URL",
        ),
    ] {
        let host = self::host(
            dir.path(),
            &[(variable, value.to_string())],
            "",
            t.store.clone(),
            None,
        )
        .await;
        let errors = load_errors(&host.registry);
        assert!(
            errors.len() == 1 && errors[0].contains(expected),
            "{variable}: {errors:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_without_the_grants_has_no_network_and_no_folder() {
    let dir = common::plugins_dir(&["files"]);
    install(dir.path(), "fetch");
    // fetch without `http`: its component imports wasi:http, so it is refused.
    let manifest = std::fs::read_to_string(dir.path().join("fetch.toml")).unwrap();
    let manifest = manifest
        .replace(
            r#"capabilities = ["http", "config"]"#,
            r#"capabilities = ["config"]"#,
        )
        .replace(r#"http = ["{{base_url}}"]"#, "");
    std::fs::write(dir.path().join("fetch.toml"), manifest).unwrap();
    // files without `files`: loads (std imports wasi:filesystem) but sees nothing.
    let manifest = std::fs::read_to_string(dir.path().join("files.toml")).unwrap();
    std::fs::write(
        dir.path().join("files.toml"),
        manifest
            .replace(r#"capabilities = ["files"]"#, "capabilities = []")
            .replace("files_kb = 64", ""),
    )
    .unwrap();
    let t = common::stores::sqlite().await;
    let folder = tempfile::tempdir().unwrap();
    let host = host(dir.path(), &[], "", t.store.clone(), Some(folder.path())).await;
    let errors = load_errors(&host.registry);
    assert!(
        errors.len() == 1
            && errors[0].contains("plugin `fetch`")
            && errors[0].contains("wasi:http/")
            && errors[0].contains("does not grant `http`"),
        "{errors:?}"
    );
    for command in [
        "/fls",
        "/fwrite /data/a.txt 10",
        "/fread /etc/passwd",
        "/fwrite a.txt 1",
    ] {
        let reply = ask(&host.dispatcher, command).await;
        assert!(reply.starts_with("error: "), "{command}: {reply}");
    }
    assert_eq!(
        std::fs::read_dir(folder.path()).unwrap().count(),
        0,
        "no folder was made"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_files_folder_is_private_kept_and_bounded() {
    let dir = common::plugins_dir(&["files"]);
    let folder = tempfile::tempdir().unwrap();
    let t = common::stores::sqlite().await;
    let host = host(dir.path(), &[], "", t.store.clone(), Some(folder.path())).await;
    let d = &host.dispatcher;
    assert_eq!(
        ask(d, "/fwrite /data/notes/a.txt 1000").await,
        "wrote 1000 bytes to /data/notes/a.txt"
    );
    assert_eq!(
        ask(d, "/fread /data/notes/a.txt").await,
        "/data/notes/a.txt: 1000 bytes"
    );
    assert_eq!(
        std::fs::metadata(folder.path().join("files/notes/a.txt"))
            .unwrap()
            .len(),
        1000,
        "the folder is FILES_DIR/PLUGIN"
    );
    // Nothing outside the folder exists for the plugin.
    std::fs::write(folder.path().join("outside.txt"), "host").unwrap();
    for path in [
        "../outside.txt",
        "/data/../outside.txt",
        "/etc/passwd",
        "/outside.txt",
    ] {
        let reply = ask(d, &format!("/fread {path}")).await;
        assert!(reply.starts_with("error: "), "{path}: {reply}");
        let reply = ask(d, &format!("/fwrite {path} 5")).await;
        assert!(reply.starts_with("error: "), "{path}: {reply}");
    }
    assert_eq!(
        std::fs::read_to_string(folder.path().join("outside.txt")).unwrap(),
        "host"
    );

    // The quota (64 KiB, entries count 4 KiB): a big write is refused
    // (ENOSPC from a call, EIO from a file's stream: wasi-libc's mapping)...
    let reply = ask(d, "/fwrite /data/big.bin 70000").await;
    assert!(reply.starts_with("error: "), "{reply}");
    assert!(
        std::fs::metadata(folder.path().join("files/big.bin")).map_or(0, |m| m.len()) < 65536,
        "no more than the quota reached the disk"
    );
    // What part of it was written stays until the plugin removes it.
    assert_eq!(ask(d, "/frm /data/big.bin").await, "removed /data/big.bin");
    // Growing past it bit by bit, over several calls, is refused too.
    assert_eq!(
        ask(d, "/fwrite /data/part.bin 30000").await,
        "wrote 30000 bytes to /data/part.bin"
    );
    let reply = ask(d, "/fappend /data/part.bin 30000").await;
    assert!(reply.starts_with("error: "), "{reply}");
    let refusals = common::counter(
        "wasmbot_plugin_quota_refusals_total",
        &[("plugin", "files"), ("quota", "files")],
    );
    assert!(refusals >= 2, "{refusals}");
    // Removing frees the room again.
    assert_eq!(
        ask(d, "/frm /data/part.bin").await,
        "removed /data/part.bin"
    );
    assert_eq!(
        ask(d, "/fwrite /data/part.bin 40000").await,
        "wrote 40000 bytes to /data/part.bin"
    );

    // A new host (a restart) finds the folder as it was.
    drop(host);
    let host = self::host(dir.path(), &[], "", t.store.clone(), Some(folder.path())).await;
    assert_eq!(
        ask(&host.dispatcher, "/fread /data/notes/a.txt").await,
        "/data/notes/a.txt: 1000 bytes"
    );
    let listing = ask(&host.dispatcher, "/fls").await;
    assert!(
        listing.contains("notes") && listing.contains("part.bin"),
        "{listing}"
    );
}

/// A local HTTPS server whose certificate (for `localhost`) no public
/// authority signed; returns its address and the certificate as PEM.
async fn serve_tls(served: Arc<std::sync::atomic::AtomicUsize>) -> (SocketAddr, String) {
    use std::sync::atomic::Ordering;
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let pem = certified.cert.pem();
    let key = tokio_rustls::rustls::pki_types::PrivateKeyDer::try_from(
        certified.signing_key.serialize_der(),
    )
    .unwrap();
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let served = served.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |_request| {
                    served.fetch_add(1, Ordering::SeqCst);
                    async {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(
                            http_body_util::Full::new(bytes::Bytes::from_static(b"hello tls")),
                        ))
                    }
                });
                let io = wasmtime_wasi_http::io::TokioIo::new(tls);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    (address, pem)
}

#[tokio::test(flavor = "multi_thread")]
async fn https_is_verified_against_the_trusted_authorities() {
    use std::sync::atomic::Ordering;
    let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (server, pem) = serve_tls(served.clone()).await;
    let dir = common::plugins_dir(&["fetch"]);
    let t = common::stores::sqlite().await;
    let base = format!("https://localhost:{}", server.port());
    let settings = [("PLUGIN_FETCH_BASE_URL", base.clone())];
    let allow = format!("localhost:{}", server.port());

    // The webpki roots alone: the self-signed certificate is refused.
    let client = OutboundClient::new(PrivateAllowance::parse(&allow).unwrap(), None).unwrap();
    let host = host_with(dir.path(), &settings, client, t.store.clone(), None).await;
    let reply = ask(&host.dispatcher, &format!("/fetch {base}/hello")).await;
    assert_eq!(
        reply,
        "error: `localhost` presented a certificate that is not trusted"
    );
    assert_eq!(served.load(Ordering::SeqCst), 0, "no request got through");

    // With the operator's HTTP_CA_FILE, the same request is verified and sent.
    let client = OutboundClient::new(
        PrivateAllowance::parse(&allow).unwrap(),
        Some(pem.as_bytes()),
    )
    .unwrap();
    let host = host_with(dir.path(), &settings, client, t.store.clone(), None).await;
    let reply = ask(&host.dispatcher, &format!("/fetch {base}/hello")).await;
    assert_eq!(reply, "200 9 bytes: hello tls");
    assert_eq!(served.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_count_against_the_calls_budget() {
    let (server, _seen) = serve().await;
    let dir = common::plugins_dir(&["fetch"]);
    common::set_limits(dir.path(), "fetch", "http_requests = 1");
    let base = format!("http://{server}");
    let t = common::stores::sqlite().await;
    let host = fetch_host(dir.path(), server, &t.store).await;
    let labels = [("plugin", "fetch"), ("budget", "http_requests")];
    let before = common::counter("wasmbot_plugin_budget_refusals_total", &labels);
    let reply = ask(&host.dispatcher, &format!("/fetch {base}/hello")).await;
    assert_eq!(reply, "200 11 bytes: hello world");
    // A redirect needs a second request: over the budget of one.
    let reply = ask(&host.dispatcher, &format!("/fetch {base}/redirect-home")).await;
    assert!(
        reply.contains(
            "over budget: at most 1 HTTP requests per call (raise `limits.http_requests`"
        ),
        "{reply}"
    );
    let after = common::counter("wasmbot_plugin_budget_refusals_total", &labels);
    assert_eq!(after, before + 1);
}

/// `http_request` audit entries (status, metadata as JSON text), once at
/// least `count` of them are written (the writer batches in the background).
async fn audited_requests(store: &Store, count: usize) -> Vec<(String, String)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let entries: Vec<(String, String)> = store
            .audit_for_action("http_request")
            .await
            .unwrap()
            .into_iter()
            .map(|entry| (entry.status, entry.metadata.0.to_string()))
            .collect();
        if entries.len() >= count || std::time::Instant::now() > deadline {
            return entries;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Issue 32, point 6, through the real binary: a secret bound to one host
/// is refused (typed) for another the plugin may reach; a value a server
/// echoed back and the plugin kept in a file is masked when a later call —
/// in a later process too — replies with it, and in a job's payload.
#[tokio::test(flavor = "multi_thread")]
async fn a_secret_goes_only_to_its_hosts_and_stays_masked_wherever_it_is_kept() {
    let (server, _) = serve().await;
    let dir = common::plugins_dir(&["hostile"]);
    let data = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}/wasmbot.db", data.path().display());
    let store = Store::connect(&database).await.unwrap();
    store.migrate().await.unwrap();
    store_secret(&store, "token", SECRET).await;
    let echo = format!("http://{server}");
    let other = format!("http://localhost:{}", server.port());
    let allow = format!("{server},localhost:{}", server.port());
    let chat = |input: &'static str| {
        let (plugins, database, echo, other, allow, data) = (
            dir.path().to_str().unwrap().to_string(),
            database.clone(),
            echo.clone(),
            other.clone(),
            allow.clone(),
            data.path().to_path_buf(),
        );
        tokio::task::spawn_blocking(move || {
            let env = [
                ("PLUGINS_DIR", plugins.as_str()),
                ("DATABASE_URL", database.as_str()),
                ("ENCRYPTION_KEY", KEY),
                ("PLUGIN_HOSTILE_ECHO_URL", echo.as_str()),
                ("PLUGIN_HOSTILE_OTHER_URL", other.as_str()),
                ("HTTP_ALLOW_PRIVATE", allow.as_str()),
            ];
            let output = common::chat_binary(&data, &env, &[], input);
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            assert!(output.status.success(), "{stderr}");
            assert!(!stderr.contains(SECRET), "{stderr}");
            stdout
        })
    };

    let first = chat("/hleak\n/hecho\n/hshow\n/hjobkept\n").await.unwrap();
    let lines: Vec<&str> = first
        .lines()
        .filter(|l| !l.starts_with("wasmbot console"))
        .collect();
    assert!(
        lines.iter().any(|l| l.contains(&format!(
            "refused (Denied): secret `token` is not sent to localhost: it is for http://{server}"
        ))),
        "{first}"
    );
    assert!(first.contains("kept "), "{first}");
    assert!(first.contains("Bearer [redacted]"), "{first}");
    assert!(!first.contains(SECRET), "{first}");
    // The file holds what the server said; the job's payload does not.
    let kept = std::fs::read_to_string(data.path().join("data/files/hostile/echo.txt")).unwrap();
    assert_eq!(kept, format!("Bearer {SECRET}"));
    let pool = sqlx::SqlitePool::connect(&database).await.unwrap();
    let payloads: Vec<String> = sqlx::query_scalar("SELECT payload FROM scheduled_jobs")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(payloads, ["Bearer [redacted]"]);

    // A new process, before the plugin was handed anything.
    let second = chat("/hshow\n").await.unwrap();
    assert!(second.contains("Bearer [redacted]"), "{second}");
    assert!(!second.contains(SECRET), "{second}");
}
