//! The cross-field checks of [`CollectorConfig::from_raw`], one section at
//! a time: each error names the file, the key and what is wrong.

use super::*;

/// `[collector]`.
pub(super) fn collector_settings(
    c: RawCollectorSection,
    file: &Path,
    base: &Path,
) -> Result<CollectorSettings, ConfigError> {
    let err = |key: &str, msg: String| ConfigError::new(file, key, msg);
    if let Some(url) = &c.database_url {
        // Never echo the URL: it may hold a password.
        crate::store::postgres::validate_url(url).map_err(|m| err("collector.database_url", m))?;
    }
    let listen_raw = c.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let listen = listen_raw.parse::<SocketAddr>().map_err(|e| {
        err(
            "collector.listen",
            format!("{listen_raw:?} is not an ip:port address ({e}), e.g. \"127.0.0.1:9464\""),
        )
    })?;
    let data_dir = base.join(c.data_dir.unwrap_or_else(|| PathBuf::from("data")));
    if data_dir.exists() && !data_dir.is_dir() {
        return Err(err(
            "collector.data_dir",
            format!("{} exists and is not a directory", data_dir.display()),
        ));
    }
    let max_result_age = match c.max_result_age {
        Some(s) => parse_duration(file, "collector.max_result_age", &s)?,
        None => DEFAULT_MAX_RESULT_AGE,
    };
    if max_result_age < Duration::from_secs(60) {
        return Err(err(
            "collector.max_result_age",
            "must be at least 1m (results in flight would be refused)".into(),
        ));
    }
    let max_results_per_second_per_agent = c
        .max_results_per_second_per_agent
        .unwrap_or(DEFAULT_MAX_RESULTS_PER_SECOND_PER_AGENT);
    let tls = match (c.tls_cert_file, c.tls_key_file) {
        (Some(cert), Some(key)) => Some(TlsSettings {
            cert_file: base.join(cert),
            key_file: base.join(key),
            client_ca_file: c.tls_client_ca_file.map(|p| base.join(p)),
        }),
        (None, None) if c.tls_client_ca_file.is_some() => {
            return Err(err(
                "collector.tls_client_ca_file",
                "needs tls_cert_file and tls_key_file (client certificates are a TLS feature)"
                    .into(),
            ));
        }
        (None, None) => None,
        (Some(_), None) => {
            return Err(err(
                "collector.tls_key_file",
                "is required with tls_cert_file".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(err(
                "collector.tls_cert_file",
                "is required with tls_key_file".into(),
            ));
        }
    };
    let max_connections = c.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
    if max_connections == 0 {
        return Err(err(
            "collector.max_connections",
            "must be at least 1 (it caps open HTTP connections)".into(),
        ));
    }
    let store = match c.database_url {
        Some(url) => StoreAddress::Postgres(url.trim().to_string()),
        None => StoreAddress::Sqlite(data_dir.clone()),
    };
    let compact_after = match c.compact_after {
        Some(s) => parse_duration(file, "collector.compact_after", &s)?,
        None => DEFAULT_COMPACT_AFTER,
    };
    let retention = match c.retention {
        Some(s) => Some(parse_duration(file, "collector.retention", &s)?),
        None => None,
    };
    if retention.is_some_and(|r| r < max_result_age + compact_after) {
        return Err(err(
                "collector.retention",
                "must be longer than max_result_age + compact_after (results still accepted would be dropped)"
                    .into(),
            ));
    }
    let collector = CollectorSettings {
        listen,
        data_dir,
        max_result_age,
        max_results_per_second_per_agent,
        tls,
        max_connections,
        public_read: c.public_read.unwrap_or(false),
        store,
        compact_after,
        retention,
    };

    Ok(collector)
}

/// `[[agents]]`: valid, unique ids and tokens; returns them and their ids.
/// `hashes` collects every token hash (viewers must not reuse one).
pub(super) fn agents(
    raw_agents: Vec<RawAgentEntry>,
    file: &Path,
    hashes: &mut HashSet<[u8; 32]>,
) -> Result<(Vec<AgentEntry>, HashSet<String>), ConfigError> {
    let err = |key: &str, msg: String| ConfigError::new(file, key, msg);
    let mut agents = Vec::with_capacity(raw_agents.len());
    let mut ids = HashSet::new();
    for (i, a) in raw_agents.into_iter().enumerate() {
        let label = if valid_name(&a.id) {
            format!("agents[{}]", a.id)
        } else {
            format!("agents[{i}]")
        };
        if !valid_name(&a.id) {
            return Err(err(
                &format!("{label}.id"),
                format!(
                    "{:?} is not a valid id (1-128 of letters, digits, - _ . : /)",
                    a.id
                ),
            ));
        }
        if !ids.insert(a.id.clone()) {
            return Err(err(
                &format!("{label}.id"),
                "duplicate agent id; ids must be unique".into(),
            ));
        }
        if !valid_name(&a.location) {
            return Err(err(
                &format!("{label}.location"),
                format!(
                    "{:?} is not a valid location (1-128 of letters, digits, - _ . : /)",
                    a.location
                ),
            ));
        }
        let token_sha256 = parse_sha256(&a.token_sha256).ok_or_else(|| {
                err(
                    &format!("{label}.token_sha256"),
                    "must be 64 hex characters, the SHA-256 of the token (e.g. `printf %s \"$TOKEN\" | sha256sum`)".into(),
                )
            })?;
        if !hashes.insert(token_sha256) {
            return Err(err(
                &format!("{label}.token_sha256"),
                "the same token as another agent; every agent needs its own".into(),
            ));
        }
        agents.push(AgentEntry {
            id: a.id,
            location: a.location,
            token_sha256,
        });
    }

    Ok((agents, ids))
}

/// `[[viewers]]`: valid, unique names; tokens no agent or other viewer has.
pub(super) fn viewers(
    raw_viewers: Vec<RawViewerEntry>,
    file: &Path,
    hashes: &mut HashSet<[u8; 32]>,
) -> Result<Vec<Viewer>, ConfigError> {
    let err = |key: &str, msg: String| ConfigError::new(file, key, msg);
    let mut viewers = Vec::with_capacity(raw_viewers.len());
    let mut names = HashSet::new();
    for (i, v) in raw_viewers.into_iter().enumerate() {
        let label = if valid_name(&v.name) {
            format!("viewers[{}]", v.name)
        } else {
            format!("viewers[{i}]")
        };
        if !valid_name(&v.name) {
            return Err(err(
                &format!("{label}.name"),
                format!(
                    "{:?} is not a valid name (1-128 of letters, digits, - _ . : /)",
                    v.name
                ),
            ));
        }
        if !names.insert(v.name.clone()) {
            return Err(err(
                &format!("{label}.name"),
                "duplicate viewer name; names must be unique".into(),
            ));
        }
        let token_sha256 = parse_sha256(&v.token_sha256).ok_or_else(|| {
                err(
                    &format!("{label}.token_sha256"),
                    "must be 64 hex characters, the SHA-256 of the token (e.g. `printf %s \"$TOKEN\" | sha256sum`)".into(),
                )
            })?;
        if !hashes.insert(token_sha256) {
            return Err(err(
                &format!("{label}.token_sha256"),
                "the same token as an agent or another viewer; every viewer needs its own".into(),
            ));
        }
        viewers.push(Viewer {
            name: v.name,
            token_sha256,
        });
    }
    Ok(viewers)
}

/// `[embedded_agent]`: its id and location, its default canary (added to
/// `raw_checks`), its RDAP bootstrap file read and parsed now.
pub(super) fn embedded_agent(
    e: RawEmbeddedAgent,
    ids: &HashSet<String>,
    raw_checks: &mut Vec<CheckSpec>,
    file: &Path,
    base: &Path,
) -> Result<EmbeddedAgent, ConfigError> {
    let err = |key: &str, msg: String| ConfigError::new(file, key, msg);
    let id =
        e.id.clone()
            .unwrap_or_else(|| DEFAULT_EMBEDDED_ID.to_string());
    let location = e
        .location
        .clone()
        .unwrap_or_else(|| DEFAULT_EMBEDDED_LOCATION.to_string());
    if !valid_name(&id) {
        return Err(err(
            "embedded_agent.id",
            format!("{id:?} is not a valid id"),
        ));
    }
    if ids.contains(&id) {
        return Err(err(
            "embedded_agent.id",
            format!("{id:?} is also an [[agents]] id; pick another"),
        ));
    }
    if !valid_name(&location) {
        return Err(err(
            "embedded_agent.location",
            format!("{location:?} is not a valid location"),
        ));
    }
    let canary = e.canary.unwrap_or(true);
    if canary {
        if raw_checks.iter().any(|c| c.name == EMBEDDED_CANARY) {
            return Err(err(
                "embedded_agent.canary",
                format!(
                    "a [[checks]] entry is named {EMBEDDED_CANARY:?}, the embedded agent's default canary: rename it, or set canary = false"
                ),
            ));
        }
        raw_checks.push(embedded_canary(&e, &location));
    } else if e.canary_query.is_some()
        || e.canary_record_type.is_some()
        || e.canary_nameservers.is_some()
    {
        return Err(err(
            "embedded_agent.canary",
            "is false but canary_query / canary_record_type / canary_nameservers are set".into(),
        ));
    }
    let rdap_bootstrap = match e.rdap_bootstrap {
        None => None,
        Some(p) => {
            let p = base.join(p);
            let bytes = std::fs::read(&p).map_err(|e| {
                err(
                    "embedded_agent.rdap_bootstrap",
                    format!("cannot read {}: {e}", p.display()),
                )
            })?;
            slaprobe_agent::probe::domain::RdapBootstrap::parse(&bytes).map_err(|m| {
                err(
                    "embedded_agent.rdap_bootstrap",
                    format!("{}: {m} (expected IANA's dns.json, RFC 9224)", p.display()),
                )
            })?;
            Some(p)
        }
    };
    Ok(EmbeddedAgent {
        id,
        location,
        rdap_bootstrap,
        canary,
    })
}

/// `[[checks]]`: validated like the agent's, each `locations` entry a place
/// some agent is, and the spec served to agents with its files inlined.
pub(super) fn checks(
    raw_checks: &[CheckSpec],
    agents: &[AgentEntry],
    embedded_agent: Option<&EmbeddedAgent>,
    file: &Path,
    base: &Path,
) -> Result<Vec<CollectorCheck>, ConfigError> {
    let err = |key: &str, msg: String| ConfigError::new(file, key, msg);
    let validated = validate_checks(raw_checks, file, base)?;
    let known_locations: BTreeSet<&str> = agents
        .iter()
        .map(|a| a.location.as_str())
        .chain(embedded_agent.iter().map(|e| e.location.as_str()))
        .collect();
    let mut checks = Vec::with_capacity(validated.len());
    for (check, spec) in validated.into_iter().zip(raw_checks) {
        if let Some(locs) = &check.locations
            && let Some(bad) = locs.iter().find(|l| !known_locations.contains(l.as_str()))
        {
            let known: Vec<&str> = known_locations.iter().copied().collect();
            return Err(err(
                &format!("checks[{}].locations", check.name),
                format!(
                    "no agent is at location {bad:?} (known: {})",
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }
        let served = served_spec(&check, spec, file, base)?;
        checks.push(CollectorCheck { check, served });
    }

    Ok(checks)
}

/// `[[contracts]]`: unique names, validated against the checks' intervals,
/// no canary among their checks, and every canary read by each (rule 1a).
pub(super) fn contracts(
    raw_contracts: &[RawContract],
    checks: &[CollectorCheck],
    file: &Path,
) -> Result<Vec<Contract>, ConfigError> {
    let err = |key: &str, msg: String| ConfigError::new(file, key, msg);
    let mut contract_names = HashSet::new();
    for (i, c) in raw_contracts.iter().enumerate() {
        if !contract_names.insert(c.name.as_str()) {
            return Err(err(
                &format!("contracts[{i}].name"),
                format!("duplicate contract name {:?}", c.name),
            ));
        }
    }
    // Unknown checks, slots shorter than an interval, bad zones, tiers:
    // errors name `contracts[NAME].key`.
    let intervals: HashMap<String, Duration> = checks
        .iter()
        .map(|c| (c.check.name.clone(), c.check.interval))
        .collect();
    let mut contracts = validate_contracts(raw_contracts, &intervals, file)?;
    // Rule 1a: canaries belong to no contract, and every contract reads them.
    let mut canaries: Vec<String> = checks
        .iter()
        .filter(|c| c.check.canary)
        .map(|c| c.check.name.clone())
        .collect();
    canaries.sort();
    for k in &mut contracts {
        if let Some(c) = k.checks.iter().find(|c| canaries.contains(c)) {
            return Err(err(
                &format!("contracts[{}].checks", k.name),
                format!(
                    "check {c:?} is a canary (canary = true): canaries tell when a location itself is impaired and belong to no contract; list a check of the vendor instead"
                ),
            ));
        }
        k.canaries = canaries.clone();
    }

    Ok(contracts)
}

/// The spec handed to agents: `ca_file` replaced by its PEM and
/// `dnssec_trust_anchor` by its records (agents do not have the collector's
/// files), everything else as written.
pub(super) fn served_spec(
    check: &Check,
    spec: &CheckSpec,
    file: &Path,
    base: &Path,
) -> Result<CheckSpec, ConfigError> {
    let mut spec = spec.clone();
    if let Some(ca_file) = spec.ca_file.take() {
        let path = base.join(&ca_file);
        let pem = std::fs::read_to_string(&path).map_err(|e| {
            ConfigError::new(
                file,
                format!("checks[{}].ca_file", check.name),
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        spec.ca_pem = Some(match spec.ca_pem.take() {
            Some(inline) => format!("{}\n{}", inline.trim_end(), pem),
            None => pem,
        });
    }
    // The trust anchor likewise travels as its records.
    if let Some(anchor_file) = spec.dnssec_trust_anchor.take() {
        let path = base.join(&anchor_file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ConfigError::new(
                file,
                format!("checks[{}].dnssec_trust_anchor", check.name),
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        spec.dnssec_trust_anchor_records = Some(match spec.dnssec_trust_anchor_records.take() {
            Some(inline) => format!("{}\n{}", inline.trim_end(), text),
            None => text,
        });
    }
    Ok(spec)
}

pub(super) fn parse_sha256(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}
