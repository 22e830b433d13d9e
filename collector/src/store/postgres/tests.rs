//! Unit tests of the PostgreSQL backend's pure parts.

use super::*;

#[test]
fn urls_are_described_without_password() {
    let d = describe_url("postgres://slaprobe:s3cret@db.internal:5433/probes");
    assert_eq!(d, "postgres://slaprobe@db.internal:5433/probes");
    assert!(!describe_url("postgres://u:s3cret@[bad").contains("s3cret"));
}

#[test]
fn urls_are_validated_without_echo() {
    assert!(validate_url("postgres://u:p@127.0.0.1:5432/db").is_ok());
    assert!(validate_url("postgresql://u@h/db").is_ok());
    for bad in [
        "mysql://u:s3cret@h/db",
        "postgres://u:s3cret@h/db?sslmode=sometimes",
        "postgres://u:s3cret@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        "postgres://u:s3cret@h/db?bogus=1",
    ] {
        let e = validate_url(bad).unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
    }
}
