#!/usr/bin/python3
"""Recompute a slaprobe report's evidence digest from the SQLite store, on its own.

Reads data_dir/slaprobe.db with the standard sqlite3 module (read-only, safe
while the collector runs) and the `zstandard` package (Debian:
python3-zstandard), following the on-disk format documented in the README
("Recomputing the evidence digest"): uncompacted rows of `results` plus the
zstd frames of `evidence_chunks`. Prints the count and the SHA-256 of the
canonical JSONL (each result's raw bytes then "\\n", ordered by agent
bytewise, then seq), which must equal the report's `evidence`. The selection
is the report's `checks` plus its `canaries` (rule 1a read them).

    scripts/evidence_digest.py --db data/slaprobe.db --report report.json
    scripts/evidence_digest.py --db data/slaprobe.db --checks a,b --from-ms F --to-ms T
    ... [--output evidence.jsonl]   # also write the JSONL itself
"""

import argparse
import datetime
import hashlib
import json
import sqlite3
import struct
import sys

import zstandard

DAY_MS = 86_400_000


def ms(rfc3339):
    """Milliseconds since the epoch of an RFC 3339 instant (period bounds are whole seconds)."""
    t = datetime.datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
    return int(t.timestamp()) * 1000


def frame_records(blob):
    """(seq, started_at, raw) of every record of one decompressed frame."""
    data = zstandard.ZstdDecompressor().decompress(blob)
    p = 0
    while p < len(data):
        seq, started = struct.unpack_from("<Qq", data, p)
        p += 16
        p += 1  # success
        class_len = data[p]
        p += 1 + class_len
        (raw_len,) = struct.unpack_from("<I", data, p)
        p += 4
        yield seq, started, bytes(data[p : p + raw_len])
        p += raw_len


def evidence(db, checks, from_ms, to_ms):
    """Yields the raw bytes of the selected results in canonical order, one agent at a time."""
    marks = ",".join("?" * len(checks))
    day_lo, day_hi = from_ms // DAY_MS, (to_ms - 1) // DAY_MS
    raw_sel = f"check_name IN ({marks}) AND started_at >= ? AND started_at < ?"
    chunk_sel = f"check_name IN ({marks}) AND day >= ? AND day <= ?"
    raw_args = [*checks, from_ms, to_ms]
    chunk_args = [*checks, day_lo, day_hi]
    agents = {r[0] for r in db.execute(f"SELECT DISTINCT agent FROM results WHERE {raw_sel}", raw_args)}
    agents |= {r[0] for r in db.execute(f"SELECT DISTINCT agent FROM evidence_chunks WHERE {chunk_sel}", chunk_args)}
    for agent in sorted(agents, key=lambda a: a.encode()):
        rows = [
            (seq, bytes(raw))
            for seq, raw in db.execute(f"SELECT seq, raw FROM results WHERE agent = ? AND {raw_sel}", [agent, *raw_args])
        ]
        for frames, data in db.execute(
            f"SELECT frames, data FROM evidence_chunks WHERE agent = ? AND {chunk_sel}", [agent, *chunk_args]
        ):
            offset = 0
            for length, _n, _lo, _hi in json.loads(frames):
                for seq, started, raw in frame_records(data[offset : offset + length]):
                    if from_ms <= started < to_ms:
                        rows.append((seq, raw))
                offset += length
        rows.sort(key=lambda r: r[0])
        for _seq, raw in rows:
            yield raw


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True, help="data_dir/slaprobe.db")
    ap.add_argument("--report", help="a JSON report: its checks, canaries and period select the results")
    ap.add_argument("--checks", help="comma-separated check names, canaries included (without --report)")
    ap.add_argument("--from-ms", type=int, help="period start, ms since the epoch (without --report)")
    ap.add_argument("--to-ms", type=int, help="period end, exclusive (without --report)")
    ap.add_argument("--output", help="also write the canonical JSONL here")
    a = ap.parse_args()
    if a.report:
        with open(a.report, encoding="utf-8") as f:
            rep = json.load(f)
        # The covered checks and the canaries rule 1a read (reports before canaries have none).
        checks = rep["checks"] + rep.get("canaries", [])
        from_ms, to_ms = ms(rep["period_start"]), ms(rep["period_end"])
    elif a.checks is not None and a.from_ms is not None and a.to_ms is not None:
        checks, from_ms, to_ms = a.checks.split(","), a.from_ms, a.to_ms
    else:
        ap.error("give --report, or --checks with --from-ms and --to-ms")
    db = sqlite3.connect(f"file:{a.db}?mode=ro", uri=True)
    db.execute("BEGIN")  # one snapshot for both tables
    out = open(a.output, "wb") if a.output else None
    h, n = hashlib.sha256(), 0
    for raw in evidence(db, checks, from_ms, to_ms):
        h.update(raw)
        h.update(b"\n")
        n += 1
        if out:
            out.write(raw + b"\n")
    if out:
        out.close()
    db.execute("COMMIT")
    print(n)
    print(h.hexdigest())


if __name__ == "__main__":
    sys.exit(main())
