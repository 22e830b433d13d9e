//! The SQLite schema: its migrations, applied in order by `super::migrate`.

/// Schema migrations, applied in order; the index + 1 is the version. Never
/// edit one that has shipped: add the next.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: results kept whole, and the bookkeeping maintained with them.
    r#"
    CREATE TABLE results (
        id          INTEGER PRIMARY KEY,
        agent       TEXT    NOT NULL,
        seq         INTEGER NOT NULL,
        check_name  TEXT    NOT NULL,
        location    TEXT    NOT NULL,
        kind        TEXT    NOT NULL,
        started_at  INTEGER NOT NULL,           -- ms since the Unix epoch
        success     INTEGER NOT NULL,
        class       TEXT,                       -- failure class, NULL on success
        received_at INTEGER NOT NULL,           -- ms since the Unix epoch
        raw         BLOB    NOT NULL,           -- the JSON exactly as sent
        UNIQUE (agent, seq)
    );
    CREATE INDEX results_check_started ON results (check_name, started_at);

    CREATE TABLE agents (
        agent      TEXT PRIMARY KEY,
        location   TEXT    NOT NULL,
        max_seq    INTEGER NOT NULL,
        results    INTEGER NOT NULL,
        duplicates INTEGER NOT NULL,
        last_seen  INTEGER NOT NULL             -- ms since the Unix epoch
    );

    -- The newest result per (check, location): rebuilds the probe metrics at start.
    CREATE TABLE latest (
        check_name TEXT    NOT NULL,
        location   TEXT    NOT NULL,
        agent      TEXT    NOT NULL,
        seq        INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        raw        BLOB    NOT NULL,
        PRIMARY KEY (check_name, location)
    );

    -- Results per (check, location, class); class '' counts successes.
    -- Keeps slaprobe_probes_total and _failures_total monotonic across restarts.
    CREATE TABLE probe_counts (
        check_name TEXT    NOT NULL,
        location   TEXT    NOT NULL,
        class      TEXT    NOT NULL,
        count      INTEGER NOT NULL,
        PRIMARY KEY (check_name, location, class)
    );
    "#,
    // 2: the feed (batch numbers in commit order) and the SLA ledger's rows.
    r#"
    ALTER TABLE results ADD COLUMN batch_no INTEGER;   -- NULL: stored before migration 2
    CREATE INDEX results_batch ON results (batch_no);

    -- The last batch number handed out; every batch transaction takes the next.
    CREATE TABLE feed (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        last_batch INTEGER NOT NULL
    );
    INSERT INTO feed (id, last_batch) VALUES (1, 0);

    -- The SLA ledger: the feed cursor its rows reflect and its write version.
    CREATE TABLE ledger_state (
        id      INTEGER PRIMARY KEY CHECK (id = 1),
        cursor  INTEGER NOT NULL,
        version INTEGER NOT NULL
    );
    INSERT INTO ledger_state (id, cursor, version) VALUES (1, 0, 0);

    -- Its rows, opaque to the store: (contract, '', -1) per contract,
    -- (contract, month, -1) per month, (contract, month, chunk) per slot chunk.
    CREATE TABLE ledger (
        contract TEXT    NOT NULL,
        month    TEXT    NOT NULL,
        chunk    INTEGER NOT NULL,
        version  INTEGER NOT NULL,
        data     BLOB    NOT NULL,
        PRIMARY KEY (contract, month, chunk)
    );
    CREATE INDEX ledger_version ON ledger (version);
    "#,
    // 3: compacted evidence (see `super::compact` for the format), the seqs
    // compacted per agent (dedup after the rows are gone), `latest` carrying
    // what it read from `results`, and the archived months.
    r#"
    CREATE TABLE evidence_chunks (
        id         INTEGER PRIMARY KEY,
        check_name TEXT    NOT NULL,
        agent      TEXT    NOT NULL,
        location   TEXT    NOT NULL,
        day        INTEGER NOT NULL,        -- UTC day of started_at: floor(started_at / 86400000)
        n          INTEGER NOT NULL,        -- results in data
        frames     TEXT    NOT NULL,        -- JSON [[len, n, seq_min, seq_max], ...]
        data       BLOB    NOT NULL,        -- concatenated zstd frames
        UNIQUE (check_name, day, agent, location)
    );
    CREATE INDEX evidence_chunks_day ON evidence_chunks (day);

    CREATE TABLE compacted_seqs (
        agent TEXT    NOT NULL,
        lo    INTEGER NOT NULL,
        hi    INTEGER NOT NULL,             -- inclusive
        PRIMARY KEY (agent, lo)
    ) WITHOUT ROWID;

    ALTER TABLE latest ADD COLUMN success INTEGER;
    ALTER TABLE latest ADD COLUMN class TEXT;
    ALTER TABLE latest ADD COLUMN batch_no INTEGER;
    UPDATE latest SET
        success  = (SELECT r.success  FROM results r WHERE r.agent = latest.agent AND r.seq = latest.seq),
        class    = (SELECT r.class    FROM results r WHERE r.agent = latest.agent AND r.seq = latest.seq),
        batch_no = (SELECT r.batch_no FROM results r WHERE r.agent = latest.agent AND r.seq = latest.seq);

    CREATE TABLE archives (
        month       TEXT    PRIMARY KEY,    -- YYYY-MM
        archived_at INTEGER NOT NULL,       -- ms since the Unix epoch
        results     INTEGER NOT NULL,       -- results in the bundle
        sha256      TEXT    NOT NULL,       -- of the bundle's results.jsonl
        pruned_at   INTEGER,                -- when its evidence was dropped (retention)
        pruned      INTEGER NOT NULL DEFAULT 0
    );
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;
