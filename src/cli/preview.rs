//! `paperboy preview`: render one subscriber's digest to an HTML file (or stdout) without
//! sending anything.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::NaiveDate;

use crate::config::Config;
use crate::render::Renderer;

use super::one_digest::render_one;
use super::shared::{date_for, find_subscriber, source_for};

pub async fn preview_command(
    cfg: &Config,
    renderer: &Renderer,
    subscriber: String,
    date: Option<NaiveDate>,
    out: Option<PathBuf>,
    source_file: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let date = date_for(cfg, date, source_file.as_deref())?;
    let sub = find_subscriber(cfg, &subscriber)?;
    let source = source_for(cfg, source_file)?;
    let (r, count, _) = render_one(cfg, renderer, &source, sub, date).await?;
    eprintln!("Subject: {}", r.subject);
    eprintln!(
        "{} papers; HTML part {} bytes, text part {} bytes",
        count,
        r.html.len(),
        r.text.len()
    );
    match out {
        Some(path) => {
            std::fs::write(&path, &r.html)
                .with_context(|| format!("writing {}", path.display()))?;
            let txt = path.with_extension("txt");
            std::fs::write(&txt, &r.text).with_context(|| format!("writing {}", txt.display()))?;
            eprintln!("wrote {} and {}", path.display(), txt.display());
        }
        None => print!("{}", r.html),
    }
    Ok(ExitCode::SUCCESS)
}
