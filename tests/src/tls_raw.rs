//! A hand-written TLS 1.2 server that answers a ClientHello with a
//! ServerHello and a Certificate message carrying a given chain, however
//! big, then waits. rustls' own server will not send a certificate
//! message over 64 KiB, and the client refuses it before any key exchange,
//! so no cryptography is needed to test that verdict.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The running server; stops when dropped.
#[derive(Debug)]
pub struct BigCertServer {
    addr: SocketAddr,
    /// Declared body length of the Certificate handshake message sent.
    pub certificate_len: usize,
    task: JoinHandle<()>,
}

impl Drop for BigCertServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn record(out: &mut Vec<u8>, content_type: u8, body: &[u8]) {
    for chunk in body.chunks(16 * 1024) {
        out.push(content_type);
        out.extend_from_slice(&[3, 3]);
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
}

fn u24(n: usize) -> [u8; 3] {
    [(n >> 16) as u8, (n >> 8) as u8, n as u8]
}

impl BigCertServer {
    /// Serves `chain` (DER certificates, leaf first) on 127.0.0.1.
    pub async fn start(chain: &[Vec<u8>]) -> BigCertServer {
        let mut list = Vec::new();
        for c in chain {
            list.extend_from_slice(&u24(c.len()));
            list.extend_from_slice(c);
        }
        let mut cert_body = u24(list.len()).to_vec();
        cert_body.extend(list);
        let certificate_len = cert_body.len();

        // ServerHello: TLS 1.2, a zero random (no downgrade sentinel), no
        // session id, ECDHE-ECDSA-AES128-GCM-SHA256, no compression and no
        // extensions.
        let mut hello = vec![3, 3];
        hello.extend_from_slice(&[0u8; 32]);
        hello.push(0);
        hello.extend_from_slice(&[0xc0, 0x2b]);
        hello.push(0);
        let mut hs = vec![2];
        hs.extend_from_slice(&u24(hello.len()));
        hs.extend(hello);
        hs.push(11);
        hs.extend_from_slice(&u24(certificate_len));
        hs.extend(cert_body);
        let mut flight = Vec::new();
        record(&mut flight, 22, &hs);

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut tcp, _)) = listener.accept().await else {
                    continue;
                };
                let flight = flight.clone();
                tokio::spawn(async move {
                    // The ClientHello: its record header, then its body.
                    let mut hdr = [0u8; 5];
                    if tcp.read_exact(&mut hdr).await.is_err() {
                        return;
                    }
                    let len = usize::from(u16::from_be_bytes([hdr[3], hdr[4]]));
                    let mut body = vec![0u8; len];
                    if tcp.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let _ = tcp.write_all(&flight).await;
                    let mut sink = [0u8; 1024];
                    while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
                });
            }
        });
        BigCertServer {
            addr,
            certificate_len,
            task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}
