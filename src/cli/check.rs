//! `paperboy check`: the configuration and the templates (valid once loaded); with `--smtp`,
//! also connect to the SMTP server and log in.

use std::process::ExitCode;

use anyhow::Context;

use crate::config::Config;
use crate::mail::SmtpSender;

pub async fn check_command(cfg: &Config, smtp: bool) -> anyhow::Result<ExitCode> {
    println!(
        "configuration {}: valid ({} topics, {} subscribers); templates: valid",
        cfg.origin,
        cfg.topics.len(),
        cfg.subscribers.len()
    );
    for w in &cfg.warnings {
        eprintln!("warning: {w}");
    }
    if smtp {
        let mut sender = SmtpSender::new(&cfg.smtp)?;
        sender
            .check()
            .await
            .with_context(|| format!("SMTP check of {}:{}", cfg.smtp.host, cfg.smtp.port))?;
        println!(
            "SMTP {}:{}: connected{}",
            cfg.smtp.host,
            cfg.smtp.port,
            if cfg.smtp.username.is_some() {
                ", login accepted"
            } else {
                " (no login configured)"
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}
