//! The HTTP edge: handlers only, over [`AppState`]. The decisions live
//! elsewhere (ingest's in [`crate::ingest`], the SLA's in [`crate::sla`] and
//! [`crate::sla_service`]); the accept loop is [`crate::conn`].
//!
//! # Layout
//! - [`error`]: [`error::ApiError`], the one JSON error envelope.
//! - [`ingest`]: `POST /api/v1/results`.
//! - [`login`]: the read routes' credentials layer and `/login`.
//! - [`read`]: `/api/v1/checks`, `/api/v1/agents`, `/metrics`, `/healthz`, `/readyz`.
//! - [`sla`]: `/api/v1/contracts`, `/api/v1/reports/{contract}/{month}`.
//! - [`status_page`]: the HTML status page at `/` and `/status/{contract}`.
//! - [`embedded_link`]: the embedded agent's plain loopback port when the listener speaks TLS.

pub mod embedded_link;
pub mod error;
pub mod ingest;
pub mod login;
pub mod read;
pub mod sla;
pub mod status_page;

use axum::Router;
use axum::routing::{get, post};

use crate::app::AppState;

/// The router of every endpoint (DESIGN.md §5, §7): the open routes
/// (health, the agents' own endpoints with their tokens, `/login`) and
/// [`read_routes`].
pub fn router(state: AppState) -> Router {
    let login = Router::new()
        .route("/login", get(login::login_form).post(login::login))
        .with_state(state.read_access().clone());
    Router::new()
        .route("/healthz", get(read::healthz))
        .route("/readyz", get(read::readyz))
        .route("/api/v1/results", post(ingest::post_results))
        .route("/api/v1/checks", get(read::checks))
        .with_state(state.clone())
        .merge(login)
        .merge(read_routes(state))
}

/// Every route that shows what the collector holds, behind read credentials
/// ([`login::require_viewer`]). A new read endpoint or page (a status
/// page at `/`) is protected by adding it here.
pub fn read_routes(state: AppState) -> Router {
    let access = state.read_access().clone();
    Router::new()
        .route("/metrics", get(read::metrics))
        .route("/api/v1/agents", get(read::agents))
        .route("/api/v1/contracts", get(sla::contracts))
        .route("/api/v1/reports/{contract}/{month}", get(sla::report))
        .merge(status_page::routes())
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            access,
            login::require_viewer,
        ))
}
