//! Plain views of what the hook observed in AWS and what it plans to change. No SDK types here:
//! the planner that works on them is pure and tested with plain values.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::capacity::GroupCapacity;

/// Whether the hook may change anything. It serializes as the status of the actions it produced:
/// `applied`, or `planned` in a dry run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Mode {
    #[serde(rename = "applied")]
    Apply,
    /// Observe and plan only: no mutating call at all.
    #[serde(rename = "planned")]
    DryRun,
}

impl Mode {
    pub fn from_dry_run(dry_run: bool) -> Self {
        if dry_run { Self::DryRun } else { Self::Apply }
    }

    pub fn is_dry_run(self) -> bool {
        self == Self::DryRun
    }
}

/// EC2 instance state names, as far as the hook cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceState {
    Pending,
    Running,
    Other(String),
}

impl InstanceState {
    pub fn from_name(name: &str) -> Self {
        match name {
            "pending" => Self::Pending,
            "running" => Self::Running,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn is_live(&self) -> bool {
        matches!(self, Self::Pending | Self::Running)
    }

    pub fn name(&self) -> &str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Other(name) => name,
        }
    }
}

/// The instance's primary network interface (device index 0): routes and the EIP go here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eni {
    pub id: String,
    pub private_ip: Option<String>,
    pub source_dest_check: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceView {
    pub id: String,
    pub state: InstanceState,
    pub availability_zone: String,
    /// Milliseconds since the epoch; orders two live instances of one group.
    pub launch_time_ms: i64,
    pub primary_eni: Option<Eni>,
    /// The Auto Scaling group that launched it (its `aws:autoscaling:groupName` tag).
    pub group: Option<String>,
}

impl InstanceView {
    pub fn eni_id(&self) -> Option<&str> {
        self.primary_eni.as_ref().map(|e| e.id.as_str())
    }
}

/// An instance as its Auto Scaling group lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsgMember {
    pub instance_id: String,
    pub lifecycle_state: String,
    /// False once the group (or the instance itself, through SetInstanceHealth) marked it Unhealthy.
    pub healthy: bool,
}

impl AsgMember {
    /// Pending, Pending:Wait, Pending:Proceed and InService are the states in which the group
    /// means to keep the instance. Everything else (Terminating, Standby, Detaching, Warmed:*) is not.
    pub fn is_held(&self) -> bool {
        self.lifecycle_state == "InService"
            || self.lifecycle_state == "Pending"
            || self.lifecycle_state.starts_with("Pending:")
    }

    /// The instance completed its own launch action (CONTINUE): its self-check passed. Only a proven,
    /// healthy instance may carry a zone's traffic.
    pub fn is_proven(&self) -> bool {
        self.healthy && (self.lifecycle_state == "InService" || self.lifecycle_state == "Pending:Proceed")
    }

    /// The group is taking the instance out of service (terminate lifecycle, detach, standby).
    pub fn is_leaving(&self) -> bool {
        !self.is_held()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressView {
    pub allocation_id: String,
    pub public_ip: Option<String>,
    pub network_interface_id: Option<String>,
}

/// Where a route sends traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteTarget {
    NetworkInterface(String),
    Instance(String),
    /// Internet, NAT, transit gateway, peering or anything else that is not a NAT instance.
    Other(String),
}

impl std::fmt::Display for RouteTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NetworkInterface(id) | Self::Instance(id) | Self::Other(id) => f.write_str(id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteView {
    /// The ENI the route resolves to, when it targets one (a route to an instance shows both).
    pub network_interface_id: Option<String>,
    /// The instance the route resolves to, when EC2 shows it (it does for an ENI attached to one).
    pub instance_id: Option<String>,
    pub target: RouteTarget,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTableView {
    pub id: String,
    /// The route for the configured destination, if the table has one.
    pub route: Option<RouteView>,
}

/// The tag an operator's `drain` puts on a NAT group: its value is `<UTC time> <who: why>`. A drained
/// group has no NAT of its own as far as the hook is concerned: its zone stays on a sibling, and its
/// NAT carries no other zone, until `undrain` removes the tag.
pub const DRAINED_TAG: &str = "nat-asg-hook:drained";

/// A group's drain mark, as its tag says it: since when, and who drained it and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DrainMark {
    /// The tag value's first word (the UTC time `drain` wrote), or "" when the tag was set by hand without one.
    pub since: String,
    /// The rest of the value: who drained it, and why.
    pub reason: String,
}

impl DrainMark {
    /// Reads a tag value: `<since> <who: why>`.
    pub fn parse(value: &str) -> Self {
        let value = value.trim();
        let (since, reason) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
        // A value set by hand, without drain's time first: all of it is the reason.
        if since.len() >= 10 && since.as_bytes()[4] == b'-' && since.chars().next().is_some_and(|c| c.is_ascii_digit())
        {
            Self { since: since.to_owned(), reason: reason.trim().to_owned() }
        } else {
            Self { since: String::new(), reason: value.to_owned() }
        }
    }

    /// "since 2026-12-06T10:00:00Z (alice: patching)", for reasons and headlines.
    pub fn describe(&self) -> String {
        match (self.since.is_empty(), self.reason.is_empty()) {
            (false, false) => format!("since {} ({})", self.since, self.reason),
            (false, true) => format!("since {}", self.since),
            (true, false) => format!("({})", self.reason),
            (true, true) => "(no reason given)".to_owned(),
        }
    }
}

/// Everything the hook observed, across every configured zone: the groups' members, the instances
/// (the NAT groups' own and any the event named), the zones' Elastic IPs and route tables. A part
/// that was not read is empty; `members` holds an entry for every group that was read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct World {
    /// Per group read: its members, or None when the group does not exist.
    pub members: BTreeMap<String, Option<Vec<AsgMember>>>,
    /// The groups read that carry the drain tag (`DRAINED_TAG`), with its mark.
    pub drained: BTreeMap<String, DrainMark>,
    /// Per group read: how it buys its instance, and when Spot was last unavailable (the Spot fallback).
    pub capacity: BTreeMap<String, GroupCapacity>,
    pub instances: Vec<InstanceView>,
    pub addresses: Vec<AddressView>,
    pub route_tables: Vec<RouteTableView>,
}

impl World {
    pub fn instance(&self, id: &str) -> Option<&InstanceView> {
        self.instances.iter().find(|i| i.id == id)
    }

    pub fn instance_with_eni(&self, eni: &str) -> Option<&InstanceView> {
        self.instances.iter().find(|i| i.eni_id() == Some(eni))
    }

    pub fn member(&self, group: &str, id: &str) -> Option<&AsgMember> {
        self.members.get(group)?.as_deref()?.iter().find(|m| m.instance_id == id)
    }

    pub fn address(&self, allocation_id: &str) -> Option<&AddressView> {
        self.addresses.iter().find(|a| a.allocation_id == allocation_id)
    }

    /// The group's drain mark, when an operator drained it.
    pub fn drain_mark(&self, group: &str) -> Option<&DrainMark> {
        self.drained.get(group)
    }

    pub fn table(&self, id: &str) -> Option<&RouteTableView> {
        self.route_tables.iter().find(|t| t.id == id)
    }

    /// Adds instances not seen yet (a second read of the same instance keeps the first).
    pub fn add_instances(&mut self, instances: Vec<InstanceView>) {
        for instance in instances {
            if self.instance(&instance.id).is_none() {
                self.instances.push(instance);
            }
        }
    }
}

/// One change the hook makes. Planned only where the observed state differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// AssociateAddress with AllowReassociation: takes the EIP from wherever it is.
    AssociateAddress {
        allocation_id: String,
        network_interface_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        private_ip_address: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        previous_network_interface_id: Option<String>,
    },
    /// A NAT forwards traffic that is not its own: the check must be off on the routed ENI.
    DisableSourceDestCheck { network_interface_id: String },
    /// The route exists but points elsewhere (or at a dead target).
    ReplaceRoute {
        route_table_id: String,
        destination_cidr_block: String,
        network_interface_id: String,
        previous_target: String,
    },
    /// The table has no route for the destination.
    CreateRoute { route_table_id: String, destination_cidr_block: String, network_interface_id: String },
}

impl Action {
    /// Short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AssociateAddress { .. } => "associate_address",
            Self::DisableSourceDestCheck { .. } => "disable_source_dest_check",
            Self::ReplaceRoute { .. } => "replace_route",
            Self::CreateRoute { .. } => "create_route",
        }
    }

    /// The resource the action changes.
    pub fn resource(&self) -> &str {
        match self {
            Self::AssociateAddress { allocation_id, .. } => allocation_id,
            Self::DisableSourceDestCheck { network_interface_id } => network_interface_id,
            Self::ReplaceRoute { route_table_id, .. } | Self::CreateRoute { route_table_id, .. } => route_table_id,
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AssociateAddress { allocation_id, network_interface_id, previous_network_interface_id, .. } => {
                write!(
                    f,
                    "associate {allocation_id} with {network_interface_id} (now on {})",
                    previous_network_interface_id.as_deref().unwrap_or("nothing")
                )
            }
            Self::DisableSourceDestCheck { network_interface_id } => {
                write!(f, "turn off source/dest check on {network_interface_id}")
            }
            Self::ReplaceRoute { route_table_id, destination_cidr_block, network_interface_id, previous_target } => {
                write!(
                    f,
                    "{route_table_id}: point {destination_cidr_block} at {network_interface_id} (now {previous_target})"
                )
            }
            Self::CreateRoute { route_table_id, destination_cidr_block, network_interface_id } => {
                write!(f, "{route_table_id}: create {destination_cidr_block} -> {network_interface_id}")
            }
        }
    }
}
