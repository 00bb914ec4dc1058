//! testenv's own tests, in one binary. Each test that needs a control plane starts its own, so
//! they also show that several control planes run side by side.
//!
//! - `discovery`: finding binaries and the errors when they are missing (no control plane).
//! - `lifecycle`: start, use (kube and kubectl), identities, failure reports, cleanup.
//! - `controller_manager`: the opt-in kube-controller-manager (garbage collection).
//! - `dev_cluster`: the `dev_cluster` example behind `cargo xtask dev`, run as a process.

mod controller_manager;
mod dev_cluster;
mod discovery;
mod lifecycle;
mod util;
