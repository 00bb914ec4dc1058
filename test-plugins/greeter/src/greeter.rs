// The `greeter` plugin, shared by its versions: each crate defines `VERSION` and
// `READS_SECRETS` and includes this file.

use wasm_reconciler_sdk::prelude::*;

/// The plugin.
pub struct Greeter;

wasm_reconciler_sdk::export_reconciler!(Greeter);

impl Reconciler for Greeter {
    fn metadata() -> Metadata {
        let metadata = Metadata::new("greeter", Gvk::new("", "v1", "ConfigMap"));
        if READS_SECRETS {
            metadata.reads(Gvk::new("", "v1", "Secret"))
        } else {
            metadata
        }
    }

    fn reconcile(ctx: &Context, request: Request) -> Result<Response, Error> {
        if request.object_value()["data"]["greet"].as_str().is_none() {
            return Ok(Response::await_change());
        }
        ctx.recorder()
            .event(EventType::Normal, "Greeted", &format!("greeted by {VERSION}"))?;
        Ok(Response::await_change())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_reconciler_sdk::serde_json::json;
    use wasm_reconciler_sdk::testkit::TestKit;

    #[test]
    fn greets_config_maps_that_ask_and_says_which_version_it_is() {
        let asks = json!({"metadata": {"name": "a", "namespace": "default", "uid": "u1"}, "data": {"greet": "yes"}});
        let outcome = TestKit::new().reconcile::<Greeter>(asks);
        assert_eq!(outcome.events().len(), 1);
        assert_eq!(outcome.events()[0].message, format!("greeted by {VERSION}"));
        let silent = json!({"metadata": {"name": "b", "namespace": "default", "uid": "u2"}});
        assert!(TestKit::new().reconcile::<Greeter>(silent).events().is_empty());
    }
}
