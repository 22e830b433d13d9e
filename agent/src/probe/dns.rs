//! dns probe (in progress)

pub async fn probe(_spec: &crate::config::DnsSpec, _deadline: tokio::time::Instant) -> super::Outcome {
    super::Outcome::failed(slaprobe_wire::FailureClass::Protocol, "dns probe not built yet")
}
