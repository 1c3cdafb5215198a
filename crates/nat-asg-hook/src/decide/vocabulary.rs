//! The planner's vocabulary: what an event asks (`Subject`), what the planner answers (`Decision`,
//! a `Plan` of `ZonePlan`s), and what a zone's routes follow (`Follows`).

use crate::decide::Refusal;
use crate::model::Action;

/// What an event asks of the planner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    /// `EC2 Instance Launch Successful`: the instance proved itself, its zone should follow it.
    /// `fresh`: the event is young enough that an instance nobody shows yet may still appear.
    Launched { group: &'a str, instance: &'a str, fresh: bool },
    /// A terminate lifecycle action (`by_group`: the group is taking it away, whatever EC2 shows
    /// yet) or an EC2 state change: the instance is going away. `group` when the event names it.
    Leaving { group: Option<&'a str>, instance: &'a str, by_group: bool },
    /// A running instance about to stop forwarding (its own report, or EC2's Spot warning). `proof`:
    /// the event alone proves it (EC2's); otherwise the group must hold the instance Unhealthy.
    /// `fresh`: young enough that the group may not show the instance's own mark yet.
    Warned { group: Option<&'a str>, instance: &'a str, proof: bool, fresh: bool },
    /// The schedule, `reconcile` and `verify`: every zone, each on its own NAT or a sibling's.
    Everything,
    /// An operator's `drain` (`drained`: true) or `undrain` (false) of a group, planned as if the
    /// group's drain mark already were so (a dry run, and the checks before the tag is written, see
    /// the plan the tag will cause): the group's zone, and every zone with a table routed through
    /// one of the group's instances, each as the schedule would plan it.
    Drain { group: &'a str, drained: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Act on these zones (a plan with no actions: everything is already right).
    Plan(Plan),
    /// The event's instance is not, or no longer, one that may move anything: nothing moves.
    Stale { reason: String },
    /// The event concerns nothing the hook owns: nothing moves.
    Ignored { reason: String },
    /// EC2 and Auto Scaling have not caught up with each other (eventual consistency): observe again.
    NotYetVisible { reason: String },
}

/// What one zone's default routes follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Follows {
    /// The zone's own NAT, which holds the zone's Elastic IP.
    Own { instance_id: String, network_interface_id: String },
    /// A sibling zone's NAT: the zone has none of its own, its traffic leaves with the sibling's EIP.
    Sibling { group: String, instance_id: String, network_interface_id: String },
    /// Nothing the hook may point it at (no NAT of its own, and failover off or no healthy sibling).
    Nothing { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZonePlan {
    pub group: String,
    pub follows: Follows,
    /// AssociateAddress and source/dest check: the round before any route moves.
    pub identity: Vec<Action>,
    /// ReplaceRoute / CreateRoute: only after every identity action succeeded.
    pub routes: Vec<Action>,
}

impl ZonePlan {
    pub fn actions(&self) -> impl Iterator<Item = &Action> {
        self.identity.iter().chain(&self.routes)
    }

    pub fn is_unchanged(&self) -> bool {
        self.identity.is_empty() && self.routes.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub zones: Vec<ZonePlan>,
    /// Zones that cannot be planned until the configuration or the account is fixed.
    pub refused: Vec<Refusal>,
}

impl Plan {
    /// The identity round: each action once, even when several zones fail over onto one sibling.
    pub fn identity(&self) -> Vec<Action> {
        dedup(self.zones.iter().flat_map(|z| z.identity.iter()))
    }

    /// The routes round.
    pub fn routes(&self) -> Vec<Action> {
        dedup(self.zones.iter().flat_map(|z| z.routes.iter()))
    }

    pub fn zone(&self, group: &str) -> Option<&ZonePlan> {
        self.zones.iter().find(|z| z.group == group)
    }
}

fn dedup<'a>(actions: impl Iterator<Item = &'a Action>) -> Vec<Action> {
    let mut out: Vec<Action> = Vec::new();
    for action in actions {
        if !out.contains(action) {
            out.push(action.clone());
        }
    }
    out
}
