//! `paperboy run`: the service, handed to the daemon: scheduled digests, catch-up, reload on
//! SIGHUP, graceful stop on SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::config::Config;
use crate::daemon::Daemon;

pub async fn run_command(
    config_path: Option<PathBuf>,
    cfg: &Arc<Config>,
) -> anyhow::Result<ExitCode> {
    cfg.log_warnings();
    let daemon = Daemon::new(config_path, cfg.clone()).await?;
    daemon.run().await?;
    Ok(ExitCode::SUCCESS)
}
