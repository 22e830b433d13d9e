//! The demo's configuration: the collector file written to
//! `<data dir>/collector.toml` at every start (so `slaprobe-collector report
//! --config demo-data/collector.toml ...` works on the demo's store too) and
//! the three agents' configs, built in memory with per-process tokens.
//!
//! Each agent runs the collector's checks as its own local checks, pinned
//! (`resolve`, `nameservers`) to its location's loopback addresses, which is
//! how the simulated vendors tell the locations apart. A local check wins
//! over the assigned one of the same name, so the collector's copies (pinned
//! to `ams`) only serve ingest validation, the contracts and the CLI.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use slaprobe_agent::config::{AgentConfig, RawAgentFile, RawAgentSection, Secret};
use slaprobe_collector::CollectorConfig;
use slaprobe_collector::auth::token_sha256;
use slaprobe_wire::CheckSpec;

use crate::world::{
    CDN_HOST, DNS_PORT, HTTP_PORT, HTTPS_PORT, LOCATIONS, Net, SHOP_HOST, Vendor, ZONE,
};

/// File name of the demo CA in the data dir (the collector's `ca_file`).
pub const CA_FILE: &str = "demo-ca.pem";

/// The live agent's id at `location`.
pub fn live_agent(location: &str) -> String {
    format!("demo-{location}")
}

/// The id of the agent that back-fills `location`'s history. Its own id, so
/// its seqs never meet the live agent's (whose spool counts from 1).
pub fn history_agent(location: &str) -> String {
    format!("demo-{location}-history")
}

/// One agent's id, location and token (made for this process only).
#[derive(Clone)]
pub struct AgentKey {
    pub id: String,
    pub location: String,
    pub token: String,
}

impl std::fmt::Debug for AgentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentKey")
            .field("id", &self.id)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// Every agent of the demo, live and history, with fresh tokens.
pub fn agent_keys() -> anyhow::Result<Vec<AgentKey>> {
    let mut out = Vec::new();
    for loc in LOCATIONS {
        for id in [live_agent(loc), history_agent(loc)] {
            out.push(AgentKey {
                id,
                location: loc.to_string(),
                token: random_token()?,
            });
        }
    }
    Ok(out)
}

fn random_token() -> anyhow::Result<String> {
    let mut buf = [0u8; 32];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").context("opening /dev/urandom")?,
        &mut buf,
    )?;
    Ok(hex::encode(buf))
}

/// The collector's config file for the demo world.
pub fn collector_toml(listen: SocketAddr, net: Net, keys: &[AgentKey]) -> String {
    let shop = net.ip(Vendor::Hosting, "ams");
    let cdn = net.ip(Vendor::Cdn, "ams");
    let dns = net.addr(Vendor::Dns, "ams", DNS_PORT);
    let answer = crate::vendors::shop_a_record(net);
    let mut agents = String::new();
    for k in keys {
        agents.push_str(&format!(
            "[[agents]]\nid = \"{}\"\nlocation = \"{}\"\ntoken_sha256 = \"{}\"\n\n",
            k.id,
            k.location,
            hex::encode(token_sha256(&k.token))
        ));
    }
    format!(
        r#"# Written by slaprobe-demo at every start: the demo world's collector.
# Everything here is simulated and lives on loopback. The agents' tokens are
# made per process; their hashes are below. The `demo-*-history` agents
# back-fill the past with results that follow the same fault script.
#
# Each demo agent runs these checks as local checks pinned to its own
# location's addresses (the `resolve` and `nameservers` below are ams's);
# a local check wins over the assigned one of the same name.

[collector]
listen = "{listen}"
data_dir = "."
max_result_age = "45d"
# The demo listens on loopback only: its pages are for whoever runs it.
public_read = true
# The back-fill posts a month of results at once.
max_results_per_second_per_agent = 0

{agents}[[checks]]
name = "shop-https"
kind = "http"
interval = "60s"
timeout = "5s"
url = "https://{SHOP_HOST}:{HTTPS_PORT}/"
expect_status = [200]
body_contains = "Demo Shop"
ca_file = "{CA_FILE}"
resolve = {{ "{SHOP_HOST}" = "{shop}" }}

[[checks]]
name = "shop-http"
kind = "http"
interval = "60s"
timeout = "5s"
url = "http://{SHOP_HOST}:{HTTP_PORT}/"
expect_status = [200]
body_contains = "Demo Shop"
resolve = {{ "{SHOP_HOST}" = "{shop}" }}

[[checks]]
name = "shop-dns"
kind = "dns"
interval = "60s"
timeout = "5s"
query = "{SHOP_HOST}"
record_type = "A"
nameservers = ["{dns}"]
expect_answers = ["{answer}"]

[[checks]]
name = "cdn-https"
kind = "http"
interval = "60s"
timeout = "5s"
url = "https://{CDN_HOST}:{HTTPS_PORT}/assets/app.js"
expect_status = [200]
ca_file = "{CA_FILE}"
resolve = {{ "{CDN_HOST}" = "{cdn}" }}

[[checks]]
name = "cdn-cert"
kind = "tls"
interval = "5m"
timeout = "5s"
host = "{CDN_HOST}"
port = {HTTPS_PORT}
warn_days = 14
ca_file = "{CA_FILE}"
resolve = {{ "{CDN_HOST}" = "{cdn}" }}

[[contracts]]
name = "hostco-shop"
vendor = "HostCo (demo)"
checks = ["shop-https", "shop-http"]
timezone = "{ZONE}"
slot = "60s"
quorum = 2
objectives = [
  {{ kind = "availability", target = 99.9 }},
  {{ kind = "latency", phase = "processing", percentile = 95, max = "800ms" }},
]
maintenance = [ {{ weekly = "Sun 03:00", duration = "1h" }} ]
credits = [ {{ below = 99.9, percent = 10 }}, {{ below = 99.0, percent = 25 }}, {{ below = 90.0, percent = 50 }} ]

[[contracts]]
name = "dnsco-zone"
vendor = "DNSCo (demo)"
checks = ["shop-dns"]
timezone = "{ZONE}"
slot = "60s"
quorum = 2
objectives = [ {{ kind = "availability", target = 99.99 }} ]
credits = [ {{ below = 99.99, percent = 10 }}, {{ below = 99.9, percent = 25 }} ]

[[contracts]]
name = "cdnco-assets"
vendor = "CDNCo (demo)"
checks = ["cdn-https"]
timezone = "{ZONE}"
slot = "60s"
quorum = 2
objectives = [
  {{ kind = "availability", target = 99.9 }},
  {{ kind = "latency", phase = "processing", percentile = 95, max = "200ms" }},
]
credits = [ {{ below = 99.9, percent = 10 }}, {{ below = 99.0, percent = 25 }} ]
"#
    )
}

/// Writes the CA and the collector file into `dir` and loads the config.
pub fn write_collector(
    dir: &Path,
    listen: SocketAddr,
    net: Net,
    keys: &[AgentKey],
    ca_pem: &str,
) -> anyhow::Result<CollectorConfig> {
    std::fs::write(dir.join(CA_FILE), ca_pem).context("writing the demo CA")?;
    let path = dir.join("collector.toml");
    std::fs::write(&path, collector_toml(listen, net, keys))
        .with_context(|| format!("writing {}", path.display()))?;
    CollectorConfig::load(&path).map_err(|e| anyhow::anyhow!("{e}"))
}

/// `location`'s copy of the collector's checks: the same names and specs,
/// pinned to the location's own vendor addresses.
pub fn location_checks(config: &CollectorConfig, net: Net, location: &str) -> Vec<CheckSpec> {
    config
        .checks
        .iter()
        .map(|c| {
            let mut spec = c.served.clone();
            spec.locations = None;
            if let Some(resolve) = spec.resolve.as_mut() {
                for (host, ip) in resolve.iter_mut() {
                    let vendor = if host == CDN_HOST {
                        Vendor::Cdn
                    } else {
                        Vendor::Hosting
                    };
                    *ip = net.ip(vendor, location).to_string();
                }
            }
            if spec.nameservers.is_some() {
                spec.nameservers =
                    Some(vec![net.addr(Vendor::Dns, location, DNS_PORT).to_string()]);
            }
            spec
        })
        .collect()
}

/// The live agent's config at `key.location`, talking to the collector at `collector`.
pub fn agent_config(
    key: &AgentKey,
    collector: SocketAddr,
    spool_dir: PathBuf,
    checks: Vec<CheckSpec>,
) -> anyhow::Result<AgentConfig> {
    let raw = RawAgentFile {
        agent: RawAgentSection {
            id: Some(key.id.clone()),
            location: Some(key.location.clone()),
            collector: Some(format!("http://{collector}")),
            token: Some(Secret::new(key.token.clone())),
            spool_dir: Some(spool_dir),
            ..Default::default()
        },
        checks,
    };
    let file = PathBuf::from(format!("<demo agent {}>", key.id));
    AgentConfig::from_raw(raw, &file).map_err(|e| anyhow::anyhow!("{e}"))
}
