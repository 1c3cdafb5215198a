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

/// The sibling zone's NAT a group's tables went to (the zone has no NAT of its own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailoverReport {
    pub auto_scaling_group: String,
    pub instance_id: String,
    pub network_interface_id: String,
}

/// What happened to one group. `instance_id` and `network_interface_id` are what its default routes
/// follow: its own NAT, or, with `failover`, a sibling zone's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupReport {
    pub outcome: Outcome,
    pub auto_scaling_group: Option<String>,
    pub instance_id: Option<String>,
    pub network_interface_id: Option<String>,
    pub actions: Vec<ActionReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failover: Option<FailoverReport>,
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
            failover: None,
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
    /// A reconcile's count of zones without a NAT of their own, and of those failed over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone_health: Option<ZoneHealth>,
    /// `drain` / `undrain`: the group's drain mark, and what became of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain: Option<DrainReport>,
}

/// The drain mark (`nat-asg-hook:drained` on the group) that `drain` wrote or `undrain` removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DrainReport {
    pub auto_scaling_group: String,
    /// The group is drained after the command (true for `drain`, false for `undrain`).
    pub drained: bool,
    pub tag: &'static str,
    /// The tag's value: the one written (`applied`/`planned`), or the one already there (`unchanged`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `applied`, `planned` (dry run) or `unchanged` (the mark was already so: no call).
    pub status: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ZoneHealth {
    pub without_own_nat: usize,
    pub failed_over: usize,
}

impl Report {
    pub fn single(summary: GroupReport, dry_run: bool) -> Self {
        Self {
            summary,
            lifecycle_action: None,
            dry_run,
            duration_ms: 0,
            groups: Vec::new(),
            zone_health: None,
            drain: None,
        }
    }

    /// Several zones. With `subject`, that group's report is the summary (a leaving instance's own
    /// zone) and the others follow under `groups`; without, a reconcile: `applied` when any group
    /// changed, else `unchanged`, every group under `groups`. The summary lists every action once.
    pub fn many(subject: Option<&str>, groups: Vec<GroupReport>, mode: crate::reconcile::Mode) -> Self {
        let dry_run = mode == crate::reconcile::Mode::DryRun;
        let own = subject.and_then(|s| groups.iter().find(|g| g.auto_scaling_group.as_deref() == Some(s)));
        if let (Some(own), 1) = (own, groups.len()) {
            return Self::single(own.clone(), dry_run);
        }
        let outcome =
            if groups.iter().any(|g| g.outcome == Outcome::Applied) { Outcome::Applied } else { Outcome::Unchanged };
        let mut summary = match own {
            Some(own) => GroupReport { outcome, actions: Vec::new(), ..own.clone() },
            None => GroupReport::new(outcome, None, None),
        };
        for action in groups.iter().flat_map(|g| g.actions.iter()) {
            if !summary.actions.contains(action) {
                summary.actions.push(action.clone());
            }
        }
        Self { summary, lifecycle_action: None, dry_run, duration_ms: 0, groups, zone_health: None, drain: None }
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

/// The zones' health, from every scheduled reconcile: CloudWatch alarms on these when a zone has
/// had no NAT of its own, or has been failed over, for longer than a replacement takes.
pub fn emf_zones(timestamp_ms: u128, zones_without_own_nat: usize, zones_failed_over: usize) -> String {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms as u64,
            "CloudWatchMetrics": [{
                "Namespace": "NatAsgHook",
                "Dimensions": [[]],
                "Metrics": [
                    {"Name": "ZonesWithoutOwnNat", "Unit": "Count"},
                    {"Name": "ZonesFailedOver", "Unit": "Count"}
                ]
            }]
        },
        "ZonesWithoutOwnNat": zones_without_own_nat,
        "ZonesFailedOver": zones_failed_over
    })
    .to_string()
}

/// An invocation refused by IAM: an alarm of its own (a policy to fix), never a replacement.
pub fn emf_authorization_error(timestamp_ms: u128) -> String {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms as u64,
            "CloudWatchMetrics": [{
                "Namespace": "NatAsgHook",
                "Dimensions": [[]],
                "Metrics": [{"Name": "AuthorizationErrors", "Unit": "Count"}]
            }]
        },
        "AuthorizationErrors": 1
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
        let report = Report::many(None, vec![a.clone(), b.clone()], crate::reconcile::Mode::Apply);
        assert_eq!(report.summary.outcome, Outcome::Applied);
        assert_eq!(report.applied_count(), 1);
        assert_eq!(report.groups.len(), 2);
        let quiet = Report::many(
            None,
            vec![GroupReport::new(Outcome::Unchanged, Some("a"), None)],
            crate::reconcile::Mode::Apply,
        );
        assert_eq!(quiet.summary.outcome, Outcome::Unchanged);
        // A leaving instance's own zone is the summary; alone, it is the whole report.
        let own = Report::many(Some("b"), vec![a.clone(), b.clone()], crate::reconcile::Mode::Apply);
        assert_eq!(own.summary.auto_scaling_group.as_deref(), Some("b"));
        assert_eq!(own.summary.outcome, Outcome::Applied);
        let single = Report::many(Some("a"), vec![a], crate::reconcile::Mode::DryRun);
        assert!(single.groups.is_empty() && single.dry_run);
    }

    #[test]
    fn zone_metrics_have_no_dimensions_so_one_alarm_covers_every_zone() {
        let line: serde_json::Value = serde_json::from_str(&emf_zones(1, 2, 1)).unwrap();
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Dimensions"], serde_json::json!([[]]));
        assert_eq!((line["ZonesWithoutOwnNat"].as_u64(), line["ZonesFailedOver"].as_u64()), (Some(2), Some(1)));
        let auth: serde_json::Value = serde_json::from_str(&emf_authorization_error(1)).unwrap();
        assert_eq!(auth["AuthorizationErrors"], 1);
    }

    #[test]
    fn emf_line_declares_its_metrics() {
        let line: serde_json::Value = serde_json::from_str(&emf_line(1, "applied", Some("nat-a"), 240, 4)).unwrap();
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Namespace"], "NatAsgHook");
        assert_eq!(line["CutoverDuration"], 240);
        assert_eq!(line["ActionsApplied"], 4);
    }
}
