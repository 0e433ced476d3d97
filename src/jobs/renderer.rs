//! The renderer a command, the daemon or a run renders digests with, built from the config.

use std::sync::Arc;

use crate::config::Config;
use crate::render::{RenderError, Renderer};

/// The renderer of the config's digest options and topics: the built-in templates, or an
/// operator's of the same name in `digest.templates_dir`. The one place the command line, the
/// daemon (for each pass, and to check a reloaded config) and a run build theirs (tests that
/// render with other options call `Renderer::new` themselves).
pub fn renderer(cfg: &Config) -> Result<Arc<Renderer>, RenderError> {
    Renderer::new(&cfg.digest, &cfg.topics).map(Arc::new)
}
