//! The binary's two faces: with no arguments it serves the Lambda Runtime API; with a subcommand
//! it is the operator's tool. Both run `Hook::handle`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use lambda_runtime::service_fn;
use lambda_runtime::tracing::subscriber::EnvFilter;
use serde_json::{Value, json};

use crate::aws::Clients;
use crate::config::Config;
use crate::error::HookError;
use crate::event::{SCHEDULED, parse};
use crate::handler::{DEFAULT_BUDGET, Hook};
use crate::reconcile::Mode;
use crate::report::Report;
use crate::retry::Deadline;
use crate::verify::{render_table, verify};

const ABOUT: &str = "Keeps NAT-instance egress alive: when a NAT instance proves itself and goes in service, moves \
the zone's Elastic IP to it, turns off its source/dest check, then points the zone's private default routes at its \
network interface; when a NAT leaves, hands its zone to a healthy sibling zone's NAT until the replacement is in service.";

const AFTER_HELP: &str = "\
With no subcommand the binary serves the AWS Lambda Runtime API (this is how Lambda runs it).

Configuration: --config FILE, or the NAT_ASG_HOOK_CONFIG environment variable. Both hold the JSON that
Terraform outputs as hook_config:  terraform output -raw hook_config > hook.json

AWS access: the usual chain (AWS_PROFILE, AWS_REGION, environment keys, SSO). AWS_ENDPOINT_URL points
every call at an emulator instead.

Exit status: 0 success; 1 the handler failed or (verify) a group is unhealthy; 2 bad input
(arguments, configuration, event file).";

#[derive(Debug, Parser)]
#[command(name = "nat-asg-hook", version, about = ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    /// Configuration JSON file (the Terraform output hook_config); default: $NAT_ASG_HOOK_CONFIG
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the Lambda handler once on a saved event, exactly as Lambda would
    #[command(after_help = "\
Prints the result JSON as the last line of stdout. Exit 0 when the handler succeeded, whatever the
outcome (applied, unchanged, ignored, stale); non-zero with the reason on stderr otherwise.
Safe to repeat: an event that is already done answers `unchanged` and changes nothing, and an old
event answers `stale` and never moves the EIP or routes away from a newer instance.

Examples:
  nat-asg-hook replay events/launch-successful.json --dry-run --config hook.json
  nat-asg-hook replay events/terminate-lifecycle-action.json --config hook.json
  aws sqs receive-message ... | jq -r '.Messages[0].Body' > event.json && nat-asg-hook replay event.json")]
    Replay {
        /// The EventBridge event (JSON): a file from events/, or a dead-letter message body (the event,
        /// or Lambda's failure record holding it under requestPayload)
        file: PathBuf,
        /// Observe and print the plan; make no mutating call at all (and complete no terminate action)
        #[arg(long)]
        dry_run: bool,
        /// Give up after this many seconds (Lambda's own deadline applies in Lambda)
        #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_BUDGET.as_secs(),
              value_parser = clap::value_parser!(u64).range(1..=900))]
        timeout: u64,
    },
    /// Check every zone: on its own in-service NAT, EIP on its ENI, source/dest check off, every route on its ENI
    #[command(
        after_help = "Exit 0 only when every configured zone is healthy; 1 otherwise (a zone failed over to a sibling is \
reported as such, and is not healthy: it leaves with the sibling's Elastic IP). Changes nothing."
    )]
    Verify {
        /// Print the result as JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Reconcile every zone as the schedule does: onto its own in-service NAT, or a healthy sibling's
    #[command(
        after_help = "Heals lost events and hand-made changes: fails a zone with no NAT of its own over to a healthy \
sibling (unless failover is off), and fails it back once its own NAT is in service. Prints the result JSON as the last line."
    )]
    Reconcile {
        /// Observe and print the plan; make no mutating call at all
        #[arg(long)]
        dry_run: bool,
        /// Give up after this many seconds
        #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_BUDGET.as_secs(),
              value_parser = clap::value_parser!(u64).range(1..=900))]
        timeout: u64,
    },
}

/// Parses the command line and runs the Lambda runtime or the operator command.
pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(command) = cli.command else {
        return match serve().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("nat-asg-hook: {e}");
                ExitCode::FAILURE
            }
        };
    };
    init_cli_logging(matches!(command, Command::Verify { .. }));
    let config = match load_config(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => return fail(2, &e),
    };
    match command {
        Command::Replay { file, dry_run, timeout } => replay(config, &file, dry_run, timeout).await,
        Command::Verify { json } => check(config, json).await,
        Command::Reconcile { dry_run, timeout } => {
            let event = json!({"source": "aws.events", "detail-type": SCHEDULED, "detail": {}});
            run(config, event, dry_run, timeout).await
        }
    }
}

/// The Lambda face: configuration and clients once, then the runtime loop.
async fn serve() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let hook = Hook::new(Clients::load().await, config);
    let hook = &hook;
    lambda_runtime::run(service_fn(move |event| async move { hook.invoke(event).await })).await
}

fn load_config(path: Option<&Path>) -> Result<Config, String> {
    match path {
        Some(path) => Config::from_file(path),
        None => Config::from_env(),
    }
    .map_err(|e| e.to_string())
}

async fn replay(config: Config, file: &Path, dry_run: bool, timeout: u64) -> ExitCode {
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) => return fail(2, &format!("cannot read {}: {e}", file.display())),
    };
    // Refuse a malformed event before any client exists: no AWS call is made for it.
    let event = match crate::event::json(&bytes) {
        Ok(value) => unwrap_failure_record(value),
        Err(e) => return fail(2, &format!("{}: {e}", file.display())),
    };
    if let Err(e) = parse(event.clone(), &config) {
        return fail(2, &format!("{}: {e}", file.display()));
    }
    run(config, event, dry_run, timeout).await
}

/// A message from the dead-letter queue is either the event itself (EventBridge, Lambda's DLQ) or
/// Lambda's on-failure record with the event under `requestPayload`: `replay` takes both.
fn unwrap_failure_record(value: Value) -> Value {
    match value {
        Value::Object(mut record) if record.contains_key("requestContext") && record.contains_key("requestPayload") => {
            eprintln!("nat-asg-hook: replaying the event inside a Lambda failure record (requestPayload)");
            record.remove("requestPayload").unwrap_or_default()
        }
        other => other,
    }
}

async fn run(config: Config, event: Value, dry_run: bool, timeout: u64) -> ExitCode {
    let hook = Hook::new(Clients::load().await, config);
    let mode = if dry_run { Mode::DryRun } else { Mode::Apply };
    match hook.handle(event, mode, Deadline::after(Duration::from_secs(timeout))).await {
        Ok(report) => {
            print_report(&report);
            ExitCode::SUCCESS
        }
        Err(HookError::Reconcile { failures, report }) => {
            print_report(&report);
            fail(1, &HookError::Reconcile { failures, report }.to_string())
        }
        Err(e @ HookError::Malformed(_)) => fail(2, &e.to_string()),
        Err(e) => fail(1, &format!("{} ({})", e, e.error_type())),
    }
}

fn print_report(report: &Report) {
    if report.dry_run {
        for planned in &report.summary.actions {
            println!("plan: {}", planned.action);
        }
        if report.summary.actions.is_empty() {
            println!("plan: nothing to change ({})", report.summary.outcome.as_str());
        }
    }
    println!("{}", serde_json::to_string(report).unwrap_or_default());
}

async fn check(config: Config, as_json: bool) -> ExitCode {
    let clients = Clients::load().await;
    let groups = verify(&clients, &config).await;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&groups).unwrap_or_default());
    } else {
        print!("{}", render_table(&groups, use_color()));
    }
    if groups.iter().all(|g| g.healthy) { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

/// Colour on a terminal, unless NO_COLOR is set; CLICOLOR_FORCE turns it on anywhere.
fn use_color() -> bool {
    let set = |name| std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0");
    set("CLICOLOR_FORCE") || (std::io::stdout().is_terminal() && !set("NO_COLOR"))
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("nat-asg-hook: {message}");
    ExitCode::from(code)
}

/// Operator commands log to stderr (stdout carries the result); `RUST_LOG` overrides the level.
fn init_cli_logging(quiet: bool) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(if quiet { "warn" } else { "info" }));
    lambda_runtime::tracing::subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_env_filter(filter)
        .init();
}
