#![recursion_limit = "256"]

use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    nat_asg_hook::cli::main().await
}
