//! The `pgxc-deploy` binary: parse the command line, start tracing, hand over to
//! [`pgxc_deploy::commands::run`], and turn its result into an exit status.

use std::process::ExitCode;

use clap::Parser;
use pgxc_deploy::cli::Cli;
use pgxc_deploy::commands;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let detailed = cli.detailed_exitcode();
    let default = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let ansi = cli.color.on_stderr();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(pgxc_deploy::executor::report::stderr)
        .with_ansi(ansi)
        .init();

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.spawn(pgxc_deploy::interrupt::watch());
    match runtime.block_on(commands::run(cli)) {
        Ok(status) => ExitCode::from(status.code()),
        Err(err) => {
            // A closed pipe (`| head`) is not a failure.
            if err.is_broken_pipe() {
                return ExitCode::SUCCESS;
            }
            // With `plan --detailed-exitcode`, 2 means changes pending: every error is 1.
            let code = match err.exit_status().code() {
                2 if detailed => 1,
                code => code,
            };
            if err.is_diagnostics() {
                eprintln!("{err}");
                return ExitCode::from(code);
            }
            eprintln!("error: {err}");
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::from(code)
        }
    }
}
