//! Spot with an on-demand fallback: which way a NAT group buys its instance, and when the hook
//! changes it. Pure: the AWS glue reads a group's distribution and mark (`aws::capacity`) and
//! carries out what is decided here.
//!
//! A group bought on Spot whose launch fails for want of Spot capacity is switched to on-demand
//! (its on-demand base capacity to 1), so that its next launch attempt gets an instance; the time
//! is written on the group (`SPOT_UNAVAILABLE_TAG`). Once Spot has been unavailable for longer than
//! the configured wait, the schedule switches it back (base 0): Auto Scaling then replaces the
//! on-demand instance with a Spot one, launching before it terminates, which is a planned refresh.
//! If Spot is still short, that launch fails, the old instance keeps serving, and the failure
//! switches the group back to on-demand with a new time: one attempt per wait, never a loop.

use std::time::Duration;

/// The group tag holding when Spot capacity was last found unavailable (UTC, RFC 3339).
pub const SPOT_UNAVAILABLE_TAG: &str = "nat-asg-hook:spot-unavailable";

/// What Auto Scaling says when the launch failed for Spot's sake (the pools had no capacity, the
/// price was too low, the account's Spot limit): an on-demand instance would launch. Any other
/// failure (an AMI, a subnet, permissions) would fail on-demand too.
const SPOT_FAILURE: &str = "could not launch spot instances";

/// How a group buys its one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Purchase {
    Spot,
    OnDemand,
}

/// The part of a group's instances distribution that decides the purchase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Distribution {
    pub on_demand_base_capacity: i32,
    pub on_demand_percentage_above_base: i32,
}

impl Distribution {
    /// A single-instance group's one instance: on-demand when the base covers it, or when every
    /// instance above the base is on-demand.
    pub fn purchase(&self) -> Purchase {
        if self.on_demand_base_capacity >= 1 || self.on_demand_percentage_above_base >= 100 {
            Purchase::OnDemand
        } else {
            Purchase::Spot
        }
    }
}

/// A NAT group as the fallback sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCapacity {
    pub group: String,
    /// None: the group has no mixed instances policy (it buys on-demand, and nothing here applies).
    pub distribution: Option<Distribution>,
    /// When Spot was last found unavailable (epoch milliseconds), from the group's tag.
    pub spot_unavailable_ms: Option<i64>,
}

/// The configured fallback (`spot_fallback` in the hook's configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpotFallback {
    /// How long a group stays on-demand after Spot was last unavailable before it tries Spot again.
    pub retry_spot_after: Duration,
}

/// What to do about one group's purchase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapacityDecision {
    /// Change the base capacity: to 1 (on-demand) or 0 (Spot). `mark` writes the time Spot was
    /// found unavailable (switching to on-demand).
    Switch { to: Purchase, base: i32, mark: Option<i64>, reason: String },
    /// Already as it should be: no call.
    Unchanged { reason: String },
    /// Nothing for the fallback here.
    Ignored { reason: String },
}

/// Whether a failed launch's status message says Spot capacity was the trouble.
pub fn is_spot_shortage(message: &str) -> bool {
    message.to_ascii_lowercase().contains(SPOT_FAILURE)
}

/// Why a failed launch is none of the fallback's business, whatever the group looks like (the
/// hook then reads nothing): no fallback configured, or not a failure for Spot's sake.
pub fn not_for_the_fallback(fallback: Option<&SpotFallback>, message: &str) -> Option<&'static str> {
    if fallback.is_none() {
        return Some("no on-demand fallback is configured: the group keeps trying as it is");
    }
    if !is_spot_shortage(message) {
        return Some("not a Spot capacity failure: an on-demand instance would fail the same way");
    }
    None
}

/// A launch of the group failed (`EC2 Instance Launch Unsuccessful`, at `time_ms`).
pub fn on_launch_failed(
    fallback: Option<&SpotFallback>,
    group: &GroupCapacity,
    message: &str,
    time_ms: i64,
) -> CapacityDecision {
    let ignored = |reason: &str| CapacityDecision::Ignored { reason: reason.to_owned() };
    if let Some(reason) = not_for_the_fallback(fallback, message) {
        return ignored(reason);
    }
    let Some(distribution) = group.distribution else {
        return ignored("the group has no mixed instances policy: it does not buy Spot");
    };
    if distribution.purchase() == Purchase::OnDemand {
        return CapacityDecision::Unchanged { reason: "the group already launches on-demand".into() };
    }
    CapacityDecision::Switch {
        to: Purchase::OnDemand,
        base: 1,
        mark: Some(time_ms),
        reason: "Spot capacity unavailable: the group launches on-demand until Spot is tried again".into(),
    }
}

/// The schedule: a group on-demand because Spot was unavailable tries Spot again once the wait
/// is over. None: nothing to do (no fallback, the group is on Spot, or the wait is not over).
pub fn on_schedule(fallback: Option<&SpotFallback>, group: &GroupCapacity, now_ms: i64) -> Option<CapacityDecision> {
    let fallback = fallback?;
    let distribution = group.distribution?;
    // Only a fallback the hook made: the base it set, above a Spot percentage.
    if distribution.on_demand_base_capacity != 1 || distribution.on_demand_percentage_above_base >= 100 {
        return None;
    }
    let since = group.spot_unavailable_ms?;
    let waited = now_ms.saturating_sub(since);
    let wait = fallback.retry_spot_after.as_millis() as i64;
    (waited >= wait).then(|| CapacityDecision::Switch {
        to: Purchase::Spot,
        base: 0,
        mark: None,
        reason: format!(
            "Spot last unavailable {} min ago (wait {} min): the group replaces its on-demand NAT with a Spot one, launching first",
            waited / 60_000,
            wait / 60_000
        ),
    })
}

/// A group the fallback holds on-demand, as `verify` tells it: since when Spot was unavailable, and
/// when the schedule tries Spot again (None: no fallback configured, it stays on-demand).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnDemandHold {
    pub since_ms: i64,
    pub spot_again_in_ms: Option<i64>,
}

/// Whether the fallback holds the group on-demand: the base it sets (1) above a Spot percentage,
/// with the group's Spot mark. None for a group on Spot, one that buys on-demand by design, or one
/// switched by hand (no mark).
pub fn on_demand_hold(fallback: Option<&SpotFallback>, group: &GroupCapacity, now_ms: i64) -> Option<OnDemandHold> {
    let distribution = group.distribution?;
    if distribution.on_demand_base_capacity != 1 || distribution.on_demand_percentage_above_base >= 100 {
        return None;
    }
    let since_ms = group.spot_unavailable_ms?;
    let spot_again_in_ms = fallback
        .map(|f| (f.retry_spot_after.as_millis() as i64).saturating_sub(now_ms.saturating_sub(since_ms)).max(0));
    Some(OnDemandHold { since_ms, spot_again_in_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHORTAGE: &str = "Could not launch Spot Instances. InsufficientInstanceCapacity - There is no Spot capacity available that matches your request. Launching EC2 instance failed.";
    const HOUR_MS: i64 = 3_600_000;

    fn fallback() -> SpotFallback {
        SpotFallback { retry_spot_after: Duration::from_secs(6 * 3600) }
    }

    fn group(base: i32, percent: i32, since: Option<i64>) -> GroupCapacity {
        GroupCapacity {
            group: "nat-a".into(),
            distribution: Some(Distribution {
                on_demand_base_capacity: base,
                on_demand_percentage_above_base: percent,
            }),
            spot_unavailable_ms: since,
        }
    }

    #[test]
    fn a_spot_shortage_switches_a_spot_group_to_on_demand_and_marks_when() {
        let decision = on_launch_failed(Some(&fallback()), &group(0, 0, None), SHORTAGE, 42);
        assert!(
            matches!(decision, CapacityDecision::Switch { to: Purchase::OnDemand, base: 1, mark: Some(42), .. }),
            "{decision:?}"
        );
    }

    #[test]
    fn every_spot_failure_auto_scaling_names_counts_and_nothing_else_does() {
        for message in [
            SHORTAGE,
            "Could not launch Spot Instances. SpotMaxPriceTooLow - Your Spot request price is lower than the minimum required Spot request fulfillment price. Launching EC2 instance failed.",
            "Could not launch Spot Instances. MaxSpotInstanceCountExceeded - Max spot instance count exceeded. Launching EC2 instance failed.",
            "Could not launch Spot Instances. UnfulfillableCapacity - Unable to fulfill capacity due to your request configuration.",
        ] {
            assert!(is_spot_shortage(message), "{message}");
        }
        for message in [
            "The image id '[ami-0123]' does not exist. Launching EC2 instance failed.",
            "We currently do not have sufficient t4g.nano capacity in the Availability Zone you requested (us-east-1a). Launching EC2 instance failed.",
            "",
        ] {
            assert!(!is_spot_shortage(message), "{message}");
            let decision = on_launch_failed(Some(&fallback()), &group(0, 0, None), message, 0);
            assert!(matches!(decision, CapacityDecision::Ignored { .. }), "{message}: {decision:?}");
        }
    }

    #[test]
    fn without_a_fallback_or_a_spot_group_a_failure_changes_nothing() {
        assert!(matches!(on_launch_failed(None, &group(0, 0, None), SHORTAGE, 0), CapacityDecision::Ignored { .. }));
        let no_policy = GroupCapacity { distribution: None, ..group(0, 0, None) };
        assert!(matches!(
            on_launch_failed(Some(&fallback()), &no_policy, SHORTAGE, 0),
            CapacityDecision::Ignored { .. }
        ));
        for on_demand in [group(1, 0, None), group(0, 100, None)] {
            let decision = on_launch_failed(Some(&fallback()), &on_demand, SHORTAGE, 0);
            assert!(matches!(decision, CapacityDecision::Unchanged { .. }), "{decision:?}");
        }
    }

    #[test]
    fn the_schedule_tries_spot_again_only_after_the_wait() {
        let fb = fallback();
        let on_fallback = group(1, 0, Some(10 * HOUR_MS));
        assert_eq!(on_schedule(Some(&fb), &on_fallback, 10 * HOUR_MS + 6 * HOUR_MS - 1), None);
        let back = on_schedule(Some(&fb), &on_fallback, 16 * HOUR_MS);
        assert!(
            matches!(back, Some(CapacityDecision::Switch { to: Purchase::Spot, base: 0, mark: None, .. })),
            "{back:?}"
        );
    }

    #[test]
    fn the_schedule_leaves_alone_what_the_fallback_did_not_make() {
        let fb = fallback();
        let late = 100 * HOUR_MS;
        assert_eq!(on_schedule(None, &group(1, 0, Some(0)), late), None, "no fallback configured");
        assert_eq!(on_schedule(Some(&fb), &group(0, 0, Some(0)), late), None, "already on Spot");
        assert_eq!(on_schedule(Some(&fb), &group(0, 100, Some(0)), late), None, "on-demand by configuration");
        assert_eq!(on_schedule(Some(&fb), &group(2, 0, Some(0)), late), None, "a base someone else set");
        assert_eq!(on_schedule(Some(&fb), &group(1, 0, None), late), None, "no mark: not the hook's fallback");
    }

    #[test]
    fn verify_tells_a_group_held_on_demand_by_the_fallback_and_when_spot_comes_back() {
        let now = 10 * HOUR_MS;
        let held = on_demand_hold(Some(&fallback()), &group(1, 0, Some(now - HOUR_MS)), now);
        assert_eq!(held, Some(OnDemandHold { since_ms: now - HOUR_MS, spot_again_in_ms: Some(5 * HOUR_MS) }));
        let overdue = on_demand_hold(Some(&fallback()), &group(1, 0, Some(now - 7 * HOUR_MS)), now);
        assert_eq!(overdue.and_then(|h| h.spot_again_in_ms), Some(0), "the next schedule switches it");
        let no_fallback = on_demand_hold(None, &group(1, 0, Some(now - HOUR_MS)), now);
        assert_eq!(no_fallback.map(|h| h.spot_again_in_ms), Some(None), "held, and nothing will switch it back");
        assert_eq!(on_demand_hold(Some(&fallback()), &group(0, 0, Some(now)), now), None, "on Spot");
        assert_eq!(on_demand_hold(Some(&fallback()), &group(1, 0, None), now), None, "on-demand by hand: no mark");
        assert_eq!(on_demand_hold(Some(&fallback()), &group(1, 100, Some(now)), now), None, "on-demand by design");
    }
}
