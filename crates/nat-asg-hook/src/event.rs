//! Turns an incoming event into what the hook must do. Pure: no AWS calls, no clock.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde_json::Value;

use crate::config::{Config, is_aws_id};

pub const LAUNCH_LIFECYCLE_ACTION: &str = "EC2 Instance-launch Lifecycle Action";
pub const TERMINATE_LIFECYCLE_ACTION: &str = "EC2 Instance-terminate Lifecycle Action";
pub const LAUNCH_SUCCESSFUL: &str = "EC2 Instance Launch Successful";
/// The group could not launch an instance (its `StatusMessage` says why): the Spot fallback's cue.
pub const LAUNCH_UNSUCCESSFUL: &str = "EC2 Instance Launch Unsuccessful";
pub const STATE_CHANGE: &str = "EC2 Instance State-change Notification";
pub const SCHEDULED: &str = "Scheduled Event";
/// A NAT's own report, put on the default bus right after it marked itself Unhealthy.
pub const SELF_CHECK_FAILED: &str = "NAT Self-Check Failed";
pub const SELF_CHECK_SOURCE: &str = "nat-asg-hook.nat";
pub const SPOT_INTERRUPTION_WARNING: &str = "EC2 Spot Instance Interruption Warning";
pub const REBALANCE_RECOMMENDATION: &str = "EC2 Instance Rebalance Recommendation";
const TERMINATING: &str = "autoscaling:EC2_INSTANCE_TERMINATING";
/// The EC2 states in which an instance stops forwarding: its zone must be handed over.
pub const LEAVING_STATES: [&str; 4] = ["stopping", "stopped", "shutting-down", "terminated"];

/// What an event asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// A NAT instance proved itself and went in service: its zone follows it.
    Launch(Launch),
    /// An instance is going away (terminate lifecycle action, or EC2 state change): hand its zone,
    /// and any zone failed over onto it, to whatever may carry them.
    Leaving(Leaving),
    /// A NAT that still runs is about to stop forwarding (its self-check took it out, or EC2
    /// reclaims its Spot capacity in two minutes): hand its zone over now, while it still forwards.
    Warned(Warned),
    /// A group could not launch its instance: a Spot group that found no Spot capacity switches
    /// to on-demand (when the fallback is configured).
    LaunchFailed(LaunchFailed),
    /// The schedule: every zone, on its own NAT (fail back) or a sibling's (fail over).
    Reconcile,
    /// Not ours: answered `ignored`, not an error.
    Ignored(Ignored),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub group: String,
    pub instance_id: String,
    /// When the event happened (epoch milliseconds): a young event may wait for EC2 to catch up.
    pub time_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchFailed {
    pub group: String,
    /// Auto Scaling's reason, e.g. "Could not launch Spot Instances. InsufficientInstanceCapacity - ...".
    pub message: String,
    /// When the launch failed (epoch milliseconds): the time the fallback writes on the group.
    pub time_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaving {
    /// Named by a lifecycle action; an EC2 state change does not carry it.
    pub group: Option<String>,
    pub instance_id: String,
    /// The terminate action to complete once the zone is handed over.
    pub lifecycle: Option<LifecycleAction>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warned {
    /// Named by the NAT's own report; EC2's warning does not carry it.
    pub group: Option<String>,
    pub instance_id: String,
    pub warning: Warning,
    /// When the event happened (epoch milliseconds): the NAT marks itself Unhealthy while it
    /// reports, so a young report may wait a moment for the group to show the mark.
    pub time_ms: i64,
}

/// Who says the instance is leaving, and so how much the event alone proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warning {
    /// The NAT's own report (any principal allowed to put events on the bus could send one): it
    /// moves a zone only when the group holds the instance Unhealthy, as the NAT marked it.
    SelfCheckFailed,
    /// EC2's own warning (`aws.` sources cannot be put by anyone else): proof enough. The hook marks
    /// the instance Unhealthy, so that no later decision picks it and its group replaces it now.
    SpotInterruption,
}

impl Warning {
    /// Whether the event alone proves the instance is leaving.
    pub fn is_proof(self) -> bool {
        matches!(self, Self::SpotInterruption)
    }
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

    /// Group and instance, the two fields every Auto Scaling event must carry, with their shapes checked.
    fn target(&self) -> Result<(String, String), MalformedEvent> {
        let group = self.required("AutoScalingGroupName")?;
        let instance_id = self.instance_id("EC2InstanceId")?;
        if group.is_empty() {
            return Err(MalformedEvent("`detail.AutoScalingGroupName` is empty".into()));
        }
        Ok((group.to_owned(), instance_id))
    }

    fn instance_id(&self, name: &str) -> Result<String, MalformedEvent> {
        let id = self.required(name)?;
        if !is_aws_id(id, "i") {
            return Err(MalformedEvent(format!(
                "`detail.{name}` {id:?} is not an instance ID such as i-0123456789abcdef0"
            )));
        }
        Ok(id.to_owned())
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
    let time_ms = envelope.time.map(|t| t.timestamp_millis()).unwrap_or(0);
    let detail = || Detail::new(Some(&envelope.detail));
    match (envelope.source.as_str(), detail_type) {
        ("aws.events", SCHEDULED) => Ok(Trigger::Reconcile),
        ("aws.autoscaling", LAUNCH_LIFECYCLE_ACTION) => {
            let target = detail()?.target()?;
            ignored(
                "the instance completes its own launch action once its self-check passes; the hook moves on \"EC2 Instance Launch Successful\"".into(),
                Some(target),
            )
        }
        ("aws.autoscaling", LAUNCH_SUCCESSFUL) => {
            let detail = detail()?;
            let target = detail.target()?;
            if detail.optional("Destination")? == Some("WarmPool") {
                return ignored("launch into the warm pool, not into service".into(), Some(target));
            }
            if config.group(&target.0).is_none() {
                return ignored("group is not configured".into(), Some(target));
            }
            let (group, instance_id) = target;
            Ok(Trigger::Launch(Launch { group, instance_id, time_ms }))
        }
        ("aws.autoscaling", LAUNCH_UNSUCCESSFUL) => {
            // A failed launch names no instance (its `EC2InstanceId` is empty): only the group.
            let detail = detail()?;
            let group = detail.required("AutoScalingGroupName")?;
            if group.is_empty() {
                return Err(MalformedEvent("`detail.AutoScalingGroupName` is empty".into()));
            }
            let message = detail.optional("StatusMessage")?.unwrap_or_default();
            if config.group(group).is_none() {
                return Ok(Trigger::Ignored(Ignored {
                    detail_type: detail_type.to_owned(),
                    group: Some(group.to_owned()),
                    instance_id: None,
                    reason: "group is not configured".into(),
                }));
            }
            Ok(Trigger::LaunchFailed(LaunchFailed { group: group.to_owned(), message: message.to_owned(), time_ms }))
        }
        ("aws.autoscaling", TERMINATE_LIFECYCLE_ACTION) => {
            let detail = detail()?;
            let target = detail.target()?;
            let hook_name = detail.required("LifecycleHookName")?;
            if hook_name.is_empty() {
                return Err(MalformedEvent("`detail.LifecycleHookName` is empty".into()));
            }
            let token = detail.optional("LifecycleActionToken")?.filter(|t| !t.is_empty());
            if let Some(other) = detail.optional("LifecycleTransition")?.filter(|t| *t != TERMINATING) {
                return ignored(format!("lifecycle transition {other} is not a termination"), Some(target));
            }
            if config.group(&target.0).is_none() {
                return ignored("group is not configured".into(), Some(target));
            }
            let (group, instance_id) = target;
            Ok(Trigger::Leaving(Leaving {
                group: Some(group),
                instance_id,
                lifecycle: Some(LifecycleAction { hook_name: hook_name.to_owned(), token: token.map(str::to_owned) }),
            }))
        }
        ("aws.ec2", STATE_CHANGE) => {
            let detail = detail()?;
            let instance_id = detail.instance_id("instance-id")?;
            let state = detail.required("state")?;
            if !LEAVING_STATES.contains(&state) {
                return Ok(Trigger::Ignored(Ignored {
                    detail_type: detail_type.to_owned(),
                    group: None,
                    instance_id: Some(instance_id),
                    reason: format!("state {state} is not one in which a NAT stops forwarding"),
                }));
            }
            // Which leaving state does not matter to the planner: it observes the instance itself.
            Ok(Trigger::Leaving(Leaving { group: None, instance_id, lifecycle: None }))
        }
        (SELF_CHECK_SOURCE, SELF_CHECK_FAILED) => {
            let target = detail()?.target()?;
            if config.group(&target.0).is_none() {
                return ignored("group is not configured".into(), Some(target));
            }
            let (group, instance_id) = target;
            Ok(Trigger::Warned(Warned { group: Some(group), instance_id, warning: Warning::SelfCheckFailed, time_ms }))
        }
        ("aws.ec2", SPOT_INTERRUPTION_WARNING) => {
            let instance_id = detail()?.instance_id("instance-id")?;
            Ok(Trigger::Warned(Warned { group: None, instance_id, warning: Warning::SpotInterruption, time_ms }))
        }
        ("aws.ec2", REBALANCE_RECOMMENDATION) => {
            let instance_id = detail()?.instance_id("instance-id")?;
            Ok(Trigger::Ignored(Ignored {
                detail_type: detail_type.to_owned(),
                group: None,
                instance_id: Some(instance_id),
                reason: "a recommendation, not a warning: the group's capacity rebalancing launches the replacement first, and its launch takes the zone".into(),
            }))
        }
        (source, _) => ignored(format!("{source} / {detail_type} is not an event this hook handles"), None),
    }
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

    fn lifecycle(detail_type: &str, transition: &str, group: &str, instance: Value) -> Value {
        event(
            "aws.autoscaling",
            detail_type,
            json!({
            "LifecycleActionToken": "87654321-4321-4321-4321-210987654321", "AutoScalingGroupName": group,
            "LifecycleHookName": "nat-asg-hook-terminate", "EC2InstanceId": instance,
            "LifecycleTransition": transition, "Origin": "AutoScalingGroup", "Destination": "EC2"}),
        )
    }

    fn terminate(group: &str, instance: Value) -> Value {
        lifecycle(TERMINATE_LIFECYCLE_ACTION, TERMINATING, group, instance)
    }

    fn launch_action(group: &str, instance: Value) -> Value {
        lifecycle(LAUNCH_LIFECYCLE_ACTION, "autoscaling:EC2_INSTANCE_LAUNCHING", group, instance)
    }

    fn state_change(instance: &str, state: &str) -> Value {
        event("aws.ec2", STATE_CHANGE, json!({"instance-id": instance, "state": state}))
    }

    #[test]
    fn a_failed_launch_names_its_group_and_why() {
        let failed = |group: &str, message: Value| {
            event(
                "aws.autoscaling",
                LAUNCH_UNSUCCESSFUL,
                json!({"AutoScalingGroupName": group, "EC2InstanceId": "", "StatusCode": "Failed",
                       "StatusMessage": message, "Details": {"Availability Zone": "us-east-1a"}}),
            )
        };
        let message = "Could not launch Spot Instances. InsufficientInstanceCapacity - no Spot capacity.";
        assert_eq!(
            parse(failed("nat-a", json!(message)), &config()).unwrap(),
            Trigger::LaunchFailed(LaunchFailed {
                group: "nat-a".into(),
                message: message.into(),
                time_ms: 1_795_755_600_000,
            })
        );
        assert!(matches!(parse(failed("other", json!(message)), &config()).unwrap(), Trigger::Ignored(_)));
        let err = parse(failed("", json!(message)), &config()).unwrap_err();
        assert!(err.to_string().contains("AutoScalingGroupName"), "{err}");
        let err = parse(failed("nat-a", json!(7)), &config()).unwrap_err();
        assert!(err.to_string().contains("`detail.StatusMessage` is a number"), "{err}");
        let Trigger::LaunchFailed(no_message) = parse(failed("nat-a", Value::Null), &config()).unwrap() else {
            panic!("a failed launch without a message is still a failed launch");
        };
        assert_eq!(no_message.message, "");
    }

    #[test]
    fn launch_successful_is_a_launch_with_its_time() {
        let e = event(
            "aws.autoscaling",
            LAUNCH_SUCCESSFUL,
            json!({"AutoScalingGroupName": "nat-a", "EC2InstanceId": "i-01234567",
            "Details": {"Availability Zone": "us-east-1a", "Subnet ID": "subnet-11111111"}, "StatusCode": "InProgress"}),
        );
        assert_eq!(
            parse(e, &config()).unwrap(),
            Trigger::Launch(Launch {
                group: "nat-a".into(),
                instance_id: "i-01234567".into(),
                time_ms: 1_795_755_600_000
            })
        );
    }

    #[test]
    fn the_launch_lifecycle_action_is_the_instance_s_own_and_moves_nothing() {
        let Trigger::Ignored(ignored) = parse(launch_action("nat-a", json!("i-0123456789abcdef0")), &config()).unwrap()
        else {
            panic!("a launch lifecycle action must be ignored")
        };
        assert!(ignored.reason.contains("completes its own launch action"), "{}", ignored.reason);
        assert_eq!(ignored.instance_id.as_deref(), Some("i-0123456789abcdef0"));
    }

    #[test]
    fn a_terminate_action_is_a_leaving_instance_with_its_token() {
        assert_eq!(
            parse(terminate("nat-a", json!("i-0123456789abcdef0")), &config()).unwrap(),
            Trigger::Leaving(Leaving {
                group: Some("nat-a".into()),
                instance_id: "i-0123456789abcdef0".into(),
                lifecycle: Some(LifecycleAction {
                    hook_name: "nat-asg-hook-terminate".into(),
                    token: Some("87654321-4321-4321-4321-210987654321".into())
                }),
            })
        );
    }

    #[test]
    fn a_state_change_to_a_leaving_state_is_a_leaving_instance() {
        for state in LEAVING_STATES {
            assert_eq!(
                parse(state_change("i-01234567", state), &config()).unwrap(),
                Trigger::Leaving(Leaving { group: None, instance_id: "i-01234567".into(), lifecycle: None })
            );
        }
        for state in ["pending", "running"] {
            assert!(matches!(parse(state_change("i-01234567", state), &config()), Ok(Trigger::Ignored(_))), "{state}");
        }
    }

    #[test]
    fn a_nat_s_own_report_and_ec2_s_spot_warning_are_warnings() {
        let report = event(
            SELF_CHECK_SOURCE,
            SELF_CHECK_FAILED,
            json!({"EC2InstanceId": "i-0123456789abcdef0", "AutoScalingGroupName": "nat-a", "reason": "forwarding is off"}),
        );
        assert_eq!(
            parse(report, &config()).unwrap(),
            Trigger::Warned(Warned {
                group: Some("nat-a".into()),
                instance_id: "i-0123456789abcdef0".into(),
                warning: Warning::SelfCheckFailed,
                time_ms: 1_795_755_600_000,
            })
        );
        let spot = event(
            "aws.ec2",
            SPOT_INTERRUPTION_WARNING,
            json!({"instance-id": "i-0123456789abcdef0", "instance-action": "terminate"}),
        );
        assert_eq!(
            parse(spot, &config()).unwrap(),
            Trigger::Warned(Warned {
                group: None,
                instance_id: "i-0123456789abcdef0".into(),
                warning: Warning::SpotInterruption,
                time_ms: 1_795_755_600_000,
            })
        );
        assert!(Warning::SpotInterruption.is_proof() && !Warning::SelfCheckFailed.is_proof());
        // The report of an unconfigured group, from another source, or a rebalance recommendation: nothing.
        for ignored in [
            event(
                SELF_CHECK_SOURCE,
                SELF_CHECK_FAILED,
                json!({"EC2InstanceId": "i-0123456789abcdef0", "AutoScalingGroupName": "web"}),
            ),
            event(
                "forged.source",
                SELF_CHECK_FAILED,
                json!({"EC2InstanceId": "i-0123456789abcdef0", "AutoScalingGroupName": "nat-a"}),
            ),
            event("aws.ec2", REBALANCE_RECOMMENDATION, json!({"instance-id": "i-0123456789abcdef0"})),
        ] {
            assert!(matches!(parse(ignored.clone(), &config()), Ok(Trigger::Ignored(_))), "{ignored}");
        }
        // Malformed: named.
        let bad = event("aws.ec2", SPOT_INTERRUPTION_WARNING, json!({"instance-id": "web-1"}));
        assert!(parse(bad, &config()).unwrap_err().0.contains("instance-id"));
        let bad = event(SELF_CHECK_SOURCE, SELF_CHECK_FAILED, json!({"AutoScalingGroupName": "nat-a"}));
        assert!(parse(bad, &config()).unwrap_err().0.contains("EC2InstanceId"));
    }

    #[test]
    fn schedule_is_a_reconcile() {
        assert_eq!(parse(event("aws.events", SCHEDULED, json!({})), &config()).unwrap(), Trigger::Reconcile);
    }

    #[test]
    fn others_are_ignored_not_errors() {
        let unknown_group = terminate("web", json!("i-01234567"));
        let terminate_successful =
            event("aws.autoscaling", "EC2 Instance Terminate Successful", json!({"AutoScalingGroupName": "nat-a"}));
        let warm = event(
            "aws.autoscaling",
            LAUNCH_SUCCESSFUL,
            json!({"AutoScalingGroupName": "nat-a", "EC2InstanceId": "i-01234567", "Destination": "WarmPool"}),
        );
        let launch_transition_on_terminate_type =
            lifecycle(TERMINATE_LIFECYCLE_ACTION, "autoscaling:EC2_INSTANCE_LAUNCHING", "nat-a", json!("i-01234567"));
        for e in [unknown_group, terminate_successful, warm, launch_transition_on_terminate_type] {
            assert!(matches!(parse(e.clone(), &config()), Ok(Trigger::Ignored(_))), "{e}");
        }
    }

    #[test]
    fn malformed_events_name_what_is_wrong() {
        let no_detail = json!({"detail-type": TERMINATE_LIFECYCLE_ACTION, "source": "aws.autoscaling"});
        let cases = [
            (json!([1, 2]), "JSON object, not an array"),
            (json!({"source": 7, "detail-type": TERMINATE_LIFECYCLE_ACTION, "detail": {}}), "`source` is a number"),
            (json!({"source": "aws.autoscaling", "detail": {}}), "detail-type"),
            (no_detail, "detail"),
            (
                event("aws.autoscaling", TERMINATE_LIFECYCLE_ACTION, json!("text")),
                "`detail` is a string, expected a JSON object",
            ),
            (terminate("nat-a", json!(42)), "`detail.EC2InstanceId` is a number, expected a string"),
            (terminate("nat-a", json!("not-an-instance")), "EC2InstanceId"),
            (
                event(
                    "aws.autoscaling",
                    TERMINATE_LIFECYCLE_ACTION,
                    json!({"EC2InstanceId": "i-01234567", "LifecycleHookName": "h"}),
                ),
                "missing field `detail.AutoScalingGroupName`",
            ),
            (
                event(
                    "aws.autoscaling",
                    TERMINATE_LIFECYCLE_ACTION,
                    json!({"EC2InstanceId": "i-01234567", "AutoScalingGroupName": "nat-a"}),
                ),
                "missing field `detail.LifecycleHookName`",
            ),
            (
                event("aws.autoscaling", LAUNCH_SUCCESSFUL, json!({"AutoScalingGroupName": "nat-a"})),
                "missing field `detail.EC2InstanceId`",
            ),
            (launch_action("nat-a", json!(7)), "`detail.EC2InstanceId` is a number"),
            (event("aws.ec2", STATE_CHANGE, json!({"state": "stopping"})), "missing field `detail.instance-id`"),
            (event("aws.ec2", STATE_CHANGE, json!({"instance-id": "i-01234567"})), "missing field `detail.state`"),
            (state_change("vol-01234567", "stopping"), "`detail.instance-id` \"vol-01234567\""),
        ];
        for (e, want) in cases {
            let err = parse(e.clone(), &config()).unwrap_err().to_string();
            assert!(err.contains(want), "{e}\n  gave: {err}\n  want: {want}");
        }
        assert!(parse_bytes(b"{not json", &config()).unwrap_err().to_string().contains("not a JSON document"));
    }
}
