//! `verify`: is every group healthy? The same observation and planner as the hook itself, so
//! "healthy" means exactly "the hook would change nothing". It never flatters: a zone is "failed
//! over" only when its routes really are on a sibling's working NAT, which holds the sibling's own
//! Elastic IP; a zone whose routes go to a dead or leaving NAT, or nowhere, is DOWN, whatever the
//! hook would do about it.

use std::fmt::Write as _;

use serde::Serialize;

use crate::aws::{Clients, observe};
use crate::capacity::{OnDemandHold, on_demand_hold};
use crate::config::{Config, GroupConfig};
use crate::decide::{Decision, Follows, Owner, Refusal, Subject, ZonePlan, decide, zone_owner};
use crate::error::AwsError;
use crate::model::{Action, DrainMark, RouteTarget, RouteView, World};

/// One zone's verdict, from worst to best (`Ord`: the worst zone is the greatest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ZoneStatus {
    Healthy,
    /// An operator drained it (`drain`): on purpose, not a fault, but not on its own NAT either.
    /// Traffic flows, through a sibling's working NAT (or, forced with no sibling, still its own).
    Drained,
    /// On a sibling zone's working NAT, which holds its own Elastic IP: traffic flows, with the
    /// sibling's address.
    FailedOver,
    /// EC2 and Auto Scaling disagree for now: no verdict yet.
    Unknown,
    /// Traffic has somewhere to go, but not the right place (the Elastic IP elsewhere, a route on
    /// another live NAT, on a NAT gateway, a failover onto a sibling that is not right itself).
    Unhealthy,
    /// The configuration and the account disagree (a group, Elastic IP or table that does not exist).
    Misconfigured,
    /// Dark: a route goes nowhere (missing, blackhole), or to a NAT that is dead or leaving, or the
    /// NAT it goes to drops forwarded traffic (source/dest check on).
    Down,
}

impl ZoneStatus {
    pub fn label(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Drained => "DRAINED",
            Self::FailedOver => "FAILED OVER",
            Self::Unknown => "UNKNOWN",
            Self::Unhealthy => "UNHEALTHY",
            Self::Misconfigured => "MISCONFIGURED",
            Self::Down => "DOWN",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteHealth {
    pub route_table_id: String,
    /// Where the destination route points; None when the table has no such route.
    pub target: Option<String>,
    /// `active`, `blackhole` or `missing`.
    pub state: &'static str,
    /// On the zone's own NAT, as the hook would leave it.
    pub ok: bool,
    /// Traffic through this table goes nowhere: no route, a blackhole, a dead or leaving NAT.
    pub dark: bool,
    /// What the target is, in words: "i-… (terminated)", "nat-b's NAT i-…".
    pub via: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupHealth {
    pub auto_scaling_group: String,
    pub availability_zone: String,
    pub status: ZoneStatus,
    /// The verdict in one sentence, said first.
    pub headline: String,
    pub healthy: bool,
    /// With status `failed_over` (or `drained`): the sibling group whose NAT carries the zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_over_to: Option<String>,
    /// The group's drain mark (`drain`): since when, who and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drained: Option<DrainMark>,
    /// The zone's own NAT, or the sibling's it is failed over to (or would be).
    pub instance_id: Option<String>,
    pub network_interface_id: Option<String>,
    pub elastic_ip: Option<String>,
    /// The ENI the Elastic IP is associated with.
    pub elastic_ip_network_interface_id: Option<String>,
    pub source_dest_check: Option<bool>,
    pub routes: Vec<RouteHealth>,
    pub problems: Vec<String>,
    /// How the group buys its NAT when the Spot fallback holds it on-demand (no verdict: egress is
    /// whole either way, it only costs more): since when, and when Spot is tried again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<String>,
}

/// Every zone's health, and whether not one configured group exists where the client looked
/// (a wrong region or account: the tool saw nothing of the fleet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub zones: Vec<GroupHealth>,
    pub every_group_missing: bool,
}

impl Verdict {
    /// The worst zone's status.
    pub fn worst(&self) -> ZoneStatus {
        self.zones.iter().map(|z| z.status).max().unwrap_or(ZoneStatus::Healthy)
    }

    pub fn healthy(&self) -> bool {
        self.zones.iter().all(|z| z.healthy)
    }

    /// One line: how many zones are in which state, worst first.
    pub fn summary(&self) -> String {
        let total = self.zones.len();
        let mut statuses: Vec<ZoneStatus> = self.zones.iter().map(|z| z.status).collect();
        statuses.sort_unstable_by(|a, b| b.cmp(a));
        statuses.dedup();
        let parts: Vec<String> = statuses
            .iter()
            .map(|s| {
                let n = self.zones.iter().filter(|z| z.status == *s).count();
                let names: Vec<&str> = self
                    .zones
                    .iter()
                    .filter(|z| z.status == *s && *s != ZoneStatus::Healthy)
                    .map(|z| z.auto_scaling_group.as_str())
                    .collect();
                if names.is_empty() {
                    format!("{n} {}", s.label())
                } else {
                    format!("{n} {} ({})", s.label(), names.join(", "))
                }
            })
            .collect();
        let verdict = if self.healthy() {
            "every zone is healthy".to_owned()
        } else {
            format!("worst: {}", self.worst().label())
        };
        format!("{verdict}; {} of {total} zones: {}", self.zones.len(), parts.join(", "))
    }
}

/// Observes every zone (the state, then the groups, as the schedule does) and assesses each.
/// Err when nothing could be observed: that is not a verdict on any zone.
pub async fn verify(clients: &Clients, config: &Config) -> Result<Verdict, AwsError> {
    let mut world = observe::observe_state_then_groups(clients, config, &[]).await?;
    // What the routes go to, when it is no instance of a configured group: a verdict on a route
    // needs its target's state.
    let unknown: Vec<String> = world
        .route_tables
        .iter()
        .filter_map(|t| t.route.as_ref()?.network_interface_id.clone())
        .filter(|eni| world.instance_with_eni(eni).is_none())
        .collect();
    // Best effort: without it such a route is judged on what the route table alone shows.
    match observe::instances_with_enis(clients, &unknown).await {
        Ok(found) => world.add_instances(found),
        Err(e) => tracing::info!(error = %e, "could not tell which instances hold the routes' interfaces"),
    }
    let every_group_missing = config.groups.keys().all(|g| matches!(world.members.get(g), Some(None)));
    let mut zones = assess_all(config, &world);
    // The Spot fallback's hold, from the groups as observe read them: a note, never a verdict.
    let now_ms = i64::try_from(crate::handler::now_ms()).unwrap_or(i64::MAX);
    for zone in &mut zones {
        let hold = world
            .capacity
            .get(&zone.auto_scaling_group)
            .and_then(|c| on_demand_hold(config.spot_fallback.as_ref(), c, now_ms));
        zone.capacity = hold.map(describe_hold);
    }
    Ok(Verdict { zones, every_group_missing })
}

/// The Spot fallback's hold, in words.
fn describe_hold(hold: OnDemandHold) -> String {
    let since = crate::aws::capacity::utc(hold.since_ms);
    match hold.spot_again_in_ms {
        Some(0) => format!("on-demand: Spot was unavailable at {since}; the next schedule tries Spot again"),
        Some(ms) => {
            format!("on-demand: Spot was unavailable at {since}; Spot is tried again in {} min", (ms + 59_999) / 60_000)
        }
        None => {
            format!("on-demand: Spot was unavailable at {since}; no spot_fallback is configured, so it stays on-demand")
        }
    }
}

/// Pure: every configured zone's health in a world.
pub fn assess_all(config: &Config, world: &World) -> Vec<GroupHealth> {
    let plan = match decide(config, Subject::Everything, world) {
        Ok(Decision::Plan(plan)) => plan,
        Ok(Decision::NotYetVisible { reason } | Decision::Stale { reason } | Decision::Ignored { reason }) => {
            return config
                .groups
                .iter()
                .map(|(n, g)| unobserved(n, g, ZoneStatus::Unknown, format!("no verdict yet: {reason}")))
                .collect();
        }
        Err(refusal) => {
            return config
                .groups
                .iter()
                .map(|(n, g)| unobserved(n, g, ZoneStatus::Misconfigured, refusal.to_string()))
                .collect();
        }
    };
    config
        .groups
        .iter()
        .map(|(name, group)| {
            let zone = plan.zone(name).ok_or_else(|| plan.refused.iter().find(|r| r.group() == name).cloned());
            assess(config, name, group, world, zone)
        })
        .collect()
}

fn unobserved(name: &str, group: &GroupConfig, status: ZoneStatus, problem: String) -> GroupHealth {
    GroupHealth {
        auto_scaling_group: name.to_owned(),
        availability_zone: group.availability_zone.clone(),
        status,
        headline: format!("{}: {name} ({}): {problem}", status.label(), group.availability_zone),
        healthy: false,
        failed_over_to: None,
        drained: None,
        instance_id: None,
        network_interface_id: None,
        elastic_ip: None,
        elastic_ip_network_interface_id: None,
        source_dest_check: None,
        routes: Vec::new(),
        problems: vec![problem],
        capacity: None,
    }
}

/// Where one table's traffic goes.
enum Carrier {
    /// Nowhere: no route, a blackhole, a dead or leaving NAT (the words say which).
    Dark(String),
    /// The zone's own NAT.
    Own,
    /// The zone's own NAT, which an operator drained: it still forwards, but the zone should be on a sibling.
    DrainedOwn,
    /// A sibling zone's working NAT (by group).
    Sibling(String),
    /// Somewhere that forwards, but that is not the zone's NAT: another live NAT, a NAT gateway,
    /// an interface no configured group's instance holds.
    Elsewhere(String),
}

/// Pure: one table's route, judged on what its target really is.
fn carrier(
    config: &Config,
    world: &World,
    zone: &str,
    own: Option<&str>,
    route: Option<&RouteView>,
) -> (Carrier, String) {
    let Some(route) = route else { return (Carrier::Dark("no default route".into()), "-".into()) };
    let instance = match (&route.network_interface_id, &route.instance_id, &route.target) {
        (Some(eni), _, _) => world.instance_with_eni(eni),
        (None, Some(id), _) | (None, None, RouteTarget::Instance(id)) => world.instance(id),
        _ => None,
    };
    let target = route.target.to_string();
    if !route.active {
        let via = instance.map_or_else(|| target.clone(), |i| format!("{} ({})", i.id, i.state.name()));
        return (Carrier::Dark(format!("blackhole to {via}")), format!("{via}, blackhole"));
    }
    if let RouteTarget::Other(other) = &route.target {
        return (Carrier::Elsewhere(format!("goes to {other}, not a NAT instance of the hook")), other.clone());
    }
    let Some(instance) = instance else {
        let what = format!("{target}, an interface no instance of the configured groups holds");
        return (Carrier::Elsewhere(format!("goes to {what}")), what);
    };
    let group = instance.group.as_deref().filter(|g| config.group(g).is_some());
    let lifecycle = group.and_then(|g| world.member(g, &instance.id)).map(|m| m.lifecycle_state.clone());
    if !instance.state.is_live() {
        let via = format!("{} ({})", instance.id, instance.state.name());
        return (Carrier::Dark(format!("goes to {via}")), via);
    }
    if let (Some(g), Some(state)) = (group, &lifecycle)
        && !state.starts_with("InService")
        && !state.starts_with("Pending")
    {
        let via = format!("{} ({state} in {g}: leaving)", instance.id);
        return (Carrier::Dark(format!("goes to {via}")), via);
    }
    if Some(instance.id.as_str()) == own {
        return (Carrier::Own, format!("{} (own NAT)", instance.id));
    }
    if group == Some(zone) && world.drain_mark(zone).is_some() {
        return (Carrier::DrainedOwn, format!("{} (own NAT, drained)", instance.id));
    }
    // Another zone's owner: a sibling's working NAT.
    if let Some(g) = group
        && g != zone
        && matches!(zone_owner(world, g, None), Ok(Owner::Instance(o)) if o.id == instance.id)
    {
        return (Carrier::Sibling(g.to_owned()), format!("{} ({g}'s NAT)", instance.id));
    }
    let held = match (group, lifecycle) {
        (Some(g), Some(l)) => format!(", {l} in {g}"),
        (Some(g), None) => format!(", no longer in {g}"),
        (None, _) => String::new(),
    };
    let via = format!("{} ({}{held}, not the zone's NAT)", instance.id, instance.state.name());
    (Carrier::Elsewhere(format!("goes to {via}")), via)
}

/// Pure: what the world and the planner's plan for the zone (or the refusal) say about it.
pub fn assess(
    config: &Config,
    name: &str,
    group: &GroupConfig,
    world: &World,
    zone: Result<&ZonePlan, Option<Refusal>>,
) -> GroupHealth {
    let mut health = unobserved(name, group, ZoneStatus::Healthy, String::new());
    health.problems.clear();
    let address = world.address(&group.eip_allocation_id);
    health.elastic_ip = address.and_then(|a| a.public_ip.clone());
    health.elastic_ip_network_interface_id = address.and_then(|a| a.network_interface_id.clone());
    let where_ = format!("{name} ({})", group.availability_zone);
    let zone = match zone {
        Ok(zone) => zone,
        Err(refusal) => {
            let problem = refusal.map_or_else(|| "not planned".to_owned(), |r| r.to_string());
            health.status = ZoneStatus::Misconfigured;
            health.headline = format!("MISCONFIGURED: {where_}: {problem}");
            health.problems.push(problem);
            return health;
        }
    };
    let own = match &zone.follows {
        Follows::Own { instance_id, .. } => Some(instance_id.as_str()),
        _ => None,
    };
    let followed = match &zone.follows {
        Follows::Own { instance_id, .. } | Follows::Sibling { instance_id, .. } => Some(instance_id),
        Follows::Nothing { .. } => None,
    };
    if let Some(id) = followed {
        health.instance_id = Some(id.clone());
        let eni = world.instance(id).and_then(|i| i.primary_eni.as_ref());
        health.network_interface_id = eni.map(|e| e.id.clone());
        health.source_dest_check = eni.map(|e| e.source_dest_check);
    }

    // Each table, judged on where its route really goes.
    let mut dark: Vec<String> = Vec::new();
    let mut elsewhere: Vec<String> = Vec::new();
    let mut siblings: Vec<String> = Vec::new();
    let mut on_drained_own = 0;
    for table_id in &group.route_table_ids {
        let route = world.table(table_id).and_then(|t| t.route.as_ref());
        let (carried, via) = carrier(config, world, name, own, route);
        let is_dark = matches!(carried, Carrier::Dark(_));
        match carried {
            Carrier::Dark(words) => dark.push(format!("{table_id} {words}")),
            Carrier::DrainedOwn => {
                on_drained_own += 1;
                elsewhere.push(format!("{table_id} still goes to its own drained NAT ({via})"));
            }
            Carrier::Elsewhere(words) => elsewhere.push(format!("{table_id} {words}")),
            Carrier::Sibling(g) => {
                if !siblings.contains(&g) {
                    siblings.push(g);
                }
            }
            Carrier::Own => {}
        }
        health.routes.push(RouteHealth {
            route_table_id: table_id.clone(),
            target: route.map(|r| r.target.to_string()),
            state: match route {
                None => "missing",
                Some(r) if r.active => "active",
                Some(_) => "blackhole",
            },
            ok: own.is_some()
                && route.is_some_and(|r| {
                    r.active && r.network_interface_id.as_deref() == health.network_interface_id.as_deref()
                }),
            dark: is_dark,
            via,
        });
    }

    // What the hook would do: every planned action, in words.
    for action in zone.actions() {
        health.problems.push(match action {
            Action::AssociateAddress { previous_network_interface_id, network_interface_id, .. } => format!(
                "Elastic IP is on {}, not on {network_interface_id}",
                previous_network_interface_id.as_deref().unwrap_or("nothing")
            ),
            Action::DisableSourceDestCheck { network_interface_id } => {
                format!("source/dest check is on for {network_interface_id}: it drops forwarded traffic")
            }
            Action::ReplaceRoute { route_table_id, previous_target, network_interface_id, .. } => {
                format!("{route_table_id}: default route goes to {previous_target}, not to {network_interface_id}")
            }
            Action::CreateRoute { route_table_id, .. } => format!("{route_table_id}: no default route"),
        });
    }
    let would = match &zone.follows {
        Follows::Own { instance_id, .. } => format!("the hook would point it at its own NAT {instance_id}"),
        Follows::Sibling { group, instance_id, .. } => {
            format!("the hook would fail it over to {group} ({instance_id})")
        }
        Follows::Nothing { reason } => format!("the hook cannot fix it: {reason}"),
    };

    // The verdict, worst first.
    let own_sdc_on = own.is_some() && health.source_dest_check == Some(true);
    let (status, headline) = if !dark.is_empty() {
        (ZoneStatus::Down, format!("DOWN: {where_} is dark: {}; {would}", dark.join("; ")))
    } else if own_sdc_on {
        let eni = health.network_interface_id.clone().unwrap_or_default();
        (
            ZoneStatus::Down,
            format!(
                "DOWN: {where_} is dark: its NAT's source/dest check is on ({eni}): it drops forwarded traffic; {would}"
            ),
        )
    } else if own.is_some() {
        if zone.is_unchanged() && elsewhere.is_empty() {
            (ZoneStatus::Healthy, format!("healthy: {where_} is on its own NAT {}", own.unwrap_or_default()))
        } else {
            let mut what = elsewhere.clone();
            what.extend(zone.identity.iter().map(ToString::to_string));
            (
                ZoneStatus::Unhealthy,
                format!(
                    "UNHEALTHY: {where_}: {}",
                    if what.is_empty() { "not as the hook would leave it".to_owned() } else { what.join("; ") }
                ),
            )
        }
    } else if let ([sibling], true) = (siblings.as_slice(), elsewhere.is_empty()) {
        match sibling_identity(config, world, sibling) {
            Ok((instance_id, ip)) => {
                health.failed_over_to = Some(sibling.clone());
                (
                    ZoneStatus::FailedOver,
                    format!(
                        "FAILED OVER: {where_} has no NAT of its own; its routes are on {sibling}'s NAT {instance_id} and it leaves with {sibling}'s Elastic IP {ip} until its own NAT is back"
                    ),
                )
            }
            Err(why) => {
                (ZoneStatus::Unhealthy, format!("UNHEALTHY: {where_}: its routes are on {sibling}'s NAT, but {why}"))
            }
        }
    } else {
        let mut what = elsewhere.clone();
        if siblings.len() > 1 {
            what.push(format!("its tables are split across {}", siblings.join(", ")));
        }
        (ZoneStatus::Unhealthy, format!("UNHEALTHY: {where_} has no NAT of its own: {}; {would}", what.join("; ")))
    };
    if let Follows::Nothing { reason } = &zone.follows
        && !health.problems.contains(reason)
    {
        health.problems.insert(0, reason.clone());
    }
    // Drained by an operator: said as such whenever traffic flows (a sibling carries it, or, forced
    // with no sibling, still its own NAT); dark or misrouted stays what it is, with the mark named.
    let (status, headline) = match world.drain_mark(name) {
        None => (status, headline),
        Some(mark) => {
            health.drained = Some(mark.clone());
            let drained = format!("drained {}", mark.describe());
            match status {
                ZoneStatus::FailedOver => {
                    let sibling = health.failed_over_to.clone().unwrap_or_default();
                    let rest =
                        headline.split_once(&format!("its routes are on {sibling}'s NAT")).map_or("", |(_, r)| r);
                    let rest = rest.trim_end_matches(" until its own NAT is back");
                    (
                        ZoneStatus::Drained,
                        format!("DRAINED: {where_} {drained}: its routes are on {sibling}'s NAT{rest} until undrain"),
                    )
                }
                _ if dark.is_empty() && on_drained_own == group.route_table_ids.len() && on_drained_own > 0 => (
                    ZoneStatus::Drained,
                    format!("DRAINED: {where_} {drained}, but its routes are still on its own NAT; {would}"),
                ),
                _ => {
                    health.problems.push(format!("{name} is {drained}"));
                    (status, format!("{headline} ({drained})"))
                }
            }
        }
    };
    health.status = status;
    health.healthy = status == ZoneStatus::Healthy && health.problems.is_empty();
    health.headline = headline;
    health
}

/// A sibling carries a failed-over zone only with its own Elastic IP on its NAT and the NAT's
/// source/dest check off: (its instance, its public address), or why not.
fn sibling_identity(config: &Config, world: &World, sibling: &str) -> Result<(String, String), String> {
    let group = config.group(sibling).ok_or_else(|| format!("{sibling} is not configured"))?;
    let Ok(Owner::Instance(instance)) = zone_owner(world, sibling, None) else {
        return Err(format!("{sibling} has no NAT in service"));
    };
    let eni = instance.primary_eni.as_ref().ok_or_else(|| format!("{} has no network interface", instance.id))?;
    let address = world.address(&group.eip_allocation_id);
    if address.and_then(|a| a.network_interface_id.as_deref()) != Some(eni.id.as_str()) {
        return Err(format!("{sibling}'s Elastic IP {} is not on its NAT {}", group.eip_allocation_id, instance.id));
    }
    if eni.source_dest_check {
        return Err(format!("{sibling}'s NAT {} has its source/dest check on", instance.id));
    }
    let ip = address.and_then(|a| a.public_ip.clone()).unwrap_or_else(|| group.eip_allocation_id.clone());
    Ok((instance.id.clone(), ip))
}

/// The verdict as text: first one line per zone that is not healthy (the worst first), then the
/// table (one row per route table, the group's columns on its first row), the details, and the
/// summary.
pub fn render_table(verdict: &Verdict, color: bool) -> String {
    let groups = verdict.zones.as_slice();
    let paint = |ok: bool, text: &str| match (color, ok) {
        (false, _) => text.to_owned(),
        (true, true) => format!("\x1b[32m{text}\x1b[0m"),
        (true, false) => format!("\x1b[31m{text}\x1b[0m"),
    };
    let header = [
        "GROUP",
        "ZONE",
        "INSTANCE",
        "ENI",
        "ELASTIC IP",
        "EIP ON",
        "SRC/DST",
        "ROUTE TABLE",
        "DEFAULT ROUTE TO",
        "STATE",
        "STATUS",
    ];
    let mut rows: Vec<Vec<(String, Option<bool>)>> = Vec::new();
    let dash = || "-".to_owned();
    for g in groups {
        let eip_ok = g.network_interface_id.is_some() && g.elastic_ip_network_interface_id == g.network_interface_id;
        let sdc = match g.source_dest_check {
            Some(false) => ("off".to_owned(), Some(true)),
            Some(true) => ("ON".to_owned(), Some(false)),
            None => (dash(), None),
        };
        let status = g.status.label();
        let routes = if g.routes.is_empty() { vec![None] } else { g.routes.iter().map(Some).collect() };
        for (i, route) in routes.into_iter().enumerate() {
            let first = i == 0;
            let cell = |text: Option<String>, ok: Option<bool>| {
                if first { (text.unwrap_or_else(dash), ok) } else { (String::new(), None) }
            };
            rows.push(vec![
                cell(Some(g.auto_scaling_group.clone()), None),
                cell(Some(g.availability_zone.clone()), None),
                cell(g.instance_id.clone(), None),
                cell(g.network_interface_id.clone(), None),
                cell(g.elastic_ip.clone(), None),
                cell(g.elastic_ip_network_interface_id.clone(), Some(eip_ok)),
                if first { sdc.clone() } else { (String::new(), None) },
                (route.map(|r| r.route_table_id.clone()).unwrap_or_else(dash), None),
                (route.map(|r| r.via.clone()).unwrap_or_else(dash), route.map(|r| r.ok)),
                (route.map(|r| r.state.to_owned()).unwrap_or_else(dash), route.map(|r| r.state == "active")),
                cell(Some(status.to_owned()), Some(g.healthy)),
            ]);
        }
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].0.len()).chain([header[c].len()]).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    let mut unwell: Vec<&GroupHealth> = groups.iter().filter(|g| !g.healthy).collect();
    unwell.sort_by_key(|g| std::cmp::Reverse(g.status));
    for g in &unwell {
        let _ = writeln!(out, "{}", paint(false, &g.headline));
    }
    if !unwell.is_empty() {
        out.push('\n');
    }
    let line: Vec<String> = header.iter().zip(&widths).map(|(h, w)| format!("{h:<w$}")).collect();
    let _ = writeln!(out, "{}", line.join("  ").trim_end());
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|((text, ok), w)| {
                let padded = format!("{text:<w$}");
                match ok {
                    Some(ok) if !text.is_empty() => paint(*ok, &padded),
                    _ => padded,
                }
            })
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    for g in groups.iter().filter(|g| !g.problems.is_empty()) {
        for problem in &g.problems {
            let _ = writeln!(out, "{}: {problem}", paint(false, &g.auto_scaling_group));
        }
    }
    for g in groups {
        if let Some(capacity) = &g.capacity {
            let _ = writeln!(out, "{}: {capacity}", g.auto_scaling_group);
        }
    }
    let _ = writeln!(out, "{}", paint(verdict.healthy(), &verdict.summary()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::fixtures::{A1, A2, B1, healthy, instance, member, route, set_member, set_route, set_state};
    use crate::model::*;

    /// The planner's test world: zones a, b and c on their own NATs A1, B1, C1.
    fn config() -> Config {
        crate::decide::fixtures::config(true)
    }

    /// Zone a's two tables go to instance `to`'s ENI.
    fn world(to: &str) -> World {
        let mut w = healthy();
        set_route(&mut w, "rtb-000000a1", route(to));
        set_route(&mut w, "rtb-000000a2", route(to));
        w
    }

    /// Zone a's NAT A1 died and left its group; nothing replaced it yet.
    fn a_died(to: &str) -> World {
        let mut w = world(to);
        set_member(&mut w, "nat-a", vec![]);
        set_state(&mut w, A1, "terminated");
        w
    }

    fn verdict(w: &World) -> Verdict {
        Verdict { zones: assess_all(&config(), w), every_group_missing: false }
    }

    fn zone_a(w: &World) -> GroupHealth {
        verdict(w).zones.remove(0)
    }

    #[test]
    fn healthy_only_when_the_hook_would_change_nothing() {
        let good = zone_a(&world(A1));
        assert!(good.healthy, "{good:?}");
        assert_eq!(good.status, ZoneStatus::Healthy);
        assert!(good.routes[0].ok && !good.routes[0].dark);
        let v = verdict(&world(A1));
        assert_eq!((v.worst(), v.healthy()), (ZoneStatus::Healthy, true));
        assert!(v.summary().starts_with("every zone is healthy; 3 of 3 zones: 3 healthy"), "{}", v.summary());
    }

    #[test]
    fn a_route_to_an_unknown_interface_is_unhealthy_not_healthy() {
        let bad = zone_a(&world("i-99999999"));
        assert_eq!(bad.status, ZoneStatus::Unhealthy);
        assert!(!bad.healthy && !bad.routes[0].ok);
        assert_eq!(
            bad.problems,
            vec![
                "rtb-000000a1: default route goes to eni-99999999, not to eni-0000000000000000a",
                "rtb-000000a2: default route goes to eni-99999999, not to eni-0000000000000000a"
            ]
        );
    }

    #[test]
    fn failed_over_only_when_the_routes_really_are_on_the_siblings_nat() {
        let h = zone_a(&a_died(B1));
        assert_eq!(h.status, ZoneStatus::FailedOver, "{h:?}");
        assert!(!h.healthy);
        assert_eq!(h.failed_over_to.as_deref(), Some("nat-b"));
        assert!(
            h.headline.starts_with(
                "FAILED OVER: nat-a (us-east-1a) has no NAT of its own; its routes are on nat-b's NAT i-0000000000000000b"
            ) && h.headline.contains("198.51.100.98"),
            "{}",
            h.headline
        );
        assert_eq!(h.instance_id.as_deref(), Some(B1));
    }

    #[test]
    fn routes_still_on_the_dead_nat_are_down_never_failed_over() {
        let w = a_died(A1);
        let v = verdict(&w);
        let h = &v.zones[0];
        assert_eq!(h.status, ZoneStatus::Down, "{h:?}");
        assert_eq!(h.failed_over_to, None);
        assert!(h.routes[0].dark);
        assert!(
            h.headline
                .starts_with("DOWN: nat-a (us-east-1a) is dark: rtb-000000a1 goes to i-0000000000000000a (terminated)"),
            "{}",
            h.headline
        );
        assert!(h.headline.ends_with("the hook would fail it over to nat-b (i-0000000000000000b)"), "{}", h.headline);
        assert!(!h.headline.contains("FAILED OVER") && !h.problems.iter().any(|p| p.starts_with("failed over")));
        // The summary and the exit status follow the worst zone.
        assert_eq!(v.worst(), ZoneStatus::Down);
        assert!(v.summary().starts_with("worst: DOWN; 3 of 3 zones: 1 DOWN (nat-a), 2 healthy"), "{}", v.summary());
        // And the text says it first.
        let text = render_table(&v, false);
        assert!(text.starts_with("DOWN: nat-a (us-east-1a) is dark"), "{text}");
        assert!(text.trim_end().ends_with(&v.summary()), "{text}");
    }

    #[test]
    fn a_replacement_in_service_with_routes_still_on_the_dead_one_is_down() {
        let mut w = a_died(A1);
        w.instances.push(instance(A2, 'a', InstanceState::Running, 2_000, false));
        set_member(&mut w, "nat-a", vec![member(A2, "InService")]);
        let h = zone_a(&w);
        assert_eq!(h.status, ZoneStatus::Down, "{h:?}");
        assert!(h.headline.ends_with("the hook would point it at its own NAT i-000000000000000a2"), "{}", h.headline);
    }

    fn drained(mut w: World) -> World {
        w.drained.insert(
            "nat-a".into(),
            DrainMark { since: "2026-12-06T10:00:00Z".into(), reason: "alice: kernel patch".into() },
        );
        w
    }

    #[test]
    fn a_drained_zone_is_drained_neither_healthy_nor_a_fault_and_says_since_when_and_why() {
        let v = verdict(&drained(world(B1)));
        let h = &v.zones[0];
        assert_eq!(h.status, ZoneStatus::Drained, "{h:?}");
        assert!(!h.healthy && !v.healthy(), "exit 1: not every zone is on its own NAT");
        assert_eq!(h.failed_over_to.as_deref(), Some("nat-b"));
        assert_eq!(
            h.headline,
            "DRAINED: nat-a (us-east-1a) drained since 2026-12-06T10:00:00Z (alice: kernel patch): its routes are on \
             nat-b's NAT i-0000000000000000b and it leaves with nat-b's Elastic IP 198.51.100.98 until undrain"
        );
        assert!(h.problems.is_empty(), "{:?}", h.problems);
        let json = serde_json::to_value(h).unwrap();
        assert_eq!(json["status"], "drained");
        assert_eq!(json["drained"]["since"], "2026-12-06T10:00:00Z");
        assert_eq!(json["drained"]["reason"], "alice: kernel patch");
        assert!(
            v.summary().starts_with("worst: DRAINED; 3 of 3 zones: 1 DRAINED (nat-a), 2 healthy"),
            "{}",
            v.summary()
        );
        assert!(render_table(&v, false).starts_with("DRAINED: nat-a"));

        // Forced with no sibling to take it: still on its own (drained) NAT: drained, and it says where.
        let h = zone_a(&drained(world(A1)));
        assert_eq!(h.status, ZoneStatus::Drained, "{h:?}");
        assert!(h.headline.contains("its routes are still on its own NAT"), "{}", h.headline);
        assert_eq!(h.routes[0].via, "i-0000000000000000a (own NAT, drained)");

        // Dark is dark, drained or not.
        let h = zone_a(&drained(a_died(A1)));
        assert_eq!(h.status, ZoneStatus::Down, "{h:?}");
        assert!(h.headline.ends_with("(drained since 2026-12-06T10:00:00Z (alice: kernel patch))"), "{}", h.headline);
        // And a sibling's drained NAT carries no other zone: zone b's table on it is not "failed over".
        let mut w = drained(world(A1));
        set_route(&mut w, "rtb-000000b1", route(A1));
        set_member(&mut w, "nat-b", vec![]);
        let b = verdict(&w).zones.remove(1);
        assert_eq!(b.status, ZoneStatus::Unhealthy, "{b:?}");
    }

    #[test]
    fn a_nat_that_is_leaving_its_group_counts_as_dark() {
        let mut w = world(A1);
        set_member(&mut w, "nat-a", vec![member(A1, "Terminating:Wait")]);
        let h = zone_a(&w);
        assert_eq!(h.status, ZoneStatus::Down, "{h:?}");
        assert!(h.headline.contains("i-0000000000000000a (Terminating:Wait in nat-a: leaving)"), "{}", h.headline);
    }

    #[test]
    fn a_blackhole_or_a_missing_route_is_dark() {
        let mut w = a_died(B1);
        w.route_tables[0].route.as_mut().unwrap().active = false;
        assert_eq!(zone_a(&w).status, ZoneStatus::Down);
        w.route_tables[0].route = None;
        let h = zone_a(&w);
        assert_eq!(h.status, ZoneStatus::Down);
        assert!(h.headline.contains("rtb-000000a1 no default route"), "{}", h.headline);
    }

    #[test]
    fn the_own_nat_with_its_source_dest_check_on_is_down() {
        let mut w = world(A1);
        w.instances[0].primary_eni.as_mut().unwrap().source_dest_check = true;
        let h = zone_a(&w);
        assert_eq!(h.status, ZoneStatus::Down);
        assert!(h.headline.contains("source/dest check is on"), "{}", h.headline);
    }

    #[test]
    fn on_a_sibling_whose_elastic_ip_is_elsewhere_is_not_failed_over() {
        let mut w = a_died(B1);
        w.addresses[1].network_interface_id = None;
        let h = zone_a(&w);
        assert_eq!(h.status, ZoneStatus::Unhealthy, "{h:?}");
        assert!(
            h.headline.contains("nat-b's Elastic IP eipalloc-0000000b is not on its NAT i-0000000000000000b"),
            "{}",
            h.headline
        );
    }

    #[test]
    fn a_missing_group_is_misconfigured() {
        let mut w = world(A1);
        w.members.insert("nat-a".into(), None);
        let v = verdict(&w);
        assert_eq!(v.zones[0].status, ZoneStatus::Misconfigured);
        assert!(v.zones[0].headline.contains("Auto Scaling group nat-a does not exist"), "{}", v.zones[0].headline);
        assert_eq!(v.worst(), ZoneStatus::Misconfigured);
    }

    #[test]
    fn table_lists_every_route_and_the_problems() {
        let v = Verdict { zones: vec![zone_a(&world("i-99999999"))], every_group_missing: false };
        let text = render_table(&v, false);
        assert!(text.starts_with("UNHEALTHY: nat-a"), "{text}");
        assert!(text.lines().any(|l| l.starts_with("GROUP")));
        assert!(text.contains("rtb-000000a1") && text.contains("nat-a: rtb-000000a1"), "{text}");
    }
}
