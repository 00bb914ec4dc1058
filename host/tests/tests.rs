//! Integration tests of the host against a real control plane (testenv) and real plugins
//! built from `plugins/`.
//!
//! One test binary (ripgrep's layout); each module is one area:
//! - `util`: finding built plugins, running the host in-process, polling the API server.
//! - `deploy`: the manifests in `deploy/`: dry runs, their RBAC, the in-cluster configuration.
//! - `walking_skeleton`: the example plugin end to end, as a user sees it in `kubectl describe`.
//! - `recorder`: the event recorder's series, aggregation, spam filter and API modes.
//! - `isolation`: hostile plugins fail alone, each with the right error.
//! - `hostile`: hostile plugins through the real host on a control plane, beside the example.
//! - `resilience`: an API server outage, a CRD that arrives after the host.
//! - `lifecycle`: loading plugins: the compile cache, compiling in a child process.
//! - `reload`: plugins added, upgraded and removed while the host runs.
//! - `leader`: leader election between real host processes.
//! - `contract`: contract 0.2.0: finalizers, selectors, watches, list, delete, shared watches.
//! - `languages`: the examples in Python, JavaScript and Go beside the Rust one.
//! - `offline`: `wasm-reconciler reconcile`, one reconcile without a cluster, against golden
//!   files.

mod contract;
mod deploy;
mod hostile;
mod isolation;
mod languages;
mod leader;
mod lifecycle;
mod offline;
mod recorder;
mod reload;
mod resilience;
mod util;
mod walking_skeleton;
