//! A fake OAuth 2 provider and a fake Google Calendar API on one real HTTP
//! server: the device grant (RFC 8628, `authorization_pending` until the
//! test approves), the code grant with PKCE (S256 checked), the refresh
//! grant with rotation (each refresh token works once), short-lived access
//! tokens, `invalid_grant` once revoked, a refresh answered late; and `GET
//! /calendar/v3/calendars/primary/events`, which answers 401 to a token it
//! did not issue, has forgotten or that expired (or, when told, to all).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::Digest as _;

pub const CLIENT_ID: &str = "wasmbot-test-client";
pub const CLIENT_SECRET: &str = "client-secret-Zq81xWv";

#[derive(Default)]
struct Tokens {
    /// access token → when it stops working.
    access: HashMap<String, Instant>,
    refresh: HashSet<String>,
    /// code → (PKCE challenge, redirect URI).
    codes: HashMap<String, (String, String)>,
    /// device code → approved?
    devices: HashMap<String, bool>,
    /// Everything ever issued, for "never in logs" checks.
    issued: Vec<String>,
    /// The refresh tokens refresh requests came with, in order.
    presented: Vec<String>,
    serial: u64,
}

/// When a slow refresh request's refresh token is checked.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum GrantChecked {
    /// As it arrives: it gets new tokens even if another refresh used the
    /// refresh token meanwhile.
    OnArrival,
    /// As it is answered: `invalid_grant` if another refresh used it.
    OnAnswer,
}

pub struct FakeProvider {
    pub url: String,
    tokens: Mutex<Tokens>,
    /// Lifetime of new access tokens, in seconds.
    pub expires_in: AtomicU64,
    pub refreshes: AtomicUsize,
    pub unauthorized: AtomicUsize,
    /// Device-grant polls answered `authorization_pending`.
    pub device_polls_pending: AtomicUsize,
    /// While set, a refresh request waits for it to be notified.
    refresh_gate: Mutex<Option<Arc<tokio::sync::Notify>>>,
    refresh_arrived: tokio::sync::Notify,
    /// The next refresh request is answered once this is notified.
    slow_refresh: Mutex<Option<(Arc<tokio::sync::Notify>, GrantChecked)>>,
    /// The calendar answers 401 to every token.
    refuse_every_token: AtomicBool,
}

impl FakeProvider {
    pub async fn start() -> Arc<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let fake = Arc::new(Self {
            url,
            tokens: Mutex::default(),
            expires_in: AtomicU64::new(3600),
            refreshes: AtomicUsize::new(0),
            unauthorized: AtomicUsize::new(0),
            device_polls_pending: AtomicUsize::new(0),
            refresh_gate: Mutex::new(None),
            refresh_arrived: tokio::sync::Notify::new(),
            slow_refresh: Mutex::new(None),
            refuse_every_token: AtomicBool::new(false),
        });
        let app = axum::Router::new()
            .route("/authorize", axum::routing::get(authorize))
            .route("/device/code", axum::routing::post(device_code))
            .route("/token", axum::routing::post(token))
            .route(
                "/calendar/v3/calendars/primary/events",
                axum::routing::get(events),
            )
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Approves every pending device code (the user typed it in).
    pub fn approve_devices(&self) {
        for approved in self.tokens.lock().unwrap().devices.values_mut() {
            *approved = true;
        }
    }

    /// Forgets every access token (they answer 401 from now on).
    pub fn forget_access_tokens(&self) {
        self.tokens.lock().unwrap().access.clear();
    }

    /// Revokes the consent: every refresh token is refused (`invalid_grant`).
    pub fn revoke(&self) {
        let mut tokens = self.tokens.lock().unwrap();
        tokens.refresh.clear();
        tokens.access.clear();
    }

    /// Every token, code and secret ever issued or used.
    pub fn issued(&self) -> Vec<String> {
        let mut all = self.tokens.lock().unwrap().issued.clone();
        all.push(CLIENT_SECRET.to_string());
        all
    }

    /// Holds refresh requests until the returned gate is notified.
    pub fn hold_refreshes(&self) -> Arc<tokio::sync::Notify> {
        let gate = Arc::new(tokio::sync::Notify::new());
        *self.refresh_gate.lock().unwrap() = Some(gate.clone());
        gate
    }

    /// Refresh requests are answered at once again.
    pub fn release_refreshes(&self) {
        *self.refresh_gate.lock().unwrap() = None;
    }

    /// The next refresh request is answered only once the returned gate is
    /// notified — a provider answering slowly — its grant checked when
    /// `checked` says. Later refresh requests are answered at once.
    pub fn slow_next_refresh(&self, checked: GrantChecked) -> Arc<tokio::sync::Notify> {
        let gate = Arc::new(tokio::sync::Notify::new());
        *self.slow_refresh.lock().unwrap() = Some((gate.clone(), checked));
        gate
    }

    /// The calendar refuses (401) every token, valid or not, while set.
    pub fn refuse_every_token(&self, refuse: bool) {
        self.refuse_every_token.store(refuse, Ordering::SeqCst);
    }

    /// The refresh tokens refresh requests came with, in order.
    pub fn presented_refresh_tokens(&self) -> Vec<String> {
        self.tokens.lock().unwrap().presented.clone()
    }

    /// The refresh token issued last.
    pub fn latest_refresh_token(&self) -> Option<String> {
        let tokens = self.tokens.lock().unwrap();
        tokens
            .issued
            .iter()
            .rev()
            .find(|token| token.starts_with("1//refresh-"))
            .cloned()
    }

    /// Waits until a refresh request has arrived (and is held).
    pub async fn refresh_arrived(&self) {
        tokio::time::timeout(Duration::from_secs(60), self.refresh_arrived.notified())
            .await
            .expect("a refresh request within a minute");
    }

    fn issue(&self, tokens: &mut Tokens) -> Value {
        tokens.serial += 1;
        let access = format!("ya29.access-{}-{}", tokens.serial, uuid());
        let refresh = format!("1//refresh-{}-{}", tokens.serial, uuid());
        let life = self.expires_in.load(Ordering::SeqCst);
        tokens
            .access
            .insert(access.clone(), Instant::now() + Duration::from_secs(life));
        tokens.refresh.insert(refresh.clone());
        tokens.issued.push(access.clone());
        tokens.issued.push(refresh.clone());
        json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": life,
            "refresh_token": refresh,
            "scope": "https://www.googleapis.com/auth/calendar.readonly",
        })
    }
}

fn uuid() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn query(uri: &Uri) -> HashMap<String, String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn oauth_error(code: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/json")],
        json!({"error": code, "error_description": format!("fake provider: {code}")}).to_string(),
    )
        .into_response()
}

fn json_ok(value: Value) -> Response {
    ([("content-type", "application/json")], value.to_string()).into_response()
}

/// The browser's visit: consent is given at once; back to the loopback.
async fn authorize(State(fake): State<Arc<FakeProvider>>, uri: Uri) -> Response {
    let q = query(&uri);
    if q.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || q.get("code_challenge_method").map(String::as_str) != Some("S256")
    {
        return (StatusCode::BAD_REQUEST, "bad client or no PKCE").into_response();
    }
    let code = format!("code-{}", uuid());
    let redirect = q["redirect_uri"].clone();
    {
        let mut tokens = fake.tokens.lock().unwrap();
        tokens.issued.push(code.clone());
        tokens.codes.insert(
            code.clone(),
            (q["code_challenge"].clone(), redirect.clone()),
        );
    }
    let location = format!("{redirect}/?code={code}&state={}", q["state"]);
    (StatusCode::FOUND, [("location", location)]).into_response()
}

async fn device_code(State(fake): State<Arc<FakeProvider>>, body: Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return oauth_error("invalid_client");
    }
    let device = format!("device-{}", uuid());
    {
        let mut tokens = fake.tokens.lock().unwrap();
        tokens.issued.push(device.clone());
        tokens.devices.insert(device.clone(), false);
    }
    json_ok(json!({
        "device_code": device,
        "user_code": "WDJB-MJHT",
        "verification_uri": format!("{}/device", fake.url),
        "expires_in": 600,
        "interval": 1,
    }))
}

async fn token(State(fake): State<Arc<FakeProvider>>, body: Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return oauth_error("invalid_client");
    }
    let grant = form.get("grant_type").cloned().unwrap_or_default();
    // The code grant is a confidential client's here; whoever sends a
    // secret must send the right one.
    let secret = form.get("client_secret").map(String::as_str);
    if secret.is_some_and(|s| s != CLIENT_SECRET)
        || (grant == "authorization_code" && secret.is_none())
    {
        return oauth_error("invalid_client");
    }
    match grant.as_str() {
        "authorization_code" => {
            let code = form.get("code").cloned().unwrap_or_default();
            let Some((challenge, redirect)) = fake.tokens.lock().unwrap().codes.remove(&code)
            else {
                return oauth_error("invalid_grant");
            };
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(verifier.as_bytes()));
            if computed != challenge || form.get("redirect_uri") != Some(&redirect) {
                return oauth_error("invalid_grant");
            }
            let mut tokens = fake.tokens.lock().unwrap();
            json_ok(fake.issue(&mut tokens))
        }
        "urn:ietf:params:oauth:grant-type:device_code" => {
            let device = form.get("device_code").cloned().unwrap_or_default();
            let mut tokens = fake.tokens.lock().unwrap();
            match tokens.devices.get(&device).copied() {
                None => oauth_error("expired_token"),
                Some(false) => {
                    fake.device_polls_pending.fetch_add(1, Ordering::SeqCst);
                    oauth_error("authorization_pending")
                }
                Some(true) => {
                    tokens.devices.remove(&device);
                    json_ok(fake.issue(&mut tokens))
                }
            }
        }
        "refresh_token" => {
            fake.refreshes.fetch_add(1, Ordering::SeqCst);
            let refresh = form.get("refresh_token").cloned().unwrap_or_default();
            fake.tokens.lock().unwrap().presented.push(refresh.clone());
            let slow = fake.slow_refresh.lock().unwrap().take();
            if let Some((gate, checked)) = slow {
                if checked == GrantChecked::OnArrival
                    && !fake.tokens.lock().unwrap().refresh.contains(&refresh)
                {
                    return oauth_error("invalid_grant");
                }
                fake.refresh_arrived.notify_one();
                gate.notified().await;
                let mut tokens = fake.tokens.lock().unwrap();
                // Checked on arrival, the grant was good then even if
                // another refresh has used it meanwhile.
                if !tokens.refresh.remove(&refresh) && checked == GrantChecked::OnAnswer {
                    return oauth_error("invalid_grant");
                }
                return json_ok(fake.issue(&mut tokens));
            }
            let gate = fake.refresh_gate.lock().unwrap().clone();
            if let Some(gate) = gate {
                fake.refresh_arrived.notify_one();
                gate.notified().await;
            }
            let mut tokens = fake.tokens.lock().unwrap();
            // Rotation: a refresh token works once.
            if !tokens.refresh.remove(&refresh) {
                return oauth_error("invalid_grant");
            }
            json_ok(fake.issue(&mut tokens))
        }
        _ => oauth_error("unsupported_grant_type"),
    }
}

/// Google Calendar's events list: one meeting and one all-day event.
async fn events(State(fake): State<Arc<FakeProvider>>, uri: Uri, headers: HeaderMap) -> Response {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_string();
    let valid = !fake.refuse_every_token.load(Ordering::SeqCst)
        && fake
            .tokens
            .lock()
            .unwrap()
            .access
            .get(&bearer)
            .is_some_and(|until| Instant::now() < *until);
    if !valid {
        fake.unauthorized.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::UNAUTHORIZED,
            [("content-type", "application/json")],
            json!({"error": {"code": 401, "message": "Request had invalid authentication credentials."}}).to_string(),
        )
            .into_response();
    }
    let q = query(&uri);
    let day = q
        .get("timeMin")
        .map(|t| t[..10].to_string())
        .unwrap_or_default();
    json_ok(json!({
        "kind": "calendar#events",
        "timeZone": "UTC",
        "items": [
            {"summary": "Dentist", "location": "Main St 4",
             "start": {"dateTime": format!("{day}T15:00:00Z")},
             "end": {"dateTime": format!("{day}T15:30:00Z")}},
            {"summary": "Company offsite", "start": {"date": day}},
        ],
    }))
}
