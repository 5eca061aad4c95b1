//! Real databases for tests: a fresh SQLite file, and a fresh schema in the
//! PostgreSQL at `TEST_POSTGRES_URL`. With `CI=true` a missing URL fails the
//! test; elsewhere the Postgres half is skipped with a message.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wasmbot::infra::store::Store;

/// A migrated store and what keeps it alive (the SQLite folder, the Postgres schema name).
pub struct TestStore {
    pub store: Store,
    pub label: &'static str,
    /// The Postgres schema holding this store's tables.
    pub schema: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

pub async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/test.db", dir.path().display());
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    TestStore {
        store,
        label: "sqlite",
        schema: None,
        _dir: Some(dir),
    }
}

pub fn postgres_url() -> Option<String> {
    match std::env::var("TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        Some(url) => Some(url),
        None if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true but TEST_POSTGRES_URL is not set: the Postgres tests must run in CI")
        }
        None => {
            eprintln!(
                "SKIPPED the PostgreSQL half of this test: set TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test)"
            );
            None
        }
    }
}

/// A store on a new schema of the test database, so tests never share tables.
pub async fn postgres_at(url: &str) -> TestStore {
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let store = postgres_in_schema(url, &schema).await;
    store.migrate().await.unwrap();
    TestStore {
        store,
        label: "postgres",
        schema: Some(schema),
        _dir: None,
    }
}

/// A pool whose connections use `schema` (e.g. through a proxy URL).
pub async fn postgres_in_schema(url: &str, schema: &str) -> Store {
    let options = PgConnectOptions::from_str(url)
        .unwrap()
        .options([("search_path", schema)]);
    let pool = PgPoolOptions::new()
        .max_connections(5)
        .acquire_timeout(std::time::Duration::from_secs(2))
        .connect_with(options)
        .await
        .unwrap();
    Store::Postgres(pool)
}

/// SQLite always; Postgres when configured.
pub async fn all() -> Vec<TestStore> {
    let mut stores = vec![sqlite().await];
    if let Some(url) = postgres_url() {
        stores.push(postgres_at(&url).await);
    }
    stores
}
