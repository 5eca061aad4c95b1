//! `wasmbot chat` as a user runs it: the real binary, stdin piped in.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::plugins_dir;

fn wasmbot_chat(envs: &[(&str, &str)], input: &str, args: &[&str]) -> Output {
    let data = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}/wasmbot.db", data.path().display());
    let mut all_envs = vec![("DATABASE_URL", database.as_str())];
    all_envs.extend_from_slice(envs);
    let mut all_args = vec!["chat"];
    all_args.extend_from_slice(args);
    wasmbot(&all_args, &all_envs, input)
}

/// Runs the real binary with a clean environment for wasmbot's variables.
fn wasmbot(args: &[&str], envs: &[(&str, &str)], input: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasmbot"));
    command
        .args(args)
        // Run outside the checkout so no developer's .env leaks in.
        .current_dir(std::env::temp_dir())
        .env_remove("LOG_LEVEL")
        .env_remove("LOG_FORMAT")
        .env_remove("PLUGIN_TIMEOUT_MS")
        .env_remove("PLUGIN_MEMORY_MB")
        .env_remove("DATABASE_URL")
        .env_remove("ENCRYPTION_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in envs {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("spawn wasmbot");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().expect("wait for wasmbot")
}

#[test]
fn piped_start_and_unknown_command_print_greeting_and_help() {
    let dir = plugins_dir(&["start"]);
    let output = wasmbot_chat(
        &[("PLUGINS_DIR", dir.path().to_str().unwrap())],
        "/start\n/nope\n",
        &["--username", "grace"],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout,
        "Hello, grace! I'm your wasmbot assistant. Send /help to see what I can do.\n\
         Sorry, I don't know /nope.\n\n\
         Here is what I can do:\n/help - show this list\n/start - Say hello and show how to begin\n"
    );
}

#[test]
fn every_log_line_of_a_message_carries_its_correlation_id() {
    let dir = plugins_dir(&["echo"]);
    let output = wasmbot_chat(
        &[
            ("PLUGINS_DIR", dir.path().to_str().unwrap()),
            ("LOG_LEVEL", "info"),
            ("LOG_FORMAT", "json"),
        ],
        "/echo one\n",
        &[],
    );
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let of_message: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l.get("span").is_some()).collect();
    // The plugin's own log line and the dispatcher's summary.
    assert_eq!(of_message.len(), 2, "{stderr}");
    let plugin_line = of_message
        .iter()
        .find(|l| l["message"] == "echoing")
        .expect("plugin log line");
    assert_eq!(plugin_line["plugin"], "echo");
    assert_eq!(plugin_line["fields"], r#"{"chars":"3"}"#);
    let summary = of_message
        .iter()
        .find(|l| l["message"] == "message handled")
        .expect("summary");
    assert_eq!(summary["status"], "ok");
    let id = &summary["span"]["correlation_id"];
    assert_eq!(id.as_str().map(str::len), Some(32));
    assert_eq!(&plugin_line["span"]["correlation_id"], id);
}

#[test]
fn a_missing_plugins_dir_is_one_clear_line_and_exit_code_2() {
    let output = wasmbot_chat(&[("PLUGINS_DIR", "/definitely/not/here")], "", &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("wasmbot: configuration error: PLUGINS_DIR: directory /definitely/not/here does not exist"), "{stderr}");
}

#[test]
fn a_bad_env_value_names_the_variable_without_a_panic() {
    let dir = plugins_dir(&["start"]);
    let output = wasmbot_chat(
        &[
            ("PLUGINS_DIR", dir.path().to_str().unwrap()),
            ("PLUGIN_TIMEOUT_MS", "soon"),
        ],
        "/start\n",
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim_end(),
        "wasmbot: configuration error: PLUGIN_TIMEOUT_MS: expected a whole number of milliseconds from 1 to 600000, got \"soon\""
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn a_bad_plugin_is_reported_on_stderr_and_the_rest_still_answer() {
    let dir = plugins_dir(&["start", "ungranted"]);
    let output = wasmbot_chat(
        &[("PLUGINS_DIR", dir.path().to_str().unwrap())],
        "/start\n",
        &[],
    );
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "plugin `ungranted`: imports wasmbot:plugin/log but the manifest does not grant `log`"
        ),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("Hello, you!"));
}

const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const SECRET: &str = "ghp_CanaryValue_8d3f1";

#[test]
fn state_persists_in_sqlite_across_restarts() {
    let dir = plugins_dir(&["notes"]);
    let data = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}/nested/wasmbot.db", data.path().display());
    let envs = [
        ("PLUGINS_DIR", dir.path().to_str().unwrap()),
        ("DATABASE_URL", database.as_str()),
    ];
    let first = wasmbot(&["chat"], &envs, "/note buy milk\n/note call mom\n");
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        data.path().join("nested/wasmbot.db").is_file(),
        "the database file is created on first use"
    );
    let second = wasmbot(&["chat"], &envs, "/notes\n");
    assert_eq!(
        String::from_utf8_lossy(&second.stdout),
        "1. buy milk\n2. call mom\n[1 ✓ 1 buy milk]\n[2 ✓ 2 call mom]\n"
    );
}

#[test]
fn a_secret_never_reaches_logs_or_replies() {
    let dir = plugins_dir(&["vault"]);
    let data = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}/wasmbot.db", data.path().display());
    let envs = [
        ("PLUGINS_DIR", dir.path().to_str().unwrap()),
        ("DATABASE_URL", database.as_str()),
        ("ENCRYPTION_KEY", KEY),
        ("LOG_LEVEL", "trace"),
        ("LOG_FORMAT", "json"),
    ];
    let set = wasmbot(&["secrets", "set", "github_token"], &envs, SECRET);
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let chat = wasmbot(
        &["chat"],
        &envs,
        "/reveal github_token\n/reveal panic:github_token\n",
    );
    let stdout = String::from_utf8_lossy(&chat.stdout);
    let stderr = String::from_utf8_lossy(&chat.stderr);
    assert_eq!(
        stdout,
        "secret: [redacted]\nSorry, something went wrong in /reveal. The problem has been logged.\n"
    );
    // A panic message quoting the secret reaches the log masked.
    assert!(stderr.contains("the secret is [redacted]"), "{stderr}");
    // The plugin logged it as a message, as a field and on stdout: all masked.
    assert!(stderr.contains("the secret is [redacted]"), "{stderr}");
    assert!(stderr.contains("stdout: [redacted]"), "{stderr}");
    for output in [&set.stdout, &set.stderr, &chat.stdout, &chat.stderr] {
        assert!(
            !String::from_utf8_lossy(output).contains(SECRET),
            "the secret leaked"
        );
    }
    let database_file = std::fs::read(data.path().join("wasmbot.db")).unwrap();
    assert!(
        !String::from_utf8_lossy(&database_file).contains(SECRET),
        "plaintext in the database file"
    );
}

#[test]
fn secrets_cli_sets_lists_rotates_and_deletes_without_showing_values() {
    let data = tempfile::tempdir().unwrap();
    let dir = plugins_dir(&[]);
    let database = format!("sqlite://{}/wasmbot.db", data.path().display());
    let base = [
        ("PLUGINS_DIR", dir.path().to_str().unwrap()),
        ("DATABASE_URL", database.as_str()),
    ];
    let with_key = |key: &'static str| {
        let mut envs = base.to_vec();
        envs.push(("ENCRYPTION_KEY", key));
        envs
    };

    let no_key = wasmbot(&["secrets", "set", "github_token"], &base, SECRET);
    assert!(!no_key.status.success());
    assert!(String::from_utf8_lossy(&no_key.stderr).contains("ENCRYPTION_KEY is not set"));

    let empty = wasmbot(&["secrets", "set", "github_token"], &with_key(KEY), "");
    assert!(String::from_utf8_lossy(&empty.stderr).contains("is empty"));
    let bad_name = wasmbot(&["secrets", "set", "no spaces"], &with_key(KEY), "x");
    assert!(String::from_utf8_lossy(&bad_name.stderr).contains("secret names are"));

    assert!(
        wasmbot(&["secrets", "set", "github_token"], &with_key(KEY), SECRET)
            .status
            .success()
    );
    let list = wasmbot(&["secrets", "list"], &with_key(KEY), "");
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed.starts_with("github_token\tkey v1\tcreated "),
        "{listed}"
    );
    assert!(!listed.contains(SECRET));

    let new_key = "f0e0d0c0b0a090807060504030201000f0e0d0c0b0a090807060504030201000";
    let rotate = wasmbot(&["secrets", "rotate-key"], &with_key(KEY), new_key);
    assert!(
        rotate.status.success(),
        "{}",
        String::from_utf8_lossy(&rotate.stderr)
    );
    assert!(String::from_utf8_lossy(&rotate.stdout).contains("re-encrypted 1 secrets"));
    let listed =
        String::from_utf8_lossy(&wasmbot(&["secrets", "list"], &with_key(new_key), "").stdout)
            .to_string();
    assert!(listed.contains("key v2"), "{listed}");
    // The old key can no longer rotate (nothing decrypts with it).
    let again = wasmbot(&["secrets", "rotate-key"], &with_key(KEY), new_key);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("wrong ENCRYPTION_KEY"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    assert!(
        wasmbot(
            &["secrets", "delete", "github_token"],
            &with_key(new_key),
            ""
        )
        .status
        .success()
    );
    let gone = wasmbot(
        &["secrets", "delete", "github_token"],
        &with_key(new_key),
        "",
    );
    assert!(String::from_utf8_lossy(&gone.stderr).contains("no secret named `github_token`"));
    assert!(!gone.status.success());
}

#[test]
fn migrate_applies_the_schema_and_a_bad_key_is_refused_at_start() {
    let data = tempfile::tempdir().unwrap();
    let dir = plugins_dir(&[]);
    let database = format!("sqlite://{}/wasmbot.db", data.path().display());
    let envs = [
        ("PLUGINS_DIR", dir.path().to_str().unwrap()),
        ("DATABASE_URL", database.as_str()),
    ];
    let migrate = wasmbot(&["migrate"], &envs, "");
    assert_eq!(
        String::from_utf8_lossy(&migrate.stdout),
        "sqlite database is up to date\n"
    );
    let mut bad = envs.to_vec();
    bad.push(("ENCRYPTION_KEY", "0123"));
    let refused = wasmbot(&["chat"], &bad, "/start\n");
    assert_eq!(refused.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&refused.stderr).trim_end(),
        "wasmbot: configuration error: ENCRYPTION_KEY: expected 64 hexadecimal characters (a 32-byte key), got 4 characters (generate one with `wasmbot secrets generate-key`)"
    );
}

#[test]
fn plugins_check_explains_what_is_wrong_and_list_shows_what_is_loaded() {
    let dir = plugins_dir(&["start", "echo", "ungranted"]);
    // A folder inside the temp dir, so the cache key beside it is removed too.
    let data = tempfile::tempdir().unwrap();
    let cache = data.path().join("plugin-cache");
    let envs = [
        ("PLUGINS_DIR", dir.path().to_str().unwrap()),
        ("PLUGIN_CACHE_DIR", cache.to_str().unwrap()),
    ];
    let good = wasmbot(
        &[
            "plugins",
            "check",
            dir.path().join("echo.wasm").to_str().unwrap(),
        ],
        &envs,
        "",
    );
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stdout)
    );
    let line = String::from_utf8_lossy(&good.stdout).to_string();
    assert!(
        line.starts_with("echo\t0.1.0\tloaded\t/echo /say\tlanguage: rust\tsize: 0."),
        "{line}"
    );
    assert!(
        line.contains(" ms\tworld: conversation@0.2.0\tgrants: log\tsecrets: none\tlimits: 5000 ms, 64 MiB\tsha256:"),
        "{line}"
    );

    let bad = wasmbot(
        &[
            "plugins",
            "check",
            dir.path().join("ungranted.toml").to_str().unwrap(),
        ],
        &envs,
        "",
    );
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&bad.stdout).trim_end(),
        "ungranted\tREFUSED\timports wasmbot:plugin/log but the manifest does not grant `log` (add it to `capabilities`)"
    );
    let missing = wasmbot(&["plugins", "check", "/nowhere/x.wasm"], &envs, "");
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stdout).contains("cannot read the manifest"));

    let list = wasmbot(&["plugins", "list"], &envs, "");
    let listed = String::from_utf8_lossy(&list.stdout).to_string();
    let names: Vec<&str> = listed
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(names, vec!["echo", "start", "ungranted"], "{listed}");
    assert!(listed.contains("ungranted\tREFUSED\t"));
    assert_eq!(
        list.status.code(),
        Some(1),
        "a refused plugin makes `list` fail"
    );
}

#[test]
fn plugins_list_shows_state_usage_against_the_quota_without_creating_a_database() {
    let dir = plugins_dir(&["notes"]);
    let data = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}/wasmbot.db", data.path().display());
    let cache = data.path().join("cache");
    let envs = [
        ("PLUGINS_DIR", dir.path().to_str().unwrap()),
        ("PLUGIN_CACHE_DIR", cache.to_str().unwrap()),
        ("DATABASE_URL", database.as_str()),
    ];
    // No database yet: the list says nothing of usage and creates no file.
    let list = wasmbot(&["plugins", "list"], &envs, "");
    let text = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(
        text.starts_with("notes\t") && !text.contains("state:"),
        "{text}"
    );
    assert!(!data.path().join("wasmbot.db").exists());

    let chat = wasmbot(&["chat"], &envs, "/note buy milk\n");
    assert!(
        chat.status.success(),
        "{}",
        String::from_utf8_lossy(&chat.stderr)
    );
    let list = wasmbot(&["plugins", "list"], &envs, "");
    let text = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(
        text.trim_end()
            .ends_with("\tstate: 1 of 10000 keys, 1 of 10240 KiB"),
        "{text}"
    );
}

#[test]
fn plugins_list_shows_reach_settings_and_the_files_folder() {
    let dir = plugins_dir(&["files", "fetch"]);
    let data = tempfile::tempdir().unwrap();
    let files = data.path().join("files");
    let envs = [
        ("PLUGINS_DIR", dir.path().to_str().unwrap()),
        ("FILES_DIR", files.to_str().unwrap()),
        ("PLUGIN_FETCH_GREETING", "bonjour"),
    ];
    let chat = wasmbot(&["chat"], &envs, "/fwrite /data/a.txt 5000\n");
    let out = String::from_utf8_lossy(&chat.stdout).to_string();
    assert!(out.contains("wrote 5000 bytes to /data/a.txt"), "{out}");
    assert_eq!(
        std::fs::metadata(files.join("files/a.txt")).unwrap().len(),
        5000
    );
    let list = wasmbot(&["plugins", "list"], &envs, "");
    let text = String::from_utf8_lossy(&list.stdout).to_string();
    let line = |name: &str| {
        text.lines()
            .find(|line| line.starts_with(&format!("{name}\t")))
            .unwrap_or_else(|| panic!("{name} in {text}"))
            .to_string()
    };
    // 5000 bytes and one entry (4 KiB) of the manifest's 64 KiB.
    assert!(line("files").ends_with("\tfiles: 9 of 64 KiB"), "{text}");
    assert!(
        line("fetch").contains(
            "\thttp: {{base_url}}\tsettings: base_url=http://127.0.0.1:9, greeting=bonjour\tready: "
        ),
        "{text}"
    );
}

#[test]
fn plugins_list_shows_cache_usage_on_redis() {
    // A copy of the counter plugin under a name of its own: Redis keeps
    // every run's keys, and usage is counted per plugin name.
    let name = format!("c{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let dir = tempfile::tempdir().unwrap();
    let built = common::built_plugin("counter");
    std::fs::copy(&built, dir.path().join(format!("{name}.wasm"))).unwrap();
    let manifest = std::fs::read_to_string(built.with_extension("toml"))
        .unwrap()
        .replacen("name = \"counter\"", &format!("name = \"{name}\""), 1);
    std::fs::write(dir.path().join(format!("{name}.toml")), manifest).unwrap();
    let data = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}/wasmbot.db", data.path().display());
    let cache = data.path().join("cache");
    let redis = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let envs = [
        ("PLUGINS_DIR", dir.path().to_str().unwrap()),
        ("PLUGIN_CACHE_DIR", cache.to_str().unwrap()),
        ("DATABASE_URL", database.as_str()),
        ("REDIS_URL", redis.as_str()),
    ];
    let chat = wasmbot(&["chat"], &envs, "/cset a 1\n/cset b 22\n");
    assert!(
        chat.status.success(),
        "{}",
        String::from_utf8_lossy(&chat.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&chat.stdout), "stored\nstored\n");
    let list = wasmbot(&["plugins", "list"], &envs, "");
    let text = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(
        text.trim_end()
            .ends_with("\tcache: 2 of 10000 keys, 1 of 10240 KiB"),
        "{text}"
    );
}
