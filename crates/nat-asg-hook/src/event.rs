//! Turns an incoming event into what the hook must do. Pure: no AWS calls, no clock.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde_json::Value;

use crate::config::{Config, is_aws_id};

pub const LIFECYCLE_ACTION: &str = "EC2 Instance-launch Lifecycle Action";
pub const LAUNCH_SUCCESSFUL: &str = "EC2 Instance Launch Successful";
pub const SCHEDULED: &str = "Scheduled Event";
const LAUNCHING: &str = "autoscaling:EC2_INSTANCE_LAUNCHING";

/// What an event asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// A NAT group launched an instance: move the group's EIP and routes to it.
    Launch(Launch),
    /// The schedule: reconcile every configured group against its InService instance.
    Reconcile,
    /// Not ours: answered `ignored`, not an error.
    Ignored(Ignored),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub group: String,
    pub instance_id: String,
    /// Present for a lifecycle action event: the action to complete once the move is done.
    pub lifecycle: Option<LifecycleAction>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleAction {
    pub hook_name: String,
    pub token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    pub detail_type: String,
    pub group: Option<String>,
    pub instance_id: Option<String>,
    pub reason: String,
}

/// The event is not one the hook can act on, and it is not safe to guess. Names what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed event: {0}")]
pub struct MalformedEvent(pub String);

/// The fields of an Auto Scaling event's `detail` that the hook reads, each checked by name.
struct Detail<'a> {
    fields: &'a serde_json::Map<String, Value>,
}

impl<'a> Detail<'a> {
    fn new(detail: Option<&'a Value>) -> Result<Self, MalformedEvent> {
        match detail {
            None | Some(Value::Null) => Err(MalformedEvent("missing field `detail`".into())),
            Some(Value::Object(fields)) => Ok(Self { fields }),
            Some(other) => Err(MalformedEvent(format!("`detail` is {}, expected a JSON object", kind(other)))),
        }
    }

    fn required(&self, name: &str) -> Result<&'a str, MalformedEvent> {
        match self.fields.get(name) {
            None | Some(Value::Null) => Err(MalformedEvent(format!("missing field `detail.{name}`"))),
            Some(Value::String(text)) => Ok(text),
            Some(other) => Err(MalformedEvent(format!("`detail.{name}` is {}, expected a string", kind(other)))),
        }
    }

    fn optional(&self, name: &str) -> Result<Option<&'a str>, MalformedEvent> {
        match self.fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.required(name).map(Some),
        }
    }

    /// Group and instance, the two fields every launch event must carry, with their shapes checked.
    fn target(&self) -> Result<(String, String), MalformedEvent> {
        let group = self.required("AutoScalingGroupName")?;
        let instance_id = self.required("EC2InstanceId")?;
        if group.is_empty() {
            return Err(MalformedEvent("`detail.AutoScalingGroupName` is empty".into()));
        }
        if !is_aws_id(instance_id, "i") {
            return Err(MalformedEvent(format!(
                "`detail.EC2InstanceId` {instance_id:?} is not an instance ID such as i-0123456789abcdef0"
            )));
        }
        Ok((group.to_owned(), instance_id.to_owned()))
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Raw event bytes (a replayed file) as JSON: not JSON is malformed.
pub fn json(bytes: &[u8]) -> Result<Value, MalformedEvent> {
    serde_json::from_slice(bytes).map_err(|e| MalformedEvent(format!("not a JSON document: {e}")))
}

/// Parses raw event bytes: `json`, then `parse`.
pub fn parse_bytes(bytes: &[u8], config: &Config) -> Result<Trigger, MalformedEvent> {
    parse(json(bytes)?, config)
}

/// Classifies an event. Errors name the missing or mistyped field; they never reach AWS.
pub fn parse(value: Value, config: &Config) -> Result<Trigger, MalformedEvent> {
    let Value::Object(fields) = &value else {
        return Err(MalformedEvent(format!("an EventBridge event is a JSON object, not {}", kind(&value))));
    };
    for name in ["source", "detail-type"] {
        match fields.get(name) {
            Some(Value::String(_)) => {}
            None | Some(Value::Null) => return Err(MalformedEvent(format!("missing field `{name}`"))),
            Some(other) => return Err(MalformedEvent(format!("`{name}` is {}, expected a string", kind(other)))),
        }
    }
    let envelope: EventBridgeEvent<Value> =
        serde_json::from_value(value).map_err(|e| MalformedEvent(format!("not an EventBridge event: {e}")))?;
    let detail_type = envelope.detail_type.as_str();
    let ignored = |reason: String, target: Option<(String, String)>| {
        let (group, instance_id) = target.unzip();
        Ok(Trigger::Ignored(Ignored { detail_type: detail_type.to_owned(), group, instance_id, reason }))
    };
    let lifecycle = match (envelope.source.as_str(), detail_type) {
        ("aws.events", SCHEDULED) => return Ok(Trigger::Reconcile),
        ("aws.autoscaling", LIFECYCLE_ACTION) => true,
        ("aws.autoscaling", LAUNCH_SUCCESSFUL) => false,
        (source, _) => return ignored(format!("{source} / {detail_type} is not an event this hook handles"), None),
    };
    let detail = Detail::new(Some(&envelope.detail))?;
    let target = detail.target()?;
    let action = if lifecycle {
        let hook_name = detail.required("LifecycleHookName")?;
        if hook_name.is_empty() {
            return Err(MalformedEvent("`detail.LifecycleHookName` is empty".into()));
        }
        let token = detail.optional("LifecycleActionToken")?.filter(|t| !t.is_empty());
        if let Some(other) = detail.optional("LifecycleTransition")?.filter(|t| *t != LAUNCHING) {
            return ignored(format!("lifecycle transition {other} is not a launch"), Some(target));
        }
        Some(LifecycleAction { hook_name: hook_name.to_owned(), token: token.map(str::to_owned) })
    } else {
        None
    };
    if detail.optional("Destination")? == Some("WarmPool") {
        return ignored("launch into the warm pool, not into service".into(), Some(target));
    }
    if config.group(&target.0).is_none() {
        return ignored("group is not configured".into(), Some(target));
    }
    let (group, instance_id) = target;
    Ok(Trigger::Launch(Launch { group, instance_id, lifecycle: action }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> Config {
        Config::from_json(
            r#"{"groups": {"nat-a": {"availability_zone": "us-east-1a", "eip_allocation_id": "eipalloc-11111111", "route_table_ids": ["rtb-11111111"]}}}"#,
        )
        .unwrap()
    }

    fn event(source: &str, detail_type: &str, detail: Value) -> Value {
        json!({"version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602", "detail-type": detail_type, "source": source,
               "account": "123456789012", "time": "2026-11-27T05:00:00Z", "region": "us-east-1", "resources": [], "detail": detail})
    }

    fn lifecycle(group: &str, instance: Value) -> Value {
        event(
            "aws.autoscaling",
            LIFECYCLE_ACTION,
            json!({
            "LifecycleActionToken": "87654321-4321-4321-4321-210987654321", "AutoScalingGroupName": group,
            "LifecycleHookName": "nat-launch", "EC2InstanceId": instance,
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING", "Origin": "EC2", "Destination": "AutoScalingGroup"}),
        )
    }

    #[test]
    fn lifecycle_action_is_a_launch_with_its_token() {
        let trigger = parse(lifecycle("nat-a", json!("i-0123456789abcdef0")), &config()).unwrap();
        assert_eq!(
            trigger,
            Trigger::Launch(Launch {
                group: "nat-a".into(),
                instance_id: "i-0123456789abcdef0".into(),
                lifecycle: Some(LifecycleAction {
                    hook_name: "nat-launch".into(),
                    token: Some("87654321-4321-4321-4321-210987654321".into())
                }),
            })
        );
    }

    #[test]
    fn launch_successful_is_a_launch_without_lifecycle() {
        let e = event(
            "aws.autoscaling",
            LAUNCH_SUCCESSFUL,
            json!({"AutoScalingGroupName": "nat-a", "EC2InstanceId": "i-01234567",
            "Details": {"Availability Zone": "us-east-1a", "Subnet ID": "subnet-11111111"}, "StatusCode": "InProgress"}),
        );
        let Trigger::Launch(launch) = parse(e, &config()).unwrap() else { panic!("not a launch") };
        assert_eq!(
            (launch.group.as_str(), launch.instance_id.as_str(), launch.lifecycle),
            ("nat-a", "i-01234567", None)
        );
    }

    #[test]
    fn schedule_is_a_reconcile() {
        assert_eq!(parse(event("aws.events", SCHEDULED, json!({})), &config()).unwrap(), Trigger::Reconcile);
    }

    #[test]
    fn others_are_ignored_not_errors() {
        let unknown_group = lifecycle("web", json!("i-01234567"));
        let terminate =
            event("aws.autoscaling", "EC2 Instance Terminate Successful", json!({"AutoScalingGroupName": "nat-a"}));
        let warm = event(
            "aws.autoscaling",
            LAUNCH_SUCCESSFUL,
            json!({"AutoScalingGroupName": "nat-a", "EC2InstanceId": "i-01234567", "Destination": "WarmPool"}),
        );
        for e in [unknown_group, terminate, warm] {
            assert!(matches!(parse(e.clone(), &config()), Ok(Trigger::Ignored(_))), "{e}");
        }
    }

    #[test]
    fn malformed_events_name_what_is_wrong() {
        let no_detail = json!({"detail-type": LIFECYCLE_ACTION, "source": "aws.autoscaling"});
        let cases = [
            (json!([1, 2]), "JSON object, not an array"),
            (json!({"source": 7, "detail-type": LIFECYCLE_ACTION, "detail": {}}), "`source` is a number"),
            (json!({"source": "aws.autoscaling", "detail": {}}), "detail-type"),
            (no_detail, "detail"),
            (event("aws.autoscaling", LIFECYCLE_ACTION, json!("text")), "`detail` is a string, expected a JSON object"),
            (lifecycle("nat-a", json!(42)), "`detail.EC2InstanceId` is a number, expected a string"),
            (lifecycle("nat-a", json!("not-an-instance")), "EC2InstanceId"),
            (
                event(
                    "aws.autoscaling",
                    LIFECYCLE_ACTION,
                    json!({"EC2InstanceId": "i-01234567", "LifecycleHookName": "h"}),
                ),
                "missing field `detail.AutoScalingGroupName`",
            ),
            (
                event(
                    "aws.autoscaling",
                    LIFECYCLE_ACTION,
                    json!({"EC2InstanceId": "i-01234567", "AutoScalingGroupName": "nat-a"}),
                ),
                "missing field `detail.LifecycleHookName`",
            ),
            (
                event("aws.autoscaling", LAUNCH_SUCCESSFUL, json!({"AutoScalingGroupName": "nat-a"})),
                "missing field `detail.EC2InstanceId`",
            ),
        ];
        for (e, want) in cases {
            let err = parse(e.clone(), &config()).unwrap_err().to_string();
            assert!(err.contains(want), "{e}\n  gave: {err}\n  want: {want}");
        }
        assert!(parse_bytes(b"{not json", &config()).unwrap_err().to_string().contains("not a JSON document"));
    }
}
