//! Just enough DER for OCSP: a reader over tag-length-value items (single
//! byte tags, definite lengths, as DER requires) and a writer for the few
//! structures a request needs. Certificates, names, algorithm identifiers
//! and CRLs are x509-parser's job; this only walks the OCSP envelope.

use jiff::Timestamp;

pub const INTEGER: u8 = 0x02;
pub const BIT_STRING: u8 = 0x03;
pub const OCTET_STRING: u8 = 0x04;
pub const NULL: u8 = 0x05;
pub const OID: u8 = 0x06;
pub const ENUMERATED: u8 = 0x0a;
pub const GENERALIZED_TIME: u8 = 0x18;
pub const SEQUENCE: u8 = 0x30;

/// Context-specific tag `n`, constructed (EXPLICIT or IMPLICIT of a SEQUENCE).
pub const fn ctx(n: u8) -> u8 {
    0xa0 | n
}

/// Context-specific tag `n`, primitive (IMPLICIT of a primitive type).
pub const fn ctx_prim(n: u8) -> u8 {
    0x80 | n
}

/// A malformed or unexpected DER item, with what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed DER: {0}")]
pub struct DerError(pub &'static str);

/// One item: its tag, its contents, and its whole encoding.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
    pub raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// The items inside a constructed value.
    pub fn reader(&self) -> Reader<'a> {
        Reader(self.value)
    }
}

/// Reads items one after another from a byte slice.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The next item's tag, without consuming it.
    pub fn peek_tag(&self) -> Option<u8> {
        self.0.first().copied()
    }

    /// The next item, whatever its tag.
    pub fn any(&mut self) -> Result<Tlv<'a>, DerError> {
        let b = self.0;
        let (&tag, rest) = b.split_first().ok_or(DerError("truncated item"))?;
        if tag & 0x1f == 0x1f {
            return Err(DerError("multi-byte tag"));
        }
        let (&first, rest) = rest.split_first().ok_or(DerError("truncated length"))?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err(DerError("bad length"));
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, &x| (acc << 8) | usize::from(x));
            (len, &rest[n..])
        };
        if rest.len() < len {
            return Err(DerError("item longer than its container"));
        }
        let header = b.len() - rest.len();
        let raw = &b[..header + len];
        self.0 = &rest[len..];
        Ok(Tlv {
            tag,
            value: &rest[..len],
            raw,
        })
    }

    /// The next item, which must have `tag`.
    pub fn expect(&mut self, tag: u8, what: &'static str) -> Result<Tlv<'a>, DerError> {
        let t = self.any()?;
        if t.tag != tag {
            return Err(DerError(what));
        }
        Ok(t)
    }

    /// The next item if it has `tag` (OPTIONAL and DEFAULT fields).
    pub fn optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, DerError> {
        if self.peek_tag() == Some(tag) {
            self.any().map(Some)
        } else {
            Ok(None)
        }
    }
}

/// A GeneralizedTime's contents ("YYYYMMDDHHMMSS[.fff]Z") as a timestamp.
pub fn generalized_time(value: &[u8]) -> Result<Timestamp, DerError> {
    const BAD: DerError = DerError("bad GeneralizedTime");
    let s = std::str::from_utf8(value).map_err(|_| BAD)?;
    let s = s.strip_suffix('Z').ok_or(BAD)?;
    let (whole, _fraction) = s.split_once('.').unwrap_or((s, ""));
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BAD);
    }
    let n = |r: std::ops::Range<usize>| whole[r].parse::<i16>().map_err(|_| BAD);
    let dt = jiff::civil::DateTime::new(
        n(0..4)?,
        n(4..6)? as i8,
        n(6..8)? as i8,
        n(8..10)? as i8,
        n(10..12)? as i8,
        n(12..14)? as i8,
        0,
    )
    .map_err(|_| BAD)?;
    dt.to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(|_| BAD)
}

/// An INTEGER's contents without the sign-padding zero bytes, so two
/// encodings of one serial compare equal.
pub fn unsigned_int(value: &[u8]) -> &[u8] {
    let mut v = value;
    while v.len() > 1 && v[0] == 0 {
        v = &v[1..];
    }
    v
}

/// Appends one item with `tag` and `contents` to `out`.
pub fn write(out: &mut Vec<u8>, tag: u8, contents: &[u8]) {
    out.push(tag);
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(contents);
}

/// One item as a new buffer.
pub fn item(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(contents.len() + 6);
    write(&mut v, tag, contents);
    v
}

/// Standard base64 with padding (RFC 4648 §4): how a DER request travels
/// in an OCSP GET URL (RFC 6960 appendix A.1).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip() {
        for n in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let body = vec![7u8; n];
            let enc = item(OCTET_STRING, &body);
            let mut r = Reader(&enc);
            let t = r.expect(OCTET_STRING, "octets").unwrap();
            assert_eq!(t.value.len(), n);
            assert_eq!(t.raw, &enc[..]);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn truncated_items_are_errors() {
        let enc = item(SEQUENCE, &[1, 2, 3]);
        assert!(Reader(&enc[..enc.len() - 1]).any().is_err());
        assert!(Reader(&[0x30, 0x85, 0, 0, 0, 0, 1]).any().is_err());
        assert!(Reader(&[]).any().is_err());
    }

    #[test]
    fn generalized_times() {
        let t = generalized_time(b"20261201130405Z").unwrap();
        assert_eq!(t.to_string(), "2026-12-01T13:04:05Z");
        let t = generalized_time(b"20261201130405.5Z").unwrap();
        assert_eq!(t.to_string(), "2026-12-01T13:04:05Z");
        assert!(generalized_time(b"20261301130405Z").is_err());
        assert!(generalized_time(b"202612011304Z").is_err());
        assert!(generalized_time(b"20261201130405").is_err());
    }

    #[test]
    fn serials_compare_without_padding() {
        assert_eq!(unsigned_int(&[0, 0x80, 1]), &[0x80, 1]);
        assert_eq!(unsigned_int(&[0]), &[0]);
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), want, "{input:?}");
        }
        assert_eq!(base64(&[0xfb, 0xff, 0xbf]), "+/+/");
    }
}
