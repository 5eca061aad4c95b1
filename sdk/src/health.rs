//! The health of the host's services (needs `capabilities = ["health"]`).

use crate::bindings::wasmbot::plugin0_1_0::health as wit;
pub use crate::bindings::wasmbot::plugin0_1_0::health::{Service, Status};

/// The monitor's latest results; empty before its first check.
pub fn latest() -> Vec<Service> {
    wit::latest()
}

/// Checks every service now.
pub fn check_now() -> Vec<Service> {
    wit::check_now()
}
