//! `wasmbot health`: checks every configured service once and prints one
//! line each (exit 1 when any is unhealthy); `--http` asks a running
//! process's `/readyz` instead (the containers' health check).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;

use crate::app::config::Config;
use crate::app::root::health_checker;
use crate::infra::health::{ServiceHealth, Status};
use crate::infra::llm::LlmClient;
use crate::infra::store::Store;

pub async fn run(config: &Config, http: bool) -> anyhow::Result<ExitCode> {
    if http {
        return probe_readyz(config.http_addr_or_default()).await;
    }
    let (store, connect_error) = match Store::connect(config.database_url.expose()).await {
        Ok(store) => (Some(store), None),
        Err(error) => (None, Some(format!("{error:#}"))),
    };
    let llm = LlmClient::from_settings(&config.llm)?.map(Arc::new);
    let mut results = health_checker(config, store.clone(), llm).check_all().await;
    if let Some(error) = connect_error
        && let Some(database) = results.iter_mut().find(|s| s.name == "database")
    {
        database.status = Status::Unhealthy;
        database.detail = Some(error);
    }
    // `plugins` needs a running bot; the others are what this command checks.
    results.retain(|service| service.name != "plugins");
    for service in &results {
        println!("{}", describe(service));
    }
    if let Some(store) = store {
        store.close().await;
    }
    let healthy = results.iter().all(|s| s.status != Status::Unhealthy);
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn describe(service: &ServiceHealth) -> String {
    let status = match service.status {
        Status::Healthy => "healthy",
        Status::Unhealthy => "UNHEALTHY",
        Status::NotConfigured => "not configured",
    };
    let latency = service
        .latency_ms
        .map(|ms| format!("{ms} ms"))
        .unwrap_or_default();
    format!(
        "{}\t{status}\t{latency}\t{}",
        service.name,
        service.detail.as_deref().unwrap_or("")
    )
    .trim_end()
    .to_string()
}

async fn probe_readyz(addr: SocketAddr) -> anyhow::Result<ExitCode> {
    // A wildcard listen address is reached on loopback.
    let host = match addr.ip() {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    let url = format!("http://{}/readyz", SocketAddr::new(host, addr.port()));
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()?;
    match client.get(&url).send().await {
        Ok(response) => {
            let ok = response.status().is_success();
            print!("{}", response.text().await.unwrap_or_default());
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Err(error) => {
            println!("not ready: {url}: {}", error.without_url());
            Ok(ExitCode::FAILURE)
        }
    }
}
