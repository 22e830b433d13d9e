//! The PostgreSQL schema: its migrations, applied in order by `crate::store::migrate`.

/// Schema migrations, applied in order; the index + 1 is the version (the
/// same numbering as SQLite's). Never edit one that has shipped: add the next.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: results kept whole, and the bookkeeping maintained with them.
    r#"
    CREATE TABLE results (
        id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        agent       TEXT COLLATE "C" NOT NULL,
        seq         BIGINT  NOT NULL,
        check_name  TEXT COLLATE "C" NOT NULL,
        location    TEXT COLLATE "C" NOT NULL,
        kind        TEXT    NOT NULL,
        started_at  BIGINT  NOT NULL,           -- ms since the Unix epoch
        success     BOOLEAN NOT NULL,
        class       TEXT COLLATE "C",           -- failure class, NULL on success
        received_at BIGINT  NOT NULL,           -- ms since the Unix epoch
        raw         BYTEA   NOT NULL,           -- the JSON exactly as sent
        UNIQUE (agent, seq)
    );
    CREATE INDEX results_check_started ON results (check_name, started_at);

    CREATE TABLE agents (
        agent      TEXT COLLATE "C" PRIMARY KEY,
        location   TEXT COLLATE "C" NOT NULL,
        max_seq    BIGINT NOT NULL,
        results    BIGINT NOT NULL,
        duplicates BIGINT NOT NULL,
        last_seen  BIGINT NOT NULL              -- ms since the Unix epoch
    );

    -- The newest result per (check, location): rebuilds the probe metrics at start.
    CREATE TABLE latest (
        check_name TEXT COLLATE "C" NOT NULL,
        location   TEXT COLLATE "C" NOT NULL,
        agent      TEXT COLLATE "C" NOT NULL,
        seq        BIGINT NOT NULL,
        started_at BIGINT NOT NULL,
        raw        BYTEA  NOT NULL,
        PRIMARY KEY (check_name, location)
    );

    -- Results per (check, location, class); class '' counts successes.
    CREATE TABLE probe_counts (
        check_name TEXT COLLATE "C" NOT NULL,
        location   TEXT COLLATE "C" NOT NULL,
        class      TEXT COLLATE "C" NOT NULL,
        count      BIGINT NOT NULL,
        PRIMARY KEY (check_name, location, class)
    );
    "#,
    // 2: the feed (batch numbers in commit order) and the SLA ledger's rows.
    r#"
    ALTER TABLE results ADD COLUMN batch_no BIGINT;    -- NULL: stored before migration 2
    CREATE INDEX results_batch ON results (batch_no);

    CREATE TABLE feed (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        last_batch BIGINT NOT NULL
    );
    INSERT INTO feed (id, last_batch) VALUES (1, 0);

    CREATE TABLE ledger_state (
        id      INTEGER PRIMARY KEY CHECK (id = 1),
        cursor  BIGINT NOT NULL,
        version BIGINT NOT NULL
    );
    INSERT INTO ledger_state (id, cursor, version) VALUES (1, 0, 0);

    CREATE TABLE ledger (
        contract TEXT COLLATE "C" NOT NULL,
        month    TEXT COLLATE "C" NOT NULL,
        chunk    BIGINT NOT NULL,
        version  BIGINT NOT NULL,
        data     BYTEA  NOT NULL,
        PRIMARY KEY (contract, month, chunk)
    );
    CREATE INDEX ledger_version ON ledger (version);
    "#,
    // 3: compacted evidence (`crate::store::compact`), the compacted seqs per
    // agent, `latest` carrying what it read from `results`, archived months.
    r#"
    CREATE TABLE evidence_chunks (
        id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        check_name TEXT COLLATE "C" NOT NULL,
        agent      TEXT COLLATE "C" NOT NULL,
        location   TEXT COLLATE "C" NOT NULL,
        day        BIGINT NOT NULL,         -- UTC day of started_at: floor(started_at / 86400000)
        n          BIGINT NOT NULL,
        frames     TEXT   NOT NULL,         -- JSON [[len, n, seq_min, seq_max], ...]
        data       BYTEA  NOT NULL,         -- concatenated zstd frames
        UNIQUE (check_name, day, agent, location)
    );
    -- Already compressed: keep it out of line and uncompressed, so a
    -- frame is read with substring() without detoasting the whole value.
    ALTER TABLE evidence_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
    CREATE INDEX evidence_chunks_day ON evidence_chunks (day);

    CREATE TABLE compacted_seqs (
        agent TEXT COLLATE "C" NOT NULL,
        lo    BIGINT NOT NULL,
        hi    BIGINT NOT NULL,
        PRIMARY KEY (agent, lo)
    );

    ALTER TABLE latest ADD COLUMN success BOOLEAN;
    ALTER TABLE latest ADD COLUMN class TEXT COLLATE "C";
    ALTER TABLE latest ADD COLUMN batch_no BIGINT;
    UPDATE latest l SET success = r.success, class = r.class, batch_no = r.batch_no
      FROM results r WHERE r.agent = l.agent AND r.seq = l.seq;

    CREATE TABLE archives (
        month       TEXT COLLATE "C" PRIMARY KEY,
        archived_at BIGINT NOT NULL,
        results     BIGINT NOT NULL,
        sha256      TEXT   NOT NULL,
        pruned_at   BIGINT,
        pruned      BIGINT NOT NULL DEFAULT 0
    );
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;
