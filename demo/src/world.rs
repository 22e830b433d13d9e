//! The demo world: its locations, vendors, loopback addresses and the fault
//! script. The script is a pure function of (vendor, location, instant), so
//! the live simulated vendors and the back-filled history tell the same story.
//!
//! | what | when (UTC unless said) | seen from | effect |
//! |---|---|---|---|
//! | HostCo outage | every hour, minutes 17–19 | every location | hosting answers 503 |
//! | network blip | every hour, minutes 40–43 | `sgp` only | hosting never answers (timeout): quorum 2 does not confirm it |
//! | CDN slow stretch | every hour, minutes 30–35 | every location | CDN answers after ~450 ms: breaks its p95 ≤ 200 ms objective |
//! | HostCo maintenance | Sundays 03:00–04:00 Europe/Amsterdam | every location | hosting answers 503, excluded by the contract's weekly window |
//!
//! Every location reaches the vendors at its own loopback addresses
//! (`127.<net>.<location>.<host>`), pinned by each check's `resolve`, so a
//! vendor server knows from its listening address which location is asking.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Weekday;
use jiff::tz::TimeZone;

/// The agents' locations, in order; the index + 1 is the address's third octet.
pub const LOCATIONS: [&str; 3] = ["ams", "nyc", "sgp"];

/// The location that suffers the hourly network blip.
pub const BLIP_LOCATION: &str = "sgp";

/// The zone every demo contract is written in (and the maintenance window's).
pub const ZONE: &str = "Europe/Amsterdam";

/// The demo zone the DNS provider serves.
pub const DNS_ZONE: &str = "demo.test.";

/// Host names of the demo sites (resolved by `resolve` pins, never by a resolver).
pub const SHOP_HOST: &str = "shop.demo.test";
pub const CDN_HOST: &str = "cdn.demo.test";

/// Ports the simulated vendors listen on (at each location's addresses).
pub const HTTP_PORT: u16 = 8080;
pub const HTTPS_PORT: u16 = 8443;
pub const DNS_PORT: u16 = 5353;

/// A simulated vendor (the last octet of its addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    Hosting,
    Cdn,
    Dns,
}

impl Vendor {
    fn host_octet(self) -> u8 {
        match self {
            Vendor::Hosting => 10,
            Vendor::Cdn => 20,
            Vendor::Dns => 53,
        }
    }
}

/// Where the world's loopback addresses live: `127.<net>.*.*`.
#[derive(Debug, Clone, Copy)]
pub struct Net(pub u8);

impl Net {
    /// `vendor`'s address as seen from `location`.
    pub fn ip(self, vendor: Vendor, location: &str) -> Ipv4Addr {
        let l = LOCATIONS.iter().position(|l| *l == location).unwrap_or(0) as u8 + 1;
        Ipv4Addr::new(127, self.0, l, vendor.host_octet())
    }

    /// `vendor`'s socket address for `location`.
    pub fn addr(self, vendor: Vendor, location: &str, port: u16) -> SocketAddr {
        SocketAddr::from((self.ip(vendor, location), port))
    }
}

/// What a vendor does with one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Behaviour {
    /// 200 after `delay` (the probe's processing phase).
    Ok { delay: Duration },
    /// An error status, with why (shown in the body).
    Status { status: u16, why: &'static str },
    /// The network drops the connection silently: the probe times out.
    Silent,
}

fn minute_of_hour(t: Timestamp) -> i64 {
    t.as_second().rem_euclid(3600) / 60
}

/// A small deterministic jitter in `[0, 1)` for (t's minute, location, salt).
pub fn jitter(t: Timestamp, location: &str, salt: u64) -> f64 {
    let mut x = (t.as_second().div_euclid(60) as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(salt.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    for b in location.bytes() {
        x = (x ^ u64::from(b)).wrapping_mul(0x94D0_49BB_1331_11EB);
    }
    x ^= x >> 31;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// HostCo's weekly maintenance: Sundays 03:00–04:00 in [`ZONE`].
pub fn in_maintenance(t: Timestamp) -> bool {
    let tz = TimeZone::get(ZONE).unwrap_or(TimeZone::UTC);
    let local = t.to_zoned(tz);
    local.weekday() == Weekday::Sunday && local.hour() == 3
}

/// The fault script: what `vendor` does for a request from `location` at `t`.
pub fn behaviour(vendor: Vendor, location: &str, t: Timestamp) -> Behaviour {
    let m = minute_of_hour(t);
    match vendor {
        Vendor::Hosting => {
            if in_maintenance(t) {
                Behaviour::Status {
                    status: 503,
                    why: "scheduled maintenance",
                }
            } else if (17..20).contains(&m) {
                Behaviour::Status {
                    status: 503,
                    why: "outage: the web servers are overloaded",
                }
            } else if location == BLIP_LOCATION && (40..44).contains(&m) {
                Behaviour::Silent
            } else {
                Behaviour::Ok {
                    delay: Duration::from_millis(35 + (jitter(t, location, 1) * 45.0) as u64),
                }
            }
        }
        Vendor::Cdn => {
            let base = if (30..36).contains(&m) { 420 } else { 12 };
            Behaviour::Ok {
                delay: Duration::from_millis(base + (jitter(t, location, 2) * 60.0) as u64),
            }
        }
        Vendor::Dns => Behaviour::Ok {
            delay: Duration::ZERO,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn the_script_has_every_fault() {
        // 2026-11-29 is a Sunday; 03:30 in Amsterdam is 02:30 UTC.
        assert!(matches!(
            behaviour(Vendor::Hosting, "ams", at("2026-11-29T02:30:00Z")),
            Behaviour::Status {
                why: "scheduled maintenance",
                ..
            }
        ));
        assert!(matches!(
            behaviour(Vendor::Hosting, "nyc", at("2026-11-30T10:18:00Z")),
            Behaviour::Status { status: 503, .. }
        ));
        assert_eq!(
            behaviour(Vendor::Hosting, "sgp", at("2026-11-30T10:41:00Z")),
            Behaviour::Silent
        );
        assert!(matches!(
            behaviour(Vendor::Hosting, "ams", at("2026-11-30T10:41:00Z")),
            Behaviour::Ok { .. }
        ));
        let Behaviour::Ok { delay } = behaviour(Vendor::Cdn, "ams", at("2026-11-30T10:31:00Z"))
        else {
            panic!("the CDN is slow, not down")
        };
        assert!(delay >= Duration::from_millis(400));
        let Behaviour::Ok { delay } = behaviour(Vendor::Cdn, "ams", at("2026-11-30T10:37:00Z"))
        else {
            panic!()
        };
        assert!(delay < Duration::from_millis(100));
    }

    #[test]
    fn addresses_differ_per_location_and_stay_in_loopback() {
        let net = Net(1);
        let a = net.ip(Vendor::Hosting, "ams");
        let s = net.ip(Vendor::Hosting, "sgp");
        assert_ne!(a, s);
        assert!(a.is_loopback() && s.is_loopback());
        assert_eq!(s, Ipv4Addr::new(127, 1, 3, 10));
    }
}
