//! Test fixture for hot reload, version 3 of the `greeter` plugin (see `greeter`): it also
//! declares that it reads Secrets, so it cannot run under version 2's controller.

const VERSION: &str = "v3";
const READS_SECRETS: bool = true;

include!("../../greeter/src/greeter.rs");
