//! Inbound webhooks as a sender sees them: `wasmbot hooks …` to add one,
//! GitHub's signature, and posts from a chosen local address (the whole of
//! 127.0.0.0/8 is this machine, so each address is a different sender).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::Command;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The vault key the hooks' secrets are kept under.
pub const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// `wasmbot hooks …` on the database `database_url`, with `extra` settings.
pub fn hooks_cli(
    data: &Path,
    plugins: &Path,
    database_url: &str,
    extra: &[(&str, &str)],
    args: &[&str],
) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_wasmbot"))
        .arg("hooks")
        .args(args)
        .current_dir(data)
        .env_clear()
        .env("DATABASE_URL", database_url)
        .env("PLUGINS_DIR", plugins)
        .env("PLUGIN_CACHE_DIR", data.join("cache"))
        .env("ENCRYPTION_KEY", KEY)
        .envs(extra.iter().copied())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// The secret `hooks add` printed.
pub fn printed_secret(text: &str) -> String {
    text.lines()
        .find_map(|line| line.strip_prefix("Secret: "))
        .expect("the secret is printed")
        .trim()
        .to_string()
}

/// `X-Hub-Signature-256` of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// One post to a hook, as GitHub would send it (less what is `None`).
pub struct Delivery<'a> {
    pub signature: Option<&'a str>,
    pub id: Option<&'a str>,
    pub body: Vec<u8>,
}

/// Posts `delivery` to `url` from 127.0.0.1; its status.
pub async fn post(url: &str, signature: Option<&str>, body: Vec<u8>) -> u16 {
    let delivery = Delivery {
        signature,
        id: None,
        body,
    };
    post_from(LOCAL, url, delivery).await.0
}

pub const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// Posts `delivery` to `url` from the local address `from`; its status and text.
pub async fn post_from(from: IpAddr, url: &str, delivery: Delivery<'_>) -> (u16, String) {
    let client = reqwest::Client::builder()
        .local_address(from)
        .build()
        .unwrap();
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-github-event", "push");
    if let Some(signature) = delivery.signature {
        request = request.header("X-Hub-Signature-256", signature);
    }
    if let Some(id) = delivery.id {
        request = request.header("X-GitHub-Delivery", id);
    }
    let response = request.body(delivery.body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// A post whose body never finishes: from `from` to `path` on `server`, it
/// announces `length` bytes and sends a few. Resolves to the status and
/// text the server answered with, whenever it does.
pub async fn slow_post(from: IpAddr, server: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    let mut stream = socket.connect(server).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {server}\r\ncontent-type: application/json\r\n\
         content-length: 1000\r\n\r\n{{\"ref\":"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // Everything until the server closes, or the whole answer.
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let read = stream.read(&mut chunk).await.unwrap_or(0);
        if read == 0 {
            break;
        }
        answer.extend_from_slice(&chunk[..read]);
        if let Some(parsed) = complete_response(&answer) {
            return parsed;
        }
    }
    complete_response(&answer).unwrap_or((0, String::from_utf8_lossy(&answer).into_owned()))
}

/// The status and text of a whole HTTP/1.1 response in `bytes`, if it is whole.
fn complete_response(bytes: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    (body.len() >= length).then(|| (status, body.to_string()))
}
