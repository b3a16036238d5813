//! The notifier process.

use enconvert_config::{Settings, shutdown_token, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    telemetry::init(settings.log_json);
    let cancel = shutdown_token();
    let running = enconvert_notifier::start(&settings, cancel).await?;
    running.done.await?;
    Ok(())
}
