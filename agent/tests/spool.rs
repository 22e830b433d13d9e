//! The agent's disk spool: order, acks, seq across restarts, torn and corrupt
//! tails, the size bound, a model-based random test, and a throughput figure.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use slaprobe_agent::spool::{Spool, SpoolOptions};
use slaprobe_wire::{CheckKind, ProbeResult, Timestamp};

fn opts() -> SpoolOptions {
    SpoolOptions {
        max_bytes: 64 * 1024 * 1024,
        fsync_every: Duration::from_secs(1),
        segment_bytes: 8 * 1024 * 1024,
    }
}

/// A result whose JSON is a little over `pad` bytes.
fn result(i: usize, pad: usize) -> ProbeResult {
    ProbeResult {
        seq: 0,
        agent: "ams-1".into(),
        location: "ams".into(),
        check: format!("check-{i}-{}", "x".repeat(pad)),
        kind: CheckKind::Http,
        target: "https://www.acme.example/".into(),
        started_at: Timestamp::from_second(1_790_000_000).unwrap(),
        duration_seconds: 0.183,
        success: true,
        failure: None,
        http: None,
        tls: None,
        dns: None,
        page: None,
        domain: None,
        browser: None,
    }
}

fn append(spool: &mut Spool, i: usize) -> u64 {
    spool.append(&mut result(i, 100)).unwrap()
}

fn seqs(records: &[(u64, Vec<u8>)]) -> Vec<u64> {
    records.iter().map(|(s, _)| *s).collect()
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

/// Byte offsets of each record in a segment (format in the module doc:
/// len u32 LE, crc u32 LE, seq u64 LE, payload).
fn record_offsets(path: &Path) -> Vec<u64> {
    let mut bytes = Vec::new();
    fs::File::open(path)
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    let mut offsets = Vec::new();
    let mut off = 0usize;
    while off + 16 <= bytes.len() {
        offsets.push(off as u64);
        let len = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
        off += 16 + len;
    }
    offsets
}

/// Captures what the spool logs while `f` runs.
fn logs_of<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf(Arc::new(Mutex::new(Vec::new())));
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
    (out, text)
}

#[test]
fn append_read_ack_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), opts()).unwrap();
    assert_eq!(
        (spool.last_seq(), spool.acked(), spool.unacked()),
        (0, 0, 0)
    );
    for i in 1..=10 {
        let mut r = result(i, 100);
        assert_eq!(spool.append(&mut r).unwrap(), i as u64);
        assert_eq!(r.seq, i as u64, "append sets the seq on the result");
    }
    assert_eq!(spool.unacked(), 10);
    assert!(spool.bytes() > 10 * 100);

    let first = spool.read_from(0, 4).unwrap();
    assert_eq!(seqs(&first), [1, 2, 3, 4]);
    for (seq, raw) in &first {
        let r: ProbeResult = serde_json::from_slice(raw).unwrap();
        assert_eq!(r.seq, *seq);
        assert!(r.check.starts_with(&format!("check-{seq}-")));
    }
    assert_eq!(
        seqs(&spool.read_from(4, 100).unwrap()),
        (5..=10).collect::<Vec<_>>()
    );
    assert!(spool.read_from(10, 100).unwrap().is_empty());
    assert!(spool.read_from(3, 0).unwrap().is_empty());

    spool.ack(6).unwrap();
    assert_eq!((spool.acked(), spool.unacked()), (6, 4));
    // Nothing at or below the acked mark comes back, whatever is asked.
    assert_eq!(seqs(&spool.read_from(0, 100).unwrap()), [7, 8, 9, 10]);
    spool.ack(3).unwrap(); // an older ack changes nothing
    assert_eq!(spool.acked(), 6);
    spool.ack(99).unwrap(); // never past what exists
    assert_eq!((spool.acked(), spool.unacked()), (10, 0));
    assert_eq!(append(&mut spool, 11), 11);
    assert_eq!(seqs(&spool.read_from(10, 100).unwrap()), [11]);
}

#[test]
fn reopen_continues_seq_and_replays_unacked() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut spool = Spool::open(dir.path(), opts()).unwrap();
        for i in 1..=5 {
            append(&mut spool, i);
        }
        spool.sync().unwrap();
    }
    let mut spool = Spool::open(dir.path(), opts()).unwrap();
    assert_eq!((spool.last_seq(), spool.unacked()), (5, 5));
    assert_eq!(seqs(&spool.read_from(0, 100).unwrap()), [1, 2, 3, 4, 5]);
    spool.ack(3).unwrap();
    drop(spool);

    let mut spool = Spool::open(dir.path(), opts()).unwrap();
    assert_eq!(
        (spool.acked(), spool.last_seq(), spool.unacked()),
        (3, 5, 2)
    );
    assert_eq!(seqs(&spool.read_from(0, 100).unwrap()), [4, 5]);
    assert_eq!(append(&mut spool, 6), 6);
}

/// The first seq named by the only segment file, which must be empty.
fn only_the_floor_marker(dir: &Path) -> u64 {
    let segs = segment_files(dir);
    assert_eq!(segs.len(), 1, "{segs:?}");
    assert_eq!(fs::metadata(&segs[0]).unwrap().len(), 0);
    let name = segs[0].file_name().unwrap().to_str().unwrap();
    name.trim_start_matches("seg-")
        .trim_end_matches(".log")
        .parse()
        .unwrap()
}

#[test]
fn seq_survives_full_trim_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let small = SpoolOptions {
        segment_bytes: 1024,
        ..opts()
    };
    {
        let mut spool = Spool::open(dir.path(), small).unwrap();
        for i in 1..=20 {
            append(&mut spool, i);
        }
        let segs = segment_files(dir.path());
        assert!(segs.len() > 3, "small segments roll");
        let kept = fs::read(&segs[0]).unwrap();
        spool.ack(20).unwrap();
        assert_eq!((spool.unacked(), spool.bytes()), (0, 0));
        assert_eq!(
            only_the_floor_marker(dir.path()),
            21,
            "every acked segment is deleted; an empty one names the next seq"
        );
        // As if one delete had been lost in a crash: open trims it again.
        fs::write(&segs[0], kept).unwrap();
    }
    let mut spool = Spool::open(dir.path(), small).unwrap();
    assert_eq!(only_the_floor_marker(dir.path()), 21);
    assert_eq!(
        (
            spool.last_seq(),
            spool.acked(),
            spool.unacked(),
            spool.bytes()
        ),
        (20, 20, 0, 0)
    );
    assert!(spool.read_from(0, 10).unwrap().is_empty());
    assert_eq!(append(&mut spool, 21), 21);
    drop(spool);
    // And once more, with the new record unacked on disk.
    let mut spool = Spool::open(dir.path(), small).unwrap();
    assert_eq!(seqs(&spool.read_from(0, 10).unwrap()), [21]);
    assert_eq!(append(&mut spool, 22), 22);
}

#[test]
fn torn_tail_is_cut_and_the_rest_replays() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut spool = Spool::open(dir.path(), opts()).unwrap();
        for i in 1..=10 {
            append(&mut spool, i);
        }
        spool.sync().unwrap();
    }
    // Power loss in the middle of writing record 10.
    let seg = segment_files(dir.path()).pop().unwrap();
    let offsets = record_offsets(&seg);
    let len = fs::metadata(&seg).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(offsets[9] + 20)
        .unwrap();
    assert!(offsets[9] + 20 < len);

    let (spool, logs) = logs_of(|| Spool::open(dir.path(), opts()));
    let mut spool = spool.unwrap();
    assert!(
        logs.contains("WARN") && logs.contains("torn or corrupt"),
        "{logs}"
    );
    assert_eq!(
        fs::metadata(&seg).unwrap().len(),
        offsets[9],
        "truncated to the last good record"
    );
    assert_eq!(spool.last_seq(), 9);
    assert_eq!(
        seqs(&spool.read_from(0, 100).unwrap()),
        (1..=9).collect::<Vec<_>>()
    );
    assert_eq!(append(&mut spool, 10), 10);
    assert_eq!(append(&mut spool, 11), 11);
    drop(spool);
    let mut spool = Spool::open(dir.path(), opts()).unwrap();
    assert_eq!(
        seqs(&spool.read_from(0, 100).unwrap()),
        (1..=11).collect::<Vec<_>>()
    );

    // Only a partial header left.
    let offsets = record_offsets(&seg);
    drop(spool);
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(offsets[10] + 5)
        .unwrap();
    let (spool, logs) = logs_of(|| Spool::open(dir.path(), opts()));
    assert!(logs.contains("partial record header"), "{logs}");
    assert_eq!(spool.unwrap().last_seq(), 10);
}

/// Flips one byte of `seg` at `at`.
fn flip(seg: &Path, at: u64) {
    let mut f = OpenOptions::new().read(true).write(true).open(seg).unwrap();
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&[b[0] ^ 0x40]).unwrap();
}

/// A corrupt record costs only itself: open resynchronises on the next valid
/// frame, keeps every intact record after it (in a segment of its own, so
/// seqs stay consecutive per segment) and counts the loss.
#[test]
fn a_corrupt_record_costs_only_itself_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut spool = Spool::open(dir.path(), opts()).unwrap();
        for i in 1..=10 {
            append(&mut spool, i);
        }
        spool.sync().unwrap();
    }
    let seg = segment_files(dir.path()).pop().unwrap();
    // Record 8's checksum (bytes 4..8 of its header).
    flip(&seg, record_offsets(&seg)[7] + 5);
    let (spool, logs) = logs_of(|| Spool::open(dir.path(), opts()));
    let mut spool = spool.unwrap();
    assert!(logs.contains("checksum mismatch"), "{logs}");
    assert_eq!(
        seqs(&spool.read_from(0, 100).unwrap()),
        [1, 2, 3, 4, 5, 6, 7, 9, 10],
        "the records after the damaged one are kept"
    );
    assert_eq!(spool.dropped_corrupt(), 1);
    assert_eq!(segment_files(dir.path()).len(), 2, "split at the damage");
    assert_eq!(
        append(&mut spool, 11),
        11,
        "seq continues after the highest good record"
    );

    // A persisted ack, then damage in the middle of record 6's payload.
    spool.ack(2).unwrap();
    drop(spool);
    flip(&seg, record_offsets(&seg)[5] + 20);
    let (spool, logs) = logs_of(|| Spool::open(dir.path(), opts()));
    let mut spool = spool.unwrap();
    assert!(logs.contains("checksum mismatch"), "{logs}");
    assert_eq!(
        seqs(&spool.read_from(0, 100).unwrap()),
        [3, 4, 5, 7, 9, 10, 11]
    );
    assert_eq!(spool.dropped_corrupt(), 1);
    assert_eq!(spool.last_seq(), 11);
    assert_eq!(append(&mut spool, 12), 12);
    drop(spool);
    // Clean now: a third open finds nothing wrong.
    let (spool, logs) = logs_of(|| Spool::open(dir.path(), opts()));
    let mut spool = spool.unwrap();
    assert!(!logs.contains("corrupt"), "{logs}");
    assert_eq!(spool.dropped_corrupt(), 0);
    assert_eq!(
        seqs(&spool.read_from(0, 100).unwrap()),
        [3, 4, 5, 7, 9, 10, 11, 12]
    );
}

/// A damaged length field is bounded before anything is allocated for it,
/// on open and when the disk changes under an open spool.
#[test]
fn a_huge_length_field_is_never_allocated_for() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), opts()).unwrap();
    for i in 1..=10 {
        append(&mut spool, i);
    }
    spool.sync().unwrap();
    let seg = segment_files(dir.path()).pop().unwrap();
    let at = record_offsets(&seg)[4];
    {
        let mut f = OpenOptions::new().write(true).open(&seg).unwrap();
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(&0xFFFF_FFF0u32.to_le_bytes()).unwrap();
    }
    // Under the open spool: the rest of the segment is skipped and counted.
    let got = spool.read_from(0, 100).expect("no allocation, no error");
    assert_eq!(seqs(&got), [1, 2, 3, 4]);
    assert_eq!(spool.dropped_corrupt(), 6);
    spool.read_from(0, 100).unwrap();
    assert_eq!(spool.dropped_corrupt(), 6, "counted once");
    drop(spool);
    // On open: resynchronised after the damaged record.
    let (spool, logs) = logs_of(|| Spool::open(dir.path(), opts()));
    let mut spool = spool.unwrap();
    assert!(logs.contains("length beyond"), "{logs}");
    assert_eq!(
        seqs(&spool.read_from(0, 100).unwrap()),
        [1, 2, 3, 4, 6, 7, 8, 9, 10]
    );
    assert_eq!(spool.dropped_corrupt(), 1);
}

#[test]
fn size_bound_drops_the_oldest_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let bounded = SpoolOptions {
        max_bytes: 64 * 1024,
        segment_bytes: 8 * 1024,
        ..opts()
    };
    let mut spool = Spool::open(dir.path(), bounded).unwrap();
    for i in 1..=50 {
        append(&mut spool, i);
    }
    spool.ack(20).unwrap();
    let (_, logs) = logs_of(|| {
        for i in 51..=1000 {
            append(&mut spool, i);
            assert!(
                spool.bytes() <= bounded.max_bytes,
                "over the bound: {}",
                spool.bytes()
            );
        }
    });
    assert!(logs.contains("spool full"), "{logs}");
    let dropped = spool.dropped_total();
    assert!(dropped > 0);
    // Acked results are not counted as dropped: 980 were unacked in all.
    assert_eq!(dropped + spool.unacked(), 980);
    let left = spool.read_from(0, 10_000).unwrap();
    let want: Vec<u64> = (1000 - spool.unacked() + 1..=1000).collect();
    assert_eq!(seqs(&left), want, "the newest survive, in order");
    assert_eq!(left[0].0, 20 + dropped + 1);
    assert!(segment_files(dir.path()).len() <= 9);
    assert_eq!(spool.last_seq(), 1000);

    // After a restart the bound still holds and seqs go on.
    drop(spool);
    let mut spool = Spool::open(dir.path(), bounded).unwrap();
    assert_eq!(spool.dropped_total(), 0, "a counter of this process");
    assert_eq!(append(&mut spool, 1001), 1001);
    assert!(spool.bytes() <= bounded.max_bytes);
}

#[test]
fn a_bound_smaller_than_a_segment_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = SpoolOptions {
        max_bytes: 2000,
        segment_bytes: 1024 * 1024,
        ..opts()
    };
    let mut spool = Spool::open(dir.path(), tiny).unwrap();
    for i in 1..=100 {
        append(&mut spool, i);
        assert!(spool.bytes() <= tiny.max_bytes);
    }
    assert_eq!(spool.dropped_total() + spool.unacked(), 100);
    let left = spool.read_from(0, 100).unwrap();
    assert_eq!(left.last().unwrap().0, 100);
}

/// What the spool should hold: unacked results by seq.
#[derive(Default)]
struct Model {
    records: BTreeMap<u64, Vec<u8>>,
    acked: u64,
    last: u64,
}

/// Random append / ack / read / reopen / sync sequences against the model,
/// with small segments so that rolling and trimming happen all the time.
/// With `max_bytes` small the spool also drops; drops always take the oldest
/// unacked results, so the model drops as many oldest as the spool says.
/// Returns (results dropped, reopens) so callers can check both happened.
fn model_run(seed: u64, ops: usize, bounded: bool) -> (u64, u32) {
    let dir = tempfile::tempdir().unwrap();
    let o = SpoolOptions {
        max_bytes: if bounded { 8 * 1024 } else { 1 << 30 },
        fsync_every: Duration::from_millis(50),
        segment_bytes: 3000,
    };
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut spool = Spool::open(dir.path(), o).unwrap();
    let mut m = Model::default();
    let mut dropped_here = 0u64; // since the last open
    let mut shipper_after = 0u64;
    let (mut dropped_all, mut reopens) = (0u64, 0u32);
    for step in 0..ops {
        let ctx = format!("seed {seed} step {step}");
        match rng.u32(0..100) {
            0..=49 => {
                let mut r = result(step, rng.usize(0..900));
                let seq = spool.append(&mut r).unwrap();
                assert_eq!(seq, m.last + 1, "{ctx}");
                m.last = seq;
                m.records.insert(seq, serde_json::to_vec(&r).unwrap());
                let lost = m.records.len() as u64 - spool.unacked();
                if lost > 0 {
                    assert!(bounded, "{ctx}: dropped without a bound");
                    let oldest: Vec<u64> = m.records.keys().take(lost as usize).copied().collect();
                    for s in oldest {
                        m.records.remove(&s);
                    }
                    dropped_here += lost;
                    dropped_all += lost;
                }
                assert_eq!(spool.dropped_total(), dropped_here, "{ctx}");
                if bounded {
                    assert!(spool.bytes() <= o.max_bytes, "{ctx}");
                }
            }
            50..=61 => {
                let upto = rng.u64(m.acked..=m.last + 2);
                spool.ack(upto).unwrap();
                m.acked = m.acked.max(upto.min(m.last));
                m.records.retain(|s, _| *s > m.acked);
            }
            62..=75 => {
                // Random reads anywhere.
                let after = rng.u64(0..=m.last + 1);
                let max = rng.usize(1..40);
                let got = spool.read_from(after, max).unwrap();
                let want: Vec<(u64, Vec<u8>)> = m
                    .records
                    .range(after.max(m.acked) + 1..)
                    .take(max)
                    .map(|(s, r)| (*s, r.clone()))
                    .collect();
                assert_eq!(seqs(&got), seqs(&want), "{ctx}: read_from({after}, {max})");
                assert!(got == want, "{ctx}: payloads differ");
            }
            76..=91 => {
                // A shipper: read forward from its mark, ack what it read.
                let max = rng.usize(1..30);
                let after = shipper_after.max(m.acked);
                let got = spool.read_from(after, max).unwrap();
                let want: Vec<u64> = m
                    .records
                    .range(after + 1..)
                    .take(max)
                    .map(|(s, _)| *s)
                    .collect();
                assert_eq!(seqs(&got), want, "{ctx}: shipper read");
                if let Some((last, _)) = got.last() {
                    shipper_after = *last;
                    if rng.bool() {
                        spool.ack(*last).unwrap();
                        m.acked = *last;
                        m.records.retain(|s, _| *s > m.acked);
                    }
                }
            }
            92..=95 => spool.sync().unwrap(),
            _ => {
                drop(spool);
                spool = Spool::open(dir.path(), o).unwrap();
                dropped_here = 0;
                reopens += 1;
                shipper_after = 0;
            }
        }
        assert_eq!(spool.last_seq(), m.last, "{ctx}");
        assert_eq!(spool.acked(), m.acked, "{ctx}");
        assert_eq!(spool.unacked(), m.records.len() as u64, "{ctx}");
    }
    // Whatever is left replays in full, also after a last restart.
    drop(spool);
    let mut spool = Spool::open(dir.path(), o).unwrap();
    let all = spool.read_from(0, usize::MAX).unwrap();
    assert_eq!(
        seqs(&all),
        m.records.keys().copied().collect::<Vec<_>>(),
        "seed {seed}: final replay"
    );
    (dropped_all, reopens)
}

#[test]
fn model_unbounded() {
    for seed in 1..=4 {
        let (dropped, reopens) = model_run(seed, 600, false);
        assert_eq!(dropped, 0);
        assert!(reopens > 0, "seed {seed} never reopened");
    }
}

#[test]
fn model_bounded() {
    for seed in 11..=14 {
        let (dropped, reopens) = model_run(seed, 600, true);
        assert!(dropped > 0, "seed {seed} never hit the bound");
        assert!(reopens > 0, "seed {seed} never reopened");
    }
}

/// Prints appends/s (fsync every 1 s, and every append) and the cost of
/// reading forward. Asserts only a loose floor.
#[test]
fn throughput() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), opts()).unwrap();
    let template = result(0, 300); // ~0.5 KiB of JSON, like a real http result
    let n = 20_000;
    let t0 = Instant::now();
    for _ in 0..n {
        let mut r = template.clone();
        spool.append(&mut r).unwrap();
    }
    spool.sync().unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let bytes = spool.bytes();
    let t1 = Instant::now();
    let mut after = 0;
    let mut read = 0;
    loop {
        let batch = spool.read_from(after, 1000).unwrap();
        let Some((last, _)) = batch.last() else { break };
        after = *last;
        read += batch.len();
        spool.ack(after).unwrap();
    }
    assert_eq!(read, n);
    let read_secs = t1.elapsed().as_secs_f64();

    let dir0 = tempfile::tempdir().unwrap();
    let mut each = Spool::open(
        dir0.path(),
        SpoolOptions {
            fsync_every: Duration::ZERO,
            ..opts()
        },
    )
    .unwrap();
    let m = 200;
    let t2 = Instant::now();
    for _ in 0..m {
        each.append(&mut template.clone()).unwrap();
    }
    let each_secs = t2.elapsed().as_secs_f64();
    println!(
        "spool throughput: {:.0} appends/s with fsync every 1s ({n} results, {:.1} MiB); \
         read+ack forward {:.0} results/s in batches of 1000; {:.0} appends/s with fsync on every append",
        n as f64 / secs,
        bytes as f64 / (1024.0 * 1024.0),
        n as f64 / read_secs,
        m as f64 / each_secs
    );
    assert!(n as f64 / secs > 1000.0, "fewer than 1000 appends/s");
}

#[test]
fn a_second_open_of_the_same_spool_is_refused_while_the_first_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let first = Spool::open(dir.path(), SpoolOptions::default()).unwrap();
    let err = Spool::open(dir.path(), SpoolOptions::default()).expect_err("second open must fail");
    assert!(
        err.to_string().contains("in use by another process"),
        "{err}"
    );
    drop(first);
    Spool::open(dir.path(), SpoolOptions::default()).expect("free again once the first is closed");
}

/// A crash after the segments are deleted but before `state` is renamed
/// into place must not bring seqs back. Simulated by making the state write
/// fail (a directory where `state.tmp` goes): the ack must then delete
/// nothing, and a restart must continue after every seq ever handed out.
#[test]
fn failed_state_write_deletes_nothing_and_seq_is_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut spool = Spool::open(dir.path(), opts()).unwrap();
        for i in 1..=20 {
            append(&mut spool, i);
        }
        spool.ack(10).unwrap();
        for i in 21..=30 {
            append(&mut spool, i);
        }
        spool.sync().unwrap();
        fs::create_dir(dir.path().join("state.tmp")).unwrap();
        assert!(spool.ack(30).is_err(), "the state write fails");
        assert!(
            !segment_files(dir.path()).is_empty(),
            "no segment deleted before the mark is persisted"
        );
    }
    // The "crash": the process is gone; the failed temp file is cleared.
    fs::remove_dir(dir.path().join("state.tmp")).unwrap();
    let mut spool = Spool::open(dir.path(), opts()).unwrap();
    assert_eq!(spool.last_seq(), 30);
    assert_eq!(append(&mut spool, 31), 31, "no seq reused after the crash");
    // The unacked tail (as far as the disk knows) replays.
    assert_eq!(
        seqs(&spool.read_from(0, 100).unwrap()),
        (11..=31).collect::<Vec<_>>()
    );
}

/// With every segment trimmed and `state` then lost (unreadable), the seq
/// still continues: trim leaves an empty segment named after the next seq.
#[test]
fn unreadable_state_after_a_full_trim_does_not_reuse_seqs() {
    let dir = tempfile::tempdir().unwrap();
    let small = SpoolOptions {
        segment_bytes: 1024,
        ..opts()
    };
    {
        let mut spool = Spool::open(dir.path(), small).unwrap();
        for i in 1..=20 {
            append(&mut spool, i);
        }
        spool.ack(20).unwrap();
        assert_eq!(spool.bytes(), 0);
    }
    fs::write(dir.path().join("state"), b"{\"acked\": 2").unwrap();
    let (spool, logs) = logs_of(|| Spool::open(dir.path(), small));
    let mut spool = spool.unwrap();
    assert!(logs.contains("state unreadable"), "{logs}");
    assert_eq!(spool.last_seq(), 20);
    assert_eq!(append(&mut spool, 21), 21);
    // And the state written from now on never goes below the floor.
    spool.ack(21).unwrap();
    drop(spool);
    let mut spool = Spool::open(dir.path(), small).unwrap();
    assert_eq!(append(&mut spool, 22), 22);
}

/// A 409 from the collector (it holds other bytes under our seqs up to its
/// max_seq): the unacked results at or below that mark are re-appended under
/// new seqs past it, nothing is lost and no seq at or below it is sent again.
#[test]
fn move_past_a_conflict_keeps_every_result_under_a_new_seq() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), opts()).unwrap();
    for i in 1..=10 {
        append(&mut spool, i);
    }
    spool.ack(3).unwrap();
    // The collector already holds seqs up to 40 from a previous life.
    assert_eq!(spool.move_past(40).unwrap(), 7);
    assert_eq!(spool.acked(), 40);
    let got = spool.read_from(0, 100).unwrap();
    assert_eq!(seqs(&got), (41..=47).collect::<Vec<_>>());
    let checks: Vec<String> = got
        .iter()
        .map(|(_, raw)| {
            let r: ProbeResult = serde_json::from_slice(raw).unwrap();
            r.check.split('-').nth(1).unwrap().to_string()
        })
        .collect();
    assert_eq!(checks, ["4", "5", "6", "7", "8", "9", "10"]);
    drop(spool);
    let mut spool = Spool::open(dir.path(), opts()).unwrap();
    assert_eq!(append(&mut spool, 11), 48);
    // A max_seq below what we hold only re-numbers the ones at or below it.
    assert_eq!(spool.move_past(44).unwrap(), 4);
    assert_eq!(
        seqs(&spool.read_from(0, 100).unwrap()),
        (45..=52).collect::<Vec<_>>()
    );
}
