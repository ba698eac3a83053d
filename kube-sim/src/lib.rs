//! kube-sim: an in-memory Kubernetes API server for tests, demos and benchmarks.
//!
//! It speaks the real API's HTTP protocol (discovery, OpenAPI v3, CRUD, patches including
//! server-side apply, watches, Tables), enforces RBAC and ValidatingAdmissionPolicies, brings
//! CustomResourceDefinitions to life with structural schemas and CEL validation, and runs the
//! garbage collector and namespace controller. It does not schedule or run anything: there
//! are no Pods, Nodes or kubelets.

pub mod admissionregistration;
pub mod api;
pub mod authz;
pub mod bootstrap;
pub mod builtin;
pub mod cel_check;
pub mod convert;
pub mod crd;
pub mod discovery;
pub mod faults;
pub mod gc;
pub mod kinds;
pub mod meta;
pub mod openapi_v2;
pub mod present;
pub mod proto;
pub mod real;
pub mod request;
pub mod reviews;
pub mod schema;
pub mod selectors;
pub mod server;
pub mod sim;
pub mod ssa;
pub mod status;
pub mod store;
pub mod watch;

pub use faults::Faults;
pub use sim::{Sim, SimConfig, SimHandle, TokenEntry, parse_token_file, start};
pub use status::ApiError;

/// Errors of the simulator's own operation (not API errors, which are [`ApiError`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kube-sim: {0}")]
    Io(#[from] std::io::Error),
    #[error("kube-sim: bad configuration: {0}")]
    Config(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
