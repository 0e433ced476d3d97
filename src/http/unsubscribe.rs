//! `/unsubscribe`: the signed link of the email's footer (a GET shows a button) and the POSTs
//! that opt out (RFC 8058's one-click from mail clients, and that button).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use tracing::info;

use super::HttpState;
use super::pages::{UNSUBSCRIBE_FORM, html, invalid_link, shown};
use crate::domain::SubscriberKey;
use crate::mail::Tokens;

#[derive(serde::Deserialize)]
pub(super) struct TokenQuery {
    #[serde(default)]
    t: String,
}

/// The subscriber a token names, when it is signed with the configured secret.
fn verified(s: &HttpState, token: &str) -> Option<SubscriberKey> {
    let secret = s.config.borrow().unsubscribe.secret.clone();
    secret.and_then(|sec| Tokens::new(sec).verify(token))
}

/// The link in the email's footer: a page with a button. A GET changes nothing, because link
/// scanners (Safe Links and the like) fetch every URL in an email; the button POSTs.
pub(super) async fn unsubscribe_link(
    State(s): State<HttpState>,
    Query(q): Query<TokenQuery>,
) -> Response {
    let Some(key) = verified(&s, &q.t) else {
        return invalid_link();
    };
    let cfg = s.config.borrow().clone();
    html(
        StatusCode::OK,
        "Unsubscribe from paperboy?",
        &format!(
            "<p>{} will receive no more digests.</p>{UNSUBSCRIBE_FORM}",
            shown(&cfg, &key)
        ),
    )
}

/// RFC 8058 one-click (a POST of `List-Unsubscribe=One-Click` to the List-Unsubscribe URL),
/// and the confirmation page's button.
pub(super) async fn unsubscribe_one_click(
    State(s): State<HttpState>,
    Query(q): Query<TokenQuery>,
) -> Response {
    let Some(key) = verified(&s, &q.t) else {
        return invalid_link();
    };
    let cfg = s.config.borrow().clone();
    match s.store.opt_out(&key, "one-click").await {
        Ok(first) => {
            info!(via = "one-click", first, "unsubscribed");
            html(
                StatusCode::OK,
                "You are unsubscribed",
                &format!(
                    "<p>{} will receive no more paperboy digests.</p>",
                    shown(&cfg, &key)
                ),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "recording an opt-out failed");
            html(
                StatusCode::SERVICE_UNAVAILABLE,
                "Please try again later",
                "<p>The request could not be recorded.</p>",
            )
        }
    }
}
