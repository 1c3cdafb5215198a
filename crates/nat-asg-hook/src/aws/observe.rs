//! The observe rounds: describe calls sent concurrently, turned into a `World`. Two reads:
//! `state` (the Elastic IPs, the route tables, and the instances an event names) and `groups` (the
//! NAT groups' members and their instances). A launch reads both in one round; everything that
//! starts from the tables reads the state first and the groups after (see `observe_state_then_groups`).

use std::collections::BTreeMap;

use aws_sdk_autoscaling::types::AutoScalingGroup;
use aws_sdk_ec2::types::{Filter, Instance, RouteState};
use tracing::instrument;

use super::Clients;
use crate::capacity::GroupCapacity;
use crate::config::Config;
use crate::error::AwsError;
use crate::model::{
    AddressView, AsgMember, DRAINED_TAG, DrainMark, Eni, InstanceState, InstanceView, RouteTableView, RouteTarget,
    RouteView, World,
};

/// The Auto Scaling group an instance belongs to: the tag Auto Scaling puts on every instance it launches.
const GROUP_TAG: &str = "aws:autoscaling:groupName";

/// One round: the state and the groups together, and the named instances (a launch: the critical
/// path, where a second round would lengthen the outage).
#[instrument(skip(clients, config), fields(instances = ?instance_ids))]
pub async fn observe_all(clients: &Clients, config: &Config, instance_ids: &[String]) -> Result<World, AwsError> {
    let ((addresses, route_tables, named), (read, group_instances)) =
        tokio::try_join!(state(clients, config, instance_ids), groups(clients, config))?;
    let GroupsRead { members, drained, capacity } = read;
    let mut world = World { members, drained, capacity, instances: named, addresses, route_tables };
    world.add_instances(group_instances);
    Ok(world)
}

/// The state only: the Elastic IPs, the route tables, the named instances. Enough to tell whether
/// an EC2 state change concerns a configured table at all (most do not: the rule sees every
/// instance in the region).
#[instrument(skip(clients, config), fields(instances = ?instance_ids))]
pub async fn observe_state(clients: &Clients, config: &Config, instance_ids: &[String]) -> Result<World, AwsError> {
    let (addresses, route_tables, instances) = state(clients, config, instance_ids).await?;
    Ok(World { instances, addresses, route_tables, ..World::default() })
}

/// One instance by ID, in a single DescribeInstances call; None while (or once) EC2 does not show it.
/// The EC2 state-change rule sees every instance of the region: this one call tells whether an
/// instance is a NAT of a configured group at all (most are not) before anything else is read.
#[instrument(skip(clients))]
pub async fn observe_instance(clients: &Clients, instance_id: &str) -> Result<Option<InstanceView>, AwsError> {
    let found = describe_instances(clients, filter("instance-id", &[instance_id.to_owned()]), true).await?;
    Ok(found.into_iter().find(|i| i.id == instance_id))
}

/// Adds the groups to a world read by `observe_state`: the second round.
#[instrument(skip_all)]
pub async fn add_groups(clients: &Clients, config: &Config, world: &mut World) -> Result<(), AwsError> {
    let (read, instances) = groups(clients, config).await?;
    world.members = read.members;
    world.drained = read.drained;
    world.capacity = read.capacity;
    world.add_instances(instances);
    Ok(())
}

/// For everything that starts from the tables (the schedule, `reconcile`, `verify`, a leaving
/// instance): the state first, the groups after. A route can show an instance's ENI only once a
/// launch invocation has seen the group hold that instance in service, so a group read taken
/// afterwards holds it too. Read in one round, a group answer from before an instance refresh's
/// launch could meet routes from after it, and the routes would be moved back to the old instance.
pub async fn observe_state_then_groups(
    clients: &Clients,
    config: &Config,
    instance_ids: &[String],
) -> Result<World, AwsError> {
    let mut world = observe_state(clients, config, instance_ids).await?;
    add_groups(clients, config, &mut world).await?;
    Ok(world)
}

/// The instances that hold these network interfaces (`verify`: what a route's target really is,
/// when it is no instance of a configured group). An interface that does not exist, or that no
/// instance holds, is simply absent.
pub async fn instances_with_enis(clients: &Clients, enis: &[String]) -> Result<Vec<InstanceView>, AwsError> {
    if enis.is_empty() {
        return Ok(Vec::new());
    }
    let pages: Vec<_> = clients
        .ec2
        .describe_network_interfaces()
        .filters(filter("network-interface-id", enis))
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::from_sdk("DescribeNetworkInterfaces", e))?;
    let holders: Vec<String> = pages
        .iter()
        .flat_map(|page| page.network_interfaces())
        .filter_map(|ni| ni.attachment()?.instance_id().map(str::to_owned))
        .collect();
    describe_instances(clients, filter("instance-id", &holders), !holders.is_empty()).await
}

type State = (Vec<AddressView>, Vec<RouteTableView>, Vec<InstanceView>);

async fn state(clients: &Clients, config: &Config, instance_ids: &[String]) -> Result<State, AwsError> {
    let (allocations, tables) = (config.all_allocation_ids(), config.all_route_table_ids());
    tokio::try_join!(
        describe_addresses(clients, &allocations),
        describe_route_tables(clients, &tables, &config.destination_cidr_block),
        describe_instances(clients, filter("instance-id", instance_ids), !instance_ids.is_empty()),
    )
}

/// The groups as one DescribeAutoScalingGroups returns them: per group read its members (None: the
/// group does not exist); the groups drained by hand; and how each buys its instance (its tags and
/// distribution come with the same call: neither a drain nor the Spot fallback costs a read).
struct GroupsRead {
    members: BTreeMap<String, Option<Vec<AsgMember>>>,
    drained: BTreeMap<String, DrainMark>,
    capacity: BTreeMap<String, GroupCapacity>,
}

type Groups = (GroupsRead, Vec<InstanceView>);

async fn groups(clients: &Clients, config: &Config) -> Result<Groups, AwsError> {
    let names = config.group_names();
    tokio::try_join!(
        describe_groups(clients, &names),
        describe_instances(clients, filter(&format!("tag:{GROUP_TAG}"), &names), true),
    )
}

fn filter(name: &str, values: &[String]) -> Filter {
    Filter::builder().name(name).set_values(Some(values.to_vec())).build()
}

/// Instances matching a filter (by ID: one EC2 does not show yet is simply absent instead of
/// failing the whole call with `InvalidInstanceID.NotFound`).
async fn describe_instances(clients: &Clients, filter: Filter, wanted: bool) -> Result<Vec<InstanceView>, AwsError> {
    if !wanted {
        return Ok(Vec::new());
    }
    let pages: Vec<_> = clients
        .ec2
        .describe_instances()
        .filters(filter)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::from_sdk("DescribeInstances", e))?;
    Ok(pages
        .iter()
        .flat_map(|page| page.reservations())
        .flat_map(|reservation| reservation.instances())
        .filter_map(instance_view)
        .collect())
}

fn instance_view(instance: &Instance) -> Option<InstanceView> {
    let id = instance.instance_id()?.to_owned();
    let state = instance.state().and_then(|s| s.name()).map(|n| InstanceState::from_name(n.as_str()))?;
    let primary_eni = instance
        .network_interfaces()
        .iter()
        .find(|ni| ni.attachment().and_then(|a| a.device_index()).unwrap_or(0) == 0)
        .and_then(|ni| {
            Some(Eni {
                id: ni.network_interface_id()?.to_owned(),
                private_ip: ni.private_ip_address().map(str::to_owned),
                source_dest_check: ni.source_dest_check().unwrap_or(true),
            })
        });
    Some(InstanceView {
        id,
        state,
        availability_zone: instance.placement().and_then(|p| p.availability_zone()).unwrap_or_default().to_owned(),
        launch_time_ms: instance.launch_time().map(|t| t.to_millis().unwrap_or(i64::MAX)).unwrap_or(0),
        primary_eni,
        group: instance.tags().iter().find(|t| t.key() == Some(GROUP_TAG)).and_then(|t| t.value()).map(str::to_owned),
    })
}

/// The named groups that exist, as Auto Scaling describes them (every page).
pub async fn auto_scaling_groups(clients: &Clients, names: &[String]) -> Result<Vec<AutoScalingGroup>, AwsError> {
    let pages: Vec<_> = clients
        .autoscaling
        .describe_auto_scaling_groups()
        .set_auto_scaling_group_names(Some(names.to_vec()))
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::from_sdk("DescribeAutoScalingGroups", e))?;
    Ok(pages.into_iter().flat_map(|page| page.auto_scaling_groups.unwrap_or_default()).collect())
}

/// Each named group's members, or None for a group that does not exist; and the drain marks (the
/// same call returns the groups' tags: a drain costs no extra read).
async fn describe_groups(clients: &Clients, names: &[String]) -> Result<GroupsRead, AwsError> {
    let found = auto_scaling_groups(clients, names).await?;
    let capacity = found
        .iter()
        .filter(|g| g.auto_scaling_group_name().is_some_and(|n| names.iter().any(|x| x == n)))
        .map(|g| {
            let read = super::capacity::group_capacity(g);
            (read.group.clone(), read)
        })
        .collect();
    let drained = found
        .iter()
        .filter_map(|g| {
            let name = g.auto_scaling_group_name().filter(|n| names.iter().any(|x| x == n))?;
            let tag = g.tags().iter().find(|t| t.key() == Some(DRAINED_TAG))?;
            Some((name.to_owned(), DrainMark::parse(tag.value().unwrap_or_default())))
        })
        .collect();
    let members = names
        .iter()
        .map(|name| {
            let group = found.iter().find(|g| g.auto_scaling_group_name() == Some(name.as_str()));
            let members = group.map(|group| {
                group
                    .instances()
                    .iter()
                    .filter_map(|i| {
                        Some(AsgMember {
                            instance_id: i.instance_id()?.to_owned(),
                            lifecycle_state: i.lifecycle_state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                            healthy: i.health_status().is_none_or(|h| !h.eq_ignore_ascii_case("unhealthy")),
                        })
                    })
                    .collect()
            });
            (name.clone(), members)
        })
        .collect();
    Ok(GroupsRead { members, drained, capacity })
}

async fn describe_addresses(clients: &Clients, allocation_ids: &[String]) -> Result<Vec<AddressView>, AwsError> {
    let out = clients
        .ec2
        .describe_addresses()
        .filters(filter("allocation-id", allocation_ids))
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("DescribeAddresses", e))?;
    Ok(out
        .addresses()
        .iter()
        .filter_map(|a| {
            let allocation_id = a.allocation_id().filter(|id| allocation_ids.iter().any(|x| x == id))?;
            Some(AddressView {
                allocation_id: allocation_id.to_owned(),
                public_ip: a.public_ip().map(str::to_owned),
                network_interface_id: a.network_interface_id().filter(|id| !id.is_empty()).map(str::to_owned),
            })
        })
        .collect())
}

/// All the configured tables in one call; for each, only the route for `destination`.
async fn describe_route_tables(
    clients: &Clients,
    ids: &[String],
    destination: &str,
) -> Result<Vec<RouteTableView>, AwsError> {
    let pages: Vec<_> = clients
        .ec2
        .describe_route_tables()
        .filters(filter("route-table-id", ids))
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::from_sdk("DescribeRouteTables", e))?;
    Ok(pages
        .iter()
        .flat_map(|page| page.route_tables())
        .filter_map(|table| {
            let route = table.routes().iter().find(|r| r.destination_cidr_block() == Some(destination)).map(|r| {
                let eni = r.network_interface_id().map(str::to_owned);
                let target = if let Some(id) = &eni {
                    RouteTarget::NetworkInterface(id.clone())
                } else if let Some(id) = r.instance_id() {
                    RouteTarget::Instance(id.to_owned())
                } else {
                    let other =
                        [r.nat_gateway_id(), r.gateway_id(), r.transit_gateway_id(), r.vpc_peering_connection_id()]
                            .into_iter()
                            .flatten()
                            .next()
                            .unwrap_or("unknown target");
                    RouteTarget::Other(other.to_owned())
                };
                RouteView {
                    network_interface_id: eni,
                    instance_id: r.instance_id().map(str::to_owned),
                    target,
                    active: r.state() != Some(&RouteState::Blackhole),
                }
            });
            Some(RouteTableView { id: table.route_table_id()?.to_owned(), route })
        })
        .collect())
}
