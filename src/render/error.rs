//! Rendering's errors: a template that does not load (naming its file and position), an
//! email that does not render (naming the template and the subscriber), and one too big.

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
    #[error(
        "the email for {subscriber} is too big even with no paper in it ({html} bytes of HTML, \
         {text} of text; at most {} and {} may be sent): its templates write too much",
        super::MAX_HTML_BYTES,
        super::MAX_TEXT_BYTES
    )]
    TooBig {
        subscriber: String,
        html: usize,
        text: usize,
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
