//! The handler's result (the JSON contract), the pure mapping from a zone's plan to its report,
//! and the CloudWatch Embedded Metric Format lines.

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::capacity::Purchase;
use crate::decide::{Follows, ZonePlan};
use crate::model::{Action, Mode};

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
    /// This zone could not be planned (a refusal): the invocation reports an error at its edge.
    Failed,
}

/// A status's name in the result JSON, for logs and the CLI: one list of names (serde's).
fn json_name(value: &impl Serialize, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => f.write_str(&name),
        _ => Err(fmt::Error),
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        json_name(self, f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionReport {
    #[serde(flatten)]
    pub action: Action,
    /// `applied`, or `planned` in a dry run: the mode it ran in.
    pub status: Mode,
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
    /// The Spot fallback's switches: a failed Spot launch's group to on-demand, the schedule's back to Spot.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capacity: Vec<CapacityReport>,
}

/// A group switched between Spot and on-demand (its on-demand base capacity set to 1 or 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CapacityReport {
    pub auto_scaling_group: String,
    /// What the group buys from now on.
    pub purchase: Purchase,
    pub on_demand_base_capacity: i32,
    /// `applied`, or `planned` in a dry run.
    pub status: Mode,
    /// When Spot was last found unavailable (the group's `nat-asg-hook:spot-unavailable` tag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spot_unavailable_since: Option<String>,
    pub reason: String,
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
    pub status: MarkStatus,
}

/// What became of the drain mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum MarkStatus {
    /// Written or removed (`applied`), or would be (`planned`).
    Changed(Mode),
    #[serde(serialize_with = "unchanged")]
    Unchanged,
}

impl fmt::Display for MarkStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        json_name(self, f)
    }
}

fn unchanged<S: serde::Serializer>(serializer: S) -> Result<S::Ok, S::Error> {
    Outcome::Unchanged.serialize(serializer)
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
            capacity: Vec::new(),
        }
    }

    /// Several zones. With `subject`, that group's report is the summary (a leaving instance's own
    /// zone) and the others follow under `groups`; without, a reconcile: `applied` when any group
    /// changed, else `unchanged`, every group under `groups`. The summary lists every action once.
    /// With a failed zone the summary names no subject: every zone is under `groups`.
    pub fn many(subject: Option<&str>, groups: Vec<GroupReport>, mode: Mode) -> Self {
        let dry_run = mode.is_dry_run();
        let subject = subject.filter(|_| groups.iter().all(|g| g.outcome != Outcome::Failed));
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
        Self {
            summary,
            lifecycle_action: None,
            dry_run,
            duration_ms: 0,
            groups,
            zone_health: None,
            drain: None,
            capacity: Vec::new(),
        }
    }

    pub fn applied_count(&self) -> usize {
        self.summary.actions.iter().filter(|a| a.status == Mode::Apply).count()
    }

    /// The zones that could not be planned, with why: `(group, reason)`. The core reports them in
    /// the report; the edges (`Hook::invoke`, the CLI) turn them into the invocation's error.
    pub fn failures(&self) -> Vec<(String, String)> {
        std::iter::once(&self.summary)
            .filter(|_| self.groups.is_empty())
            .chain(&self.groups)
            .filter(|g| g.outcome == Outcome::Failed)
            .map(|g| (g.auto_scaling_group.clone().unwrap_or_default(), g.reason.clone().unwrap_or_default()))
            .collect()
    }
}

/// What happened to one zone, for the result JSON: the plan's actions, carried out in `mode`.
pub fn zone_report(zone: &ZonePlan, mode: Mode) -> GroupReport {
    let actions: Vec<ActionReport> = zone.actions().map(|a| ActionReport { action: a.clone(), status: mode }).collect();
    let (outcome, instance, eni, failover, reason) = match &zone.follows {
        Follows::Own { instance_id, network_interface_id } => {
            (Outcome::Unchanged, Some(instance_id.as_str()), Some(network_interface_id.clone()), None, None)
        }
        Follows::Sibling { group, instance_id, network_interface_id } => (
            Outcome::Unchanged,
            Some(instance_id.as_str()),
            Some(network_interface_id.clone()),
            Some(FailoverReport {
                auto_scaling_group: group.clone(),
                instance_id: instance_id.clone(),
                network_interface_id: network_interface_id.clone(),
            }),
            None,
        ),
        Follows::Nothing { reason } => (Outcome::NoInstance, None, None, None, Some(reason.clone())),
    };
    let mut report =
        GroupReport::new(if actions.is_empty() { outcome } else { Outcome::Applied }, Some(&zone.group), instance);
    report.network_interface_id = eni;
    report.failover = failover;
    report.actions = actions;
    report.reason = reason;
    report
}

/// One EMF line: the metrics (name, unit, value) in namespace `NatAsgHook`, under `dimensions`
/// (each a list of property names; `[]` is the metric without dimensions), and `properties`.
fn emf(timestamp_ms: u128, dimensions: Value, metrics: &[(&str, &str, Value)], properties: &[(&str, Value)]) -> String {
    let mut line = Map::new();
    line.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms as u64,
            "CloudWatchMetrics": [{
                "Namespace": "NatAsgHook",
                "Dimensions": dimensions,
                "Metrics": metrics.iter().map(|(name, unit, _)| json!({"Name": name, "Unit": unit})).collect::<Vec<_>>()
            }]
        }),
    );
    for (name, value) in properties {
        line.insert((*name).into(), value.clone());
    }
    for (name, _, value) in metrics {
        line.insert((*name).into(), value.clone());
    }
    Value::Object(line).to_string()
}

/// One EMF line per invocation: CloudWatch turns it into metrics (cutover duration, actions applied,
/// by outcome) without an API call. `outcome` is None (`error`) for a failed invocation.
pub fn emf_line(
    timestamp_ms: u128,
    outcome: Option<Outcome>,
    group: Option<&str>,
    duration_ms: u64,
    actions_applied: usize,
) -> String {
    let outcome = outcome.map_or_else(|| "error".to_owned(), |o| o.to_string());
    emf(
        timestamp_ms,
        json!([["Outcome"], []]),
        &[
            ("CutoverDuration", "Milliseconds", json!(duration_ms)),
            ("ActionsApplied", "Count", json!(actions_applied)),
            ("Invocations", "Count", json!(1)),
        ],
        &[("Outcome", json!(outcome)), ("AutoScalingGroup", json!(group.unwrap_or("*")))],
    )
}

/// The zones' health, from every scheduled reconcile: CloudWatch alarms on these when a zone has
/// had no NAT of its own, or has been failed over, for longer than a replacement takes.
pub fn emf_zones(timestamp_ms: u128, zones_without_own_nat: usize, zones_failed_over: usize) -> String {
    emf(
        timestamp_ms,
        json!([[]]),
        &[
            ("ZonesWithoutOwnNat", "Count", json!(zones_without_own_nat)),
            ("ZonesFailedOver", "Count", json!(zones_failed_over)),
        ],
        &[],
    )
}

/// An invocation refused by IAM: an alarm of its own (a policy to fix), never a replacement.
pub fn emf_authorization_error(timestamp_ms: u128) -> String {
    emf(timestamp_ms, json!([[]]), &[("AuthorizationErrors", "Count", json!(1))], &[])
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
            status: Mode::Apply,
        });
        let b = GroupReport::new(Outcome::NoInstance, Some("b"), None);
        let report = Report::many(None, vec![a.clone(), b.clone()], Mode::Apply);
        assert_eq!(report.summary.outcome, Outcome::Applied);
        assert_eq!(report.applied_count(), 1);
        assert_eq!(report.groups.len(), 2);
        let quiet = Report::many(None, vec![GroupReport::new(Outcome::Unchanged, Some("a"), None)], Mode::Apply);
        assert_eq!(quiet.summary.outcome, Outcome::Unchanged);
        // A leaving instance's own zone is the summary; alone, it is the whole report.
        let own = Report::many(Some("b"), vec![a.clone(), b.clone()], Mode::Apply);
        assert_eq!(own.summary.auto_scaling_group.as_deref(), Some("b"));
        assert_eq!(own.summary.outcome, Outcome::Applied);
        let single = Report::many(Some("a"), vec![a], Mode::DryRun);
        assert!(single.groups.is_empty() && single.dry_run);
    }

    #[test]
    fn statuses_serialize_as_the_contract_names() {
        assert_eq!(serde_json::to_value(Mode::Apply).unwrap(), "applied");
        assert_eq!(serde_json::to_value(Mode::DryRun).unwrap(), "planned");
        assert_eq!(serde_json::to_value(MarkStatus::Changed(Mode::DryRun)).unwrap(), "planned");
        assert_eq!(serde_json::to_value(MarkStatus::Unchanged).unwrap(), "unchanged");
        assert_eq!(MarkStatus::Unchanged.to_string(), "unchanged");
        assert_eq!(Outcome::NoInstance.to_string(), "no_instance");
        let planned = ActionReport {
            action: Action::DisableSourceDestCheck { network_interface_id: "eni-01234567".into() },
            status: Mode::DryRun,
        };
        assert_eq!(serde_json::to_value(&planned).unwrap()["status"], "planned");
    }

    #[test]
    fn failed_zones_are_in_the_report_and_an_error_only_at_the_edge() {
        let ok = GroupReport::new(Outcome::Unchanged, Some("a"), Some("i-01234567"));
        let failed = GroupReport::new(Outcome::Failed, Some("b"), None).with_reason("route table rtb-1 does not exist");
        let report = Report::many(None, vec![ok.clone(), failed.clone()], Mode::Apply);
        assert_eq!(report.failures(), [("b".to_owned(), "route table rtb-1 does not exist".to_owned())]);
        let e = crate::error::HookError::zones_failed(&report).unwrap();
        assert_eq!(e.error_type(), "ReconcileFailed", "the runbook's name");
        assert_eq!(e.to_string(), "failed for b: route table rtb-1 does not exist");
        assert!(Report::many(None, vec![ok], Mode::Apply).failures().is_empty());
        // With a failed zone, the summary names no subject (as the error's report always did).
        let own = Report::many(Some("b"), vec![failed], Mode::Apply);
        assert_eq!((own.summary.auto_scaling_group.as_deref(), own.groups.len()), (None, 1));
        assert_eq!(own.failures().len(), 1);
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
        let line: serde_json::Value =
            serde_json::from_str(&emf_line(1, Some(Outcome::Applied), Some("nat-a"), 240, 4)).unwrap();
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Namespace"], "NatAsgHook");
        assert_eq!(line["CutoverDuration"], 240);
        assert_eq!(line["ActionsApplied"], 4);
        assert_eq!((line["Outcome"].as_str(), line["AutoScalingGroup"].as_str()), (Some("applied"), Some("nat-a")));
        let failed: serde_json::Value = serde_json::from_str(&emf_line(1, None, None, 9, 0)).unwrap();
        assert_eq!((failed["Outcome"].as_str(), failed["AutoScalingGroup"].as_str()), (Some("error"), Some("*")));
        assert_eq!(failed["_aws"]["CloudWatchMetrics"][0]["Dimensions"], serde_json::json!([["Outcome"], []]));
        assert_eq!(failed["_aws"]["CloudWatchMetrics"][0]["Metrics"][2]["Name"], "Invocations");
    }
}
