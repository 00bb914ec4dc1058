//! Test fixture for hot reload, version 1 of the `greeter` plugin: it records a `Greeted`
//! Event on every ConfigMap whose `data` has a `greet` key, saying which version greeted.
//! `greeter-v2` is the same with another message; `greeter-v3` also declares that it reads
//! Secrets, so replacing v2 by it needs a new controller.

const VERSION: &str = "v1";
const READS_SECRETS: bool = false;

include!("greeter.rs");
