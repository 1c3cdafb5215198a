//! Refusals (step 3): states that retrying cannot fix, where the configuration and the account
//! disagree. The zone is reported `failed`; the other zones still run.

use crate::config::GroupConfig;
use crate::model::{InstanceView, World};

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

pub(super) fn missing(name: &str, group: &GroupConfig, world: &World) -> Option<Refusal> {
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

pub(super) fn check_zone(name: &str, group: &GroupConfig, instance: &InstanceView) -> Result<(), Refusal> {
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

#[cfg(test)]
mod tests {
    use crate::decide::fixtures::*;
    use crate::decide::*;

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
}
