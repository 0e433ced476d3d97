//! Rendering's errors: a template that does not load (naming its file and position), and an
//! email that does not render (naming the template and the subscriber).

use crate::domain::Subscriber;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("template {name} ({origin}): {message}")]
    Template {
        name: &'static str,
        origin: String,
        message: String,
    },
    #[error("rendering {name} for {subscriber}: {message}")]
    Render {
        name: &'static str,
        subscriber: String,
        message: String,
    },
}

/// An error rendering template `name` for `subscriber`.
pub(super) fn fail<E: std::fmt::Display>(
    subscriber: &Subscriber,
    name: &'static str,
) -> impl FnOnce(E) -> RenderError {
    let who = subscriber.email.to_string();
    move |e| RenderError::Render {
        name,
        subscriber: who,
        message: e.to_string(),
    }
}
