//! PostgreSQL as users deploy it: a real server that only accepts TLS
//! (`ssl = on`, `hostssl` only) with a certificate from a test CA, and
//! `synchronous_commit = off` as its default. The collector stores and acks
//! over `sslmode=verify-full` with `sslrootcert`; a plain connection, an
//! unknown CA and a certificate for another host are refused (`verify-ca`
//! accepts the last); writer sessions run with `synchronous_commit = on`.

use std::path::Path;

use slaprobe_collector::store::postgres::writer_connection;
use slaprobe_collector::store::{Store, StoreAddress, StoreError};
use slaprobe_tests::certs::{ServerCert, TestCa};
use slaprobe_tests::collector::{TestCollector, write_config};
use slaprobe_tests::postgres::{PgOptions, PgServer};
use slaprobe_tests::prom::sha256_hex;
use slaprobe_tests::results::{TestResult, batch};

const TOKEN: &str = "pg-tls-agent-token";

fn tls_server(dir: &Path, cert: &ServerCert) -> PgServer {
    let (c, k) = cert.write_pem_files(dir, "pg");
    PgServer::start_with(&PgOptions {
        tls: Some((c, k)),
        settings: vec![("synchronous_commit".into(), "off".into())],
    })
}

/// Opens the store at `url` on a plain thread (the sync client must not run
/// inside a tokio runtime).
fn open(url: String) -> Result<Store, StoreError> {
    std::thread::spawn(move || Store::open(&StoreAddress::Postgres(url)))
        .join()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_stores_over_verified_tls_and_plain_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new("slaprobe pg CA");
    let ca_file = ca.write_pem(tmp.path(), "pg-ca.pem");
    let pg = tls_server(tmp.path(), &ca.localhost());
    let url = pg.create_database("slaprobe");
    let verified = format!(
        "{url}?sslmode=verify-full&sslrootcert={}",
        ca_file.display()
    );

    // The server takes no plain connection.
    let e = open(format!("{url}?sslmode=disable")).unwrap_err();
    let e = format!("{e:?}");
    assert!(e.contains("no encryption"), "{e}");

    let toml = format!(
        r#"
[collector]
listen = "127.0.0.1:0"
public_read = true
database_url = "{verified}"

[[agents]]
id = "ams-1"
location = "ams"
token_sha256 = "{}"

[[checks]]
name = "c"
kind = "http"
url = "http://c.example/"
"#,
        sha256_hex(TOKEN)
    );
    let path = write_config(tmp.path(), &toml);
    let c = TestCollector::start(&path).await;
    let (status, ack) = c
        .post_results(
            TOKEN,
            batch(
                "ams-1",
                (1..=5).map(|seq| TestResult::new("ams-1", "ams", seq, "c")),
            ),
        )
        .await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(ack["acked"], 5);
    // Every session of ours on the server is encrypted (and there are some).
    let sessions = pg.psql(
        "postgres",
        "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'slaprobe-collector'",
    );
    let (tls, plain) = sessions.trim().split_once('|').unwrap();
    assert!(tls.parse::<u32>().unwrap() >= 4, "{sessions}");
    assert_eq!(plain, "0", "{sessions}");
    c.stop().await;
    let stored = pg.psql(
        "slaprobe",
        "SELECT count(*) FROM results WHERE agent = 'ams-1'",
    );
    assert_eq!(stored.trim(), "5");
}

#[test]
fn certificates_are_verified_and_writers_commit_synchronously() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new("slaprobe pg CA");
    let ca_file = ca.write_pem(tmp.path(), "pg-ca.pem");
    let other = TestCa::new("someone else's CA");
    let other_file = other.write_pem(tmp.path(), "other-ca.pem");
    let pg = tls_server(tmp.path(), &ca.localhost());
    let url = pg.create_database("slaprobe");

    // An unknown CA: refused under verify-full and verify-ca.
    for mode in ["verify-full", "verify-ca"] {
        let e = open(format!(
            "{url}?sslmode={mode}&sslrootcert={}",
            other_file.display()
        ))
        .unwrap_err();
        assert!(format!("{e:?}").contains("UnknownIssuer"), "{mode}: {e:?}");
    }
    // require without sslrootcert: encrypted, not verified (libpq's meaning).
    let store = open(format!("{url}?sslmode=require")).expect("require connects");
    drop(store);

    // Writers say synchronous_commit = on although the server default is off.
    let verified = format!(
        "{url}?sslmode=verify-full&sslrootcert={}",
        ca_file.display()
    );
    let writer = std::thread::spawn({
        let verified = verified.clone();
        move || {
            let mut w = writer_connection(&verified).expect("writer connects");
            let on: String = w.query_one("SHOW synchronous_commit", &[]).unwrap().get(0);
            on
        }
    })
    .join()
    .unwrap();
    assert_eq!(writer, "on");
    let default = pg.psql("postgres", "SHOW synchronous_commit");
    assert_eq!(
        default.trim(),
        "off",
        "the server default the writers override"
    );

    // A certificate for another host: verify-full refuses, verify-ca accepts.
    let tmp2 = tempfile::tempdir().unwrap();
    let elsewhere = tls_server(tmp2.path(), &ca.wrong_host());
    let url2 = elsewhere.create_database("slaprobe");
    let e = open(format!(
        "{url2}?sslmode=verify-full&sslrootcert={}",
        ca_file.display()
    ))
    .unwrap_err();
    assert!(format!("{e:?}").contains("NotValidForName"), "{e:?}");
    open(format!(
        "{url2}?sslmode=verify-ca&sslrootcert={}",
        ca_file.display()
    ))
    .expect("verify-ca does not compare the host name");
}
