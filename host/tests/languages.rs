//! Plugins in Python and JavaScript, built by `just build-plugins` against a
//! world of only their granted imports, run by the real binary; and the
//! pre-warmed single-use instances every plugin's messages take.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmbot::chat::Dispatcher;
use wasmbot::runtime::{PluginEngine, PluginLimits, PluginRegistry, ReloadOutcome};

/// One compile cache for every test here (and every run): the Python and
/// JavaScript components are tens of MB, compiled once, then loaded.
fn compile_cache() -> PathBuf {
    let dir = common::workspace_root().join("target/test-compile-cache");
    std::fs::create_dir_all(&dir).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    dir
}

/// Compiles the Python and JavaScript components into the cache once,
/// before the tests that need them run in parallel (each would otherwise
/// compile them itself, all at once).
fn compiled() -> PathBuf {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let cache = compile_cache();
    ONCE.call_once(|| {
        for name in [
            "convert", "dice", "jsfetch", "pyfetch", "jsreach", "pyreach",
        ] {
            let output = std::process::Command::new(env!("CARGO_BIN_EXE_wasmbot"))
                .args(["plugins", "check"])
                .arg(common::built_plugin(name))
                .env_clear()
                .env("PLUGIN_CACHE_DIR", &cache)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stdout)
            );
        }
    });
    cache
}

/// `wasmbot chat` with `plugins` installed, fed `input`; its stdout.
fn chat(plugins: &[&str], input: &str) -> String {
    chat_with(plugins, &[], input)
}

/// As [`chat`], with more variables set (`extra`).
fn chat_with(plugins: &[&str], extra: &[(&str, &str)], input: &str) -> String {
    let dir = common::plugins_dir(plugins);
    let data = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}/wasmbot.db", data.path().display());
    let cache = compiled();
    let mut env = vec![
        ("PLUGINS_DIR", dir.path().to_str().unwrap()),
        ("PLUGIN_CACHE_DIR", cache.to_str().unwrap()),
        ("DATABASE_URL", database.as_str()),
    ];
    env.extend_from_slice(extra);
    let output = common::chat_binary(data.path(), &env, &[], input);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_python_plugin_converts_units_offers_buttons_and_declines_nonsense() {
    let out = chat(
        &["convert"],
        "/convert 5 km to mi\n/convert 70 f c\n/convert 12 kg\n/press 3\n/convert 3 parsec\n/convert 1 kg to m\n",
    );
    assert_eq!(
        out,
        "5 km = 3.107 mi\n\
         70 f = 21.11 c\n\
         12 kg in…\n\
         [1 g] [2 oz] [3 lb] [4 st]\n\
         12 kg = 26.46 lb\n\
         (notice) 26.46 lb\n\
         I don't know the unit 'parsec'. Try /convert 5 km to mi, /convert 70 f c or /convert 12 kg.\n\
         kg is a mass and m a length: they don't convert.\n"
    );
}

#[test]
fn a_javascript_plugin_rolls_dice_and_keeps_poll_votes_in_state() {
    let out = chat(
        &["dice"],
        // The console numbers the buttons anew when a message is edited.
        "/roll 3d6+2\n/roll 0d6\n/poll Lunch? | pizza | sushi\n/press 3\n/press 4\n/poll Lunch?\n",
    );
    let lines: Vec<&str> = out.lines().collect();
    // 🎲 3d6+2: TOTAL (a + b + c + 2), the total the sum.
    let roll = lines[0]
        .strip_prefix("🎲 3d6+2: ")
        .unwrap_or_else(|| panic!("{out}"));
    let (total, parts) = roll.split_once(" (").unwrap();
    let dice: Vec<u32> = parts
        .trim_end_matches(')')
        .split(" + ")
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(dice.len(), 4, "{out}");
    assert!(dice[..3].iter().all(|d| (1..=6).contains(d)), "{out}");
    assert_eq!(dice[3], 2, "{out}");
    assert_eq!(
        total.parse::<u32>().unwrap(),
        dice.iter().sum::<u32>(),
        "{out}"
    );
    assert_eq!(
        lines[1..].join("\n"),
        "[1 Roll again]\n\
         Roll between 1 and 100 dice.\n\
         📊 Lunch?\npizza: 0\nsushi: 0\n\
         [2 pizza] [3 sushi]\n\
         (edited) 📊 Lunch?\npizza: 0\nsushi: 1\n\
         [4 pizza] [5 sushi]\n\
         (notice) You voted for sushi.\n\
         (edited) 📊 Lunch?\npizza: 1\nsushi: 0\n\
         [6 pizza] [7 sushi]\n\
         (notice) You voted for pizza.\n\
         Give a question and at least two options: /poll Lunch? | pizza | sushi",
        "{out}"
    );
}

/// A server for the plugins' requests: `GET /greeting` (noting its
/// `x-from` header) and `POST /echo` (answering the body); what it saw.
async fn greeting_server() -> (std::net::SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::http::HeaderMap;
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let (on_get, on_post) = (seen.clone(), seen.clone());
    let app = axum::Router::new()
        .route(
            "/greeting",
            axum::routing::get(move |headers: HeaderMap| {
                let seen = on_get.clone();
                async move {
                    let from = headers
                        .get("x-from")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    seen.lock().unwrap().push(format!("GET from {from}"));
                    "hello from the server"
                }
            }),
        )
        .route(
            "/echo",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let seen = on_post.clone();
                async move {
                    let kind = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    seen.lock().unwrap().push(format!("POST {kind}"));
                    format!("echo {body}")
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (server, seen)
}

/// `wasmbot chat` with `plugin` pointed at `server` (which it may reach), fed `input`.
async fn chat_reaching(
    plugin: &'static str,
    server: std::net::SocketAddr,
    input: &'static str,
) -> String {
    let variable = format!("PLUGIN_{}_BASE_URL", plugin.to_uppercase());
    let (base, allowed) = (format!("http://{server}"), server.to_string());
    tokio::task::spawn_blocking(move || {
        chat_with(
            &[plugin],
            &[
                (variable.as_str(), base.as_str()),
                ("HTTP_ALLOW_PRIVATE", allowed.as_str()),
            ],
            input,
        )
    })
    .await
    .unwrap()
}

/// An `async` JavaScript handler awaits `fetch` under the `http` grant: the
/// request goes out through the host to the allowed server, the answer
/// comes back; a URL the manifest does not list is refused before any
/// connection, as the handler's own error.
#[tokio::test(flavor = "multi_thread")]
async fn a_javascript_plugin_awaits_fetch_to_its_allowed_server_only() {
    let (server, seen) = greeting_server().await;
    let out = chat_reaching(
        "jsfetch",
        server,
        "/jsfetch greeting\n/jsfetch_away http://127.0.0.1:9/elsewhere\n",
    )
    .await;
    assert!(out.contains("200 hello from the server"), "{out}");
    assert!(out.contains("fetch refused"), "{out}");
    assert_eq!(
        *seen.lock().unwrap(),
        vec!["GET from jsfetch".to_string()],
        "one request reached the server, with the plugin's header"
    );
}

/// A Python plugin granted `http` gets and posts with `wasmbot.http` (over
/// `wasi:http`, served by the host); an unlisted URL is a `CapabilityError`
/// naming the refusal, and never reaches a server.
#[tokio::test(flavor = "multi_thread")]
async fn a_python_plugin_makes_requests_to_its_allowed_server_only() {
    let (server, seen) = greeting_server().await;
    let out = chat_reaching(
        "pyfetch",
        server,
        "/pyfetch greeting\n/pypost hello\n/pyfetch_away http://127.0.0.1:9/elsewhere\n",
    )
    .await;
    assert!(out.contains("200 hello from the server"), "{out}");
    assert!(out.contains(r#"200 echo {"text": "hello"}"#), "{out}");
    assert!(
        out.contains("request refused: http-request-denied"),
        "{out}"
    );
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            "GET from pyfetch".to_string(),
            "POST application/json".to_string()
        ],
        "two requests reached the server, with the plugin's headers"
    );
}

/// What a capability answers the probe plugins (`testing/pyreach`,
/// `testing/jsreach`) in `wasmbot chat` with nothing configured: one call
/// each, `ok` or the error case the host gave. Every capability of the
/// host's table must be here: a new one is reached from both languages, or
/// listed in `UNREACHABLE` with the reason.
const REACHED: &[(&str, &str, &str)] = &[
    // (capability, from Python, from JavaScript)
    ("log", "ok", "ok"),
    ("state", "ok", "ok"),
    // No ENCRYPTION_KEY in the probe's environment: no vault.
    ("secrets", "unavailable", "unavailable"),
    ("audit", "ok", "ok"),
    ("llm", "not-configured", "not-configured"),
    ("agent", "not-configured", "not-configured"),
    ("health", "ok", "ok"),
    ("cache", "ok", "ok"),
    ("vectors", "ok", "ok"),
    ("config", "ok", "ok"),
    ("media", "not-found", "not-found"),
    ("schedule", "ok", "ok"),
    // The host refuses the private address (HTTP_ALLOW_PRIVATE unset);
    // fetch reports it as a NetworkError, the probe as "refused".
    ("http", "destination-ip-prohibited", "refused"),
    ("files", "ok", UNREACHABLE),
];

/// StarlingMonkey has no file API: a JavaScript plugin cannot use `files`.
const UNREACHABLE: &str = "-";

/// Each capability from Python and from JavaScript, through the real
/// binary: the plugin is built against its grants, linked, and its call
/// answered by the host (the list is the host's capability table).
#[test]
fn every_capability_is_reached_from_python_and_javascript() {
    let table: Vec<&str> = wasmbot::capabilities::ALL.iter().map(|c| c.name).collect();
    let listed: Vec<&str> = REACHED.iter().map(|(name, _, _)| *name).collect();
    let (mut sorted_table, mut sorted_listed) = (table.clone(), listed);
    sorted_table.sort_unstable();
    sorted_listed.sort_unstable();
    assert_eq!(sorted_listed, sorted_table, "REACHED vs capabilities::ALL");
    for probe in ["pyreach", "jsreach"] {
        let manifest =
            std::fs::read_to_string(common::built_plugin(probe).with_extension("toml")).unwrap();
        for name in &table {
            assert!(
                manifest.contains(&format!("\"{name}\"")),
                "{probe} is not granted {name}"
            );
        }
    }
    let out = chat(&["pyreach", "jsreach"], "/pyreach\n/jsreach\n");
    // `NAME: ANSWER` lines, Python's answer first, then JavaScript's.
    let lines: Vec<(String, String)> = out
        .lines()
        .filter_map(|line| line.split_once(": "))
        .filter(|(name, _)| table.contains(name))
        .map(|(name, answer)| (name.to_string(), answer.to_string()))
        .collect();
    let expected = |column: usize| -> Vec<(String, String)> {
        REACHED
            .iter()
            .map(|&(name, python, javascript)| (name, [python, javascript][column]))
            .filter(|&(_, answer)| answer != UNREACHABLE)
            .map(|(name, answer)| (name.to_string(), answer.to_string()))
            .collect()
    };
    let (from_python, from_javascript) = (expected(0), expected(1));
    let (python, javascript) = lines.split_at(from_python.len().min(lines.len()));
    assert_eq!(python, from_python, "from Python:\n{out}");
    assert_eq!(javascript, from_javascript, "from JavaScript:\n{out}");
}

#[test]
fn a_javascript_plugin_gets_no_import_its_manifest_does_not_grant() {
    // dice was built against a world importing `state` only: without the
    // grant the host refuses it, naming the interface.
    let dir = common::plugins_dir(&["dice"]);
    let manifest = dir.path().join("dice.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("capabilities = [\"state\"]", "capabilities = []"),
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wasmbot"))
        .args(["plugins", "check", manifest.to_str().unwrap()])
        .env_clear()
        .env("PLUGIN_CACHE_DIR", compiled())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim_end(),
        "dice\tREFUSED\timports wasmbot:plugin/state but the manifest does not grant `state` (add it to `capabilities`)"
    );
    // And the world the build generated imports nothing else of ours.
    // build-guest-plugin.sh works under cargo's target folder.
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || common::workspace_root().join("target"),
        |dir| common::workspace_root().join(dir),
    );
    let world = std::fs::read_to_string(target.join("guest/dice/wit/granted.wit")).unwrap();
    let imports: Vec<&str> = world.lines().filter(|l| l.contains("import ")).collect();
    assert_eq!(imports, ["  import wasmbot:plugin/state@0.1.0;"]);
}

#[test]
fn plugins_list_tells_each_plugins_language_and_size() {
    let dir = common::plugins_dir(&["convert", "dice", "start"]);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wasmbot"))
        .args(["plugins", "list"])
        .current_dir(dir.path())
        .env_clear()
        .env("PLUGINS_DIR", dir.path())
        .env("PLUGIN_CACHE_DIR", compiled())
        .env("DATABASE_URL", "sqlite://nowhere/none.db")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    // convert and dice offer tools: their worlds are 0.3.0's.
    for (name, language, world) in [
        ("convert", "python", "conversation@0.3.0"),
        ("dice", "js", "conversation@0.3.0"),
        ("start", "rust", "conversation@0.2.0"),
    ] {
        let line = text
            .lines()
            .find(|line| line.starts_with(&format!("{name}\t")))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(
            line.contains(&format!("\tlanguage: {language}\tsize: ")),
            "{line}"
        );
        assert!(line.contains(&format!(" ms\tworld: {world}\t")), "{line}");
        assert!(
            line.contains("\tready: - (no bot answering on HTTP_ADDR)"),
            "{line}"
        );
    }
}

async fn fresh_registry(warm: usize) -> (tempfile::TempDir, Arc<PluginRegistry>) {
    let dir = common::plugins_dir(&["fresh"]);
    let engine = PluginEngine::new(None, wasmbot::capabilities::ALL)
        .unwrap()
        .with_warm_limits(warm, 1024);
    let registry = PluginRegistry::load(
        Arc::new(engine),
        dir.path().to_path_buf(),
        PluginLimits::default(),
    )
    .await
    .unwrap();
    (dir, Arc::new(registry))
}

/// Waits (up to a minute: the machine may be busy) for `ready` to hold.
async fn until(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_warmed_instance_serves_exactly_one_message() {
    let (_dir, registry) = fresh_registry(2).await;
    let dispatcher = Dispatcher::new(registry.clone(), None);
    let plugin = registry.snapshot().plugin("fresh").unwrap().clone();
    assert_eq!(plugin.ready_instances(), 0, "an idle plugin keeps none");

    // The first message makes its own instance and wakes the warm task.
    assert_eq!(
        common::ask(&dispatcher, "/fresh").await,
        "calls in this instance: 1"
    );
    for round in 1..=5 {
        until("a ready instance", || plugin.ready_instances() >= 1).await;
        let hits = plugin.warm_hits();
        assert_eq!(
            common::ask(&dispatcher, "/fresh").await,
            "calls in this instance: 1",
            "round {round}"
        );
        assert_eq!(
            plugin.warm_hits(),
            hits + 1,
            "round {round} took a ready one"
        );
    }
    // Many at once: each still on an instance of its own.
    let dispatcher = Arc::new(dispatcher);
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let dispatcher = dispatcher.clone();
        calls.spawn(async move { common::ask(&dispatcher, "/fresh").await });
    }
    let answers = calls.join_all().await;
    assert!(
        answers.iter().all(|a| a == "calls in this instance: 1"),
        "{answers:?}"
    );
    assert!(plugin.ready_instances() <= 2, "bounded per plugin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_discards_the_old_versions_ready_instances() {
    let (dir, registry) = fresh_registry(2).await;
    let dispatcher = Dispatcher::new(registry.clone(), None);
    common::ask(&dispatcher, "/fresh").await;
    let old = registry.snapshot().plugin("fresh").unwrap().clone();
    until("a ready instance", || old.ready_instances() >= 1).await;
    let held = registry.engine().warm_budget().held();
    assert!(held.0 >= 1 && held.1 > 0, "{held:?}");

    // A new version (another description is enough).
    let manifest = dir.path().join("fresh.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("How many", "Count of")).unwrap();
    let outcome = registry.reload(vec!["fresh".into()]).await;
    assert!(
        matches!(outcome[..], [(_, ReloadOutcome::Loaded { .. })]),
        "{outcome:?}"
    );
    assert_eq!(old.ready_instances(), 0, "the old version keeps none");
    let new = registry.snapshot().plugin("fresh").unwrap().clone();
    assert_eq!(
        new.ready_instances(),
        0,
        "nothing made before its first call"
    );
    // An instance being made when the reload came is dropped when done.
    until("the old version's budget back", || {
        registry.engine().warm_budget().held() == (0, 0)
    })
    .await;
    assert_eq!(
        common::ask(&dispatcher, "/fresh").await,
        "calls in this instance: 1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_pre_warming_off_no_instance_is_kept() {
    let (_dir, registry) = fresh_registry(0).await;
    let dispatcher = Dispatcher::new(registry.clone(), None);
    for _ in 0..3 {
        assert_eq!(
            common::ask(&dispatcher, "/fresh").await,
            "calls in this instance: 1"
        );
    }
    let plugin = registry.snapshot().plugin("fresh").unwrap().clone();
    // Off means no task at all: nothing can appear later either.
    assert_eq!((plugin.ready_instances(), plugin.warm_hits()), (0, 0));
}
