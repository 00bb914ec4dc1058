//! Test fixture for hot reload, version 2 of the `greeter` plugin (see `greeter`): the same
//! kinds as version 1, another message.

const VERSION: &str = "v2";
const READS_SECRETS: bool = false;

include!("../../greeter/src/greeter.rs");
