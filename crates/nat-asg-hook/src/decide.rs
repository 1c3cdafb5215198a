//! The planner: observed state in, decision out. Pure (no I/O, no clock, no SDK types), so every
//! rule that keeps traffic on a working NAT, and keeps a stale event from stealing it, is a plain
//! table-driven test.
//!
//! It works in named steps:
//! 1. `zone_owner`: which instance a zone should follow (the newest proven, healthy, live instance
//!    its group holds, other than one that is leaving);
//! 2. `launched_may_move` / `leaving_is_real`: whether the event's instance may move anything;
//! 3. `missing`: which configured resources do not exist (a refusal: retrying cannot help);
//! 4. `follow_own` / `fail_over`: the plan for one zone, identity actions apart from route actions.

use std::collections::BTreeMap;

use crate::config::{Config, GroupConfig};
use crate::model::{Action, DrainMark, InstanceView, RouteTableView, RouteTarget, RouteView, World};

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

/// A state that retrying cannot fix: the configuration and the account disagree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("Auto Scaling group {group} does not exist")]
    GroupMissing { group: String },
    #[error("group {group}: Elastic IP {allocation_id} does not exist")]
    AddressMissing { group: String, allocation_id: String },
    #[error("group {group}: route tables {} do not exist", .route_table_ids.join(", "))]
    RouteTablesMissing { group: String, route_table_ids: Vec<String> },
    #[error("group {group}: instance {instance_id} is in {instance_zone} but the group is configured for {group_zone}")]
    ZoneMismatch { group: String, instance_id: String, instance_zone: String, group_zone: String },
}

impl Refusal {
    /// The configured group the refusal is about.
    pub fn group(&self) -> &str {
        match self {
            Self::GroupMissing { group }
            | Self::AddressMissing { group, .. }
            | Self::RouteTablesMissing { group, .. }
            | Self::ZoneMismatch { group, .. } => group,
        }
    }
}

/// Decides what to do about `subject`, given everything observed.
pub fn decide(config: &Config, subject: Subject<'_>, world: &World) -> Result<Decision, Refusal> {
    match subject {
        Subject::Launched { group, instance, fresh } => launched(config, world, group, instance, fresh),
        Subject::Leaving { group, instance, by_group } => Ok(leaving(config, world, group, instance, by_group)),
        Subject::Warned { group, instance, proof, fresh } => Ok(warned(config, world, group, instance, proof, fresh)),
        Subject::Everything => Ok(everything(config, world)),
        Subject::Drain { group, drained } => Ok(drain(config, world, group, drained)),
    }
}

// --- step 1: which instance a zone should follow ---------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner<'w> {
    Instance(&'w InstanceView),
    /// The group holds no proven, healthy, live instance (other than the leaving one).
    None {
        reason: String,
    },
    /// The group holds a proven instance EC2 does not show yet: the answer is unknowable for now.
    Unseen {
        reason: String,
    },
}

/// The newest instance the group holds InService (it proved itself), healthy, that EC2 shows live,
/// other than `leaving`. Err when the group does not exist. A group an operator drained has none:
/// its NAT carries neither its own zone nor a sibling's.
pub fn zone_owner<'w>(world: &'w World, group: &str, leaving: Option<&str>) -> Result<Owner<'w>, Refusal> {
    let members = match world.members.get(group) {
        Some(Some(members)) => members,
        Some(None) => return Err(Refusal::GroupMissing { group: group.to_owned() }),
        None => return Ok(Owner::None { reason: format!("{group} was not observed") }),
    };
    if let Some(mark) = world.drain_mark(group) {
        return Ok(Owner::None { reason: format!("{group} is drained {}", mark.describe()) });
    }
    let mut owner: Option<&InstanceView> = None;
    for member in members.iter().filter(|m| m.is_proven() && Some(m.instance_id.as_str()) != leaving) {
        match world.instance(&member.instance_id) {
            Some(instance) if instance.state.is_live() => {
                if owner.is_none_or(|o| (instance.launch_time_ms, &instance.id) > (o.launch_time_ms, &o.id)) {
                    owner = Some(instance);
                }
            }
            Some(_) => {} // Auto Scaling lags behind EC2: the instance is already going.
            None => {
                return Ok(Owner::Unseen {
                    reason: format!("{group} holds {} in service, which EC2 does not show yet", member.instance_id),
                });
            }
        }
    }
    Ok(match owner {
        Some(instance) => Owner::Instance(instance),
        None => Owner::None { reason: format!("{group} holds no healthy instance in service") },
    })
}

// --- step 2: whether the event's instance may move anything -----------------------------------------

/// A launched instance may take its zone only when it proved itself and is the zone's owner.
fn launched_may_move<'w>(world: &'w World, group: &str, id: &str, fresh: bool) -> Result<&'w InstanceView, Decision> {
    let stale = |reason: String| Err(Decision::Stale { reason });
    let later = |reason: String| Err(Decision::NotYetVisible { reason });
    match (world.member(group, id), world.instance(id)) {
        (None, None) if fresh => later(format!("neither {group} nor EC2 shows {id} yet")),
        (None, None) => stale(format!("{group} does not list {id} and EC2 does not know it")),
        (Some(m), _) if m.is_leaving() => stale(format!("{group} holds {id} as {}", m.lifecycle_state)),
        (None, Some(i)) if fresh && i.state.is_live() => later(format!("{group} does not list {id} yet")),
        (None, Some(i)) => stale(format!("{group} no longer lists {id} (it is {})", i.state.name())),
        (Some(_), None) => later(format!("{id} is not visible in EC2 yet")),
        (Some(_), Some(i)) if !i.state.is_live() => stale(format!("{id} is {}", i.state.name())),
        (Some(m), Some(_)) if !m.healthy => stale(format!("{group} marked {id} unhealthy")),
        (Some(m), Some(_)) if !m.is_proven() && fresh => {
            later(format!("{id} is {} in {group}, not in service yet", m.lifecycle_state))
        }
        (Some(m), Some(_)) if !m.is_proven() => stale(format!("{id} is {} in {group}", m.lifecycle_state)),
        (Some(_), Some(i)) => match zone_owner(world, group, None) {
            Ok(Owner::Instance(o)) if o.id == i.id => Ok(i),
            Ok(Owner::Instance(o)) => stale(format!("superseded by {}, launched later", o.id)),
            Ok(Owner::Unseen { reason }) => later(reason),
            Ok(Owner::None { reason }) => stale(reason),
            Err(refusal) => stale(refusal.to_string()),
        },
    }
}

/// The configured tables whose default route goes to `instance` (by its ENI, or by instance ID).
pub fn tables_targeting<'w>(
    config: &Config,
    world: &'w World,
    instance: &str,
) -> impl Iterator<Item = &'w RouteTableView> {
    let eni = world.instance(instance).and_then(InstanceView::eni_id).map(str::to_owned);
    let configured = config.all_route_table_ids();
    world.route_tables.iter().filter(move |table| {
        configured.contains(&table.id)
            && table.route.as_ref().is_some_and(|r| {
                r.instance_id.as_deref() == Some(instance)
                    || r.target == RouteTarget::Instance(instance.to_owned())
                    || (eni.is_some() && r.network_interface_id == eni)
            })
    })
}

// --- step 3: which configured resources are missing --------------------------------------------------

fn missing(name: &str, group: &GroupConfig, world: &World) -> Option<Refusal> {
    if matches!(world.members.get(name), Some(None)) {
        return Some(Refusal::GroupMissing { group: name.to_owned() });
    }
    if world.address(&group.eip_allocation_id).is_none() {
        return Some(Refusal::AddressMissing {
            group: name.to_owned(),
            allocation_id: group.eip_allocation_id.clone(),
        });
    }
    let absent: Vec<String> = group.route_table_ids.iter().filter(|id| world.table(id).is_none()).cloned().collect();
    if !absent.is_empty() {
        return Some(Refusal::RouteTablesMissing { group: name.to_owned(), route_table_ids: absent });
    }
    None
}

// --- step 4: the plan for one zone ------------------------------------------------------------------

/// The zone's Elastic IP on the instance's primary ENI, its source/dest check off.
fn identity(group: &GroupConfig, instance: &InstanceView, world: &World) -> Vec<Action> {
    let Some(eni) = &instance.primary_eni else { return Vec::new() };
    let mut actions = Vec::new();
    let on = world.address(&group.eip_allocation_id).and_then(|a| a.network_interface_id.clone());
    if on.as_deref() != Some(eni.id.as_str()) {
        actions.push(Action::AssociateAddress {
            allocation_id: group.eip_allocation_id.clone(),
            network_interface_id: eni.id.clone(),
            private_ip_address: eni.private_ip.clone(),
            previous_network_interface_id: on,
        });
    }
    if eni.source_dest_check {
        actions.push(Action::DisableSourceDestCheck { network_interface_id: eni.id.clone() });
    }
    actions
}

/// Points a table's default route at `eni`, unless it already goes there.
fn route_to(table: &RouteTableView, destination: &str, eni: &str) -> Option<Action> {
    match &table.route {
        None => Some(Action::CreateRoute {
            route_table_id: table.id.clone(),
            destination_cidr_block: destination.to_owned(),
            network_interface_id: eni.to_owned(),
        }),
        Some(route) if route.active && route.network_interface_id.as_deref() == Some(eni) => None,
        Some(route) => Some(Action::ReplaceRoute {
            route_table_id: table.id.clone(),
            destination_cidr_block: destination.to_owned(),
            network_interface_id: eni.to_owned(),
            previous_target: describe(route),
        }),
    }
}

fn describe(route: &RouteView) -> String {
    if route.active { route.target.to_string() } else { format!("{} (blackhole)", route.target) }
}

fn tables<'w>(group: &GroupConfig, world: &'w World) -> impl Iterator<Item = &'w RouteTableView> {
    group.route_table_ids.iter().filter_map(|id| world.table(id))
}

/// The zone follows its own NAT: identity, then every table of the zone.
fn follow_own(name: &str, group: &GroupConfig, instance: &InstanceView, ctx: &Ctx<'_>) -> ZonePlan {
    let Some(eni) = instance.eni_id() else {
        return nothing(name, format!("{} has no primary network interface yet", instance.id));
    };
    ZonePlan {
        group: name.to_owned(),
        follows: Follows::Own { instance_id: instance.id.clone(), network_interface_id: eni.to_owned() },
        identity: identity(group, instance, ctx.world),
        routes: tables(group, ctx.world).filter_map(|t| route_to(t, ctx.destination(), eni)).collect(),
    }
}

fn nothing(name: &str, reason: String) -> ZonePlan {
    ZonePlan { group: name.to_owned(), follows: Follows::Nothing { reason }, identity: Vec::new(), routes: Vec::new() }
}

/// The zone has no NAT of its own. With failover on, every table whose default route goes nowhere
/// useful (a blackhole, a dead or leaving NAT, no route) goes to a healthy sibling's NAT; a table on a
/// healthy sibling, or on something that is not a NAT instance (a NAT gateway), is left alone. The
/// Elastic IP never crosses zones: the sibling keeps its own, and its identity is checked first.
fn fail_over(name: &str, group: &GroupConfig, reason: String, ctx: &Ctx<'_>) -> ZonePlan {
    if !ctx.config.failover {
        return nothing(name, format!("{reason}; failover is off"));
    }
    let useful = |route: &RouteView| ctx.useful_target(route).map(str::to_owned);
    // A sibling already carrying some of the zone's tables keeps them all (no needless move);
    // otherwise the first healthy sibling by group name.
    let current = tables(group, ctx.world).filter_map(|t| t.route.as_ref().and_then(useful)).find(|e| !e.is_empty());
    let sibling = current
        .and_then(|eni| ctx.owners.iter().find(|(_, (_, o))| o.eni_id() == Some(eni.as_str())))
        .or_else(|| ctx.owners.iter().find(|(g, _)| g.as_str() != name));
    let Some((sibling_name, (sibling_group, instance))) = sibling else {
        return nothing(name, format!("{reason}; no healthy sibling zone to fail over to"));
    };
    let Some(eni) = instance.eni_id() else {
        return nothing(name, format!("{reason}; sibling {} has no network interface", instance.id));
    };
    let routes: Vec<Action> = tables(group, ctx.world)
        .filter(|t| t.route.as_ref().and_then(useful).is_none())
        .filter_map(|t| route_to(t, ctx.destination(), eni))
        .collect();
    ZonePlan {
        group: name.to_owned(),
        follows: Follows::Sibling {
            group: sibling_name.clone(),
            instance_id: instance.id.clone(),
            network_interface_id: eni.to_owned(),
        },
        identity: if routes.is_empty() { Vec::new() } else { identity(sibling_group, instance, ctx.world) },
        routes,
    }
}

/// What the zone planners share: the configuration, the world, and every zone's owner.
struct Ctx<'a> {
    config: &'a Config,
    world: &'a World,
    /// The zones that have a NAT of their own, by group name, with their configuration.
    owners: BTreeMap<String, (&'a GroupConfig, &'a InstanceView)>,
}

impl<'a> Ctx<'a> {
    fn new(config: &'a Config, world: &'a World, leaving: Option<&str>) -> Result<Self, Decision> {
        let mut owners = BTreeMap::new();
        for (name, group) in &config.groups {
            match zone_owner(world, name, leaving) {
                Ok(Owner::Instance(instance)) if instance.eni_id().is_some() => {
                    owners.insert(name.clone(), (group, instance));
                }
                Ok(Owner::Unseen { reason }) => return Err(Decision::NotYetVisible { reason }),
                _ => {}
            }
        }
        Ok(Self { config, world, owners })
    }

    fn destination(&self) -> &str {
        &self.config.destination_cidr_block
    }

    /// Where a route usefully goes: a zone owner's ENI, or "" for a target that is not a NAT
    /// instance (a NAT gateway: an operator's choice, left alone). None for a blackhole, a dead or
    /// leaving NAT.
    fn useful_target<'r>(&self, route: &'r RouteView) -> Option<&'r str> {
        if !route.active {
            return None;
        }
        if let RouteTarget::Other(_) = route.target {
            return Some("");
        }
        let eni = route.network_interface_id.as_deref()?;
        self.owners.values().any(|(_, o)| o.eni_id() == Some(eni)).then_some(eni)
    }

    /// One zone: its own NAT if it has one, else failover.
    fn zone(&self, name: &str, group: &GroupConfig, leaving: Option<&str>) -> Result<ZonePlan, Refusal> {
        if let Some(refusal) = missing(name, group, self.world) {
            return Err(refusal);
        }
        match self.owners.get(name) {
            Some((_, instance)) => {
                check_zone(name, group, instance)?;
                Ok(follow_own(name, group, instance, self))
            }
            None => {
                let reason = match zone_owner(self.world, name, leaving) {
                    Ok(Owner::None { reason } | Owner::Unseen { reason }) => reason,
                    Ok(Owner::Instance(i)) => format!("{} has no primary network interface yet", i.id),
                    Err(refusal) => return Err(refusal),
                };
                Ok(fail_over(name, group, reason, self))
            }
        }
    }

    fn plan<'n>(&self, zones: impl Iterator<Item = &'n str>, leaving: Option<&str>) -> Plan {
        let mut plan = Plan::default();
        for name in zones {
            let Some(group) = self.config.group(name) else { continue };
            match self.zone(name, group, leaving) {
                Ok(zone) => plan.zones.push(zone),
                Err(refusal) => plan.refused.push(refusal),
            }
        }
        plan
    }
}

fn check_zone(name: &str, group: &GroupConfig, instance: &InstanceView) -> Result<(), Refusal> {
    if instance.availability_zone != group.availability_zone {
        return Err(Refusal::ZoneMismatch {
            group: name.to_owned(),
            instance_id: instance.id.clone(),
            instance_zone: instance.availability_zone.clone(),
            group_zone: group.availability_zone.clone(),
        });
    }
    Ok(())
}

// --- the terminate action -------------------------------------------------------------------------

/// How handing a leaving instance's zone over went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handover {
    /// Done, or nothing needed doing.
    Done,
    /// Failed; `retryable` when a later delivery may succeed (throttling, a deadline, EC2 lag).
    Failed { retryable: bool },
}

/// Whether to complete the leaving instance's terminate action (CONTINUE) now. After a handover,
/// yes. After a failure a retry can fix, no: Lambda redelivers the event and the handover is tried
/// again while the instance still forwards; the hook's heartbeat (default CONTINUE) bounds the wait.
/// After a failure no retry can fix (configuration, IAM), yes: holding the instance helps no one,
/// and the error is reported and alarmed. A dry run completes nothing.
pub fn complete_terminate(handover: Handover, dry_run: bool) -> bool {
    !dry_run && !matches!(handover, Handover::Failed { retryable: true })
}

// --- the three subjects -----------------------------------------------------------------------------

fn launched(config: &Config, world: &World, name: &str, id: &str, fresh: bool) -> Result<Decision, Refusal> {
    let Some(group) = config.group(name) else {
        return Ok(Decision::Ignored { reason: format!("{name} is not a configured group") });
    };
    if matches!(world.members.get(name), Some(None)) {
        return Err(Refusal::GroupMissing { group: name.to_owned() });
    }
    // A drained group's new NAT does not take the zone back: the zone stays where the schedule
    // keeps it (on a healthy sibling), whatever the launch says, until `undrain`.
    if world.drain_mark(name).is_some() {
        return Ok(match Ctx::new(config, world, None) {
            Ok(ctx) => Decision::Plan(ctx.plan(std::iter::once(name), None)),
            Err(decision) => decision,
        });
    }
    let instance = match launched_may_move(world, name, id, fresh) {
        Ok(instance) => instance,
        Err(decision) => return Ok(decision),
    };
    check_zone(name, group, instance)?;
    if let Some(refusal) = missing(name, group, world) {
        return Err(refusal);
    }
    if instance.primary_eni.is_none() {
        return Ok(Decision::NotYetVisible { reason: format!("{id} has no primary network interface yet") });
    }
    // A launch concerns its own zone only: the other zones' owners are not needed (nor waited for).
    let ctx = Ctx { config, world, owners: BTreeMap::new() };
    Ok(Decision::Plan(Plan { zones: vec![follow_own(name, group, instance, &ctx)], refused: Vec::new() }))
}

fn leaving(config: &Config, world: &World, group: Option<&str>, id: &str, by_group: bool) -> Decision {
    let instance = world.instance(id);
    if !by_group && let Some(i) = instance.filter(|i| i.state.is_live()) {
        return Decision::Stale { reason: format!("{id} is {} again", i.state.name()) };
    }
    // A terminate action is real only while the group holds the instance as Terminating: one for an
    // instance it holds in service (a forged, replayed or crossed event) must not move its zone.
    if by_group
        && let Some(name) = group
        && let Some(member) =
            world.members.get(name).and_then(Option::as_ref).and_then(|m| m.iter().find(|m| m.instance_id == id))
        && !member.lifecycle_state.starts_with("Terminating")
    {
        return Decision::Stale {
            reason: format!(
                "{name} holds {id} as {}, not Terminating: its terminate action is not real",
                member.lifecycle_state
            ),
        };
    }
    let own = group.or(instance.and_then(|i| i.group.as_deref())).filter(|g| config.group(g).is_some());
    hand_over(config, world, own, id)
}

/// The zones of `own` (the leaving instance's group, when configured) and of every configured table
/// that goes to `id`, each planned without `id`: to the group's newer proven instance, else to a
/// healthy sibling.
fn hand_over(config: &Config, world: &World, own: Option<&str>, id: &str) -> Decision {
    let mut zones: Vec<&str> = own.into_iter().collect();
    for table in tables_targeting(config, world, id) {
        if let Some(name) = config.group_of_table(&table.id).filter(|n| !zones.contains(n)) {
            zones.push(name);
        }
    }
    if zones.is_empty() {
        return Decision::Ignored {
            reason: format!("no configured route table goes to {id}, and no NAT group holds it"),
        };
    }
    match Ctx::new(config, world, Some(id)) {
        Ok(ctx) => Decision::Plan(ctx.plan(zones.into_iter(), Some(id))),
        Err(decision) => decision,
    }
}

/// A warned instance still runs: its zone is handed over while it forwards. One already gone is a
/// state change. Without proof in the event, the group must hold the instance Unhealthy (as the
/// NAT marks itself before it reports): a report alone, forged or crossed, moves nothing.
fn warned(config: &Config, world: &World, group: Option<&str>, id: &str, proof: bool, fresh: bool) -> Decision {
    let instance = world.instance(id);
    if instance.is_some_and(|i| !i.state.is_live()) {
        return leaving(config, world, group, id, false);
    }
    let Some(name) = group.or(instance.and_then(|i| i.group.as_deref())).filter(|g| config.group(g).is_some()) else {
        return Decision::Ignored { reason: format!("{id} is not an instance of a configured NAT group") };
    };
    match world.member(name, id) {
        None if world.members.get(name).is_some_and(Option::is_some) => {
            Decision::Stale { reason: format!("{name} does not hold {id}") }
        }
        Some(member) if member.healthy && !proof && fresh => Decision::NotYetVisible {
            reason: format!("{name} does not show {id} Unhealthy yet (the NAT marks itself as it reports)"),
        },
        Some(member) if member.healthy && !proof => {
            Decision::Stale { reason: format!("{name} holds {id} healthy: a report alone moves nothing") }
        }
        _ => hand_over(config, world, Some(name), id),
    }
}

/// An operator's drain or undrain of `name`: planned in a world where the group's mark is as asked.
/// The zones: the group's own, and every zone with a table routed through one of its instances (a
/// zone failed over onto the drained NAT moves on to another sibling at once, as on a hand-over).
fn drain(config: &Config, world: &World, name: &str, drained: bool) -> Decision {
    if config.group(name).is_none() {
        return Decision::Ignored { reason: format!("{name} is not a configured group") };
    }
    let mut world = world.clone();
    match (drained, world.drained.contains_key(name)) {
        (true, false) => {
            world.drained.insert(name.to_owned(), DrainMark { since: String::new(), reason: "as asked".to_owned() });
        }
        (false, true) => {
            world.drained.remove(name);
        }
        _ => {}
    }
    let mut zones: Vec<&str> = vec![name];
    let ids: Vec<&str> = world
        .members
        .get(name)
        .and_then(Option::as_deref)
        .unwrap_or_default()
        .iter()
        .map(|m| m.instance_id.as_str())
        .collect();
    for id in ids {
        for table in tables_targeting(config, &world, id) {
            if let Some(zone) = config.group_of_table(&table.id).filter(|z| !zones.contains(z)) {
                zones.push(zone);
            }
        }
    }
    match Ctx::new(config, &world, None) {
        Ok(ctx) => Decision::Plan(ctx.plan(zones.into_iter(), None)),
        Err(decision) => decision,
    }
}

fn everything(config: &Config, world: &World) -> Decision {
    match Ctx::new(config, world, None) {
        Ok(ctx) => Decision::Plan(ctx.plan(config.groups.keys().map(String::as_str), None)),
        Err(decision) => decision,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    // Three zones: a (the subject), b and c (siblings). Instances: A1 old, A2 new in zone a; B1; C1.
    const A1: &str = "i-0000000000000000a";
    const A2: &str = "i-000000000000000a2";
    const B1: &str = "i-0000000000000000b";
    const C1: &str = "i-0000000000000000c";

    fn eni(id: &str) -> String {
        id.replace("i-", "eni-")
    }

    fn config(failover: bool) -> Config {
        let mut text = String::from(r#"{"groups": {"#);
        text.push_str(r#""nat-a": {"availability_zone": "us-east-1a", "eip_allocation_id": "eipalloc-0000000a", "route_table_ids": ["rtb-000000a1", "rtb-000000a2"]},"#);
        text.push_str(r#""nat-b": {"availability_zone": "us-east-1b", "eip_allocation_id": "eipalloc-0000000b", "route_table_ids": ["rtb-000000b1"]},"#);
        text.push_str(r#""nat-c": {"availability_zone": "us-east-1c", "eip_allocation_id": "eipalloc-0000000c", "route_table_ids": ["rtb-000000c1"]}"#);
        text.push_str(&format!(r#"}}, "failover": {failover}}}"#));
        Config::from_json(&text).unwrap()
    }

    fn instance(id: &str, zone: char, state: InstanceState, launched: i64, sdc: bool) -> InstanceView {
        InstanceView {
            id: id.into(),
            state,
            availability_zone: format!("us-east-1{zone}"),
            launch_time_ms: launched,
            primary_eni: Some(Eni { id: eni(id), private_ip: Some("10.0.0.10".into()), source_dest_check: sdc }),
            group: Some(format!("nat-{zone}")),
        }
    }

    fn member(id: &str, state: &str) -> AsgMember {
        AsgMember { instance_id: id.into(), lifecycle_state: state.into(), healthy: true }
    }

    fn route(to: &str) -> Option<RouteView> {
        Some(RouteView {
            network_interface_id: Some(eni(to)),
            instance_id: None,
            target: RouteTarget::NetworkInterface(eni(to)),
            active: true,
        })
    }

    fn blackhole(to: &str) -> Option<RouteView> {
        route(to).map(|r| RouteView { active: false, ..r })
    }

    /// Every zone healthy on its own NAT; zone a on A1.
    fn healthy() -> World {
        let mut w = World {
            instances: vec![
                instance(A1, 'a', InstanceState::Running, 1_000, false),
                instance(B1, 'b', InstanceState::Running, 1_000, false),
                instance(C1, 'c', InstanceState::Running, 1_000, false),
            ],
            ..World::default()
        };
        for (zone, id) in [('a', A1), ('b', B1), ('c', C1)] {
            w.members.insert(format!("nat-{zone}"), Some(vec![member(id, "InService")]));
            w.addresses.push(AddressView {
                allocation_id: format!("eipalloc-0000000{zone}"),
                public_ip: Some(format!("198.51.100.{}", zone as u8)),
                network_interface_id: Some(eni(id)),
            });
        }
        for (table, to) in [("rtb-000000a1", A1), ("rtb-000000a2", A1), ("rtb-000000b1", B1), ("rtb-000000c1", C1)] {
            w.route_tables.push(RouteTableView { id: table.into(), route: route(to) });
        }
        w
    }

    fn set_member(w: &mut World, group: &str, members: Vec<AsgMember>) {
        w.members.insert(group.into(), Some(members));
    }

    fn set_route(w: &mut World, table: &str, route: Option<RouteView>) {
        w.route_tables.iter_mut().find(|t| t.id == table).unwrap().route = route;
    }

    fn set_state(w: &mut World, id: &str, state: &str) {
        w.instances.iter_mut().find(|i| i.id == id).unwrap().state = InstanceState::from_name(state);
    }

    /// Zone a mid-refresh: A2 proved itself (InService), EIP and routes still on A1.
    fn refreshed() -> World {
        let mut w = healthy();
        w.instances.push(instance(A2, 'a', InstanceState::Running, 2_000, true));
        set_member(&mut w, "nat-a", vec![member(A1, "InService"), member(A2, "InService")]);
        w
    }

    fn plan(d: Result<Decision, Refusal>) -> Plan {
        match d {
            Ok(Decision::Plan(p)) => p,
            other => panic!("expected a plan, got {other:?}"),
        }
    }

    fn kinds(actions: &[Action]) -> Vec<String> {
        actions.iter().map(|a| format!("{} {}", a.kind(), a.resource())).collect()
    }

    fn launched_subject(id: &str, fresh: bool) -> Subject<'_> {
        Subject::Launched { group: "nat-a", instance: id, fresh }
    }

    #[test]
    fn launch_moves_identity_first_then_only_what_differs() {
        let p = plan(decide(&config(true), launched_subject(A2, true), &refreshed()));
        assert_eq!(p.zones.len(), 1);
        assert_eq!(
            kinds(&p.identity()),
            ["associate_address eipalloc-0000000a", "disable_source_dest_check eni-000000000000000a2"]
        );
        assert_eq!(kinds(&p.routes()), ["replace_route rtb-000000a1", "replace_route rtb-000000a2"]);
        assert_eq!(p.zones[0].follows, Follows::Own { instance_id: A2.into(), network_interface_id: eni(A2) });

        // Done: a repeat plans nothing.
        let mut done = refreshed();
        done.addresses[0].network_interface_id = Some(eni(A2));
        done.instances[3].primary_eni.as_mut().unwrap().source_dest_check = false;
        set_route(&mut done, "rtb-000000a1", route(A2));
        set_route(&mut done, "rtb-000000a2", route(A2));
        assert!(plan(decide(&config(true), launched_subject(A2, true), &done)).zones[0].is_unchanged());

        // Partly done: a missing route is created, a blackholed one replaced.
        let mut partly = done.clone();
        set_route(&mut partly, "rtb-000000a1", None);
        set_route(&mut partly, "rtb-000000a2", blackhole(A2));
        let p = plan(decide(&config(true), launched_subject(A2, true), &partly));
        assert_eq!(kinds(&p.identity()), Vec::<String>::new());
        assert_eq!(kinds(&p.routes()), ["create_route rtb-000000a1", "replace_route rtb-000000a2"]);
    }

    #[test]
    fn launch_never_moves_to_an_instance_that_has_not_proved_itself_or_is_superseded() {
        let pending_wait = {
            let mut w = refreshed();
            set_member(&mut w, "nat-a", vec![member(A1, "InService"), member(A2, "Pending:Wait")]);
            w
        };
        let unhealthy = {
            let mut w = refreshed();
            set_member(
                &mut w,
                "nat-a",
                vec![member(A1, "InService"), AsgMember { healthy: false, ..member(A2, "InService") }],
            );
            w
        };
        let terminating = {
            let mut w = refreshed();
            set_member(&mut w, "nat-a", vec![member(A1, "InService"), member(A2, "Terminating:Wait")]);
            w
        };
        let shutting_down = {
            let mut w = refreshed();
            set_state(&mut w, A2, "shutting-down");
            w
        };
        let cases: [(&str, World, &str, bool, &str); 6] = [
            ("old instance's late event", refreshed(), A1, true, "superseded by i-000000000000000a2"),
            ("not in service, old event", pending_wait, A2, false, "is Pending:Wait"),
            ("marked unhealthy", unhealthy, A2, true, "unhealthy"),
            ("terminating", terminating, A2, true, "as Terminating:Wait"),
            ("shutting down", shutting_down, A2, true, "is shutting-down"),
            ("long gone", healthy(), "i-0000000000000dead", false, "does not list"),
        ];
        for (name, world, id, fresh, want) in cases {
            match decide(&config(true), launched_subject(id, fresh), &world) {
                Ok(Decision::Stale { reason }) => assert!(reason.contains(want), "{name}: {reason}"),
                other => panic!("{name}: expected stale, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_fresh_event_waits_for_eventual_consistency_an_old_one_is_stale() {
        let mut unseen = refreshed();
        unseen.instances.retain(|i| i.id != A2);
        set_member(&mut unseen, "nat-a", vec![member(A1, "InService")]);
        assert!(matches!(
            decide(&config(true), launched_subject(A2, true), &unseen),
            Ok(Decision::NotYetVisible { .. })
        ));
        assert!(matches!(decide(&config(true), launched_subject(A2, false), &unseen), Ok(Decision::Stale { .. })));

        // The group lists it, EC2 does not show it yet: wait, however old the event.
        let mut ec2_lags = refreshed();
        ec2_lags.instances.retain(|i| i.id != A2);
        assert!(matches!(
            decide(&config(true), launched_subject(A2, false), &ec2_lags),
            Ok(Decision::NotYetVisible { .. })
        ));

        // Proceeding (CONTINUE given) counts as proven; Pending:Wait with a fresh event waits.
        let mut proceeding = refreshed();
        set_member(&mut proceeding, "nat-a", vec![member(A1, "InService"), member(A2, "Pending:Proceed")]);
        assert!(matches!(decide(&config(true), launched_subject(A2, false), &proceeding), Ok(Decision::Plan(_))));
        let mut waiting = refreshed();
        set_member(&mut waiting, "nat-a", vec![member(A1, "InService"), member(A2, "Pending:Wait")]);
        assert!(matches!(
            decide(&config(true), launched_subject(A2, true), &waiting),
            Ok(Decision::NotYetVisible { .. })
        ));
    }

    #[test]
    fn misconfiguration_is_refused() {
        let mut wrong_zone = refreshed();
        wrong_zone.instances[3].availability_zone = "us-east-1b".into();
        let mut no_group = refreshed();
        no_group.members.insert("nat-a".into(), None);
        let mut no_address = refreshed();
        no_address.addresses.remove(0);
        let mut no_table = refreshed();
        no_table.route_tables.retain(|t| t.id != "rtb-000000a2");
        let c = config(true);
        assert!(matches!(decide(&c, launched_subject(A2, true), &wrong_zone), Err(Refusal::ZoneMismatch { .. })));
        assert!(matches!(decide(&c, launched_subject(A2, true), &no_group), Err(Refusal::GroupMissing { .. })));
        assert!(matches!(decide(&c, launched_subject(A2, true), &no_address), Err(Refusal::AddressMissing { .. })));
        assert_eq!(
            decide(&c, launched_subject(A2, true), &no_table),
            Err(Refusal::RouteTablesMissing { group: "nat-a".into(), route_table_ids: vec!["rtb-000000a2".into()] })
        );
        // The schedule plans the other zones and reports the broken one.
        let p = plan(decide(&c, Subject::Everything, &no_table));
        assert_eq!(p.refused.len(), 1);
        assert_eq!(p.zones.iter().map(|z| z.group.as_str()).collect::<Vec<_>>(), ["nat-b", "nat-c"]);
    }

    fn leaving(id: &str, by_group: bool) -> Subject<'_> {
        Subject::Leaving { group: by_group.then_some("nat-a"), instance: id, by_group }
    }

    fn warned<'a>(id: &'a str, group: Option<&'static str>, proof: bool) -> Subject<'a> {
        Subject::Warned { group, instance: id, proof, fresh: false }
    }

    fn unhealthy(id: &str) -> AsgMember {
        AsgMember { healthy: false, ..member(id, "InService") }
    }

    #[test]
    fn a_nat_that_reported_itself_unhealthy_hands_its_zone_over_while_it_still_runs() {
        let mut w = healthy();
        set_member(&mut w, "nat-a", vec![unhealthy(A1)]);
        let p = plan(decide(&config(true), warned(A1, Some("nat-a"), false), &w));
        let zone = p.zone("nat-a").unwrap();
        assert!(matches!(&zone.follows, Follows::Sibling { group, .. } if group == "nat-b"), "{zone:?}");
        assert_eq!(kinds(&zone.routes), ["replace_route rtb-000000a1", "replace_route rtb-000000a2"]);

        // The group holds a newer proven instance: the zone goes to it, with its own EIP.
        let mut w = refreshed();
        set_member(&mut w, "nat-a", vec![unhealthy(A1), member(A2, "InService")]);
        let p = plan(decide(&config(true), warned(A1, Some("nat-a"), false), &w));
        assert_eq!(p.zones[0].follows, Follows::Own { instance_id: A2.into(), network_interface_id: eni(A2) });

        // Failover off and no newer instance: the zone stays where it is.
        let mut w = healthy();
        set_member(&mut w, "nat-a", vec![unhealthy(A1)]);
        let p = plan(decide(&config(false), warned(A1, Some("nat-a"), false), &w));
        assert!(p.routes().is_empty() && p.identity().is_empty());
    }

    #[test]
    fn a_report_alone_moves_nothing_without_the_group_s_word() {
        // Forged, crossed or early: the group holds the instance healthy, or does not hold it.
        let d = decide(&config(true), warned(A1, Some("nat-a"), false), &healthy()).unwrap();
        assert!(matches!(&d, Decision::Stale { reason } if reason.contains("healthy")), "{d:?}");
        // A young report: the group may not show the NAT's own mark yet (observed again, within the deadline).
        let young = Subject::Warned { group: Some("nat-a"), instance: A1, proof: false, fresh: true };
        assert!(matches!(decide(&config(true), young, &healthy()), Ok(Decision::NotYetVisible { .. })));
        let d = decide(&config(true), warned("i-00000000000000dd", Some("nat-a"), false), &healthy()).unwrap();
        assert!(matches!(&d, Decision::Stale { reason } if reason.contains("does not hold")), "{d:?}");
        // EC2's Spot warning is proof: the zone moves while the group still holds it healthy.
        let p = plan(decide(&config(true), warned(A1, None, true), &healthy()));
        assert!(matches!(&p.zone("nat-a").unwrap().follows, Follows::Sibling { .. }));
        // ... and an instance of no configured group is not ours.
        let mut w = healthy();
        w.instances.push(InstanceView {
            group: Some("web".into()),
            ..instance("i-00000000000000ee", 'a', InstanceState::Running, 1, true)
        });
        let d = decide(&config(true), warned("i-00000000000000ee", None, true), &w).unwrap();
        assert!(matches!(d, Decision::Ignored { .. }), "{d:?}");
    }

    #[test]
    fn a_warned_sibling_is_never_chosen_and_a_warning_for_a_gone_instance_is_a_state_change() {
        // b was warned (the hook marked it Unhealthy): a's NAT leaves, its zone goes to c.
        let mut w = healthy();
        set_member(&mut w, "nat-a", vec![member(A1, "Terminating:Wait")]);
        set_member(&mut w, "nat-b", vec![unhealthy(B1)]);
        let p = plan(decide(&config(true), leaving(A1, true), &w));
        assert!(matches!(&p.zone("nat-a").unwrap().follows, Follows::Sibling { group, .. } if group == "nat-c"));
        // The warned instance itself is never the target of its own zone's hand-over.
        let p = plan(decide(&config(true), warned(B1, None, true), &healthy()));
        assert!(matches!(&p.zone("nat-b").unwrap().follows, Follows::Sibling { instance_id, .. } if instance_id != B1));
        // Already shutting down: the state-change path (the same hand-over).
        let mut w = healthy();
        set_state(&mut w, A1, "shutting-down");
        let p = plan(decide(&config(true), warned(A1, None, true), &w));
        assert!(matches!(&p.zone("nat-a").unwrap().follows, Follows::Sibling { .. }));
        // A repeated warning after the hand-over: nothing left to change.
        let mut w = healthy();
        set_member(&mut w, "nat-a", vec![unhealthy(A1)]);
        set_route(&mut w, "rtb-000000a1", route(B1));
        set_route(&mut w, "rtb-000000a2", route(B1));
        let p = plan(decide(&config(true), warned(A1, None, true), &w));
        assert!(p.routes().is_empty() && p.identity().is_empty(), "{p:?}");
    }

    #[test]
    fn leaving_with_a_newer_instance_in_service_cuts_over_to_it() {
        // An instance refresh whose launch event was lost: the old one's terminate action heals it.
        let mut w = refreshed();
        set_member(&mut w, "nat-a", vec![member(A1, "Terminating:Wait"), member(A2, "InService")]);
        let p = plan(decide(&config(true), leaving(A1, true), &w));
        assert_eq!(p.zones.len(), 1);
        assert_eq!(p.zones[0].follows, Follows::Own { instance_id: A2.into(), network_interface_id: eni(A2) });
        assert_eq!(kinds(&p.identity()).len(), 2);
        assert_eq!(kinds(&p.routes()), ["replace_route rtb-000000a1", "replace_route rtb-000000a2"]);
    }

    #[test]
    fn a_terminate_action_for_an_instance_its_group_holds_in_service_moves_nothing() {
        // A replayed or forged terminate action: the group never began terminating A1.
        let w = refreshed();
        let d = decide(&config(true), leaving(A1, true), &w).unwrap();
        assert!(matches!(&d, Decision::Stale { reason } if reason.contains("InService")), "{d:?}");
    }

    #[test]
    fn leaving_without_a_replacement_fails_over_to_a_sibling() {
        let mut w = healthy();
        set_member(&mut w, "nat-a", vec![member(A1, "Terminating:Wait")]);
        let p = plan(decide(&config(true), leaving(A1, true), &w));
        let zone = p.zone("nat-a").unwrap();
        assert_eq!(
            zone.follows,
            Follows::Sibling { group: "nat-b".into(), instance_id: B1.into(), network_interface_id: eni(B1) }
        );
        assert_eq!(kinds(&zone.identity), Vec::<String>::new(), "the sibling's identity is already right");
        assert_eq!(kinds(&zone.routes), ["replace_route rtb-000000a1", "replace_route rtb-000000a2"]);
        assert!(!p.routes().iter().any(|a| a.resource().starts_with("eipalloc")), "the EIP never crosses zones");

        // The same from an EC2 state change (no group in the event: found from the instance's tag).
        let mut killed = healthy();
        set_state(&mut killed, A1, "shutting-down");
        let p = plan(decide(&config(true), Subject::Leaving { group: None, instance: A1, by_group: false }, &killed));
        assert!(matches!(p.zone("nat-a").unwrap().follows, Follows::Sibling { .. }));

        // Failover off: nothing moves, the zone waits for its replacement.
        let p = plan(decide(&config(false), leaving(A1, true), &w));
        let zone = p.zone("nat-a").unwrap();
        assert!(zone.is_unchanged());
        assert!(matches!(&zone.follows, Follows::Nothing { reason } if reason.contains("failover is off")));
    }

    #[test]
    fn a_sibling_that_is_leaving_or_dead_is_never_chosen() {
        let mut w = healthy();
        set_member(&mut w, "nat-a", vec![member(A1, "Terminating:Wait")]);
        set_member(&mut w, "nat-b", vec![member(B1, "Terminating:Wait")]);
        let p = plan(decide(&config(true), leaving(A1, true), &w));
        assert!(matches!(&p.zone("nat-a").unwrap().follows, Follows::Sibling { group, .. } if group == "nat-c"));

        let mut w = healthy();
        set_member(&mut w, "nat-a", vec![member(A1, "Terminating:Wait")]);
        set_state(&mut w, B1, "stopping");
        set_member(&mut w, "nat-c", vec![AsgMember { healthy: false, ..member(C1, "InService") }]);
        let p = plan(decide(&config(true), leaving(A1, true), &w));
        assert!(
            matches!(&p.zone("nat-a").unwrap().follows, Follows::Nothing { reason } if reason.contains("no healthy sibling")),
            "{p:?}"
        );
        assert!(p.routes().is_empty());
    }

    #[test]
    fn tables_failed_over_onto_a_leaving_nat_move_on_with_it() {
        // Zone a failed over onto b; now b's NAT leaves too: a's tables and b's go to c.
        let mut w = healthy();
        set_member(&mut w, "nat-a", vec![]);
        set_route(&mut w, "rtb-000000a1", route(B1));
        set_route(&mut w, "rtb-000000a2", route(B1));
        set_state(&mut w, B1, "shutting-down");
        let p = plan(decide(&config(true), Subject::Leaving { group: None, instance: B1, by_group: false }, &w));
        for zone in ["nat-a", "nat-b"] {
            assert!(
                matches!(&p.zone(zone).unwrap().follows, Follows::Sibling { group, .. } if group == "nat-c"),
                "{zone}"
            );
        }
        assert_eq!(
            kinds(&p.routes()),
            ["replace_route rtb-000000b1", "replace_route rtb-000000a1", "replace_route rtb-000000a2"]
        );
    }

    #[test]
    fn a_state_change_of_an_instance_nothing_targets_is_ignored_and_a_running_one_is_stale() {
        let mut w = healthy();
        w.instances.push(InstanceView {
            group: None,
            ..instance("i-000000000000beef", 'a', InstanceState::Other("stopped".into()), 1, true)
        });
        assert!(matches!(
            decide(
                &config(true),
                Subject::Leaving { group: None, instance: "i-000000000000beef", by_group: false },
                &w
            ),
            Ok(Decision::Ignored { .. })
        ));
        // A late "stopping" for an instance that runs again moves nothing.
        assert!(matches!(
            decide(&config(true), Subject::Leaving { group: None, instance: A1, by_group: false }, &healthy()),
            Ok(Decision::Stale { .. })
        ));
        assert_eq!(tables_targeting(&config(true), &healthy(), A1).count(), 2);
        assert_eq!(tables_targeting(&config(true), &healthy(), "i-000000000000beef").count(), 0);
    }

    #[test]
    fn the_schedule_fails_over_dead_zones_leaves_good_tables_alone_and_fails_back() {
        // Zone a lost its NAT and no event came: blackholed routes go to a sibling.
        let mut dark = healthy();
        set_member(&mut dark, "nat-a", vec![]);
        set_state(&mut dark, A1, "terminated");
        set_route(&mut dark, "rtb-000000a1", blackhole(A1));
        set_route(&mut dark, "rtb-000000a2", route(A1)); // moto keeps a dead target "active"
        let p = plan(decide(&config(true), Subject::Everything, &dark));
        assert_eq!(kinds(&p.routes()), ["replace_route rtb-000000a1", "replace_route rtb-000000a2"]);
        assert!(p.zone("nat-b").unwrap().is_unchanged() && p.zone("nat-c").unwrap().is_unchanged());

        // Already on a healthy sibling (c, not the first by name): left there.
        let mut on_c = dark.clone();
        set_route(&mut on_c, "rtb-000000a1", route(C1));
        set_route(&mut on_c, "rtb-000000a2", route(C1));
        let p = plan(decide(&config(true), Subject::Everything, &on_c));
        assert!(p.routes().is_empty());
        assert!(matches!(&p.zone("nat-a").unwrap().follows, Follows::Sibling { group, .. } if group == "nat-c"));

        // A table on a NAT gateway (an operator's choice) is left alone too.
        let mut gateway = dark.clone();
        for t in ["rtb-000000a1", "rtb-000000a2"] {
            set_route(
                &mut gateway,
                t,
                Some(RouteView {
                    network_interface_id: None,
                    instance_id: None,
                    target: RouteTarget::Other("nat-0123456789abcdef0".into()),
                    active: true,
                }),
            );
        }
        assert!(plan(decide(&config(true), Subject::Everything, &gateway)).routes().is_empty());

        // Failover off: nothing moves.
        assert!(plan(decide(&config(false), Subject::Everything, &dark)).routes().is_empty());

        // The replacement proved itself: the zone comes back (identity first).
        let mut back = on_c.clone();
        back.instances.push(instance(A2, 'a', InstanceState::Running, 3_000, true));
        set_member(&mut back, "nat-a", vec![member(A2, "InService")]);
        let p = plan(decide(&config(true), Subject::Everything, &back));
        assert_eq!(
            p.zone("nat-a").unwrap().follows,
            Follows::Own { instance_id: A2.into(), network_interface_id: eni(A2) }
        );
        assert_eq!(
            kinds(&p.identity()),
            ["associate_address eipalloc-0000000a", "disable_source_dest_check eni-000000000000000a2"]
        );
        assert_eq!(kinds(&p.routes()), ["replace_route rtb-000000a1", "replace_route rtb-000000a2"]);
    }

    #[test]
    fn the_schedule_leaves_a_launch_in_progress_alone() {
        // A2 is still proving itself: the zone stays on A1.
        let mut w = refreshed();
        set_member(&mut w, "nat-a", vec![member(A1, "InService"), member(A2, "Pending:Wait")]);
        let p = plan(decide(&config(true), Subject::Everything, &w));
        assert!(p.routes().is_empty() && p.identity().is_empty());
        // Two in service (the refresh overlap): the newer one owns the zone.
        let p = plan(decide(&config(true), Subject::Everything, &refreshed()));
        assert_eq!(
            p.zone("nat-a").unwrap().follows,
            Follows::Own { instance_id: A2.into(), network_interface_id: eni(A2) }
        );
    }

    #[test]
    fn the_terminate_action_waits_only_for_a_retry_that_can_help() {
        let cases = [
            (Handover::Done, false, true),
            (Handover::Failed { retryable: false }, false, true),
            (Handover::Failed { retryable: true }, false, false),
            (Handover::Done, true, false),
            (Handover::Failed { retryable: false }, true, false),
        ];
        for (handover, dry_run, want) in cases {
            assert_eq!(complete_terminate(handover, dry_run), want, "{handover:?} dry_run={dry_run}");
        }
    }

    fn drain(w: &mut World, group: &str) {
        w.drained.insert(
            group.into(),
            DrainMark { since: "2026-12-06T10:00:00Z".into(), reason: "alice: kernel patch".into() },
        );
    }

    fn drain_subject(group: &str, drained: bool) -> Subject<'_> {
        Subject::Drain { group, drained }
    }

    /// Zone a drained onto b: the mark on nat-a, its tables on B1, its EIP still on A1 (never crosses zones).
    fn drained_on_b() -> World {
        let mut w = healthy();
        drain(&mut w, "nat-a");
        set_route(&mut w, "rtb-000000a1", route(B1));
        set_route(&mut w, "rtb-000000a2", route(B1));
        w
    }

    fn follows_sibling(p: &Plan, zone: &str, sibling: &str) -> bool {
        matches!(&p.zone(zone).map(|z| &z.follows), Some(Follows::Sibling { group, .. }) if group == sibling)
    }

    #[test]
    fn a_drain_moves_the_zone_s_tables_to_a_sibling_and_never_its_eip() {
        let p = plan(decide(&config(true), drain_subject("nat-a", true), &healthy()));
        assert_eq!(p.zones.len(), 1, "{p:?}");
        assert!(follows_sibling(&p, "nat-a", "nat-b"), "{p:?}");
        assert_eq!(kinds(&p.routes()), ["replace_route rtb-000000a1", "replace_route rtb-000000a2"]);
        assert!(p.identity().is_empty(), "the sibling's identity is right, and the EIP never crosses zones");
        // Planned on the unmarked world (dry run, and before the tag) exactly as the schedule plans it after.
        let mut marked = healthy();
        drain(&mut marked, "nat-a");
        assert_eq!(decide(&config(true), Subject::Everything, &marked).map(|d| plan(Ok(d)).routes()), Ok(p.routes()));
        // Done: a repeat plans nothing.
        let p = plan(decide(&config(true), drain_subject("nat-a", true), &drained_on_b()));
        assert!(p.routes().is_empty() && p.identity().is_empty(), "{p:?}");
    }

    #[test]
    fn a_drained_zone_stays_on_its_sibling_through_every_trigger() {
        let w = drained_on_b();
        // The schedule.
        let p = plan(decide(&config(true), Subject::Everything, &w));
        assert!(follows_sibling(&p, "nat-a", "nat-b") && p.routes().is_empty() && p.identity().is_empty(), "{p:?}");
        // The drained group's new NAT proves itself and goes in service: its launch takes nothing back,
        // and neither does the schedule after it.
        let mut replaced = w.clone();
        replaced.instances.push(instance(A2, 'a', InstanceState::Running, 3_000, true));
        set_member(&mut replaced, "nat-a", vec![member(A2, "InService")]);
        set_state(&mut replaced, A1, "terminated");
        for subject in [launched_subject(A2, true), launched_subject(A2, false), Subject::Everything] {
            let p = plan(decide(&config(true), subject, &replaced));
            assert!(follows_sibling(&p, "nat-a", "nat-b"), "{subject:?}: {p:?}");
            assert!(p.routes().is_empty() && p.identity().is_empty(), "{subject:?}: {p:?}");
        }
        // A launch while the drained zone's tables are still on its own NAT moves them to the sibling.
        let mut not_moved = replaced.clone();
        set_route(&mut not_moved, "rtb-000000a1", route(A2));
        let p = plan(decide(&config(true), launched_subject(A2, true), &not_moved));
        assert_eq!(kinds(&p.routes()), ["replace_route rtb-000000a1"]);
        // The drained NAT stops (the operator's maintenance): nothing routes through it, nothing moves.
        let mut stopped = w.clone();
        set_state(&mut stopped, A1, "stopping");
        let p = plan(decide(&config(true), Subject::Leaving { group: None, instance: A1, by_group: false }, &stopped));
        assert!(p.routes().is_empty() && p.identity().is_empty(), "{p:?}");
        // The sibling carrying it leaves: the drained zone moves on to c, never back to its own NAT.
        let mut sibling_leaves = w.clone();
        set_member(&mut sibling_leaves, "nat-b", vec![member(B1, "Terminating:Wait")]);
        let p = plan(decide(
            &config(true),
            Subject::Leaving { group: Some("nat-b"), instance: B1, by_group: true },
            &sibling_leaves,
        ));
        assert!(follows_sibling(&p, "nat-a", "nat-c"), "{p:?}");
        assert!(kinds(&p.routes()).contains(&"replace_route rtb-000000a1".to_owned()));
    }

    #[test]
    fn a_drained_nat_is_never_chosen_as_a_sibling() {
        // b is drained (its zone on c): a's NAT leaves, a goes to c, not to b (first by name).
        let mut w = healthy();
        drain(&mut w, "nat-b");
        set_route(&mut w, "rtb-000000b1", route(C1));
        set_member(&mut w, "nat-a", vec![member(A1, "Terminating:Wait")]);
        let p = plan(decide(&config(true), leaving(A1, true), &w));
        assert!(follows_sibling(&p, "nat-a", "nat-c"), "{p:?}");
        // A zone failed over onto the NAT being drained moves on with the drain itself.
        let mut w = healthy();
        set_member(&mut w, "nat-c", vec![]);
        set_state(&mut w, C1, "terminated");
        set_route(&mut w, "rtb-000000c1", route(B1));
        let p = plan(decide(&config(true), drain_subject("nat-b", true), &w));
        assert!(follows_sibling(&p, "nat-b", "nat-a") && follows_sibling(&p, "nat-c", "nat-a"), "{p:?}");
        assert_eq!(kinds(&p.routes()), ["replace_route rtb-000000b1", "replace_route rtb-000000c1"]);
        // Every sibling drained or gone: nothing can take the zone, nothing moves.
        let mut w = healthy();
        drain(&mut w, "nat-b");
        set_member(&mut w, "nat-c", vec![unhealthy(C1)]);
        let p = plan(decide(&config(true), drain_subject("nat-a", true), &w));
        let zone = p.zone("nat-a").unwrap();
        assert!(
            matches!(&zone.follows, Follows::Nothing { reason } if reason.contains("nat-a is drained") && reason.contains("no healthy sibling")),
            "{zone:?}"
        );
        assert!(p.routes().is_empty());
        // Failover off: the zone has nowhere to go either.
        let p = plan(decide(&config(false), drain_subject("nat-a", true), &healthy()));
        assert!(
            matches!(&p.zone("nat-a").unwrap().follows, Follows::Nothing { reason } if reason.contains("failover is off"))
        );
        assert!(p.routes().is_empty());
    }

    #[test]
    fn an_undrained_zone_comes_back_to_its_own_proven_nat_identity_first() {
        // Drained while its NAT was replaced: A2 in service, the EIP still on the dead A1's interface.
        let mut w = drained_on_b();
        w.instances.push(instance(A2, 'a', InstanceState::Running, 3_000, true));
        set_member(&mut w, "nat-a", vec![member(A2, "InService")]);
        set_state(&mut w, A1, "terminated");
        let p = plan(decide(&config(true), drain_subject("nat-a", false), &w));
        assert_eq!(
            p.zone("nat-a").unwrap().follows,
            Follows::Own { instance_id: A2.into(), network_interface_id: eni(A2) }
        );
        assert_eq!(
            kinds(&p.identity()),
            ["associate_address eipalloc-0000000a", "disable_source_dest_check eni-000000000000000a2"]
        );
        assert_eq!(kinds(&p.routes()), ["replace_route rtb-000000a1", "replace_route rtb-000000a2"]);
        // Its own NAT is not proven yet: the zone stays on the sibling; the launch takes it back later.
        set_member(&mut w, "nat-a", vec![member(A2, "Pending:Wait")]);
        let p = plan(decide(&config(true), drain_subject("nat-a", false), &w));
        assert!(follows_sibling(&p, "nat-a", "nat-b") && p.routes().is_empty() && p.identity().is_empty(), "{p:?}");
        // Never drained, healthy: nothing to change.
        let p = plan(decide(&config(true), drain_subject("nat-a", false), &healthy()));
        assert!(p.routes().is_empty() && p.identity().is_empty(), "{p:?}");
        // A group that is not configured is no zone of ours.
        assert!(matches!(
            decide(&config(true), drain_subject("nat-z", true), &healthy()),
            Ok(Decision::Ignored { .. })
        ));
    }

    #[test]
    fn a_group_member_ec2_does_not_show_yet_asks_to_look_again() {
        let mut w = refreshed();
        set_member(&mut w, "nat-b", vec![member(B1, "InService"), member("i-00000000000000bb2", "InService")]);
        assert!(matches!(decide(&config(true), Subject::Everything, &w), Ok(Decision::NotYetVisible { .. })));
        // Another zone's lag does not hold up a launch, which concerns its own zone only.
        assert!(matches!(decide(&config(true), launched_subject(A2, true), &w), Ok(Decision::Plan(_))));
    }
}
