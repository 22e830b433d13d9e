//! Watches the TLS records a server sends during the handshake, to learn
//! what rustls does not say when it refuses a message: the declared size
//! of the server's Certificate message (rustls caps any handshake message
//! at 64 KiB; a certificate with 10,000 SANs is ~200 KB). In TLS 1.2 the
//! Certificate message is in plaintext and its size is exact; in TLS 1.3 it
//! is encrypted, and only the encrypted bytes the server sent are known.
//! The tap stops looking once the handshake is over.
//!
//! The same wrapper can hold back the client's last TLS 1.3 flight (its
//! Finished) until the request is written, so both leave in one write: one
//! syscall and one segment fewer per https probe, and no request is sent any
//! earlier than before (the verdict is still applied first). See
//! [`Tapped::holding_finished`].

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
    /// Hold the client's writes made once the server's encrypted flight has
    /// begun and before the handshake is over (`tap.done`).
    hold_finished: bool,
    /// What is held: sent in front of the next write after the handshake,
    /// or (best effort) when the stream is dropped unused.
    held: Vec<u8>,
}

impl Tapped {
    pub fn new(inner: TcpStream) -> Self {
        Self {
            inner,
            tap: RecordTap::default(),
            hold_finished: false,
            held: Vec::new(),
        }
    }

    /// Like [`Tapped::new`], for a connection that will carry a request: in
    /// TLS 1.3 the client's last flight (Finished, and an empty Certificate
    /// when one is asked for) is held and goes out in the same write as the
    /// request. Only TLS 1.3 has the server send application_data records
    /// before the client's Finished, so a TLS 1.2 handshake, a
    /// HelloRetryRequest's second ClientHello and every write after the
    /// handshake go out at once. Not for a handshake-only probe: its
    /// Finished would wait for a write that never comes.
    pub fn holding_finished(inner: TcpStream) -> Self {
        let mut t = Self::new(inner);
        t.hold_finished = true;
        t
    }

    /// Whether a write now is the client's last TLS 1.3 flight, to hold.
    fn holds(&self) -> bool {
        self.hold_finished && !self.tap.done && self.tap.encrypted_bytes > 0
    }

    /// Writes what is held ahead of `bufs` in one call. Ready with how many
    /// bytes of `bufs` went out (0 only when `bufs` is empty); the held
    /// bytes that went out are dropped from `held`.
    fn poll_write_after_held(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let want: usize = bufs.iter().map(|b| b.len()).sum();
        loop {
            if self.held.is_empty() && want == 0 {
                return Poll::Ready(Ok(0));
            }
            if self.held.is_empty() {
                return Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
            }
            let mut all = Vec::with_capacity(bufs.len() + 1);
            all.push(io::IoSlice::new(&self.held));
            all.extend(bufs.iter().map(|b| io::IoSlice::new(b)));
            let n = std::task::ready!(Pin::new(&mut self.inner).poll_write_vectored(cx, &all))?;
            // Something was held, so nothing written is a failure.
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            let from_held = n.min(self.held.len());
            self.held.drain(..from_held);
            if n > from_held || want == 0 && self.held.is_empty() {
                return Poll::Ready(Ok(n - from_held));
            }
        }
    }
}

impl Drop for Tapped {
    /// A held Finished whose request was never written (the certificate
    /// failed, or revocation did): send it anyway, without waiting, so the
    /// server sees a completed handshake, as it did before holding.
    fn drop(&mut self) {
        if !self.held.is_empty() {
            let _ = self.inner.try_write(&self.held);
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
        self.poll_write_vectored(cx, &[io::IoSlice::new(buf)])
    }

    /// A held flight stays held through a flush: the handshake's own flush,
    /// and hyper's, which flushes before it writes the request.
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
        let this = self.get_mut();
        if this.holds() {
            let n = bufs.iter().map(|b| b.len()).sum();
            this.held.reserve(n);
            bufs.iter().for_each(|b| this.held.extend_from_slice(b));
            return Poll::Ready(Ok(n));
        }
        this.poll_write_after_held(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A connected pair: the client end and the server's end.
    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        (c, s)
    }

    /// What the server end has received within 100 ms.
    async fn received(s: &mut TcpStream) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 256];
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await
        {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    /// The server's encrypted flight has begun (TLS 1.3).
    fn after_server_flight(t: &mut Tapped) {
        t.tap.feed(&record(HANDSHAKE, &[2, 0, 0, 1, 0]));
        t.tap.feed(&record(APPLICATION_DATA, &[0; 40]));
    }

    #[tokio::test]
    async fn a_tls13_finished_goes_out_with_the_request() {
        let (c, mut s) = pair().await;
        let mut t = Tapped::holding_finished(c);
        t.write_all(b"hello").await.unwrap(); // ClientHello: out at once
        t.flush().await.unwrap();
        assert_eq!(received(&mut s).await, b"hello");
        after_server_flight(&mut t);
        t.write_all(b"FIN").await.unwrap();
        t.flush().await.unwrap(); // the handshake's own flush keeps it
        assert_eq!(received(&mut s).await, b"", "the Finished was held");
        t.tap.done = true;
        t.write_all(b"GET /").await.unwrap();
        assert_eq!(received(&mut s).await, b"FINGET /");
        t.write_all(b" more").await.unwrap();
        assert_eq!(received(&mut s).await, b" more");
    }

    /// A holding stream whose handshake is over with "FIN" held, and the
    /// server's end.
    async fn finished_held() -> (Tapped, TcpStream) {
        let (c, s) = pair().await;
        let mut t = Tapped::holding_finished(c);
        after_server_flight(&mut t);
        t.write_all(b"FIN").await.unwrap();
        t.tap.done = true;
        (t, s)
    }

    #[tokio::test]
    async fn a_flush_after_the_handshake_keeps_what_is_held() {
        // hyper flushes before it writes the request.
        let (mut t, mut s) = finished_held().await;
        t.flush().await.unwrap();
        assert_eq!(received(&mut s).await, b"");
        t.write_all(b"GET /").await.unwrap();
        assert_eq!(received(&mut s).await, b"FINGET /");
    }

    #[tokio::test]
    async fn a_held_finished_is_sent_when_no_request_follows() {
        // The certificate failed after the handshake: the stream is dropped.
        let (t, mut s) = finished_held().await;
        drop(t);
        assert_eq!(received(&mut s).await, b"FIN");
    }

    #[tokio::test]
    async fn nothing_is_held_before_encrypted_records_or_without_holding() {
        // TLS 1.2's second flight, or a ClientHello after a HelloRetryRequest
        // (plaintext, perhaps after a compatibility CCS), must go at once.
        let (c, mut s) = pair().await;
        let mut t = Tapped::holding_finished(c);
        t.tap.feed(&record(HANDSHAKE, &[6, 0, 0, 1, 0]));
        t.tap.feed(&record(CHANGE_CIPHER_SPEC, &[1]));
        t.write_all(b"second flight").await.unwrap();
        assert_eq!(received(&mut s).await, b"second flight");
        // A handshake-only probe (`Tapped::new`) holds nothing.
        let (c, mut s) = pair().await;
        let mut t = Tapped::new(c);
        after_server_flight(&mut t);
        t.write_all(b"FIN").await.unwrap();
        assert_eq!(received(&mut s).await, b"FIN");
    }

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
