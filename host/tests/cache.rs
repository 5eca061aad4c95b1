//! The cache capability against the machine's real Redis and the in-process
//! backend: the same suite on both (TTL, atomic incr, limits, namespacing
//! through a real plugin), Redis going down mid-test (a typed error within
//! a bound, then recovery), and the host's shared claims across replicas.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::alerts::alerter_with_inbox;
use common::proxy::TcpProxy;
use common::{plugins_dir, registry};
use wasmbot::chat::Dispatcher;
use wasmbot::infra::cache::{CALL_DEADLINE, CacheFailure, CacheStore, plugin_key};
use wasmbot::infra::services::HostServices;

const REDIS: &str = "127.0.0.1:6379";

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| format!("redis://{REDIS}"))
}

/// Both backends, each with a fresh key prefix so runs never meet in Redis.
fn backends() -> Vec<(&'static str, CacheStore, String)> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    vec![
        ("in-process", CacheStore::local(16), format!("t{run}:")),
        (
            "redis",
            CacheStore::redis(&redis_url(), 16).expect("REDIS_URL"),
            format!("t{run}:"),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn values_expire_after_their_ttl_and_counters_keep_their_window() {
    for (label, cache, p) in backends() {
        let key = format!("{p}greeting");
        cache
            .set(&key, "hello", Some(Duration::from_millis(300)))
            .await
            .unwrap();
        cache
            .set(&format!("{p}forever"), "kept", None)
            .await
            .unwrap();
        assert_eq!(
            cache.get(&key).await.unwrap().as_deref(),
            Some("hello"),
            "{label}"
        );
        tokio::time::sleep(Duration::from_millis(450)).await;
        assert_eq!(cache.get(&key).await.unwrap(), None, "{label}: expired");
        assert_eq!(
            cache.get(&format!("{p}forever")).await.unwrap().as_deref(),
            Some("kept"),
            "{label}: no TTL, no expiry"
        );

        // The window starts at the first increment; later ones do not extend it.
        // "Still inside the window" is asserted only when the clock proves
        // it (a loaded machine may stall longer than the window): otherwise
        // the round says nothing and is tried again with a fresh counter.
        let window = Duration::from_millis(400);
        let mut proven = None;
        for round in 0..5 {
            let hits = format!("{p}hits{round}");
            let first_sent = Instant::now();
            assert_eq!(
                cache.incr(&hits, 1, Some(window)).await.unwrap(),
                1,
                "{label}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
            let second = cache.incr(&hits, 1, Some(window)).await.unwrap();
            if first_sent.elapsed() < window {
                assert_eq!(second, 2, "{label}: inside the window");
                proven = Some(hits);
                break;
            }
        }
        let hits = proven
            .unwrap_or_else(|| panic!("{label}: five rounds too slow to test a 400 ms window"));
        // At least 500 ms after the first increment ended, so past its window
        // whatever the delays: this holds on any machine.
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(
            cache.incr(&hits, 1, Some(window)).await.unwrap(),
            1,
            "{label}: a new window after 500 ms of a 400 ms one"
        );

        assert!(
            cache.delete(&format!("{p}forever")).await.unwrap(),
            "{label}"
        );
        assert!(
            !cache.delete(&format!("{p}forever")).await.unwrap(),
            "{label}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_increments_are_never_lost_and_bad_counters_are_typed() {
    for (label, cache, p) in backends() {
        let key = format!("{p}counter");
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (cache, key) = (cache.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                for _ in 0..200 {
                    seen.push(cache.incr(&key, 1, None).await.unwrap());
                }
                seen
            }));
        }
        let mut all = HashSet::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        assert_eq!(
            all.len(),
            1600,
            "{label}: every increment saw its own value"
        );
        assert_eq!(all.iter().max(), Some(&1600), "{label}");
        assert_eq!(cache.get(&key).await.unwrap().as_deref(), Some("1600"));
        assert_eq!(cache.incr(&key, -600, None).await.unwrap(), 1000, "{label}");

        cache.set(&format!("{p}word"), "abc", None).await.unwrap();
        assert_eq!(
            cache.incr(&format!("{p}word"), 1, None).await,
            Err(CacheFailure::NotANumber),
            "{label}"
        );
        cache
            .set(&format!("{p}max"), &i64::MAX.to_string(), None)
            .await
            .unwrap();
        assert_eq!(
            cache.incr(&format!("{p}max"), 1, None).await,
            Err(CacheFailure::NotANumber),
            "{label}: overflow"
        );
    }
}

/// The counter test plugin, and a second copy of it named `counter2`.
async fn counter_plugins(cache: CacheStore) -> (Dispatcher, tempfile::TempDir) {
    let dir = plugins_dir(&["counter"]);
    std::fs::copy(
        dir.path().join("counter.wasm"),
        dir.path().join("counter2.wasm"),
    )
    .unwrap();
    let mut manifest = std::fs::read_to_string(dir.path().join("counter.toml"))
        .unwrap()
        .replacen("name = \"counter\"", "name = \"counter2\"", 1);
    for command in ["cset", "cget", "cincr", "cdel"] {
        manifest = manifest.replace(&format!("\"{command}\""), &format!("\"{command}2\""));
    }
    std::fs::write(dir.path().join("counter2.toml"), manifest).unwrap();
    let registry = registry(dir.path()).await;
    assert!(
        registry.snapshot().errors().is_empty(),
        "{:?}",
        registry.snapshot().errors()
    );
    let services = HostServices {
        cache,
        ..HostServices::default()
    };
    (Dispatcher::new(registry, None).with_services(services), dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn plugins_see_only_their_own_keys_and_limits_are_typed_errors() {
    for (label, cache, p) in backends() {
        let (bot, _dir) = counter_plugins(cache.clone()).await;
        let ask = |text: String| {
            let bot = &bot;
            async move { common::ask(bot, &text).await }
        };
        assert_eq!(ask(format!("/cset {p}k one")).await, "stored", "{label}");
        assert_eq!(ask(format!("/cset2 {p}k two")).await, "stored", "{label}");
        assert_eq!(ask(format!("/cget {p}k")).await, "one", "{label}");
        assert_eq!(ask(format!("/cget2 {p}k")).await, "two", "{label}");
        // Where the host put them: under each plugin's own prefix.
        assert_eq!(
            cache
                .get(&plugin_key("counter", &format!("{p}k")))
                .await
                .unwrap()
                .as_deref(),
            Some("one")
        );
        assert_eq!(
            cache
                .get(&plugin_key("counter2", &format!("{p}k")))
                .await
                .unwrap()
                .as_deref(),
            Some("two")
        );
        assert_eq!(ask(format!("/cincr {p}n 5")).await, "5", "{label}");
        assert_eq!(ask(format!("/cincr2 {p}n 1")).await, "1", "{label}");
        assert_eq!(ask(format!("/cdel {p}k")).await, "true", "{label}");
        assert_eq!(ask(format!("/cget {p}k")).await, "none", "{label}");
        assert_eq!(ask(format!("/cget2 {p}k")).await, "two", "{label}");

        let long_key = "k".repeat(257);
        let reply = ask(format!("/cget {long_key}")).await;
        assert!(reply.starts_with("error invalid-key"), "{label}: {reply}");
        let big = "v".repeat(512 * 1024 + 1);
        let reply = ask(format!("/cset {p}big {big}")).await;
        assert!(reply.starts_with("error too-large"), "{label}: {reply}");
        let reply = ask(format!("/cset {p}t v 0")).await;
        assert!(reply.starts_with("error invalid-ttl"), "{label}: {reply}");
        let reply = ask(format!("/cincr {p}k2 1 {}", 31_u64 * 24 * 3600 * 1000)).await;
        assert!(reply.starts_with("error invalid-ttl"), "{label}: {reply}");
        ask(format!("/cset {p}w abc")).await;
        let reply = ask(format!("/cincr {p}w 1")).await;
        assert!(reply.starts_with("error not-a-number"), "{label}: {reply}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_going_down_is_a_typed_error_within_a_bound_and_recovery_is_automatic() {
    let proxy = TcpProxy::start(REDIS.parse().unwrap()).await;
    let cache = CacheStore::redis(&format!("redis://{}", proxy.addr), 16).unwrap();
    let (bot, _dir) = counter_plugins(cache.clone()).await;
    let key = format!("down{}", uuid::Uuid::new_v4().simple());
    assert_eq!(common::ask(&bot, &format!("/cincr {key} 1")).await, "1");

    proxy.go_down();
    for attempt in 0..3 {
        let started = Instant::now();
        let reply = common::ask(&bot, &format!("/cincr {key} 1")).await;
        let took = started.elapsed();
        assert!(
            reply.starts_with("error unavailable"),
            "attempt {attempt}: {reply}"
        );
        assert!(
            took < CALL_DEADLINE + Duration::from_millis(500),
            "attempt {attempt} took {took:?}"
        );
        assert!(
            !reply.contains(&proxy.addr.to_string()),
            "no address in errors: {reply}"
        );
    }
    let started = Instant::now();
    assert!(matches!(
        cache.get(&key).await,
        Err(CacheFailure::Unavailable(_))
    ));
    assert!(started.elapsed() < CALL_DEADLINE + Duration::from_millis(500));

    // The host's own claims go on from local memory while Redis is down.
    assert!(cache.claim("test", &key, Duration::from_secs(60)).await);
    assert!(!cache.claim("test", &key, Duration::from_secs(60)).await);

    proxy.come_back();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = common::ask(&bot, &format!("/cincr {key} 1")).await;
        if reply == "2" {
            break;
        }
        assert!(Instant::now() < deadline, "Redis never came back: {reply}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_sharing_redis_claim_each_update_once_and_send_each_alert_once() {
    let replica_a = CacheStore::redis(&redis_url(), 16).unwrap();
    let replica_b = CacheStore::redis(&redis_url(), 16).unwrap();
    let update = format!("{}:1001", uuid::Uuid::new_v4().simple());
    let ttl = Duration::from_secs(60);
    assert!(replica_a.claim("update", &update, ttl).await);
    assert!(!replica_b.claim("update", &update, ttl).await);
    assert!(!replica_a.claim("update", &update, ttl).await);

    // Two replicas' alerters, each with its own admin-chat sink.
    let key = format!("redis-{}", uuid::Uuid::new_v4().simple());
    let mut replicas = Vec::new();
    for cache in [replica_a.clone(), replica_b.clone()] {
        let (alerter, inbox) = alerter_with_inbox();
        alerter.share_limits(cache);
        assert!(
            alerter.alert(&key, "⚠️ Redis is down"),
            "each replica raises it"
        );
        replicas.push((alerter, inbox));
    }
    let mut sent = 0;
    for (alerter, inbox) in &mut replicas {
        sent += common::alerts::alerts_so_far(alerter, inbox).await.len();
    }
    assert_eq!(sent, 1, "one admin-chat message between both replicas");

    // Without sharing, each replica would have sent its own.
    let (lonely, mut inbox) = alerter_with_inbox();
    assert!(lonely.alert(&key, "⚠️ Redis is down"));
    assert_eq!(
        common::alerts::alerts_so_far(&lonely, &mut inbox)
            .await
            .len(),
        1
    );
}

/// A plugin's entries stay within its quota of keys and bytes on both
/// backends: replacing costs only the difference, deleting and expiring give
/// room back, a counter counts once.
#[tokio::test(flavor = "multi_thread")]
async fn a_plugins_entries_stay_within_its_quota_on_both_backends() {
    use wasmbot::infra::cache::{CacheFailure, CacheQuota};
    for (label, cache, p) in backends() {
        // A plugin of its own per run, so Redis holds no index from before.
        let plugin = format!("q{}", p.trim_end_matches(':'));
        let key = |name: &str| plugin_key(&plugin, name);
        let quota = CacheQuota {
            keys: 3,
            bytes: 1_000,
        };
        for name in ["a", "b", "c"] {
            cache
                .set_within(&plugin, &key(name), "v", None, quota)
                .await
                .unwrap();
        }
        let refused = cache.set_within(&plugin, &key("d"), "v", None, quota).await;
        match refused {
            Err(CacheFailure::QuotaExceeded(why)) => assert!(
                why.starts_with("quota exceeded: this plugin may keep 3 cache keys and 0 KiB; the write would make 4 keys"),
                "{label}: {why}"
            ),
            other => panic!("{label}: expected a quota error, got {other:?}"),
        }
        // Replacing is no new key; a counter on a new key is one.
        cache
            .set_within(&plugin, &key("a"), "w", None, quota)
            .await
            .unwrap();
        let counted = cache.incr_within(&plugin, &key("n"), 1, None, quota).await;
        assert!(
            matches!(counted, Err(CacheFailure::QuotaExceeded(_))),
            "{label}"
        );
        assert!(
            cache.delete_from(&plugin, &key("b")).await.unwrap(),
            "{label}"
        );
        assert_eq!(
            cache.incr_within(&plugin, &key("n"), 1, None, quota).await,
            Ok(1)
        );
        assert_eq!(
            cache.incr_within(&plugin, &key("n"), 1, None, quota).await,
            Ok(2)
        );
        // An entry that expires gives its room back.
        cache.delete_from(&plugin, &key("c")).await.unwrap();
        cache
            .set_within(
                &plugin,
                &key("t"),
                "v",
                Some(Duration::from_millis(50)),
                quota,
            )
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match cache.set_within(&plugin, &key("d"), "v", None, quota).await {
                Ok(()) => break,
                Err(CacheFailure::QuotaExceeded(_)) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => panic!("{label}: the expired entry never gave its room back: {other:?}"),
            }
        }
        // Bytes count too: keys and values.
        let small = CacheQuota {
            keys: 100,
            bytes: 60,
        };
        let big = "x".repeat(60);
        let refused = cache
            .set_within(&plugin, &key("big"), &big, None, small)
            .await;
        assert!(
            matches!(refused, Err(CacheFailure::QuotaExceeded(_))),
            "{label}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_over_its_cache_quota_gets_the_typed_error() {
    let dir = plugins_dir(&["counter"]);
    common::set_limits(dir.path(), "counter", "cache_keys = 2");
    let services = HostServices {
        cache: CacheStore::local(16),
        ..HostServices::default()
    };
    let bot = Dispatcher::new(registry(dir.path()).await, None).with_services(services);
    assert_eq!(common::ask(&bot, "/cset a 1").await, "stored");
    assert_eq!(common::ask(&bot, "/cset b 1").await, "stored");
    let reply = common::ask(&bot, "/cset c 1").await;
    assert!(
        reply
            .starts_with("error quota-exceeded: quota exceeded: this plugin may keep 2 cache keys"),
        "{reply}"
    );
    assert_eq!(common::ask(&bot, "/cdel a").await, "true");
    assert_eq!(common::ask(&bot, "/cset c 1").await, "stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_sharing_redis_keep_one_cache_quota_between_them() {
    use wasmbot::infra::cache::CacheQuota;
    let plugin = format!("q{}", uuid::Uuid::new_v4().simple());
    let quota = CacheQuota {
        keys: 10,
        bytes: 10_000,
    };
    let replicas = [
        CacheStore::redis(&redis_url(), 16).unwrap(),
        CacheStore::redis(&redis_url(), 16).unwrap(),
    ];
    // 16 writes of distinct keys at once, half through each replica.
    let mut writes = tokio::task::JoinSet::new();
    for (r, cache) in replicas.iter().enumerate() {
        for i in 0..8 {
            let (cache, plugin) = (cache.clone(), plugin.clone());
            writes.spawn(async move {
                let key = plugin_key(&plugin, &format!("r{r}-{i}"));
                cache
                    .set_within(&plugin, &key, "v", None, quota)
                    .await
                    .is_ok()
            });
        }
    }
    let stored = writes.join_all().await;
    assert_eq!(stored.iter().filter(|ok| **ok).count(), 10);
}
