//! Name resolution and TCP connect for the http, tls and page probes, each
//! phase timed and bounded by the probe's deadline.
//!
//! Resolution honours the check's `resolve` overrides (like curl --resolve),
//! IP literals and `ip_version`; everything else goes through hickory's
//! async resolver with the system configuration (`/etc/resolv.conf`
//! nameservers and options, `/etc/hosts`), never `getaddrinfo` on tokio's
//! blocking pool: that pool is shared by every check, so a few hostile names
//! that make lookups hang would queue every other check's resolution behind
//! them.
//!
//! Running out of file descriptors (EMFILE/ENFILE) while connecting is the
//! agent's own fault, reported as `agent_error`, never as `connect_refused`
//! blamed on the vendor.
//! Connecting tries the addresses in order, sharing what is left of the
//! deadline between them, and always sets TCP_NODELAY (DESIGN §4: without it
//! Nagle plus delayed ACKs add ~44 ms per exchange and corrupt the phases).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use slaprobe_wire::{Failure, FailureClass};
use tokio::net::TcpStream;
use tokio::time::Instant;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{LookupIpStrategy, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;

use crate::config::{IpVersion, NetOptions};

/// The resolver the http, tls and page probes share: the system's
/// configuration, or (when it cannot be read) `/etc/hosts` only, never a
/// public resolver the operator did not choose.
pub fn system_resolver() -> TokioResolver {
    let builder = match TokioResolver::builder_tokio() {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(
                "cannot read the system resolver configuration ({e}); names resolve from /etc/hosts only"
            );
            TokioResolver::builder_with_config(
                ResolverConfig::from_parts(None, vec![], vec![]),
                TokioRuntimeProvider::default(),
            )
        }
    };
    let mut builder = builder;
    // Both families, IPv4 first: the caller filters by `ip_version`.
    builder.options_mut().ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    match builder.build() {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(
                "cannot build the system resolver ({e}); names resolve from /etc/hosts only"
            );
            TokioResolver::builder_with_config(
                ResolverConfig::from_parts(None, vec![], vec![]),
                TokioRuntimeProvider::default(),
            )
            .build()
            .expect("a resolver without nameservers builds")
        }
    }
}

/// True when an error text (a resolver's, wrapping an `io::Error`) says the
/// process ran out of file descriptors (EMFILE 24, ENFILE 23).
pub fn mentions_fd_exhaustion(text: &str) -> bool {
    text.contains("os error 24") || text.contains("os error 23")
}

/// The failure for running out of descriptors: the agent's, not the target's.
pub fn fd_exhaustion(detail: &str) -> Failure {
    tracing::error!(
        "out of file descriptors while probing (raise the agent's RLIMIT_NOFILE or lower concurrency); reported as agent_error"
    );
    Failure::new(
        FailureClass::AgentError,
        format!("the agent ran out of file descriptors (not the target's fault): {detail}"),
    )
}

/// True for errors that mean this process is out of file descriptors.
pub fn is_fd_exhaustion(e: &io::Error) -> bool {
    // EMFILE (24): this process's limit; ENFILE (23): the system's.
    matches!(e.raw_os_error(), Some(23 | 24))
}

/// Addresses a host name resolved to, and how long that took.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// In the order to try them, after `ip_version` filtering, without duplicates.
    pub addrs: Vec<SocketAddr>,
    pub elapsed: Duration,
}

/// An open TCP connection (TCP_NODELAY set) and how long connecting took.
#[derive(Debug)]
pub struct Connected {
    pub stream: TcpStream,
    /// The address that accepted the connection.
    pub remote: SocketAddr,
    /// Time spent in connect attempts, all addresses included.
    pub elapsed: Duration,
}

/// How long before the check's deadline a probe stops on its own. The
/// scheduler's outer guard fires at the deadline itself and knows only
/// "timeout"; stopping a little earlier lets the probe name the phase that
/// ran out of time (`connect_timeout`, ...) and keep the details it has.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(5);

/// The deadline a probe works to: [`DEADLINE_MARGIN`] before the guard's.
pub fn probe_deadline(deadline: Instant) -> Instant {
    let now = Instant::now();
    deadline
        .checked_sub(DEADLINE_MARGIN)
        .map_or(now, |d| d.max(now.min(deadline)))
}

/// Strips the brackets of an IPv6 literal as written in URLs ("[::1]").
pub fn bare_host(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Resolves `host` (a name or an IP literal, brackets allowed) to socket
/// addresses on `port`. Failures, including running out of time, are
/// `dns_error`: the name could not be turned into an address in time.
pub async fn resolve(
    resolver: &TokioResolver,
    host: &str,
    port: u16,
    net: &NetOptions,
    deadline: Instant,
) -> Result<Resolved, Failure> {
    let t0 = Instant::now();
    let host = bare_host(host);
    let want = |ip: &IpAddr| match net.ip_version {
        None => true,
        Some(IpVersion::V4) => ip.is_ipv4(),
        Some(IpVersion::V6) => ip.is_ipv6(),
    };
    let family = match net.ip_version {
        Some(IpVersion::V4) => "IPv4",
        Some(IpVersion::V6) => "IPv6",
        None => "any",
    };

    // IP literals and overrides skip DNS entirely, as curl does.
    let fixed = match host.parse::<IpAddr>() {
        Ok(ip) => Some((ip, "is an IP literal")),
        Err(_) => lookup_override(net, host).map(|ip| (ip, "is overridden by `resolve`")),
    };
    if let Some((ip, why)) = fixed {
        if !want(&ip) {
            return Err(Failure::new(
                FailureClass::DnsError,
                format!("{host} {why} as {ip}, which is not an {family} address (ip_version)"),
            ));
        }
        return Ok(Resolved {
            addrs: vec![SocketAddr::new(ip, port)],
            elapsed: t0.elapsed(),
        });
    }

    let found = match tokio::time::timeout_at(deadline, resolver.lookup_ip(host)).await {
        Err(_) => {
            return Err(Failure::new(
                FailureClass::DnsError,
                format!(
                    "resolving {host} did not finish within the timeout ({:.3}s)",
                    t0.elapsed().as_secs_f64()
                ),
            ));
        }
        Ok(Err(e)) => {
            let text = format!("cannot resolve {host}: {e}");
            if mentions_fd_exhaustion(&text) {
                return Err(fd_exhaustion(&text));
            }
            return Err(Failure::new(FailureClass::DnsError, text));
        }
        Ok(Ok(it)) => it,
    };
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for ip in found.iter() {
        let a = SocketAddr::new(ip, port);
        if want(&ip) && !addrs.contains(&a) {
            addrs.push(a);
        }
    }
    if addrs.is_empty() {
        let msg = match net.ip_version {
            None => format!("{host} has no address"),
            Some(_) => format!("{host} has no {family} address (ip_version)"),
        };
        return Err(Failure::new(FailureClass::DnsError, msg));
    }
    Ok(Resolved {
        addrs,
        elapsed: t0.elapsed(),
    })
}

/// The override for `host`, if any. Keys are lowercased by the config; a
/// trailing dot (absolute name) is ignored.
fn lookup_override(net: &NetOptions, host: &str) -> Option<IpAddr> {
    if net.resolve.is_empty() {
        return None;
    }
    let key = host.trim_end_matches('.').to_ascii_lowercase();
    net.resolve
        .get(&key)
        .or_else(|| net.resolve.get(&format!("{key}.")))
        .copied()
}

/// Connects to the first address that accepts, in order. Each attempt gets
/// an equal share of the time left, so one black-holed address cannot eat
/// the whole deadline when others remain. Classes: `connect_timeout` if any
/// attempt ran out of time, else `connect_refused` (refused, unreachable, ...).
pub async fn connect(addrs: &[SocketAddr], deadline: Instant) -> Result<Connected, Failure> {
    let t0 = Instant::now();
    let mut errors: Vec<String> = Vec::new();
    let mut timed_out = false;
    let mut out_of_fds = false;
    for (i, addr) in addrs.iter().enumerate() {
        let now = Instant::now();
        if now >= deadline {
            timed_out = true;
            errors.push(format!("{addr}: no time left"));
            break;
        }
        let left = (addrs.len() - i) as u32;
        let attempt_deadline = now + (deadline - now) / left;
        match tokio::time::timeout_at(attempt_deadline, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                // Mandatory: without it the phases measure Nagle, not the server.
                if let Err(e) = stream.set_nodelay(true) {
                    errors.push(format!("{addr}: cannot set TCP_NODELAY: {e}"));
                    continue;
                }
                return Ok(Connected {
                    stream,
                    remote: *addr,
                    elapsed: t0.elapsed(),
                });
            }
            Ok(Err(e)) => {
                out_of_fds |= is_fd_exhaustion(&e);
                errors.push(format!("{addr}: {}", describe_connect_error(&e)));
            }
            Err(_) => {
                timed_out = true;
                errors.push(format!(
                    "{addr}: timed out after {:.3}s",
                    now.elapsed().as_secs_f64()
                ));
            }
        }
    }
    if out_of_fds {
        return Err(fd_exhaustion(&errors.join("; ")));
    }
    let class = if timed_out {
        FailureClass::ConnectTimeout
    } else {
        FailureClass::ConnectRefused
    };
    let detail = if errors.is_empty() {
        "no address to connect to".to_string()
    } else {
        errors.join("; ")
    };
    Err(Failure::new(class, format!("connect failed: {detail}")))
}

fn describe_connect_error(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        _ => e.to_string(),
    }
}

/// Resolves then connects; the usual first two phases of a probe.
pub async fn open(
    resolver: &TokioResolver,
    host: &str,
    port: u16,
    net: &NetOptions,
    deadline: Instant,
) -> Result<(Resolved, Connected), (Option<Resolved>, Failure)> {
    let resolved = resolve(resolver, host, port, net, deadline)
        .await
        .map_err(|f| (None, f))?;
    match connect(&resolved.addrs, deadline).await {
        Ok(c) => Ok((resolved, c)),
        Err(f) => Err((Some(resolved), f)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    fn sys() -> TokioResolver {
        system_resolver()
    }

    #[tokio::test]
    async fn literals_and_overrides_skip_dns() {
        let mut net = NetOptions::default();
        let r = resolve(&sys(), "[::1]", 443, &net, far()).await.unwrap();
        assert_eq!(r.addrs, vec!["[::1]:443".parse().unwrap()]);
        net.resolve = std::sync::Arc::new(BTreeMap::from([(
            "www.acme.example".to_string(),
            "127.0.0.2".parse().unwrap(),
        )]));
        let r = resolve(&sys(), "WWW.Acme.Example.", 80, &net, far())
            .await
            .unwrap();
        assert_eq!(r.addrs, vec!["127.0.0.2:80".parse().unwrap()]);
        net.ip_version = Some(IpVersion::V6);
        let f = resolve(&sys(), "www.acme.example", 80, &net, far())
            .await
            .unwrap_err();
        assert_eq!(f.class, FailureClass::DnsError);
        assert!(f.message.contains("IPv6"), "{}", f.message);
    }

    #[tokio::test]
    async fn family_filter_applies_to_lookups() {
        let mut net = NetOptions {
            ip_version: Some(IpVersion::V4),
            ..Default::default()
        };
        let r = resolve(&sys(), "localhost", 80, &net, far()).await.unwrap();
        assert!(r.addrs.iter().all(|a| a.is_ipv4()), "{:?}", r.addrs);
        net.ip_version = None;
        // A resolver with no nameserver (no traffic leaves the machine):
        // a name /etc/hosts does not know fails as dns_error.
        let none = TokioResolver::builder_with_config(
            ResolverConfig::from_parts(None, vec![], vec![]),
            TokioRuntimeProvider::default(),
        )
        .build()
        .unwrap();
        let f = resolve(&none, "nothing-here.invalid", 80, &net, far())
            .await
            .unwrap_err();
        assert_eq!(f.class, FailureClass::DnsError);
    }

    #[tokio::test]
    async fn refused_then_next_address() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_addr = closed.local_addr().unwrap();
        drop(closed);
        let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open_addr = open.local_addr().unwrap();
        let c = connect(&[closed_addr, open_addr], far()).await.unwrap();
        assert_eq!(c.remote, open_addr);
        assert!(c.stream.nodelay().unwrap());
        let f = connect(&[closed_addr], far()).await.unwrap_err();
        assert_eq!(f.class, FailureClass::ConnectRefused);
        assert!(f.message.contains("refused"), "{}", f.message);
    }
}
