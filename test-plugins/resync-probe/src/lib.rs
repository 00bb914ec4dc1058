//! Test fixture for resync: reconciles ConfigMaps labelled `resync=true`, asks the host to
//! reconcile every object again every 2 seconds, and records a `Resynced` Event with a nonce
//! on every reconcile, so that the tests can count reconciles that no change caused.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use wasm_reconciler_sdk::LabelSelector;
use wasm_reconciler_sdk::prelude::*;

/// The plugin.
pub struct ResyncProbe;

wasm_reconciler_sdk::export_reconciler!(ResyncProbe);

impl Reconciler for ResyncProbe {
    fn metadata() -> Metadata {
        Metadata::new("resync-probe", Gvk::new("", "v1", "ConfigMap"))
            .selector(LabelSelector::new().match_label("resync", "true"))
            .resync_every(Duration::from_secs(2))
    }

    fn reconcile(ctx: &Context, _request: Request) -> Result<Response, Error> {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u8(0);
        ctx.recorder().event(
            EventType::Normal,
            "Resynced",
            &format!("reconcile {}", hasher.finish()),
        )?;
        Ok(Response::await_change())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_reconciler_sdk::serde_json::json;
    use wasm_reconciler_sdk::testkit::TestKit;

    #[test]
    fn every_reconcile_records_a_distinct_event() {
        let object = json!({"metadata": {"name": "a", "namespace": "default", "uid": "u",
            "labels": {"resync": "true"}}});
        let mut kit = TestKit::new();
        let first = kit.reconcile::<ResyncProbe>(object.clone());
        let second = kit.reconcile::<ResyncProbe>(object);
        assert_ne!(first.events()[0].message, second.events()[0].message);
        assert_eq!(
            ResyncProbe::metadata().resync_period(),
            Some(Duration::from_secs(2))
        );
    }
}
