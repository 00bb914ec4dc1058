//! Test fixture: a plugin that floods the event recorder on request.
//!
//! It reconciles ConfigMaps whose `data` has an `events` key, and records that many events
//! about the ConfigMap in one reconcile:
//!
//! - `events`: how many (default 0: do nothing);
//! - `reason`: the reason (default `Storm`); with `distinct-reasons: "true"`, `<reason><i>`;
//! - `message`: the message (default `storm`); with `distinct-messages: "true"`,
//!   `<message> <i>`;
//! - `type`: `Normal` (default) or `Warning`.

use wasm_reconciler_sdk::prelude::*;

/// The plugin.
pub struct EventStorm;

wasm_reconciler_sdk::export_reconciler!(EventStorm);

impl Reconciler for EventStorm {
    fn metadata() -> Metadata {
        Metadata::new("event-storm", Gvk::new("", "v1", "ConfigMap"))
    }

    fn reconcile(ctx: &Context, request: Request) -> Result<Response, Error> {
        let data = &request.object_value()["data"];
        let setting = |key: &str| data[key].as_str();
        let Some(count) = setting("events").and_then(|n| n.parse::<u32>().ok()) else {
            return Ok(Response::await_change());
        };
        let event_type = match setting("type") {
            Some("Warning") => EventType::Warning,
            _ => EventType::Normal,
        };
        let reason = setting("reason").unwrap_or("Storm");
        let message = setting("message").unwrap_or("storm");
        let distinct_reasons = setting("distinct-reasons") == Some("true");
        let distinct_messages = setting("distinct-messages") == Some("true");
        for i in 0..count {
            let reason = if distinct_reasons {
                format!("{reason}{i}")
            } else {
                reason.to_owned()
            };
            let message = if distinct_messages {
                format!("{message} {i}")
            } else {
                message.to_owned()
            };
            ctx.recorder().event(event_type, &reason, &message)?;
        }
        Ok(Response::await_change())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_reconciler_sdk::serde_json::json;
    use wasm_reconciler_sdk::testkit::TestKit;

    fn config_map(
        data: wasm_reconciler_sdk::serde_json::Value,
    ) -> wasm_reconciler_sdk::serde_json::Value {
        json!({"metadata": {"name": "storm", "namespace": "default", "uid": "u1"}, "data": data})
    }

    #[test]
    fn records_as_many_events_as_asked() {
        let outcome = TestKit::new().reconcile::<EventStorm>(config_map(json!({"events": "3"})));
        assert_eq!(outcome.events().len(), 3);
        assert!(outcome.events().iter().all(|e| e.reason == "Storm"));
    }

    #[test]
    fn distinct_reasons_and_messages_are_numbered() {
        let outcome = TestKit::new().reconcile::<EventStorm>(config_map(
            json!({"events": "2", "distinct-reasons": "true", "distinct-messages": "true", "type": "Warning"}),
        ));
        let events = outcome.events();
        assert_eq!(
            (events[1].reason.as_str(), events[1].message.as_str()),
            ("Storm1", "storm 1")
        );
    }

    #[test]
    fn config_maps_without_the_setting_are_left_alone() {
        let outcome = TestKit::new().reconcile::<EventStorm>(config_map(json!({"other": "x"})));
        assert!(outcome.events().is_empty());
    }
}
