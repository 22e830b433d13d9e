//! Watches the TLS records a server sends during the handshake, to learn
//! what rustls does not say when it refuses a message: the declared size
//! of the server's Certificate message (rustls caps any handshake message
//! at 64 KiB; a certificate with 10,000 SANs is ~200 KB). In TLS 1.2 the
//! Certificate message is in plaintext and its size is exact; in TLS 1.3 it
//! is encrypted, and only the encrypted bytes the server sent are known.
//! The tap stops looking once the handshake is over.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// rustls' largest handshake message (its `MAX_HANDSHAKE_SIZE`).
pub const MAX_HANDSHAKE_MESSAGE: usize = 0xffff;

const CHANGE_CIPHER_SPEC: u8 = 20;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
const CERTIFICATE: u8 = 11;

/// What the tap learnt from the server's records.
#[derive(Debug, Default, Clone)]
pub struct RecordTap {
    hdr: [u8; 5],
    hdr_len: usize,
    rec_type: u8,
    rec_left: usize,
    hs_hdr: [u8; 4],
    hs_hdr_len: usize,
    hs_left: usize,
    /// The server switched to encrypted records (CCS seen).
    encrypted: bool,
    /// Declared body length of the server's plaintext Certificate message.
    pub certificate_len: Option<usize>,
    /// Bytes of encrypted (application_data) record payload received.
    pub encrypted_bytes: u64,
    /// Stop looking (the handshake is over).
    pub done: bool,
}

impl RecordTap {
    /// Whether the server has switched to encrypted records.
    pub fn encrypted(&self) -> bool {
        self.encrypted
    }

    /// Feeds bytes read from the server, in order.
    pub fn feed(&mut self, mut b: &[u8]) {
        while !b.is_empty() && !self.done {
            if self.rec_left == 0 {
                let take = (5 - self.hdr_len).min(b.len());
                self.hdr[self.hdr_len..self.hdr_len + take].copy_from_slice(&b[..take]);
                self.hdr_len += take;
                b = &b[take..];
                if self.hdr_len == 5 {
                    self.hdr_len = 0;
                    self.rec_type = self.hdr[0];
                    self.rec_left = usize::from(u16::from_be_bytes([self.hdr[3], self.hdr[4]]));
                    match self.rec_type {
                        CHANGE_CIPHER_SPEC => self.encrypted = true,
                        // TLS 1.3 servers need not send the compatibility CCS.
                        APPLICATION_DATA => {
                            self.encrypted = true;
                            self.encrypted_bytes += self.rec_left as u64;
                        }
                        _ => {}
                    }
                }
                continue;
            }
            let take = self.rec_left.min(b.len());
            let (chunk, rest) = b.split_at(take);
            b = rest;
            self.rec_left -= take;
            if self.rec_type == HANDSHAKE && !self.encrypted {
                self.handshake_bytes(chunk);
            }
        }
    }

    fn handshake_bytes(&mut self, mut c: &[u8]) {
        while !c.is_empty() {
            if self.hs_left > 0 {
                let t = self.hs_left.min(c.len());
                self.hs_left -= t;
                c = &c[t..];
                continue;
            }
            let t = (4 - self.hs_hdr_len).min(c.len());
            self.hs_hdr[self.hs_hdr_len..self.hs_hdr_len + t].copy_from_slice(&c[..t]);
            self.hs_hdr_len += t;
            c = &c[t..];
            if self.hs_hdr_len == 4 {
                self.hs_hdr_len = 0;
                let h = self.hs_hdr;
                let len = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
                if h[0] == CERTIFICATE && self.certificate_len.is_none() {
                    self.certificate_len = Some(len);
                }
                self.hs_left = len;
            }
        }
    }
}

/// A TCP stream whose incoming bytes pass through a [`RecordTap`].
#[derive(Debug)]
pub struct Tapped {
    pub inner: TcpStream,
    pub tap: RecordTap,
}

impl Tapped {
    pub fn new(inner: TcpStream) -> Self {
        Self {
            inner,
            tap: RecordTap::default(),
        }
    }
}

impl AsyncRead for Tapped {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r
            && !this.tap.done
        {
            this.tap.feed(&buf.filled()[before..]);
        }
        r
    }
}

impl AsyncWrite for Tapped {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(t: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![t, 3, 3];
        r.extend_from_slice(&(body.len() as u16).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    #[test]
    fn finds_the_certificate_length_across_records_and_reads() {
        // ServerHello (6 bytes body), then a Certificate header declaring
        // 200,000 bytes, split over two records, fed one byte at a time.
        let hs = [2, 0, 0, 6, 1, 2, 3, 4, 5, 6, 11, 0x03];
        let rest = [0x0d, 0x40, 9, 9, 9];
        let mut wire = record(HANDSHAKE, &hs);
        wire.extend(record(HANDSHAKE, &rest));
        let mut tap = RecordTap::default();
        for b in &wire {
            tap.feed(std::slice::from_ref(b));
        }
        assert_eq!(tap.certificate_len, Some(200_000));
        assert_eq!(tap.encrypted_bytes, 0);
        assert!(!tap.encrypted());
    }

    #[test]
    fn application_data_without_ccs_counts_as_encrypted() {
        let mut wire = record(HANDSHAKE, &[2, 0, 0, 1, 0]);
        wire.extend(record(APPLICATION_DATA, &[0; 700]));
        let mut tap = RecordTap::default();
        tap.feed(&wire);
        assert!(tap.encrypted());
        assert_eq!(tap.encrypted_bytes, 700);
    }

    #[test]
    fn counts_encrypted_bytes_after_change_cipher_spec() {
        let mut wire = record(HANDSHAKE, &[2, 0, 0, 1, 0]);
        wire.extend(record(CHANGE_CIPHER_SPEC, &[1]));
        wire.extend(record(APPLICATION_DATA, &[0; 1000]));
        wire.extend(record(APPLICATION_DATA, &[0; 500]));
        let mut tap = RecordTap::default();
        tap.feed(&wire);
        assert_eq!(tap.certificate_len, None);
        assert_eq!(tap.encrypted_bytes, 1500);
    }
}
