//! The vectors capability: one suite run on the embedded Qdrant engine for
//! real, and on a Qdrant server when `QDRANT_URL` is set (none on the CI
//! machine). Ordering by score, payload filters, namespacing, typed errors,
//! deletes, and the embedded engine's data surviving a restart.

mod common;

use common::qdrant::FakeQdrant;
use serde_json::{Map, Value, json};
use std::sync::Arc;

use wasmbot::infra::vectors::{
    CollectionName, CollectionSpec, Distance, EmbeddedVectors, FieldMatch, FieldValue, Point,
    QdrantSettings, ServerVectors, VectorFailure, VectorStore,
};

fn collection(plugin: &str, name: &str) -> CollectionName {
    CollectionName {
        plugin: plugin.into(),
        name: name.into(),
    }
}

fn point(id: u64, vector: [f32; 3], payload: Value) -> Point {
    let Value::Object(payload) = payload else {
        panic!("payloads are objects")
    };
    Point {
        id,
        vector: vector.to_vec(),
        payload,
    }
}

fn matching(key: &str, value: FieldValue) -> FieldMatch {
    FieldMatch {
        key: key.into(),
        value,
    }
}

const COSINE_3: CollectionSpec = CollectionSpec {
    dimension: 3,
    distance: Distance::Cosine,
};

/// Everything a plugin relies on, against `store`; `run` keeps server runs apart.
async fn suite(label: &str, store: &VectorStore, run: &str) {
    let plugin_a = format!("a{run}");
    let plugin_b = format!("b{run}");
    let notes = collection(&plugin_a, "notes");
    store.ensure(&notes, COSINE_3).await.unwrap();
    store
        .ensure(&notes, COSINE_3)
        .await
        .expect("ensuring twice is fine");
    let other_shape = CollectionSpec {
        dimension: 4,
        ..COSINE_3
    };
    assert!(
        matches!(
            store.ensure(&notes, other_shape).await,
            Err(VectorFailure::DimensionMismatch(_))
        ),
        "{label}"
    );

    store
        .upsert(
            &notes,
            vec![
                point(
                    1,
                    [1.0, 0.0, 0.0],
                    json!({"chat": 1, "lang": "en", "text": "east", "title": "old note"}),
                ),
                point(
                    2,
                    [0.9, 0.1, 0.0],
                    json!({"chat": 1, "lang": "fr", "pinned": true}),
                ),
                point(
                    3,
                    [0.0, 1.0, 0.0],
                    json!({"chat": 2, "lang": "en", "meta": {"src": "x"}, "title": "old note two"}),
                ),
                point(4, [-1.0, 0.0, 0.0], json!({"chat": 2, "lang": "en"})),
            ],
        )
        .await
        .unwrap();

    let hits = store
        .search(&notes, vec![1.0, 0.0, 0.0], 10, vec![])
        .await
        .unwrap();
    let ids: Vec<u64> = hits.iter().map(|h| h.id).collect();
    assert_eq!(ids, [1, 2, 3, 4], "{label}: best first");
    assert!((hits[0].score - 1.0).abs() < 1e-4, "{label}: {hits:?}");
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score), "{label}");
    assert_eq!(hits[0].payload["text"], "east", "{label}: payload returned");
    assert_eq!(hits[2].payload["meta"], json!({"src": "x"}), "{label}");

    let limited = store
        .search(&notes, vec![1.0, 0.0, 0.0], 2, vec![])
        .await
        .unwrap();
    assert_eq!(limited.len(), 2, "{label}");

    let filtered = |filter: Vec<FieldMatch>| {
        let notes = notes.clone();
        async move {
            store
                .search(&notes, vec![1.0, 0.0, 0.0], 10, filter)
                .await
                .unwrap()
                .iter()
                .map(|h| h.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        filtered(vec![matching("chat", FieldValue::Integer(1))]).await,
        [1, 2],
        "{label}"
    );
    assert_eq!(
        filtered(vec![matching("chat", FieldValue::Integer(2))]).await,
        [3, 4],
        "{label}"
    );
    assert_eq!(
        filtered(vec![
            matching("chat", FieldValue::Integer(2)),
            matching("lang", FieldValue::Text("en".into()))
        ])
        .await,
        [3, 4],
        "{label}: every condition"
    );
    assert_eq!(
        filtered(vec![matching("lang", FieldValue::Text("fr".into()))]).await,
        [2],
        "{label}"
    );
    assert_eq!(
        filtered(vec![matching("pinned", FieldValue::Boolean(true))]).await,
        [2],
        "{label}"
    );
    assert_eq!(
        filtered(vec![matching("meta.src", FieldValue::Text("x".into()))]).await,
        [3],
        "{label}"
    );
    assert!(
        filtered(vec![matching("lang", FieldValue::Text("de".into()))])
            .await
            .is_empty()
    );
    assert_eq!(
        filtered(vec![matching("title", FieldValue::Text("old note".into()))]).await,
        [1],
        "{label}: text is equality, not a word or substring search"
    );
    assert!(
        filtered(vec![matching("text", FieldValue::Text("eas".into()))])
            .await
            .is_empty(),
        "{label}"
    );
    // A value of another type than the field holds matches nothing.
    assert!(
        filtered(vec![matching("chat", FieldValue::Text("1".into()))])
            .await
            .is_empty(),
        "{label}"
    );
    assert!(
        filtered(vec![matching("lang", FieldValue::Integer(1))])
            .await
            .is_empty(),
        "{label}"
    );
    assert_eq!(
        filtered(vec![matching("chat", FieldValue::Integer(1))]).await,
        [1, 2],
        "{label}: and the right type still does"
    );

    // Wrong sizes and unknown collections are typed, on every call.
    for failure in [
        store
            .upsert(
                &notes,
                vec![Point {
                    id: 9,
                    vector: vec![1.0, 2.0],
                    payload: Map::new(),
                }],
            )
            .await
            .err(),
        store.search(&notes, vec![1.0; 4], 5, vec![]).await.err(),
    ] {
        assert!(
            matches!(failure, Some(VectorFailure::DimensionMismatch(_))),
            "{label}: {failure:?}"
        );
    }
    let nan = store
        .upsert(
            &notes,
            vec![Point {
                id: 9,
                vector: vec![f32::NAN, 0.0, 0.0],
                payload: Map::new(),
            }],
        )
        .await;
    assert!(
        matches!(nan, Err(VectorFailure::InvalidInput(_))),
        "{label}: {nan:?}"
    );
    for limit in [0, 101] {
        let bad = store
            .search(&notes, vec![1.0, 0.0, 0.0], limit, vec![])
            .await;
        assert!(
            matches!(bad, Err(VectorFailure::InvalidInput(_))),
            "{label}: limit {limit}"
        );
    }

    // Another plugin's "notes" is another collection.
    let theirs = collection(&plugin_b, "notes");
    assert!(
        matches!(
            store.search(&theirs, vec![1.0, 0.0, 0.0], 5, vec![]).await,
            Err(VectorFailure::NoSuchCollection(_))
        ),
        "{label}: b cannot see a's collection"
    );
    store
        .ensure(
            &theirs,
            CollectionSpec {
                dimension: 3,
                distance: Distance::Dot,
            },
        )
        .await
        .unwrap();
    store
        .upsert(
            &theirs,
            vec![point(1, [0.0, 0.0, 1.0], json!({"owner": "b"}))],
        )
        .await
        .unwrap();
    let mine = store
        .search(&notes, vec![0.0, 0.0, 1.0], 10, vec![])
        .await
        .unwrap();
    assert_eq!(mine.len(), 4, "{label}: a still has its four");
    assert!(
        mine.iter().all(|h| h.payload.get("owner").is_none()),
        "{label}"
    );

    // Replacing by id, deleting by id and by filter.
    store
        .upsert(
            &notes,
            vec![point(
                1,
                [1.0, 0.0, 0.0],
                json!({"chat": 1, "text": "replaced"}),
            )],
        )
        .await
        .unwrap();
    let top = store
        .search(&notes, vec![1.0, 0.0, 0.0], 1, vec![])
        .await
        .unwrap();
    assert_eq!(top[0].payload["text"], "replaced", "{label}");
    assert_eq!(
        filtered(vec![matching("chat", FieldValue::Integer(1))]).await,
        [1, 2],
        "{label}: filters see points written after their first use"
    );
    assert!(
        filtered(vec![matching("title", FieldValue::Text("old note".into()))])
            .await
            .is_empty(),
        "{label}: the replaced point's old payload is gone from filters"
    );
    store.delete(&notes, vec![2, 77]).await.unwrap();
    assert_eq!(
        filtered(vec![]).await,
        [1, 3, 4],
        "{label}: 2 deleted, 77 never existed"
    );
    let everything = store.delete_matching(&notes, vec![]).await;
    assert!(
        matches!(everything, Err(VectorFailure::InvalidInput(_))),
        "{label}"
    );
    store
        .delete_matching(&notes, vec![matching("chat", FieldValue::Integer(2))])
        .await
        .unwrap();
    assert_eq!(filtered(vec![]).await, [1], "{label}: chat 2's points gone");

    // Listing shows the plugin's own collections; dropping removes one whole.
    let names = |plugin: String| async move {
        store
            .list(&plugin)
            .await
            .unwrap()
            .into_iter()
            .map(|(name, spec)| format!("{name}:{spec}"))
            .collect::<Vec<_>>()
    };
    let scratch = collection(&plugin_a, "scratch");
    let euclid_2 = CollectionSpec {
        dimension: 2,
        distance: Distance::Euclid,
    };
    store.ensure(&scratch, euclid_2).await.unwrap();
    assert_eq!(
        names(plugin_a.clone()).await,
        [
            "notes:dimension 3, Cosine distance",
            "scratch:dimension 2, Euclid distance"
        ],
        "{label}"
    );
    assert_eq!(
        names(plugin_b.clone()).await,
        ["notes:dimension 3, Dot distance"],
        "{label}"
    );
    assert!(names(format!("c{run}")).await.is_empty(), "{label}");
    assert!(store.drop_collection(&scratch).await.unwrap(), "{label}");
    assert!(
        !store.drop_collection(&scratch).await.unwrap(),
        "{label}: already gone"
    );
    assert!(
        matches!(
            store.search(&scratch, vec![1.0, 0.0], 1, vec![]).await,
            Err(VectorFailure::NoSuchCollection(_))
        ),
        "{label}"
    );
    // Gone for good: the name may now hold another shape, starting empty.
    store.ensure(&scratch, COSINE_3).await.unwrap();
    let empty = store.search(&scratch, vec![1.0, 0.0, 0.0], 5, vec![]).await;
    assert_eq!(empty.unwrap().len(), 0, "{label}");
    assert!(store.drop_collection(&scratch).await.unwrap(), "{label}");
    assert_eq!(names(plugin_a.clone()).await.len(), 1, "{label}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_embedded_engine_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = VectorStore::embedded(dir.path().to_path_buf());
    suite("embedded", &store, "").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_qdrant_server_passes_the_same_suite_when_qdrant_url_is_set() {
    let Some(url) = std::env::var("QDRANT_URL").ok().filter(|u| !u.is_empty()) else {
        eprintln!(
            "SKIPPED: set QDRANT_URL (a Qdrant server's gRPC URL, e.g. http://127.0.0.1:6334) to run the suite against a server"
        );
        return;
    };
    let settings = QdrantSettings {
        url: url.parse().expect("QDRANT_URL is a URL"),
        api_key: std::env::var("QDRANT_API_KEY")
            .ok()
            .map(wasmbot::env::SecretString::new),
    };
    let server = ServerVectors::new(&settings).unwrap();
    server.ping().await.expect("the Qdrant server answers");
    let store = VectorStore::Server(std::sync::Arc::new(server));
    let run = uuid::Uuid::new_v4().simple().to_string();
    suite("server", &store, &run[..12]).await;
    quota_suite("server", &store, &run[..12]).await;
}

/// The server backend over real gRPC, against the fake Qdrant in
/// tests/common/qdrant.rs: runs on every machine, unlike the test above.
#[tokio::test(flavor = "multi_thread")]
async fn the_server_backend_passes_the_suite_over_grpc() {
    let (fake, url) = FakeQdrant::start(Some("qdrant-test-key")).await;
    let settings = QdrantSettings {
        url: url.parse().unwrap(),
        api_key: Some(wasmbot::env::SecretString::new("qdrant-test-key".into())),
    };
    let server = ServerVectors::new(&settings).unwrap();
    let version = server
        .ping()
        .await
        .expect("the fake answers its health check");
    assert_eq!(version, "version 1.15.0");
    let store = VectorStore::Server(std::sync::Arc::new(server));
    suite("server", &store, "").await;
    assert_eq!(
        fake.collections(),
        ["wasmbot.a.notes", "wasmbot.b.notes"],
        "one server collection per plugin and name"
    );
    assert_eq!(
        fake.indexes("wasmbot.a.notes"),
        [
            "chat:Integer",
            "lang:Keyword",
            "meta.src:Keyword",
            "pinned:Bool",
            "text:Keyword",
            "title:Keyword"
        ],
        "each filtered field indexed, typed by its first use"
    );
    let asked = fake
        .calls()
        .iter()
        .filter(|c| c.starts_with("Points/CreateFieldIndex"))
        .count();
    assert_eq!(asked, 6, "once per field, not per search");

    // A second replica finds the collections already there and agrees on their shape.
    let replica = ServerVectors::new(&settings).unwrap();
    let replica = VectorStore::Server(std::sync::Arc::new(replica));
    replica
        .ensure(&collection("a", "notes"), COSINE_3)
        .await
        .unwrap();
    let hits = replica
        .search(&collection("a", "notes"), vec![1.0, 0.0, 0.0], 5, vec![])
        .await
        .unwrap();
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), [1]);

    // One replica drops and re-creates a collection with another shape: the
    // other's remembered shape gives way instead of refusing good vectors.
    let first = VectorStore::Server(std::sync::Arc::new(ServerVectors::new(&settings).unwrap()));
    let shared = collection("a", "shared");
    first.ensure(&shared, COSINE_3).await.unwrap();
    replica.ensure(&shared, COSINE_3).await.unwrap();
    first.drop_collection(&shared).await.unwrap();
    let four = CollectionSpec {
        dimension: 4,
        ..COSINE_3
    };
    first.ensure(&shared, four).await.unwrap();
    let wide = vec![Point {
        id: 1,
        vector: vec![0.0, 0.0, 0.0, 1.0],
        payload: Map::new(),
    }];
    replica.upsert(&shared, wide).await.unwrap();
    first.drop_collection(&shared).await.unwrap();
    let gone = replica
        .search(&shared, vec![0.0, 0.0, 0.0, 1.0], 1, vec![])
        .await;
    assert!(
        matches!(gone, Err(VectorFailure::NoSuchCollection(_))),
        "{gone:?}"
    );
    replica.ensure(&shared, COSINE_3).await.unwrap();
    let narrow = replica
        .search(&shared, vec![1.0, 0.0, 0.0], 1, vec![])
        .await;
    assert_eq!(
        narrow.unwrap().len(),
        0,
        "re-created by this replica, empty"
    );

    // A wrong API key and a server that is gone are typed, short and keyless.
    let wrong_key = ServerVectors::new(&QdrantSettings {
        api_key: Some(wasmbot::env::SecretString::new("nope".into())),
        ..settings.clone()
    })
    .unwrap();
    let refused = VectorStore::Server(std::sync::Arc::new(wrong_key))
        .search(&collection("a", "notes"), vec![1.0, 0.0, 0.0], 5, vec![])
        .await;
    let Err(VectorFailure::Unavailable(why)) = refused else {
        panic!("{refused:?}")
    };
    assert!(why.contains("PermissionDenied"), "{why}");
    assert!(!why.contains("nope"), "{why}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_qdrant_server_that_is_down_is_unavailable_quickly() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let settings = QdrantSettings {
        url: url.parse().unwrap(),
        api_key: None,
    };
    let store = VectorStore::Server(std::sync::Arc::new(ServerVectors::new(&settings).unwrap()));
    let started = std::time::Instant::now();
    let outcome = store.ensure(&collection("a", "notes"), COSINE_3).await;
    let Err(VectorFailure::Unavailable(why)) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(why.contains("cannot connect to the Qdrant server"), "{why}");
    assert!(why.len() < 200, "one short line: {why}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded_collections_survive_a_restart_with_their_shape() {
    let dir = tempfile::tempdir().unwrap();
    let notes = collection("memory", "notes");
    {
        let engine = Arc::new(EmbeddedVectors::new(dir.path().to_path_buf()));
        let store = VectorStore::Embedded(engine.clone());
        store.ensure(&notes, COSINE_3).await.unwrap();
        store
            .upsert(
                &notes,
                vec![
                    point(10, [0.0, 1.0, 0.0], json!({"text": "north"})),
                    point(11, [1.0, 0.0, 0.0], json!({"text": "east"})),
                ],
            )
            .await
            .unwrap();
        store.delete(&notes, vec![11]).await.unwrap();
        let chat = vec![matching("text", FieldValue::Text("north".into()))];
        let fields = engine.indexed_fields(notes.clone()).await.unwrap();
        assert!(
            fields.is_empty(),
            "nothing indexed before a filter: {fields:?}"
        );
        let hits = store.search(&notes, vec![0.0, 1.0, 0.0], 5, chat).await;
        assert_eq!(hits.unwrap().len(), 1);
        let fields = engine.indexed_fields(notes.clone()).await.unwrap();
        assert_eq!(fields, ["text"], "the filtered field is indexed");
    }
    let engine = Arc::new(EmbeddedVectors::new(dir.path().to_path_buf()));
    let fields = engine.indexed_fields(notes.clone()).await.unwrap();
    assert_eq!(fields, ["text"], "the index is kept on disk");
    let reopened = VectorStore::Embedded(engine);
    let hits = reopened
        .search(&notes, vec![0.0, 1.0, 0.0], 5, vec![])
        .await
        .expect("the collection is found on disk without ensuring it again");
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(
        (hits[0].id, hits[0].payload["text"].clone()),
        (10, json!("north"))
    );
    for (value, expected) in [("north", 1), ("east", 0)] {
        let filter = vec![matching("text", FieldValue::Text(value.into()))];
        let hits = reopened
            .search(&notes, vec![0.0, 1.0, 0.0], 5, filter)
            .await;
        assert_eq!(hits.unwrap().len(), expected, "after a restart: {value}");
    }
    let changed = CollectionSpec {
        distance: Distance::Euclid,
        ..COSINE_3
    };
    assert!(matches!(
        reopened.ensure(&notes, changed).await,
        Err(VectorFailure::DimensionMismatch(_))
    ));
    assert!(
        dir.path().join("memory/notes").is_dir(),
        "stored per plugin under VECTORS_DIR"
    );
}

/// A plugin's points across all its collections stay within its quota;
/// replacing a point adds nothing, another plugin has a quota of its own.
async fn quota_suite(label: &str, store: &VectorStore, run: &str) {
    let plugin = format!("q{run}");
    let first = collection(&plugin, "first");
    let second = collection(&plugin, "second");
    for c in [&first, &second] {
        store.ensure(c, COSINE_3).await.unwrap();
    }
    let points = |ids: &[u64]| -> Vec<Point> {
        ids.iter()
            .map(|&id| point(id, [1.0, 0.0, 0.0], json!({})))
            .collect()
    };
    store
        .upsert_within(&first, points(&[1, 2, 3]), 5)
        .await
        .unwrap();
    // 1 and 2 are replaced, 4 is new: 4 points in all.
    store
        .upsert_within(&first, points(&[1, 2, 4]), 5)
        .await
        .unwrap();
    // The second collection counts too: 4 held + 2 new > 5.
    let refused = store.upsert_within(&second, points(&[1, 2]), 5).await;
    match refused {
        Err(VectorFailure::QuotaExceeded(why)) => assert_eq!(
            why,
            "quota exceeded: this plugin may keep 5 vector points; it holds 4 and the upsert adds 2 (delete some, or the operator raises the quota)",
            "{label}"
        ),
        other => panic!("{label}: expected a quota error, got {other:?}"),
    }
    store.upsert_within(&second, points(&[1]), 5).await.unwrap();
    // Deleting makes room.
    store.delete(&first, vec![3, 4]).await.unwrap();
    store
        .upsert_within(&second, points(&[2, 3]), 5)
        .await
        .unwrap();
    let other = collection(&format!("r{run}"), "first");
    store.ensure(&other, COSINE_3).await.unwrap();
    store
        .upsert_within(&other, points(&[1, 2, 3, 4, 5]), 5)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_points_quota_holds_on_the_embedded_engine_and_over_grpc() {
    let dir = tempfile::tempdir().unwrap();
    quota_suite(
        "embedded",
        &VectorStore::embedded(dir.path().to_path_buf()),
        "",
    )
    .await;
    let (_fake, url) = FakeQdrant::start(None).await;
    let settings = QdrantSettings {
        url: url.parse().unwrap(),
        api_key: None,
    };
    let server = VectorStore::Server(Arc::new(ServerVectors::new(&settings).unwrap()));
    quota_suite("server", &server, "").await;
}
