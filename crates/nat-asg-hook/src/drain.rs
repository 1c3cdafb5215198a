//! `drain` and `undrain`: an operator takes a zone off its NAT on purpose, and gives it back.
//!
//! A drained group carries the tag `nat-asg-hook:drained` (`<UTC time> <who: why>`). The planner
//! treats it as having no NAT of its own (see `decide::zone_owner`): its zone goes to a healthy
//! sibling and stays there through every trigger (schedule, launch events, state changes), and its
//! NAT is never a sibling for another zone. Drain checks that a sibling can take the zone, writes
//! the tag, then runs the schedule's own operation for the zone (and for any zone failed over onto
//! the drained NAT). Undrain removes the tag and runs the hand-back at once: the zone's EIP onto its
//! own proven NAT, then its routes.

use tracing::info;

use crate::aws::{Clients, tags};
use crate::config::Config;
use crate::converge::{execute, observe_and_decide};
use crate::decide::{Decision, Follows, Subject};
use crate::error::HookError;
use crate::model::{DRAINED_TAG, Mode};
use crate::report::{DrainReport, MarkStatus, Outcome, Report};
use crate::retry::Deadline;

/// What the operator asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    pub group: &'a str,
    /// true: drain; false: undrain.
    pub drained: bool,
    /// The tag value a drain writes: `<UTC time> <who: why>`.
    pub value: String,
    /// Drain even when failover is off or no healthy sibling can take the zone.
    pub force: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    /// Refused before any change: bad input, or a drain that would leave the zone with nowhere to go.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Hook(#[from] HookError),
}

/// Observes, checks, writes (or removes) the mark, then acts as the schedule would for the zone.
pub async fn run(
    clients: &Clients,
    config: &Config,
    request: &Request<'_>,
    mode: Mode,
    deadline: &Deadline,
) -> Result<Report, DrainError> {
    let group = request.group;
    if config.group(group).is_none() {
        return Err(DrainError::Refused(format!(
            "{group} is not a configured group (configured: {})",
            config.group_names().join(", ")
        )));
    }
    if request.drained && !config.failover && !request.force {
        return Err(DrainError::Refused(format!(
            "failover is off in the configuration: no sibling may carry {group}'s zone, so draining it would leave \
             the zone dark once its NAT stops; nothing changed (--force drains anyway)"
        )));
    }
    let subject = Subject::Drain { group, drained: request.drained };
    let (decision, world) = observe_and_decide(clients, config, subject, deadline).await?;
    let plan = match decision {
        Decision::Plan(plan) => plan,
        Decision::Stale { reason } | Decision::Ignored { reason } | Decision::NotYetVisible { reason } => {
            return Err(DrainError::Refused(reason));
        }
    };
    if let Some(refusal) = plan.refused.iter().find(|r| r.group() == group) {
        return Err(HookError::Refused(refusal.clone()).into());
    }
    let current = world.drain_mark(group);
    let already = current.is_some() == request.drained;
    if request.drained
        && !already
        && !request.force
        && let Some(Follows::Nothing { reason }) = plan.zone(group).map(|z| &z.follows)
    {
        return Err(DrainError::Refused(format!(
            "no healthy sibling zone can take {group}'s zone ({reason}): draining it would leave the zone dark once \
             its NAT stops; nothing changed (--force drains anyway: the zone then stays on its own NAT until a \
             sibling can take it)"
        )));
    }
    let status = match (already, mode) {
        (true, _) => MarkStatus::Unchanged,
        (false, Mode::DryRun) => MarkStatus::Changed(mode),
        (false, Mode::Apply) => {
            // The mark first: from now on every trigger keeps the zone where this command puts it.
            if request.drained {
                tags::mark_drained(clients, group, &request.value).await.map_err(HookError::from)?;
            } else {
                tags::clear_drained(clients, group).await.map_err(HookError::from)?;
            }
            MarkStatus::Changed(mode)
        }
    };
    info!(%group, drained = request.drained, mark = %status, "drain mark");
    let zones = execute(clients, &plan, mode, deadline).await?;
    let mut report = Report::many(Some(group), zones, mode);
    if status != MarkStatus::Unchanged {
        report.summary.outcome = Outcome::Applied;
    }
    report.drain = Some(DrainReport {
        auto_scaling_group: group.to_owned(),
        drained: request.drained,
        tag: DRAINED_TAG,
        value: match (already, request.drained) {
            (false, true) => Some(request.value.clone()),
            (true, true) => current.map(|m| format!("{} {}", m.since, m.reason).trim().to_owned()),
            (_, false) => None,
        },
        status,
    });
    Ok(report)
}

/// The tag value: `<UTC time> <who: why>`, at most 256 characters (Auto Scaling's limit), one line.
pub fn mark_value(now_secs: i64, who: &str, reason: Option<&str>) -> String {
    let when = aws_sdk_autoscaling::primitives::DateTime::from_secs(now_secs)
        .fmt(aws_sdk_autoscaling::primitives::DateTimeFormat::DateTime)
        .unwrap_or_else(|_| now_secs.to_string());
    let who = if who.trim().is_empty() { "someone" } else { who.trim() };
    let text = match reason.map(str::trim).filter(|r| !r.is_empty()) {
        Some(reason) => format!("{when} {who}: {reason}"),
        None => format!("{when} {who}"),
    };
    let one_line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    one_line.chars().take(256).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DrainMark;

    #[test]
    fn the_mark_says_when_who_and_why_in_one_line_auto_scaling_accepts() {
        let value = mark_value(1_796_000_000, "alice", Some("kernel patch\nCHG-42"));
        assert_eq!(value, "2026-11-30T00:53:20Z alice: kernel patch CHG-42");
        let mark = DrainMark::parse(&value);
        assert_eq!(mark.since, "2026-11-30T00:53:20Z");
        assert_eq!(mark.reason, "alice: kernel patch CHG-42");
        assert_eq!(mark_value(0, " ", None), "1970-01-01T00:00:00Z someone");
        assert_eq!(mark_value(0, "bob", Some(&"x".repeat(400))).chars().count(), 256);
        // A tag set by hand, without drain's time: all of it is the reason.
        assert_eq!(DrainMark::parse("patching"), DrainMark { since: String::new(), reason: "patching".into() });
        assert_eq!(DrainMark::parse("patching").describe(), "(patching)");
    }
}
