//! The act round: one call per planned action, all sent concurrently. Each call waits out EC2's
//! eventual consistency with bounded backoff and falls back where the world changed since observe.

use aws_sdk_ec2::types::AttributeBooleanValue;
use tracing::{info, instrument, warn};

use super::Clients;
use crate::error::{AwsError, EVENTUALLY_CONSISTENT};
use crate::model::Action;
use crate::retry::{Backoff, Deadline};

/// Executes one action; retries only the codes that mean "EC2 has not caught up yet".
#[instrument(skip_all, fields(action = action.kind(), resource = action.resource()))]
pub async fn execute(clients: &Clients, action: &Action, deadline: &Deadline) -> Result<(), AwsError> {
    let mut backoff = Backoff::default();
    loop {
        match execute_once(clients, action).await {
            Ok(()) => {
                info!(attempts = backoff.attempts, "action applied");
                return Ok(());
            }
            Err(e) if EVENTUALLY_CONSISTENT.contains(&e.code.as_str()) => {
                warn!(code = %e.code, attempt = backoff.attempts, "not ready yet, retrying");
                if !backoff.wait(deadline).await {
                    return Err(AwsError {
                        message: format!("{} (gave up at the deadline after {} attempts)", e.message, backoff.attempts),
                        ..e
                    });
                }
            }
            Err(e) => return Err(e),
        }
    }
}

async fn execute_once(clients: &Clients, action: &Action) -> Result<(), AwsError> {
    match action {
        Action::AssociateAddress { allocation_id, network_interface_id, private_ip_address, .. } => clients
            .ec2
            .associate_address()
            .allocation_id(allocation_id)
            .network_interface_id(network_interface_id)
            .set_private_ip_address(private_ip_address.clone())
            .allow_reassociation(true)
            .send()
            .await
            .map(drop)
            .map_err(|e| AwsError::from_sdk("AssociateAddress", e)),
        Action::DisableSourceDestCheck { network_interface_id } => clients
            .ec2
            .modify_network_interface_attribute()
            .network_interface_id(network_interface_id)
            .source_dest_check(AttributeBooleanValue::builder().value(false).build())
            .send()
            .await
            .map(drop)
            .map_err(|e| AwsError::from_sdk("ModifyNetworkInterfaceAttribute", e)),
        Action::ReplaceRoute { route_table_id, destination_cidr_block, network_interface_id, .. } => {
            match replace_route(clients, route_table_id, destination_cidr_block, network_interface_id).await {
                // The route vanished since observe: ReplaceRoute cannot create it.
                Err(e) if e.is("InvalidParameterValue") => {
                    info!(route_table = %route_table_id, "route gone since observe, creating it");
                    create_route(clients, route_table_id, destination_cidr_block, network_interface_id).await
                }
                other => other,
            }
        }
        Action::CreateRoute { route_table_id, destination_cidr_block, network_interface_id } => {
            match create_route(clients, route_table_id, destination_cidr_block, network_interface_id).await {
                // Someone (or an earlier delivery) created it since observe: point it at our ENI.
                Err(e) if e.is("RouteAlreadyExists") => {
                    info!(route_table = %route_table_id, "route appeared since observe, replacing it");
                    replace_route(clients, route_table_id, destination_cidr_block, network_interface_id).await
                }
                other => other,
            }
        }
    }
}

async fn replace_route(clients: &Clients, table: &str, destination: &str, eni: &str) -> Result<(), AwsError> {
    clients
        .ec2
        .replace_route()
        .route_table_id(table)
        .destination_cidr_block(destination)
        .network_interface_id(eni)
        .send()
        .await
        .map(drop)
        .map_err(|e| AwsError::from_sdk("ReplaceRoute", e))
}

async fn create_route(clients: &Clients, table: &str, destination: &str, eni: &str) -> Result<(), AwsError> {
    clients
        .ec2
        .create_route()
        .route_table_id(table)
        .destination_cidr_block(destination)
        .network_interface_id(eni)
        .send()
        .await
        .map(drop)
        .map_err(|e| AwsError::from_sdk("CreateRoute", e))
}
