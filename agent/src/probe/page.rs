//! page probe (in progress)

pub async fn probe(_p: &super::Prober, _spec: &crate::config::HttpSpec, _deadline: tokio::time::Instant) -> super::Outcome {
    super::Outcome::failed(slaprobe_wire::FailureClass::Protocol, "page probe not built yet")
}
