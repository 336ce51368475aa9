//! `shoalctl broker decommission | unregister | cordon | uncordon` and `shoalctl cluster
//! balance`: plans from `shoal_balance`, carried out by partition reassignment (`reassign`).
//!
//! Decommissioning a broker is: plan where each of its replicas goes (rack-aware), cordon it
//! (KIP-1066's `cordoned.log.dirs`, so no new topic and no balancer puts replicas back while
//! it drains), start the moves, wait for them (progress on stderr), then unregister it if it is
//! already stopped; a broker that still runs is left registered with a note to stop it and run
//! `broker unregister` (an unregistered broker that still runs would just register again).
//! Unregistering removes the cordon: a new broker that takes the id starts uncordoned.

use std::process::ExitCode;

use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{BrokerId, IncrementalAlterConfigsRequest, UnregisterBrokerRequest};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;
use shoal_balance::{BalanceGoals, plan_balance, plan_decommission};

use super::{check, cluster_view, reassign};
use crate::cli::{BalanceArgs, BrokerCommand, DecommissionArgs};
use crate::kafka::Client;
use crate::output::Output;

pub async fn run(
    client: &mut Client,
    command: &BrokerCommand,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    match command {
        BrokerCommand::Decommission(args) => decommission(client, args, out).await,
        BrokerCommand::Unregister { id } => {
            unregister(client, *id).await?;
            out.emit(
                &json!({"broker": id, "unregistered": true}),
                &[(
                    "",
                    vec!["BROKER", "RESULT"],
                    vec![vec![id.to_string(), "unregistered".into()]],
                )],
            );
            Ok(ExitCode::SUCCESS)
        }
        BrokerCommand::Cordon { id } | BrokerCommand::Uncordon { id } => {
            let cordoned = matches!(command, BrokerCommand::Cordon { .. });
            cordon(client, *id, cordoned).await?;
            let result = if cordoned { "cordoned" } else { "uncordoned" };
            out.emit(
                &json!({"broker": id, "cordoned": cordoned}),
                &[(
                    "",
                    vec!["BROKER", "RESULT"],
                    vec![vec![id.to_string(), result.into()]],
                )],
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// KIP-1066's broker setting; Shoal has one log directory per broker, so `*` cordons it.
const CORDONED_LOG_DIRS: &str = "cordoned.log.dirs";
const BROKER_RESOURCE: i8 = 4;

/// Sets (`true`) or removes broker `id`'s `cordoned.log.dirs` (IncrementalAlterConfigs).
async fn cordon(client: &mut Client, id: i32, cordoned: bool) -> anyhow::Result<()> {
    let config = AlterableConfig::default()
        .with_name(StrBytes::from_static_str(CORDONED_LOG_DIRS))
        .with_config_operation(if cordoned { 0 } else { 1 })
        .with_value(cordoned.then(|| StrBytes::from_static_str("*")));
    let resource = AlterConfigsResource::default()
        .with_resource_type(BROKER_RESOURCE)
        .with_resource_name(StrBytes::from_string(id.to_string()))
        .with_configs(vec![config]);
    let response = client
        .any()
        .call(IncrementalAlterConfigsRequest::default().with_resources(vec![resource]))
        .await?;
    for r in &response.responses {
        check(
            &format!("{CORDONED_LOG_DIRS} of broker {id}"),
            r.error_code,
            r.error_message.as_deref(),
        )?;
    }
    Ok(())
}

/// UnregisterBroker, then the broker's cordon is removed (see the module docs).
async fn unregister(client: &mut Client, id: i32) -> anyhow::Result<()> {
    let response = client
        .any()
        .call(UnregisterBrokerRequest::default().with_broker_id(BrokerId(id)))
        .await?;
    check(
        &format!("unregister broker {id}"),
        response.error_code,
        response.error_message.as_deref(),
    )?;
    cordon(client, id, false).await
}

async fn decommission(
    client: &mut Client,
    args: &DecommissionArgs,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let mut view = cluster_view::load(client, &[args.id]).await?;
    if !view.brokers.iter().any(|b| b.id == args.id) {
        // Down and holding nothing: there is nothing to move, only to unregister.
        view.brokers.push(shoal_balance::BrokerView {
            id: args.id,
            rack: None,
            accepting: false,
        });
    }
    let plan = plan_decommission(&view, &[args.id])?;
    cluster_view::emit(&plan, out);
    if args.dry_run {
        return Ok(ExitCode::SUCCESS);
    }
    cordon(client, args.id, true).await?;
    if !plan.moves.is_empty() {
        reassign::start_and_wait(
            client,
            &cluster_view::moves(&plan),
            Some(args.wait_timeout_ms),
            out,
        )
        .await?;
    }
    let running = client
        .metadata(Some(&[]))
        .await?
        .brokers
        .iter()
        .any(|b| b.node_id.0 == args.id);
    if running {
        out.emit_stderr(
            &json!({"broker": args.id, "replicas": 0, "unregistered": false}),
            &format!(
                "broker {} holds no replicas; stop it, then run `shoalctl broker unregister {}`",
                args.id, args.id
            ),
        );
    } else {
        unregister(client, args.id).await?;
        out.emit_stderr(
            &json!({"broker": args.id, "replicas": 0, "unregistered": true}),
            &format!("broker {} holds no replicas and is unregistered", args.id),
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn balance(
    client: &mut Client,
    args: &BalanceArgs,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let view = cluster_view::load(client, &[]).await?;
    let plan = plan_balance(
        &view,
        BalanceGoals {
            bytes_tolerance_percent: args.bytes_tolerance_percent,
            max_moves: args.max_moves,
        },
    );
    cluster_view::emit(&plan, out);
    if args.execute && !plan.moves.is_empty() {
        reassign::start_and_wait(
            client,
            &cluster_view::moves(&plan),
            args.wait.then_some(args.wait_timeout_ms),
            out,
        )
        .await?;
    }
    Ok(ExitCode::SUCCESS)
}
