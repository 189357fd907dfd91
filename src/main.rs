//! The `tenant-operator` binary: parses the command line and hands off to the library.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = tenant_operator::cli::Cli::parse();
    tenant_operator::cli::run(cli).await
}
