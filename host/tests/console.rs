//! `wasmbot chat` as a user runs it: the real binary, stdin piped in.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::plugins_dir;

fn wasmbot_chat(envs: &[(&str, &str)], input: &str, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasmbot"));
    command
        .arg("chat")
        .args(args)
        // Run outside the checkout so no developer's .env leaks in.
        .current_dir(std::env::temp_dir())
        .env_remove("LOG_LEVEL")
        .env_remove("LOG_FORMAT")
        .env_remove("PLUGIN_TIMEOUT_MS")
        .env_remove("PLUGIN_MEMORY_MB")
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
