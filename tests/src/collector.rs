//! An in-process collector for tests: write or load a config, bind
//! `127.0.0.1:0`, serve, wait until `/readyz` answers 200, talk to it with a
//! reqwest client, stop it and check `serve` returned `Ok`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use slaprobe_collector::conn::ConnStats;
use slaprobe_collector::{CollectorConfig, Server, ServerOptions};
use tokio_util::sync::CancellationToken;

/// A running in-process collector.
pub struct TestCollector {
    /// Where it listens.
    pub addr: SocketAddr,
    /// A client for it (trusting its CA when it serves HTTPS).
    pub client: reqwest::Client,
    /// The config it runs.
    pub config: Arc<CollectorConfig>,
    /// Its connection counters.
    pub conn_stats: Arc<ConnStats>,
    /// Where the embedded agent reaches it, when `[embedded_agent]` is set.
    pub embedded_url: Option<String>,
    scheme: &'static str,
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestCollector {
    /// Loads the config at `path` and serves it as `slaprobe-collector run`
    /// does (with the SLA engine over its contracts).
    pub async fn start(path: &Path) -> TestCollector {
        let config = CollectorConfig::load(path)
            .unwrap_or_else(|e| panic!("{}: config does not load: {e}", path.display()));
        let options = ServerOptions::default();
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self::start_config(config, options, reqwest::Client::new()).await
    }

    /// Writes `toml` as `dir/collector.toml` and serves it.
    pub async fn start_toml(dir: &Path, toml: &str) -> TestCollector {
        let path = write_config(dir, toml);
        Self::start(&path).await
    }

    /// Loads the config at `path` and serves it with `options`.
    pub async fn start_with(path: &Path, options: ServerOptions) -> TestCollector {
        let config = CollectorConfig::load(path)
            .unwrap_or_else(|e| panic!("{}: config does not load: {e}", path.display()));
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        Self::start_config(config, options, client).await
    }

    /// Serves `config` with `options`; `client` must be able to reach it
    /// (trust its certificate when it serves HTTPS).
    pub async fn start_config(
        config: CollectorConfig,
        options: ServerOptions,
        client: reqwest::Client,
    ) -> TestCollector {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let scheme = if config.collector.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let server = Server::bind_with(config, options)
            .await
            .unwrap_or_else(|e| panic!("collector does not bind: {e:#}"));
        let addr = server.local_addr();
        let config = server.state().config().clone();
        let conn_stats = server.conn_stats().clone();
        let embedded_url = server
            .embedded_agent()
            .and_then(|a| a.agent.collector.as_ref())
            .map(|u| u.to_string());
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(server.serve(shutdown.clone()));
        let c = TestCollector {
            addr,
            client,
            config,
            conn_stats,
            embedded_url,
            scheme,
            shutdown,
            handle,
        };
        c.wait_ready(Duration::from_secs(15)).await;
        c
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self, timeout: Duration) {
        crate::wait::wait_until(
            "the collector's /readyz to answer 200",
            timeout,
            Duration::from_millis(20),
            || async {
                assert!(
                    !self.handle.is_finished(),
                    "the collector stopped before it was ready"
                );
                let r = self.client.get(self.url("/readyz")).send().await.ok()?;
                (r.status() == 200).then_some(())
            },
        )
        .await
    }

    /// The URL of `path` on this collector.
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `POST /api/v1/results` with `token`: `(status, body as JSON or a string)`.
    pub async fn post_results(
        &self,
        token: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, serde_json::Value) {
        let req = self
            .client
            .post(self.url("/api/v1/results"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body);
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    /// `GET path` with an optional bearer token: `(status, body text)`.
    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    }

    /// Asks it to stop and checks that `serve` returned `Ok`.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("collector stops within 30 s")
            .expect("serve task")
            .expect("serve returns Ok");
    }
}

/// Writes `toml` as `dir/collector.toml`; returns its path.
pub fn write_config(dir: &Path, toml: &str) -> PathBuf {
    let path = dir.join("collector.toml");
    std::fs::write(&path, toml).expect("write collector.toml");
    path
}
