//! Unit tests of the collector config.

use super::*;

const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn parse(toml: &str) -> Result<CollectorConfig, ConfigError> {
    let dir = std::env::temp_dir();
    let raw: RawCollectorFile = figment::Figment::new()
        .merge(<figment::providers::Toml as figment::providers::Format>::string(toml))
        .extract()
        .map_err(|e| ConfigError::new(Path::new("t.toml"), e.path.join("."), e.kind.to_string()))?;
    CollectorConfig::from_raw(raw, &dir.join("t.toml"))
}

#[test]
fn defaults_and_embedded() {
    let c = parse("[embedded_agent]\n").unwrap();
    assert_eq!(c.collector.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(c.collector.max_result_age, DEFAULT_MAX_RESULT_AGE);
    let e = c.embedded_agent.unwrap();
    assert_eq!((e.id.as_str(), e.location.as_str()), ("embedded", "local"));
    assert_eq!(e.rdap_bootstrap, None);
}

#[test]
fn embedded_rdap_bootstrap_is_checked_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let boot = dir.path().join("dns.json");
    std::fs::write(
        &boot,
        r#"{"services":[[["example"],["https://rdap.test/"]]]}"#,
    )
    .unwrap();
    let c = parse(&format!(
        "[embedded_agent]\nrdap_bootstrap = \"{}\"\n",
        boot.display()
    ))
    .unwrap();
    assert_eq!(c.embedded_agent.unwrap().rdap_bootstrap, Some(boot.clone()));
    std::fs::write(&boot, "not json").unwrap();
    let e = parse(&format!(
        "[embedded_agent]\nrdap_bootstrap = \"{}\"\n",
        boot.display()
    ))
    .unwrap_err();
    assert_eq!(e.key, "embedded_agent.rdap_bootstrap");
    assert!(e.message.contains("not JSON"), "{e}");
}

#[test]
fn agents_validated() {
    let dup = format!(
        "[[agents]]\nid=\"a\"\nlocation=\"x\"\ntoken_sha256=\"{HASH}\"\n[[agents]]\nid=\"a\"\nlocation=\"y\"\ntoken_sha256=\"{}\"\n",
        HASH.replace('9', "8")
    );
    assert_eq!(parse(&dup).unwrap_err().key, "agents[a].id");
    let short = "[[agents]]\nid=\"a\"\nlocation=\"x\"\ntoken_sha256=\"abc\"\n";
    assert_eq!(parse(short).unwrap_err().key, "agents[a].token_sha256");
    let same = format!(
        "[[agents]]\nid=\"a\"\nlocation=\"x\"\ntoken_sha256=\"{HASH}\"\n[[agents]]\nid=\"b\"\nlocation=\"y\"\ntoken_sha256=\"{HASH}\"\n"
    );
    assert!(parse(&same).unwrap_err().message.contains("same token"));
}

#[test]
fn database_url_selects_postgres_and_is_never_echoed() {
    let c = parse("[collector]\ndatabase_url = \"postgres://u:secret@db:5433/x\"\n").unwrap();
    assert_eq!(
        c.collector.store,
        StoreAddress::Postgres("postgres://u:secret@db:5433/x".into())
    );
    assert!(!format!("{:?}", c.collector).contains("secret"));
    assert!(
        c.summary().contains("database_url postgres://u@db:5433/x"),
        "{}",
        c.summary()
    );
    assert!(matches!(
        parse("").unwrap().collector.store,
        StoreAddress::Sqlite(_)
    ));
    for bad in [
        "mysql://u:secret@db/x",
        "postgres://u:secret@db/x?sslmode=sometimes",
    ] {
        let e = parse(&format!("[collector]\ndatabase_url = \"{bad}\"\n")).unwrap_err();
        assert_eq!(e.key, "collector.database_url");
        assert!(!e.to_string().contains("secret"), "{e}");
    }
}

#[test]
fn contracts_validated_and_summarised() {
    let base = format!(
        "[[agents]]\nid=\"a\"\nlocation=\"ams\"\ntoken_sha256=\"{HASH}\"\n[[checks]]\nname=\"w\"\nkind=\"http\"\nurl=\"http://x/\"\ninterval=\"5m\"\n"
    );
    let contract = "[[contracts]]\nname=\"c\"\nvendor=\"V\"\nchecks=[\"w\"]\ntimezone=\"Europe/Amsterdam\"\nslot=\"5m\"\nquorum=1\nobjectives=[{kind=\"availability\",target=99.9},{kind=\"latency\",phase=\"processing\",percentile=95,max=\"800ms\"}]\n";
    let ok = parse(&format!("{base}{contract}")).unwrap();
    assert_eq!(ok.contracts[0].name, "c");
    assert_eq!(ok.contracts[0].slot, Duration::from_secs(300));
    let s = ok.summary();
    assert!(
        s.contains("c  vendor V  checks: w  zone Europe/Amsterdam  slot 5m  quorum 1  objectives: availability >= 99.9%, processing p95 <= 800ms"),
        "{s}"
    );
    let unknown = parse(&format!(
        "{base}{}",
        contract.replace("[\"w\"]", "[\"nope\"]")
    ))
    .unwrap_err();
    assert!(unknown.key.starts_with("contracts[c]"), "{unknown}");
    let short = parse(&format!(
        "{base}{}",
        contract.replace("slot=\"5m\"", "slot=\"1m\"")
    ))
    .unwrap_err();
    assert_eq!(short.key, "contracts[c].slot", "{short}");
    let zone = parse(&format!(
        "{base}{}",
        contract.replace("Europe/Amsterdam", "Mars/Olympus")
    ))
    .unwrap_err();
    assert_eq!(zone.key, "contracts[c].timezone", "{zone}");
}

#[test]
fn canaries_belong_to_no_contract() {
    let base = format!(
        "[[agents]]\nid=\"a\"\nlocation=\"ams\"\ntoken_sha256=\"{HASH}\"\n[[checks]]\nname=\"w\"\nkind=\"http\"\nurl=\"http://x/\"\n[[checks]]\nname=\"cn\"\nkind=\"dns\"\nquery=\".\"\ncanary=true\n"
    );
    let ok = parse(&format!(
        "{base}[[contracts]]\nname=\"c\"\nchecks=[\"w\"]\n"
    ))
    .unwrap();
    assert_eq!(ok.contracts[0].canaries, ["cn"]);
    assert_eq!(ok.contracts[0].evidence_checks(), ["w", "cn"]);
    assert!(ok.summary().contains("(canary)"), "{}", ok.summary());
    let e = parse(&format!(
        "{base}[[contracts]]\nname=\"c\"\nchecks=[\"w\", \"cn\"]\n"
    ))
    .unwrap_err();
    assert_eq!(e.key, "contracts[c].checks");
    assert!(e.message.contains("canary"), "{e}");
}

#[test]
fn embedded_agent_gets_a_dns_canary_by_default() {
    let c = parse("[embedded_agent]\n").unwrap();
    let cn = c.check(EMBEDDED_CANARY).expect("default canary");
    assert!(cn.check.canary && cn.runs_at("local") && !cn.runs_at("ams"));
    assert_eq!(cn.check.kind, slaprobe_wire::CheckKind::Dns);
    assert_eq!(cn.served.query.as_deref(), Some("."));
    assert_eq!(cn.served.nameservers, None, "the system resolver");
    assert!(c.embedded_agent.unwrap().canary);
    let moved = parse(
        "[embedded_agent]\ncanary_query = \"acme.test\"\ncanary_nameservers = [\"127.0.0.1:5353\"]\n",
    )
    .unwrap();
    let cn = moved.check(EMBEDDED_CANARY).unwrap();
    assert_eq!(
        cn.served.nameservers.as_deref(),
        Some(&["127.0.0.1:5353".to_string()][..])
    );
    let off = parse("[embedded_agent]\ncanary = false\n").unwrap();
    assert!(off.check(EMBEDDED_CANARY).is_none());
    let e = parse("[embedded_agent]\ncanary = false\ncanary_query = \"x\"\n").unwrap_err();
    assert_eq!(e.key, "embedded_agent.canary");
}

#[test]
fn check_locations_must_exist() {
    let t = format!(
        "[[agents]]\nid=\"a\"\nlocation=\"ams\"\ntoken_sha256=\"{HASH}\"\n[[checks]]\nname=\"w\"\nkind=\"http\"\nurl=\"http://x/\"\nlocations=[\"nyc\"]\n"
    );
    let e = parse(&t).unwrap_err();
    assert_eq!(e.key, "checks[w].locations");
    assert!(e.message.contains("nyc"), "{e}");
    let ok = parse(&t.replace("\"nyc\"", "\"ams\"")).unwrap();
    assert!(ok.checks[0].runs_at("ams"));
    assert!(!ok.checks[0].runs_at("nyc"));
}
