//! An RDAP server (RFC 9082 paths, RFC 9083 answers) on `127.0.0.1`, built
//! with axum, for the domain probe's tests. Its answers are shaped like RFC
//! 9083's domain example (§5.3: `objectClassName`, `handle`, `ldhName`,
//! `status`, `entities` with jCards, `events`, `nameservers`,
//! `secureDNS`, `notices`), with dates relative to the test's clock.
//!
//! `GET /rdap/domain/{name}`:
//!
//! | name                  | answer                                                               |
//! |-----------------------|----------------------------------------------------------------------|
//! | `ok.example`          | expires in 400 days; status `active`                                 |
//! | `expiring.example`    | expires in 5 days; status `client transfer prohibited`               |
//! | `held.example`        | expires in 200 days; status `client hold` (RFC 8056 form)            |
//! | `serverheld.example`  | expires in 200 days; status `serverHold` (EPP form)                  |
//! | `pendingdelete.example` | status `pending delete`                                            |
//! | `expired.example`     | expired 3 days ago                                                   |
//! | `noexpiry.example`    | no `expiration` event                                                |
//! | `huge.example`        | 200 with a 5 MiB body                                                |
//! | `garbage.example`     | 200 with HTML                                                        |
//! | `deep.example`        | 200 with 100,000 nested arrays                                       |
//! | anything else         | 404 with an RDAP error object                                        |
//!
//! Each request's path is recorded ([`RdapServer::requests`]).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::task::JoinHandle;

/// The registrar every answer names.
pub const REGISTRAR: &str = "Example Registrar, Inc.";

/// The running server; stops when dropped.
#[derive(Debug)]
pub struct RdapServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

#[derive(Clone)]
struct Shared {
    now: i64,
    requests: Arc<Mutex<Vec<String>>>,
}

impl RdapServer {
    /// Starts the server; dates are relative to `now` (unix seconds).
    pub async fn start(now: i64) -> anyhow::Result<Self> {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared {
            now,
            requests: requests.clone(),
        };
        let app = Router::new()
            .route("/rdap/domain/{name}", get(domain))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            requests,
            task,
        })
    }

    /// The RDAP base URL, e.g. `http://127.0.0.1:40123/rdap/`.
    pub fn base_url(&self) -> String {
        format!("http://{}/rdap/", self.addr)
    }

    /// Paths asked so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for RdapServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn rfc3339(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

async fn domain(State(s): State<Shared>, Path(name): Path<String>) -> Response {
    s.requests
        .lock()
        .unwrap()
        .push(format!("/rdap/domain/{name}"));
    let day = 86_400;
    let rdap = |status: &[&str], expires: Option<i64>| {
        let body = domain_object(&name, status, s.now, expires);
        (
            [(header::CONTENT_TYPE, "application/rdap+json")],
            body.to_string(),
        )
            .into_response()
    };
    match name.as_str() {
        "ok.example" => rdap(&["active"], Some(s.now + 400 * day)),
        "expiring.example" => rdap(&["client transfer prohibited"], Some(s.now + 5 * day)),
        "held.example" => rdap(
            &["client hold", "client transfer prohibited"],
            Some(s.now + 200 * day),
        ),
        "serverheld.example" => rdap(&["serverHold"], Some(s.now + 200 * day)),
        "pendingdelete.example" => rdap(&["pending delete"], Some(s.now + 20 * day)),
        "expired.example" => rdap(&["active"], Some(s.now - 3 * day)),
        "noexpiry.example" => rdap(&["active"], None),
        "huge.example" => (
            [(header::CONTENT_TYPE, "application/rdap+json")],
            format!(
                "{{\"objectClassName\":\"domain\",\"pad\":\"{}\"}}",
                "x".repeat(5 * 1024 * 1024)
            ),
        )
            .into_response(),
        "garbage.example" => (
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body>Registry maintenance</body></html>",
        )
            .into_response(),
        "deep.example" => (
            [(header::CONTENT_TYPE, "application/rdap+json")],
            "[".repeat(100_000),
        )
            .into_response(),
        _ => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "application/rdap+json")],
            json!({
                "errorCode": 404,
                "title": "Not Found",
                "description": ["The domain is not registered here."]
            })
            .to_string(),
        )
            .into_response(),
    }
}

/// A domain object shaped like RFC 9083 §5.3's example.
fn domain_object(name: &str, status: &[&str], now: i64, expires: Option<i64>) -> serde_json::Value {
    let day = 86_400;
    let mut events = vec![
        json!({"eventAction": "registration", "eventDate": rfc3339(now - 900 * day)}),
        json!({"eventAction": "last changed", "eventDate": rfc3339(now - 30 * day),
               "eventActor": "joe@example.com"}),
    ];
    if let Some(e) = expires {
        events.push(json!({"eventAction": "expiration", "eventDate": rfc3339(e)}));
    }
    json!({
        "rdapConformance": ["rdap_level_0"],
        "objectClassName": "domain",
        "handle": "XXXX",
        "ldhName": name,
        "status": status,
        "nameservers": [
            {"objectClassName": "nameserver", "ldhName": format!("ns1.{name}"),
             "ipAddresses": {"v4": ["192.0.2.1", "192.0.2.2"], "v6": ["2001:db8::123"]}},
            {"objectClassName": "nameserver", "ldhName": format!("ns2.{name}")}
        ],
        "secureDNS": {"zoneSigned": true, "delegationSigned": true, "maxSigLife": 604800,
                      "keyData": [{"flags": 257, "protocol": 3, "algorithm": 8,
                                   "publicKey": "AwEAAa6eDzronzjEDbT...Jg1M5N rBSPkuXpdFE=",
                                   "events": [{"eventAction": "last changed",
                                               "eventDate": rfc3339(now - 60 * day)}]}]},
        "entities": [
            {"objectClassName": "entity", "handle": "XXXX", "roles": ["registrant"],
             "vcardArray": ["vcard", [["version", {}, "text", "4.0"],
                                      ["fn", {}, "text", "Joe User"],
                                      ["kind", {}, "text", "individual"]]]},
            {"objectClassName": "entity", "handle": "292", "roles": ["registrar"],
             "publicIds": [{"type": "IANA Registrar ID", "identifier": "292"}],
             "vcardArray": ["vcard", [["version", {}, "text", "4.0"],
                                      ["fn", {}, "text", REGISTRAR],
                                      ["adr", {"type": "work"}, "text",
                                       ["", "Suite 1234", "4321 Rue Somewhere", "Quebec", "QC", "G1V 2M2", "Canada"]]]]}
        ],
        "events": events,
        "notices": [{"title": "Terms of Use",
                     "description": ["Service subject to The Registry of the Moon's TOS."],
                     "links": [{"value": format!("https://example.net/domain/{name}"),
                                "rel": "alternate", "type": "text/html",
                                "href": "https://www.example.com/terms_of_use.html"}]}],
        "lang": "en"
    })
}
