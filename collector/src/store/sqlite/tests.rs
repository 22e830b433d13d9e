//! Unit tests of the SQLite backend.

use super::*;

use slaprobe_wire::{CheckKind, FailureClass};

fn row(seq: u64, check: &str, started_at_ms: i64, class: Option<FailureClass>) -> NewResult {
    NewResult {
        seq,
        check: check.into(),
        location: "ams".into(),
        kind: CheckKind::Http,
        started_at_ms,
        success: class.is_none(),
        class,
        raw: format!("{{\"seq\":{seq}}}").into_bytes(),
    }
}

#[tokio::test]
async fn batches_duplicates_and_reads() {
    let dir = tempfile::tempdir().unwrap();
    let store = tokio::task::spawn_blocking({
        let p = dir.path().to_path_buf();
        move || Store::open(&p)
    })
    .await
    .unwrap()
    .unwrap();
    let out = store
        .insert_batch(
            "a1",
            "ams",
            1000,
            vec![
                row(1, "w", 10, None),
                row(2, "w", 20, Some(FailureClass::Timeout)),
                row(4, "x", 5, None),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        out,
        BatchOutcome {
            inserted: vec![true, true, true],
            stored: 3,
            duplicates: 0,
            batch_no: 1,
        }
    );
    let out = store
        .insert_batch(
            "a1",
            "ams",
            2000,
            vec![row(2, "w", 20, None), row(2, "w", 20, None)],
        )
        .await
        .unwrap();
    assert_eq!((out.stored, out.duplicates), (0, 2));

    let agents = store.read(|r| r.agents()).await.unwrap();
    assert_eq!(agents.len(), 1);
    assert_eq!(
        (
            agents[0].max_seq,
            agents[0].results,
            agents[0].duplicates,
            agents[0].missing()
        ),
        (4, 3, 2, 1)
    );
    assert_eq!(agents[0].last_seen_ms, 2000);

    let latest = store.read(|r| r.latest()).await.unwrap();
    assert_eq!(latest.len(), 2);
    assert_eq!(
        (
            latest[0].check.as_str(),
            latest[0].seq,
            latest[0].class.as_deref()
        ),
        ("w", 2, Some("timeout"))
    );

    let counts = store.read(|r| r.probe_counts()).await.unwrap();
    assert_eq!(counts.len(), 3);

    let rs = store
        .read(|r| r.results_between(&["w".to_string()], 0, 15))
        .await
        .unwrap();
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0].raw, "{\"seq\":1}");
    store.close().await;
    assert!(matches!(
        store.insert_batch("a1", "ams", 1, vec![]).await,
        Err(StoreError::Closed)
    ));

    // Reopen: migrations are idempotent, data kept.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.read(|r| r.count_results()).await.unwrap(), 3);
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let c = Connection::open(dir.path().join(DB_FILE)).unwrap();
    c.execute("INSERT INTO schema_version (version) VALUES (99)", [])
        .unwrap();
    drop(c);
    assert!(matches!(
        Store::open(dir.path()),
        Err(StoreError::NewerSchema { found: 99, .. })
    ));
    assert!(matches!(
        Reader::open(dir.path()),
        Err(StoreError::NewerSchema { .. })
    ));
}
