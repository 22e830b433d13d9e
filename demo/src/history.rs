//! The back-fill.
use crate::certs::DemoPki;
use crate::config::AgentKey;
use crate::world::Net;
use jiff::Timestamp;
use slaprobe_collector::server::AppState;
use std::net::SocketAddr;

pub struct Backfill<'a> {
    pub collector: SocketAddr,
    pub keys: &'a [AgentKey],
    pub net: Net,
    pub pki: &'a DemoPki,
    pub days: u32,
}

impl Backfill<'_> {
    pub async fn run(&self, state: &AppState, until: Timestamp) -> anyhow::Result<()> {
        let _ = (state, until);
        Ok(())
    }
}
