//! tls probe (in progress)

/// Trust material shared by every TLS-using probe.
#[derive(Debug, Default)]
pub struct TlsShared {}

impl TlsShared {
    pub fn new() -> Self {
        Self {}
    }
}

pub async fn probe(_p: &super::Prober, _spec: &crate::config::TlsSpec, _deadline: tokio::time::Instant) -> super::Outcome {
    super::Outcome::failed(slaprobe_wire::FailureClass::Protocol, "tls probe not built yet")
}
