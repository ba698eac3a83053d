//! partnerkit: a Kubernetes operator that runs a partner portal.

pub mod api;
pub mod client;
pub mod config;
pub mod controller;
pub mod crdgen;
pub mod invite;
pub mod manifests;
pub mod portal;
pub mod resources;
pub mod telemetry;

/// Errors of the partnerkit library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("serialization: {0}")]
    Json(#[from] serde_json::Error),
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Controller(#[from] controller::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
