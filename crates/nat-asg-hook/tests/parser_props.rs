//! Property tests over the two parsers that take outside input: the event and the configuration.
//! Whatever arrives (arbitrary or truncated JSON, wrong types, huge arrays), they answer with a
//! value or an error, never a panic. Bounded: a few hundred cases each, well under a second.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect

use nat_asg_hook::config::Config;
use nat_asg_hook::event::{self, Launch, Leaving, Trigger};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const CONFIG: &str = r#"{"groups": {"nat-us-east-1a": {"availability_zone": "us-east-1a", "eip_allocation_id": "eipalloc-11111111", "route_table_ids": ["rtb-11111111"]}}}"#;

fn config() -> Config {
    Config::from_json(CONFIG).unwrap()
}

fn saved(name: &str) -> Value {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Any JSON value, nested a few levels, with the event's own keys likely to appear.
fn arbitrary_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("detail".to_owned()),
        Just("detail-type".to_owned()),
        Just("source".to_owned()),
        Just("EC2InstanceId".to_owned()),
        Just("AutoScalingGroupName".to_owned()),
        Just("LifecycleHookName".to_owned()),
        Just("groups".to_owned()),
        Just("route_table_ids".to_owned()),
        "[a-zA-Z_-]{0,12}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        prop_oneof![
            Just("aws.autoscaling".to_owned()),
            Just("EC2 Instance-launch Lifecycle Action".to_owned()),
            Just("EC2 Instance Launch Successful".to_owned()),
            Just("nat-us-east-1a".to_owned()),
            Just("i-0123456789abcdef0".to_owned()),
            ".{0,24}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..8)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// One of the saved events with one field of its detail replaced by an arbitrary value.
fn mutated_event() -> impl Strategy<Value = (Value, String, Value)> {
    let files = prop_oneof![Just("terminate-lifecycle-action.json"), Just("launch-successful.json")];
    let field = prop_oneof![
        Just("EC2InstanceId".to_owned()),
        Just("AutoScalingGroupName".to_owned()),
        Just("LifecycleHookName".to_owned()),
        Just("LifecycleActionToken".to_owned()),
        Just("Destination".to_owned()),
    ];
    (files, field, arbitrary_json()).prop_map(|(file, field, value)| (saved(file), field, value))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn events_never_panic(value in arbitrary_json()) {
        let _ = event::parse(value, &config());
    }

    #[test]
    fn raw_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = event::parse_bytes(&bytes, &config());
    }

    #[test]
    fn truncated_events_are_errors(cut in 0usize..1200, file in prop_oneof![Just("terminate-lifecycle-action.json"), Just("launch-successful.json"), Just("instance-state-change.json"), Just("scheduled-reconcile.json")]) {
        let text = serde_json::to_string(&saved(file)).unwrap();
        let cut = cut.min(text.len().saturating_sub(1));
        if let Some(prefix) = text.get(..cut) {
            prop_assert!(event::parse_bytes(prefix.as_bytes(), &config()).is_err());
        }
    }

    #[test]
    fn a_wrong_type_in_a_required_field_is_an_error_naming_it((mut event, field, value) in mutated_event()) {
        let required = ["EC2InstanceId", "AutoScalingGroupName"].contains(&field.as_str())
            || (field == "LifecycleHookName" && event["detail-type"] == "EC2 Instance-terminate Lifecycle Action");
        let is_string = value.is_string();
        event["detail"][&field] = value;
        match event::parse(event, &config()) {
            Err(e) => prop_assert!(e.to_string().contains(&field), "{e} does not name {field}"),
            Ok(Trigger::Launch(Launch { instance_id, .. }) | Trigger::Leaving(Leaving { instance_id, .. })) => {
                // Accepted: then every field it relies on was a well-formed string.
                prop_assert!(!required || is_string);
                prop_assert!(instance_id.starts_with("i-"));
            }
            Ok(_) => {}
        }
    }

    #[test]
    fn configurations_never_panic(value in arbitrary_json()) {
        let _ = Config::from_json(&value.to_string());
    }

    #[test]
    fn configuration_text_never_panics(text in ".{0,300}") {
        let _ = Config::from_json(&text);
    }
}

#[test]
fn huge_arrays_are_answered_not_choked_on() {
    let mut event = saved("terminate-lifecycle-action.json");
    event["resources"] = Value::Array(vec![json!("arn:aws:autoscaling:x"); 200_000]);
    event["detail"]["NotificationMetadata"] = Value::Array(vec![json!(1); 200_000]);
    assert!(matches!(event::parse(event, &config()), Ok(Trigger::Leaving(_))));

    let mut event = saved("terminate-lifecycle-action.json");
    event["detail"]["EC2InstanceId"] = Value::Array(vec![json!("i-01234567"); 200_000]);
    assert!(event::parse(event, &config()).is_err());

    let tables: Vec<String> = (0..100_000).map(|i| format!("rtb-{i:08x}")).collect();
    let text = json!({"groups": {"nat-a": {"availability_zone": "us-east-1a", "eip_allocation_id": "eipalloc-11111111", "route_table_ids": tables}}}).to_string();
    assert_eq!(Config::from_json(&text).unwrap().groups["nat-a"].route_table_ids.len(), 100_000);

    let nested = "[".repeat(100_000);
    assert!(event::parse_bytes(nested.as_bytes(), &config()).is_err(), "deep nesting is refused, not a stack overflow");
    assert!(Config::from_json(&nested).is_err());
}
