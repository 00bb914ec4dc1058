//! The example plugin's logic under another name and group, for the end-to-end benchmark's
//! fleet mode (`cargo xtask bench --kinds 10`): one host running ten plugins against ten
//! native controllers.
//!
//! The name and group are fixed when the plugin is built, from `FLEET_PLUGIN` (default
//! `fleet-0`) and `FLEET_GROUP` (default `fleet0.example.com`); `cargo xtask bench` builds it
//! once per member of the fleet. The kind is `MyResource`, version `v1alpha1`, as in the
//! example, so the example's CRD serves with only its group changed.

use myresource::{DEPLOYMENT, MyResourceReconciler};
use wasm_reconciler_sdk::prelude::*;

/// The plugin's name.
const NAME: &str = match option_env!("FLEET_PLUGIN") {
    Some(name) => name,
    None => "fleet-0",
};

/// The group of the `MyResource` kind this member reconciles.
const GROUP: &str = match option_env!("FLEET_GROUP") {
    Some(group) => group,
    None => "fleet0.example.com",
};

/// The example's reconciler, declared under this member's name and kind.
pub struct FleetReconciler;

wasm_reconciler_sdk::export_reconciler!(FleetReconciler);

impl Reconciler for FleetReconciler {
    fn metadata() -> Metadata {
        Metadata::new(NAME, Gvk::from_static(GROUP, "v1alpha1", "MyResource")).owns(DEPLOYMENT)
    }

    fn reconcile(ctx: &Context, request: Request) -> Result<Response, Error> {
        MyResourceReconciler::reconcile(ctx, request)
    }
}
