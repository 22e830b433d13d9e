//! Read credentials (`[[viewers]]`, `/login`, `public_read`): with a viewer
//! configured every read endpoint answers 401 without its token (or with an
//! agent's) and 200 with it, a `/login` cookie works in place of the token
//! and cannot be forged or turned back into it, `/healthz` and `/readyz` stay
//! open; `public_read = true` serves reads to anyone; with neither, reads are
//! closed; the config refuses contradictions and says which mode is active.

use std::path::Path;

use slaprobe_collector::CollectorConfig;
use slaprobe_collector::read_auth::ReadMode;
use slaprobe_tests::collector::{TestCollector, write_config};
use slaprobe_tests::prom::sha256_hex;

const AGENT: &str = "read-test-agent-token";
const VIEWER: &str = "read-test-viewer-token";

fn toml(collector_extra: &str, viewers: bool) -> String {
    let viewer = if viewers {
        format!(
            "[[viewers]]\nname = \"grafana\"\ntoken_sha256 = \"{}\"\n",
            sha256_hex(VIEWER)
        )
    } else {
        String::new()
    };
    format!(
        r#"
[collector]
listen = "127.0.0.1:0"
data_dir = "data"
{collector_extra}

[[agents]]
id = "ams-1"
location = "ams"
token_sha256 = "{agent}"

{viewer}

[[checks]]
name = "c"
kind = "http"
url = "http://127.0.0.1:9/"

[[contracts]]
name = "k"
vendor = "V"
checks = ["c"]
"#,
        agent = sha256_hex(AGENT)
    )
}

/// Every read route the collector serves today.
const READS: [&str; 4] = [
    "/metrics",
    "/api/v1/agents",
    "/api/v1/contracts",
    "/api/v1/reports/k/2025-01?format=json",
];

async fn status(c: &TestCollector, path: &str, headers: &[(&str, &str)]) -> u16 {
    let mut req = c.client.get(c.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_viewer_every_read_needs_its_token_or_cookie() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write_config(tmp.path(), &toml("", true));
    let c = TestCollector::start(&path).await;
    assert_eq!(c.config.read_mode(), ReadMode::Viewers);
    let bearer_viewer = format!("Bearer {VIEWER}");
    let bearer_agent = format!("Bearer {AGENT}");
    for path in READS {
        assert_eq!(status(&c, path, &[]).await, 401, "{path} without a token");
        assert_eq!(
            status(&c, path, &[("authorization", &bearer_agent)]).await,
            401,
            "{path} with an agent's token"
        );
        assert_eq!(
            status(&c, path, &[("authorization", "Bearer nope")]).await,
            401,
            "{path} with an unknown token"
        );
        assert_eq!(
            status(&c, path, &[("authorization", &bearer_viewer)]).await,
            200,
            "{path} with the viewer's token"
        );
    }
    let r = c.client.get(c.url("/metrics")).send().await.unwrap();
    assert_eq!(
        r.headers().get("www-authenticate").unwrap(),
        "Bearer realm=\"slaprobe read\""
    );
    assert!(r.text().await.unwrap().contains("/login"));
    // Health stays open; the agent's own endpoint still takes the agent's token.
    assert_eq!(status(&c, "/healthz", &[]).await, 200);
    assert_eq!(status(&c, "/readyz", &[]).await, 200);
    assert_eq!(
        status(&c, "/api/v1/checks", &[("authorization", &bearer_agent)]).await,
        200
    );

    // /login: the form, a wrong token, then the right one.
    let (s, form) = c.get("/login", None).await;
    assert_eq!(s, 200);
    assert!(form.contains("name=\"token\""), "{form}");
    let r = c
        .client
        .post(c.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", "wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    let r = c
        .client
        .post(c.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", VIEWER))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let set = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Strict"), "{set}");
    assert!(
        !set.contains(VIEWER),
        "the token is never in the cookie: {set}"
    );
    assert!(!set.contains(&sha256_hex(VIEWER)), "nor its hash: {set}");
    let pair = set.split(';').next().unwrap().to_string();
    for path in READS {
        assert_eq!(
            status(&c, path, &[("cookie", &pair)]).await,
            200,
            "{path} with the cookie"
        );
    }
    // Forged: another name, or a changed MAC or expiry, gets nothing.
    let (name_value, mac) = pair.rsplit_once('.').unwrap();
    let forged_mac: String = format!(
        "{name_value}.{}",
        if mac.starts_with('0') {
            mac.replacen('0', "1", 1)
        } else {
            format!("0{}", &mac[1..])
        }
    );
    let forged_name: String = pair.replace("=grafana.", "=admin.");
    let (head, _) = name_value.rsplit_once('.').unwrap();
    let forged_expiry = format!("{head}.99999999999.{mac}");
    for bad in [forged_mac, forged_name, forged_expiry] {
        assert_eq!(
            status(&c, "/api/v1/contracts", &[("cookie", &bad)]).await,
            401,
            "{bad}"
        );
    }
    c.stop().await;

    // A restart makes a new key: yesterday's cookie is void.
    let c = TestCollector::start(&path).await;
    assert_eq!(
        status(&c, "/api/v1/contracts", &[("cookie", &pair)]).await,
        401
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_read_serves_anyone_and_no_mode_closes_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write_config(tmp.path(), &toml("public_read = true", false));
    let c = TestCollector::start(&path).await;
    assert_eq!(c.config.read_mode(), ReadMode::Public);
    for path in READS {
        assert_eq!(status(&c, path, &[]).await, 200, "{path}");
    }
    c.stop().await;

    let tmp = tempfile::tempdir().unwrap();
    let path = write_config(tmp.path(), &toml("", false));
    let c = TestCollector::start(&path).await;
    assert_eq!(c.config.read_mode(), ReadMode::Closed);
    for path in READS {
        assert_eq!(status(&c, path, &[]).await, 401, "{path}");
    }
    let (_, body) = c.get("/api/v1/contracts", None).await;
    assert!(body.contains("public_read"), "{body}");
    assert_eq!(status(&c, "/readyz", &[]).await, 200);
    c.stop().await;
}

fn load(dir: &Path, text: &str) -> Result<CollectorConfig, String> {
    let path = write_config(dir, text);
    CollectorConfig::load(&path).map_err(|e| e.to_string())
}

#[test]
fn config_names_the_mode_and_refuses_contradictions() {
    let tmp = tempfile::tempdir().unwrap();
    let both = load(tmp.path(), &toml("public_read = true", true)).unwrap_err();
    assert!(both.contains("collector.public_read"), "{both}");

    let viewers = load(tmp.path(), &toml("", true)).unwrap();
    assert!(
        viewers.summary().contains("reads: viewers"),
        "{}",
        viewers.summary()
    );
    assert!(viewers.summary().contains("viewers (1): grafana"));
    assert!(viewers.read_warning().is_none());

    let closed = load(tmp.path(), &toml("", false)).unwrap();
    assert!(closed.summary().contains("reads: closed"));

    let public_loopback = load(tmp.path(), &toml("public_read = true", false)).unwrap();
    assert!(public_loopback.summary().contains("reads: public"));
    assert!(public_loopback.read_warning().is_none());
    let public_wide = load(
        tmp.path(),
        &toml("public_read = true", false).replace("127.0.0.1:0", "0.0.0.0:0"),
    )
    .unwrap();
    let w = public_wide.read_warning().expect("a warning");
    assert!(w.contains("0.0.0.0:0") && w.contains("[[viewers]]"), "{w}");
    assert!(public_wide.summary().contains("warning: public_read"));

    let same = toml("", true).replace(&sha256_hex(VIEWER), &sha256_hex(AGENT));
    let e = load(tmp.path(), &same).unwrap_err();
    assert!(e.contains("viewers[grafana].token_sha256"), "{e}");
}
