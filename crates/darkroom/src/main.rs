//! The one darkroom binary: `darkroom serve | web | worker | status | setup | process`.
//! Parses the settings, sets up logging and metrics, and hands over to the components.

#[cfg(feature = "aws")]
mod aws;
mod backends;
mod config;
mod metrics_catalog;
mod process;
mod run;
mod telemetry;

use clap::Parser;
use config::{Cli, Command};
use run::Roles;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(error) = telemetry::init_logging(&cli.settings.log, cli.settings.log_format) {
        eprintln!("darkroom: {error:#}");
        return ExitCode::from(2);
    }
    // A panic inside a photo operation is caught and the photo retried; log it as an
    // error with its context instead of a bare message on stderr.
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        tracing::error!(panic.location = %location, "panic: {}", info.payload().downcast_ref::<&str>().copied().or_else(|| info.payload().downcast_ref::<String>().map(String::as_str)).unwrap_or("(no message)"));
    }));
    match start(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            tracing::error!(error.cause_chain = ?error, "{error:#}");
            eprintln!("darkroom: {error:#}");
            ExitCode::from(1)
        }
    }
}

fn start(cli: Cli) -> anyhow::Result<bool> {
    let settings = cli.settings;
    // Test hook: this process plays the next release, for the mixed-fleet test.
    #[cfg(feature = "fault-injection")]
    if std::env::var("DARKROOM_TEST_SPEAK_NEXT_MESSAGE_VERSION").is_ok_and(|v| v == "1") {
        darkroom_core::messages::speak_next_version_for_tests();
    }
    settings.validate()?;
    let (roles, stages) = match cli.command.unwrap_or(Command::Serve) {
        // No runtime, queues or store: a recipe applied to local files.
        Command::Process { recipe, out, photos } => return process::run(&recipe, &out, &photos, settings.limits()),
        Command::Setup => return runtime()?.block_on(setup(&settings)),
        Command::AccessKey { name } => return new_access_key(&name),
        Command::Serve => (Roles { web: true, worker: true, status: true }, Vec::new()),
        Command::Web => (Roles { web: true, worker: false, status: false }, Vec::new()),
        Command::Worker { stages } => (Roles { web: false, worker: true, status: false }, stages),
        Command::Status => (Roles { web: false, worker: false, status: true }, Vec::new()),
    };
    let runtime = runtime()?;
    let result = runtime.block_on(async move {
        let metrics = telemetry::init_metrics();
        run::run(settings, roles, stages, metrics).await?;
        Ok(true)
    });
    // Everything has drained by now. A render abandoned past its time budget may still be
    // running on a blocking thread; dropping the runtime would wait for it for ever, and
    // SIGTERM must end the process within the drain deadline.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    result
}

/// Prints a new access key and the keys-file line that lets it in.
fn new_access_key(name: &str) -> anyhow::Result<bool> {
    if name.is_empty() || name.contains(['.', ' ', '\t', '#']) {
        anyhow::bail!("the key's name must be one word without '.' or '#', e.g. shop-sync");
    }
    let key = format!("drk_{}", hex::encode(rand::random::<[u8; 32]>()));
    println!("access key for {name} (give it to them; it is not stored, and not shown again):\n\n    {key}\n");
    println!("line for the --access-keys file:\n\n    {name} {}", hex::encode(darkroom_web::key_hash(&key)));
    Ok(true)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

async fn setup(settings: &config::Settings) -> anyhow::Result<bool> {
    let backends = backends::open(settings).await?;
    let queues = backends::setup(settings, &backends).await?;
    println!("darkroom setup done: {} queues and their dead-letter queues ready ({})", queues.len(), queues.join(", "));
    Ok(true)
}
