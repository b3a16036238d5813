#![doc = include_str!("../README.md")]

mod args;
mod batch;
mod client;
mod convert;
mod download;
mod names;
mod progress;
mod request;
mod status;
mod website;

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::Parser;

use crate::args::{Cli, Command};
use crate::client::Client;

/// Everything converted (or, for `status`, a batch that is not partial or failed).
const EXIT_OK: u8 = 0;
/// The work was done but some items failed: a partial or failed batch, a page that could
/// not be converted.
const EXIT_SOME_FAILED: u8 = 1;
/// Nothing usable: bad arguments, a refused request (the API's `detail` is printed), the
/// service unreachable, a wait that timed out, a file that could not be written.
const EXIT_ERROR: u8 = 2;
/// Interrupted with Ctrl-C.
const EXIT_INTERRUPTED: u8 = 130;

/// How a command ended when it did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    AllSucceeded,
    SomeFailed,
}

/// Set by commands while the server works on something the user may want to look up after
/// an interruption (a batch id, a job id).
#[derive(Clone, Default)]
pub struct InFlight(Arc<Mutex<Option<String>>>);

impl InFlight {
    pub fn set(&self, hint: String) {
        if let Ok(mut h) = self.0.lock() {
            *h = Some(hint);
        }
    }

    fn take(&self) -> Option<String> {
        self.0.lock().ok().and_then(|mut h| h.take())
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with status 0; usage errors are ours to number.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_ERROR } else { EXIT_OK });
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let in_flight = InFlight::default();
    let code = runtime.block_on(async {
        tokio::select! {
            result = run(cli, in_flight.clone()) => match result {
                Ok(Outcome::AllSucceeded) => EXIT_OK,
                Ok(Outcome::SomeFailed) => EXIT_SOME_FAILED,
                Err(e) => {
                    report(&e);
                    EXIT_ERROR
                }
            },
            // Dropping the command's future removes any half-written download.
            _ = tokio::signal::ctrl_c() => {
                eprintln!("interrupted");
                if let Some(hint) = in_flight.take() {
                    eprintln!("{hint}");
                }
                EXIT_INTERRUPTED
            }
        }
    });
    // Do not wait for a blocked request or file write to notice the runtime is going away.
    runtime.shutdown_background();
    ExitCode::from(code)
}

async fn run(cli: Cli, in_flight: InFlight) -> anyhow::Result<Outcome> {
    let client = Client::new(&cli.global, in_flight)?;
    match cli.command {
        Command::Pdf(a) => convert::pdf(&client, a).await,
        Command::Screenshot(a) => convert::screenshot(&client, a).await,
        Command::Batch(a) => batch::run(&client, a).await,
        Command::Website(a) => website::run(&client, a).await,
        Command::Status(a) => status::run(&client, a).await,
    }
}

/// Writes a line on stdout; a closed pipe is an error, not a panic.
pub fn out(line: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(|e| anyhow::anyhow!("failed to write to stdout: {e}"))
}

/// Prints an error for people, with its causes (an API refusal shows the API's `detail`).
fn report(e: &anyhow::Error) {
    eprintln!("error: {e}");
    for cause in e.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}
