//! The size guard: an email's HTML kept under Gmail's clipping limit, by shorter texts first,
//! then by leaving out the lowest-ranked papers (the email says how many).

use super::rendered::Rendered;
use super::view::Email;

/// The most HTML an email may hold: Gmail clips messages past 102 KB, and the part grows a
/// little in quoted-printable on the wire, so the budget keeps a margin.
pub const MAX_HTML_BYTES: usize = 90 * 1024;

/// The texts' lengths tried, in turn, when the email is too big with `text_max_chars`.
const SHORTER_TEXTS: [usize; 2] = [300, 150];

/// `email` rendered by `render` (with the length its texts are cut to: 0, whole) within
/// [`MAX_HTML_BYTES`]: with texts cut to `max_chars`, then shorter, then with fewer papers
/// (left out of `email`), down to one paper.
pub(super) fn fit<E>(
    email: &mut Email<'_>,
    max_chars: usize,
    mut render: impl FnMut(&Email<'_>, usize) -> Result<Rendered, E>,
) -> Result<Rendered, E> {
    let mut chars = max_chars;
    let mut rendered = render(email, chars)?;
    if rendered.html.len() <= MAX_HTML_BYTES {
        return Ok(rendered);
    }
    // Too big for Gmail (it clips at 102 KB): shorter texts first, then fewer papers.
    for limit in SHORTER_TEXTS {
        chars = if max_chars == 0 {
            limit
        } else {
            limit.min(max_chars)
        };
        rendered = render(email, chars)?;
        if rendered.html.len() <= MAX_HTML_BYTES {
            return Ok(rendered);
        }
    }
    while rendered.html.len() > MAX_HTML_BYTES && email.paper_count > 1 {
        // Drop a share of the lowest-ranked papers proportional to the excess.
        let excess = rendered.html.len() - MAX_HTML_BYTES;
        let per_paper = rendered.html.len() / email.paper_count.max(1);
        let drop = (excess / per_paper.max(1) + 1).min(email.paper_count - 1);
        for _ in 0..drop {
            drop_lowest(email);
        }
        rendered = render(email, chars)?;
    }
    Ok(rendered)
}

/// Leaves out the lowest-ranked paper (fewest upvotes; the last such one shown).
fn drop_lowest(email: &mut Email<'_>) {
    let mut lowest: Option<(usize, usize, i64)> = None;
    for (gi, g) in email.groups.iter().enumerate() {
        for (pi, p) in g.papers.iter().enumerate() {
            if lowest.is_none_or(|(_, _, u)| p.upvotes <= u) {
                lowest = Some((gi, pi, p.upvotes));
            }
        }
    }
    if let Some((gi, pi, _)) = lowest {
        email.leave_out(gi, pi);
    }
}
