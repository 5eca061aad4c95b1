//! `wasmbot chat` as a child process with stdin kept open, Claude at a
//! fake: what it prints is collected as it arrives.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// `wasmbot chat` in `dir` with the plugins in `plugins`, Claude at `url`:
/// stdin stays open for the test to write to.
pub fn console(dir: &std::path::Path, plugins: &std::path::Path, url: &str) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_wasmbot"))
        .arg("chat")
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PLUGINS_DIR", plugins)
        .env("ANTHROPIC_API_KEY", "sk-ant-test-key")
        .env("ANTHROPIC_BASE_URL", url)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn wasmbot")
}

/// Reads `stdout` on a thread; what arrived so far is in the returned buffer.
pub fn collect(stdout: std::process::ChildStdout) -> Arc<std::sync::Mutex<String>> {
    use std::io::Read as _;
    let seen = Arc::new(std::sync::Mutex::new(String::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        let mut stdout = stdout;
        let mut buffer = [0u8; 256];
        while let Ok(read @ 1..) = stdout.read(&mut buffer) {
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buffer[..read]));
        }
    });
    seen
}

pub async fn until_printed(seen: &std::sync::Mutex<String>, wanted: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !seen.lock().unwrap().contains(wanted) {
        assert!(
            Instant::now() < deadline,
            "{wanted:?} not printed: {:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Closes the console's input (the user leaves) and waits for it to exit,
/// which it must do cleanly.
pub async fn ends_cleanly(child: std::process::Child, stdin: std::process::ChildStdin) {
    drop(stdin);
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
