//! The handler's result (the JSON contract) and its one CloudWatch Embedded Metric Format line.

use serde::Serialize;
use serde_json::json;

use crate::model::Action;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Something was changed (or, in a dry run, would be).
    Applied,
    /// Everything was already right: no mutating call.
    Unchanged,
    /// Not an event for this hook.
    Ignored,
    /// The event's instance is not the one its group keeps: nothing moved.
    Stale,
    /// Reconcile only: the group holds no InService instance to point at.
    NoInstance,
    /// Reconcile only: this group failed (the invocation reports an error).
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Unchanged => "unchanged",
            Self::Ignored => "ignored",
            Self::Stale => "stale",
            Self::NoInstance => "no_instance",
            Self::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionReport {
    #[serde(flatten)]
    pub action: Action,
    /// `applied`, or `planned` in a dry run.
    pub status: &'static str,
}

/// What happened to one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupReport {
    pub outcome: Outcome,
    pub auto_scaling_group: Option<String>,
    pub instance_id: Option<String>,
    pub network_interface_id: Option<String>,
    pub actions: Vec<ActionReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl GroupReport {
    pub fn new(outcome: Outcome, group: Option<&str>, instance_id: Option<&str>) -> Self {
        Self {
            outcome,
            auto_scaling_group: group.map(str::to_owned),
            instance_id: instance_id.map(str::to_owned),
            network_interface_id: None,
            actions: Vec::new(),
            reason: None,
        }
    }

    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

/// The handler's answer: one group's report at the top level; for a reconcile, every group's
/// report under `groups` and the union of their actions at the top.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub summary: GroupReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle_action: Option<&'static str>,
    pub dry_run: bool,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupReport>,
}

impl Report {
    pub fn single(summary: GroupReport, dry_run: bool) -> Self {
        Self { summary, lifecycle_action: None, dry_run, duration_ms: 0, groups: Vec::new() }
    }

    /// A reconcile over several groups: `applied` when any group changed, else `unchanged`.
    pub fn reconcile(groups: Vec<GroupReport>, dry_run: bool) -> Self {
        let outcome =
            if groups.iter().any(|g| g.outcome == Outcome::Applied) { Outcome::Applied } else { Outcome::Unchanged };
        let mut summary = GroupReport::new(outcome, None, None);
        summary.actions = groups.iter().flat_map(|g| g.actions.iter().cloned()).collect();
        Self { summary, lifecycle_action: None, dry_run, duration_ms: 0, groups }
    }

    pub fn applied_count(&self) -> usize {
        self.summary.actions.iter().filter(|a| a.status == "applied").count()
    }
}

/// One EMF line: CloudWatch turns it into metrics (cutover duration, actions applied, by outcome)
/// without an API call. `outcome` is `error` for a failed invocation.
pub fn emf_line(
    timestamp_ms: u128,
    outcome: &str,
    group: Option<&str>,
    duration_ms: u64,
    actions_applied: usize,
) -> String {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms as u64,
            "CloudWatchMetrics": [{
                "Namespace": "NatAsgHook",
                "Dimensions": [["Outcome"], []],
                "Metrics": [
                    {"Name": "CutoverDuration", "Unit": "Milliseconds"},
                    {"Name": "ActionsApplied", "Unit": "Count"},
                    {"Name": "Invocations", "Unit": "Count"}
                ]
            }]
        },
        "Outcome": outcome,
        "AutoScalingGroup": group.unwrap_or("*"),
        "CutoverDuration": duration_ms,
        "ActionsApplied": actions_applied,
        "Invocations": 1
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_fields_are_always_present() {
        let report = Report::single(
            GroupReport::new(Outcome::Stale, Some("nat-a"), Some("i-01234567")).with_reason("superseded"),
            false,
        );
        let value = serde_json::to_value(&report).unwrap();
        for key in ["outcome", "auto_scaling_group", "instance_id", "network_interface_id", "actions"] {
            assert!(value.get(key).is_some(), "{key} missing from {value}");
        }
        assert_eq!(value["outcome"], "stale");
    }

    #[test]
    fn reconcile_summary_is_applied_when_any_group_changed() {
        let mut a = GroupReport::new(Outcome::Applied, Some("a"), Some("i-01234567"));
        a.actions.push(ActionReport {
            action: Action::DisableSourceDestCheck { network_interface_id: "eni-01234567".into() },
            status: "applied",
        });
        let b = GroupReport::new(Outcome::NoInstance, Some("b"), None);
        let report = Report::reconcile(vec![a, b], false);
        assert_eq!(report.summary.outcome, Outcome::Applied);
        assert_eq!(report.applied_count(), 1);
        let quiet = Report::reconcile(vec![GroupReport::new(Outcome::Unchanged, Some("a"), None)], false);
        assert_eq!(quiet.summary.outcome, Outcome::Unchanged);
    }

    #[test]
    fn emf_line_declares_its_metrics() {
        let line: serde_json::Value = serde_json::from_str(&emf_line(1, "applied", Some("nat-a"), 240, 4)).unwrap();
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Namespace"], "NatAsgHook");
        assert_eq!(line["CutoverDuration"], 240);
        assert_eq!(line["ActionsApplied"], 4);
    }
}
