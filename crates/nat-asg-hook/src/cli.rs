//! The binary's two faces: with no arguments it serves the Lambda Runtime API; with a subcommand
//! it is the operator's tool. Both run `Hook::handle`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};
use lambda_runtime::service_fn;
use lambda_runtime::tracing::subscriber::EnvFilter;
use serde_json::{Value, json};

use crate::access::{self, Blind};
use crate::aws::{Clients, sdk_config};
use crate::config::Config;
use crate::drain;
use crate::error::HookError;
use crate::event::{SCHEDULED, parse};
use crate::handler::{DEFAULT_BUDGET, Hook};
use crate::model::Mode;
use crate::report::{MarkStatus, Report};
use crate::retry::Deadline;
use crate::verify::{render_table, verify};

/// The exit statuses (the README's table): monitoring tells "a zone is not healthy" from "the
/// tool could not look" by these alone.
pub mod exit {
    /// Every zone healthy; the handler succeeded.
    pub const OK: u8 = 0;
    /// A zone is not healthy (down, unhealthy, failed over, misconfigured), or the handler failed.
    pub const UNHEALTHY: u8 = 1;
    /// Bad input: arguments, configuration, event file, an event of another region, no command.
    pub const USAGE: u8 = 2;
    /// Could not look: no region or credentials, an endpoint that does not answer, throttling
    /// beyond every retry, access denied, or not one configured group where it looked.
    pub const BLIND: u8 = 3;
}

const ABOUT: &str = "Keeps NAT-instance egress alive: when a NAT instance proves itself and goes in service, moves \
the zone's Elastic IP to it, turns off its source/dest check, then points the zone's private default routes at its \
network interface; when a NAT leaves, hands its zone to a healthy sibling zone's NAT until the replacement is in service.";

const AFTER_HELP: &str = "\
With no subcommand the binary serves the AWS Lambda Runtime API (this is how Lambda runs it); outside
Lambda (no AWS_LAMBDA_RUNTIME_API) it says which subcommands exist and exits 2.

Configuration: --config FILE, or the NAT_ASG_HOOK_CONFIG environment variable. Both hold the JSON that
Terraform outputs as hook_config:  terraform output -raw hook_config > hook.json

AWS access: the usual chain (AWS_PROFILE, AWS_REGION, environment keys, SSO). AWS_ENDPOINT_URL points
every call at an emulator instead. The region must be the configured zones' region.

Exit status: 0 healthy / done; 1 a zone is not healthy (verify: a drained zone too) or the handler failed;
2 bad input (arguments, configuration, event file, an event of another region, no subcommand, a drain that
would leave a zone with nowhere to go); 3 could not look
(no region or credentials, endpoint unreachable, throttled beyond retries, access denied, or not one
configured group exists where it looked: wrong region or account).";

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
        after_help = "Says first, one line each, every zone that is not healthy: DOWN (dark: a route goes nowhere, or to a \
dead or leaving NAT), MISCONFIGURED, UNHEALTHY, FAILED OVER (only when its routes really are on a sibling's working NAT, \
which holds the sibling's Elastic IP). Then the table, the details and a summary. Changes nothing.

Exit 0 only when every configured zone is healthy; 1 when a zone is not (failed over included); 3 when it could not \
look (no region or credentials, endpoint unreachable, throttled, access denied, no configured group where it looked)."
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
    /// Hand a zone to a healthy sibling's NAT now and keep it there (maintenance), until undrain
    #[command(after_help = "\
Marks the group drained (its tag nat-asg-hook:drained = \"<UTC time> <who>: <reason>\"), then does what the
schedule does for the zone: its private default routes go to a healthy sibling zone's NAT (the zone leaves with
the sibling's Elastic IP), and any zone failed over onto this NAT moves on to another sibling. From then on no
trigger takes the zone back (the schedule, a launch of the group's new instance, a state change) and no zone is
failed over onto this NAT, until `undrain`. The NAT itself keeps running: stop, patch or replace it at will.

Refused (exit 2, nothing changed) when failover is off in the configuration, or when no healthy sibling could
take the zone, unless --force (the zone then stays on its own NAT until a sibling can take it). Draining a
drained group changes nothing (`unchanged`). Needs autoscaling:CreateOrUpdateTags on the group.

Prints the result JSON as the last line: `failover` names the sibling, `actions` the tables moved, `drain` the mark.

Examples:
  nat-asg-hook drain nat-prod-us-east-1a --reason 'kernel patch CHG-1234' --dry-run --config hook.json
  nat-asg-hook drain nat-prod-us-east-1a --reason 'kernel patch CHG-1234' --config hook.json")]
    Drain {
        /// The NAT Auto Scaling group (a configured group)
        group: String,
        /// Why (kept in the tag with the time and $USER, and shown by verify)
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Drain even when failover is off or no healthy sibling can take the zone
        #[arg(long)]
        force: bool,
        /// Observe and print the plan; write no tag and make no other mutating call
        #[arg(long)]
        dry_run: bool,
        /// Give up after this many seconds
        #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_BUDGET.as_secs(),
              value_parser = clap::value_parser!(u64).range(1..=900))]
        timeout: u64,
    },
    /// Give a drained zone back to its own NAT: remove the drain mark, then EIP and routes at once
    #[command(after_help = "\
Removes the group's nat-asg-hook:drained tag, then runs the hand-back for the zone at once: its Elastic IP onto
its own in-service NAT, then its routes. If the group holds no proven NAT yet (a replacement still proving
itself), the zone stays on the sibling and its NAT's launch (or the schedule) takes it back. Undraining a group
that is not drained changes nothing (`unchanged`). Needs autoscaling:DeleteTags on the group. Exit statuses as drain.")]
    Undrain {
        /// The NAT Auto Scaling group (a configured group)
        group: String,
        /// Observe and print the plan; remove no tag and make no other mutating call
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
        return match lambda_environment(|name| std::env::var(name).ok()) {
            Ok(()) if cli.config.is_none() => match serve().await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(exit::UNHEALTHY, &e.to_string()),
            },
            Ok(()) => fail(exit::USAGE, &no_command("--config is for the subcommands")),
            Err(why) => fail(exit::USAGE, &no_command(&why)),
        };
    };
    init_cli_logging(matches!(command, Command::Verify { .. }));
    let config = match load_config(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => return fail(exit::USAGE, &e),
    };
    match command {
        Command::Replay { file, dry_run, timeout } => replay(config, &file, dry_run, timeout).await,
        Command::Verify { json } => check(config, json).await,
        Command::Reconcile { dry_run, timeout } => {
            let event = json!({"source": "aws.events", "detail-type": SCHEDULED, "detail": {}});
            match connect(&config).await {
                Ok(aws) => run(&aws, config, event, dry_run, timeout).await,
                Err(code) => code,
            }
        }
        Command::Drain { group, reason, force, dry_run, timeout } => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            let who = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_default();
            let value = drain::mark_value(now.as_secs() as i64, &who, reason.as_deref());
            let request = drain::Request { group: &group, drained: true, value, force };
            drain_or_undrain(&config, &request, dry_run, timeout).await
        }
        Command::Undrain { group, dry_run, timeout } => {
            let request = drain::Request { group: &group, drained: false, value: String::new(), force: false };
            drain_or_undrain(&config, &request, dry_run, timeout).await
        }
    }
}

async fn drain_or_undrain(config: &Config, request: &drain::Request<'_>, dry_run: bool, timeout: u64) -> ExitCode {
    // An unknown group is bad input: said before any AWS call.
    if config.group(request.group).is_none() {
        return fail(
            exit::USAGE,
            &format!("{} is not a configured group (configured: {})", request.group, config.group_names().join(", ")),
        );
    }
    let aws = match connect(config).await {
        Ok(aws) => aws,
        Err(code) => return code,
    };
    let mode = Mode::from_dry_run(dry_run);
    let deadline = Deadline::after(Duration::from_secs(timeout));
    match drain::run(&aws.clients, config, request, mode, &deadline).await {
        Ok(report) => {
            if let Some(mark) = report.drain.as_ref().filter(|_| report.dry_run) {
                let verb = if mark.drained { "mark" } else { "unmark" };
                match mark.status {
                    MarkStatus::Unchanged => println!(
                        "plan: {} is already {}",
                        mark.auto_scaling_group,
                        if mark.drained { "drained" } else { "not drained" }
                    ),
                    _ => println!("plan: {verb} {} drained ({})", mark.auto_scaling_group, mark.tag),
                }
            }
            finish(&aws, Ok(report))
        }
        Err(drain::DrainError::Refused(why)) => fail(exit::USAGE, &why),
        Err(drain::DrainError::Hook(e)) => finish(&aws, Err(e)),
    }
}

/// The variables the Lambda runtime needs (it panics without them): all there, or why this is not
/// Lambda. Pure, on a lookup, for the tests.
pub fn lambda_environment(get: impl Fn(&str) -> Option<String>) -> Result<(), String> {
    const NEEDED: [&str; 4] = [
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    ];
    let set = |name: &str| get(name).is_some_and(|v| !v.is_empty());
    if !set(NEEDED[0]) && !set(NEEDED[1]) {
        return Err("this is not Lambda (AWS_LAMBDA_RUNTIME_API is not set)".to_owned());
    }
    let missing: Vec<&str> = NEEDED.into_iter().filter(|n| !set(n)).collect();
    if !missing.is_empty() {
        return Err(format!("the Lambda environment is incomplete ({} not set)", missing.join(", ")));
    }
    if get(NEEDED[3]).and_then(|m| m.parse::<i32>().ok()).is_none() {
        return Err("AWS_LAMBDA_FUNCTION_MEMORY_SIZE is not a number".to_owned());
    }
    Ok(())
}

/// One sentence: which subcommands exist (from the parser itself, so it cannot drift), and why
/// the Lambda face did not start.
pub fn no_command(why: &str) -> String {
    let commands: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|c| {
            let args: String = c
                .get_positionals()
                .map(|a| {
                    format!(
                        " <{}>",
                        a.get_value_names().and_then(|v| v.first()).map_or("ARG".into(), ToString::to_string)
                    )
                })
                .collect();
            format!("{}{args}", c.get_name())
        })
        .collect();
    format!(
        "no subcommand: use one of {} (nat-asg-hook --help); with none the binary serves the AWS Lambda Runtime API, and {why}",
        commands.join(", ")
    )
}

/// The SDK configuration, checked before any call (region, the configured zones' region,
/// credentials), and the clients; or the exit status after one sentence saying what to set.
struct Aws {
    clients: Clients,
    endpoint: String,
    region: Option<String>,
}

async fn connect(config: &Config) -> Result<Aws, ExitCode> {
    let sdk = sdk_config().await;
    if let Err(blind) = access::preflight(&sdk, config).await {
        return Err(could_not_look(&blind));
    }
    Ok(Aws {
        clients: Clients::from_sdk(&sdk),
        endpoint: access::endpoint(&sdk),
        region: sdk.region().map(ToString::to_string),
    })
}

fn could_not_look(blind: &Blind) -> ExitCode {
    fail(exit::BLIND, &format!("could not look: {blind}"))
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
        Err(e) => return fail(exit::USAGE, &format!("cannot read {}: {e}", file.display())),
    };
    // Refuse a malformed event before any client exists: no AWS call is made for it.
    let event = match crate::event::json(&bytes) {
        Ok(value) => unwrap_failure_record(value),
        Err(e) => return fail(exit::USAGE, &format!("{}: {e}", file.display())),
    };
    if let Err(e) = parse(event.clone(), &config) {
        return fail(exit::USAGE, &format!("{}: {e}", file.display()));
    }
    let aws = match connect(&config).await {
        Ok(aws) => aws,
        Err(code) => return code,
    };
    if let Some(mismatch) = access::event_region_mismatch(&event, aws.region.as_deref()) {
        return fail(exit::USAGE, &format!("{}: {mismatch}", file.display()));
    }
    run(&aws, config, event, dry_run, timeout).await
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

async fn run(aws: &Aws, config: Config, event: Value, dry_run: bool, timeout: u64) -> ExitCode {
    let hook = Hook::new(aws.clients.clone(), config);
    let mode = Mode::from_dry_run(dry_run);
    finish(aws, hook.handle(event, mode, Deadline::after(Duration::from_secs(timeout))).await)
}

/// The report on stdout and exit 0, or the exit status for the error, with one line on stderr. A
/// report with failed zones is printed, then is the error (this edge and `Hook::invoke` decide that).
fn finish(aws: &Aws, result: Result<Report, HookError>) -> ExitCode {
    match result {
        Ok(report) => {
            print_report(&report);
            match HookError::zones_failed(&report) {
                None => ExitCode::SUCCESS,
                Some(e) => fail(exit::UNHEALTHY, &e.to_string()),
            }
        }
        Err(e @ HookError::Malformed(_)) => fail(exit::USAGE, &e.to_string()),
        Err(e) => match access::classify_hook(&e, &aws.endpoint) {
            Some(blind @ (Blind::AccessDenied { .. } | Blind::CredentialsRejected { .. }))
                if !matches!(e, HookError::Aws(_)) =>
            {
                fail(exit::BLIND, &format!("could not act: {blind}"))
            }
            Some(blind) => could_not_look(&blind),
            None => fail(exit::UNHEALTHY, &format!("{} ({})", e, e.error_type())),
        },
    }
}

fn print_report(report: &Report) {
    if report.dry_run {
        for planned in &report.summary.actions {
            println!("plan: {}", planned.action);
        }
        if report.summary.actions.is_empty() {
            println!("plan: nothing to change ({})", report.summary.outcome);
        }
    }
    println!("{}", serde_json::to_string(report).unwrap_or_default());
}

async fn check(config: Config, as_json: bool) -> ExitCode {
    let aws = match connect(&config).await {
        Ok(aws) => aws,
        Err(code) => return code,
    };
    let verdict = match verify(&aws.clients, &config).await {
        Ok(verdict) => verdict,
        Err(e) => {
            let blind = access::classify(&e, &aws.endpoint).unwrap_or(Blind::ServiceTrouble {
                operation: e.operation,
                code: e.code.clone(),
                cause: e.cause.clone().unwrap_or_else(|| e.message.clone()),
            });
            return could_not_look(&blind);
        }
    };
    if as_json {
        println!("{}", serde_json::to_string_pretty(&verdict.zones).unwrap_or_default());
    } else {
        print!("{}", render_table(&verdict, use_color()));
    }
    if verdict.every_group_missing {
        return could_not_look(&Blind::NothingThere {
            groups: config.groups.len(),
            region: aws.region.unwrap_or_else(|| "this region".into()),
            config_region: config.region(),
        });
    }
    if verdict.healthy() { ExitCode::from(exit::OK) } else { ExitCode::from(exit::UNHEALTHY) }
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
    // The SDK's own warnings (a region IMDS could not give, ...) are Debug dumps the operator cannot
    // act on: the tool says what went wrong in one sentence instead. RUST_LOG brings them back.
    let level = if quiet { "warn" } else { "info" };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},aws_config=off,aws_smithy_runtime=off")));
    lambda_runtime::tracing::subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_env_filter(filter)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn outside_lambda_there_is_no_runtime_to_serve() {
        let why = lambda_environment(env(&[("NAT_ASG_HOOK_CONFIG", "{}")])).unwrap_err();
        assert!(why.contains("AWS_LAMBDA_RUNTIME_API is not set"), "{why}");
        let partial = lambda_environment(env(&[("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")])).unwrap_err();
        assert!(partial.contains("AWS_LAMBDA_FUNCTION_NAME"), "{partial}");
        let full = [
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
            ("AWS_LAMBDA_FUNCTION_NAME", "nat-asg-hook"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "1"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ];
        assert_eq!(lambda_environment(env(&full)), Ok(()));
        let mut bad = full;
        bad[3].1 = "lots";
        assert!(lambda_environment(env(&bad)).is_err());
    }

    #[test]
    fn no_command_names_every_subcommand() {
        let text = no_command("this is not Lambda");
        assert!(text.contains("replay <FILE>, verify, reconcile"), "{text}");
        assert!(!text.contains('\n'));
    }
}
