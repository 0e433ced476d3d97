//! Rendering a Digest into subject, HTML and plain text with handlebars: built-in templates,
//! overridable from a directory; strict mode; everything from the feed escaped in HTML.
//! Each paper's card is rendered once per Renderer and topic, and reused (see [`cards`]).

mod cards;
mod newlines;
mod qp;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use handlebars::template::Template;
use handlebars::{Handlebars, handlebars_helper};
use serde::Serialize;

use cards::{Card, CardCache, CardLoop};
use newlines::normalize_with_cards;

use crate::config::{DigestConfig, TextChoice};
use crate::digest::Digest;
use crate::domain::{ArxivId, Paper, Subscriber};
use crate::topics::{Field, Scorer, ScoringTerm, Topic};

pub const HTML_TEMPLATE: &str = "digest.html.hbs";
pub const TEXT_TEMPLATE: &str = "digest.txt.hbs";
pub const SUBJECT_TEMPLATE: &str = "subject.hbs";
/// The names under which the card blocks of the HTML and text templates are registered.
const HTML_CARD: &str = "digest.html.hbs, card";
const TEXT_CARD: &str = "digest.txt.hbs, card";

const BUILTIN: [(&str, &str); 3] = [
    (HTML_TEMPLATE, include_str!("../templates/digest.html.hbs")),
    (TEXT_TEMPLATE, include_str!("../templates/digest.txt.hbs")),
    (SUBJECT_TEMPLATE, include_str!("../templates/subject.hbs")),
];

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

/// A part with its cards copied in, and where each went.
type Spliced = (String, Vec<(usize, Arc<Card>)>);

/// Cards of an email whose markers a Renderer makes once (an email shows at most
/// `max_papers` a topic, 10 by default); those of further cards are made per email.
const CARD_MARKERS: usize = 64;

/// After the Renderer's marker: a group's cards (then the group's number), not one card.
const GROUP_MARK: &str = "g";

/// One rendered email.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub subject: String,
    pub html: String,
    pub text: String,
    /// The cards copied into `html`, by where they start.
    html_cards: Vec<(usize, Arc<Card>)>,
    /// The cards whose normalised lines were copied into `text`, by where those start.
    text_cards: Vec<(usize, Arc<Card>)>,
}

impl Rendered {
    /// The HTML in quoted-printable (CRLF line breaks), each card's lines encoded once per
    /// card: the bytes lettre would make of `html` with that transfer encoding.
    pub fn html_quoted_printable(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(qp::encoded_size_hint(&self.html));
        self.html_quoted_printable_into(&mut out);
        out
    }

    /// Appends [`Rendered::html_quoted_printable`] to `out`.
    pub fn html_quoted_printable_into(&self, out: &mut Vec<u8>) {
        qp::encode_with_cards_into(
            &self.html,
            self.html_cards.iter().filter_map(|(at, card)| {
                Some(qp::Placed {
                    at: *at,
                    text: card.html.as_deref()?,
                    encoded: &card.html_qp,
                })
            }),
            out,
        )
    }

    /// The text in quoted-printable (CRLF line breaks), each card's lines encoded once per
    /// card.
    pub fn text_quoted_printable(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(qp::encoded_size_hint(&self.text));
        self.text_quoted_printable_into(&mut out);
        out
    }

    /// Appends [`Rendered::text_quoted_printable`] to `out`.
    pub fn text_quoted_printable_into(&self, out: &mut Vec<u8>) {
        qp::encode_with_cards_into(
            &self.text,
            self.text_cards.iter().filter_map(|(at, card)| {
                Some(qp::Placed {
                    at: *at,
                    text: &card.text_lines()?.normalized,
                    encoded: &card.text_qp,
                })
            }),
            out,
        )
    }

    /// About the size of both parts in quoted-printable.
    pub fn quoted_printable_size_hint(&self) -> usize {
        qp::encoded_size_hint(&self.html) + qp::encoded_size_hint(&self.text)
    }
}

/// The templates, compiled once; HTML escapes, text and subject do not.
///
/// A paper's card (`{{#> card}}…{{/card}}` in the HTML and text templates) is the same in
/// every email that shows the paper under the same topic: the Renderer renders it once and
/// keeps it, and each email is its frame (greeting, headings, footer) rendered around the
/// cards. One Renderer serves one run or delivery pass, shared by its delivery tasks; the
/// cards it keeps are bounded. The `cards` module tells what a card may depend on and how
/// templates without a card block (an operator's own) still render whole.
pub struct Renderer {
    html: Handlebars<'static>,
    text: Handlebars<'static>,
    html_frame: Frame,
    text_frame: Frame,
    /// The text around the card in the HTML and text templates' loops over the papers that
    /// hold only the card: those loops write the group's cards joined beforehand.
    html_loop: Option<CardLoop>,
    text_loop: Option<CardLoop>,
    /// Whether the subject template may read papers' fields.
    subject_reads_papers: bool,
    opts: DigestConfig,
    /// Each topic's words, to highlight in the papers it chose.
    terms: HashMap<String, Vec<ScoringTerm>>,
    cards: Mutex<CardCache>,
    /// What the frames get in a card's place, followed by the card's number and U+0001:
    /// random, so that nothing else a template writes is taken for a card.
    marker: String,
    marker_finder: memchr::memmem::Finder<'static>,
    /// The markers of an email's first cards, made once.
    card_markers: Vec<String>,
}

/// How the HTML or text template shows papers.
#[derive(Debug, Clone, Copy)]
struct Frame {
    /// It has a card block.
    cards: bool,
    /// It may read papers' fields outside the card block: they are given to it.
    reads_papers: bool,
}

handlebars_helper!(wrap: |s: str, {indent: str = "", width: u64 = 72}| {
    let opts = textwrap::Options::new(width as usize)
        .initial_indent(indent)
        .subsequent_indent(indent)
        .break_words(false);
    textwrap::fill(s, opts)
});

handlebars_helper!(plural: |n: i64, word: str| {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
});

impl Renderer {
    /// Compiles the built-in templates, replaced by any of the same name in
    /// `opts.templates_dir`. Errors name the file and position.
    pub fn new(opts: &DigestConfig, topics: &HashMap<String, Topic>) -> Result<Self, RenderError> {
        let mut html = Handlebars::new();
        let mut text = Handlebars::new();
        for h in [&mut html, &mut text] {
            h.set_strict_mode(true);
            h.register_helper("wrap", Box::new(wrap));
            h.register_helper("plural", Box::new(plural));
        }
        text.register_escape_fn(handlebars::no_escape);
        let mut html_frame = Frame {
            cards: false,
            reads_papers: true,
        };
        let mut text_frame = html_frame;
        let (mut html_loop, mut text_loop) = (None, None);
        let mut subject_reads_papers = true;
        for (name, builtin) in BUILTIN {
            let (source, origin) = match &opts.templates_dir {
                Some(dir) => load_override(dir, name)?
                    .unwrap_or_else(|| (builtin.to_string(), "built-in".to_string())),
                None => (builtin.to_string(), "built-in".to_string()),
            };
            let source = if name == HTML_TEMPLATE {
                inline_css(&source).map_err(|message| RenderError::Template {
                    name,
                    origin: origin.clone(),
                    message,
                })?
            } else {
                source
            };
            let registry = if name == HTML_TEMPLATE {
                &mut html
            } else {
                &mut text
            };
            let fail = |message: String| RenderError::Template {
                name,
                origin: origin.clone(),
                message,
            };
            let mut template = Template::compile_with_name(&source, name.to_string())
                .map_err(|e| fail(e.to_string()))?;
            let (frame, card_loop, card_name) = match name {
                HTML_TEMPLATE => (&mut html_frame, &mut html_loop, HTML_CARD),
                TEXT_TEMPLATE => (&mut text_frame, &mut text_loop, TEXT_CARD),
                _ => {
                    subject_reads_papers = cards::reads_papers(&template);
                    registry.register_template(name, template);
                    continue;
                }
            };
            let split = cards::split(&mut template, card_name).map_err(fail)?;
            frame.reads_papers = split.reads_papers;
            *card_loop = split.card_loop;
            if let Some(card) = split.card {
                frame.cards = true;
                registry.register_template(card_name, card);
            }
            registry.register_template(name, template);
        }
        let marker = format!("\u{1}card-{}:", uuid::Uuid::new_v4().simple());
        Ok(Self {
            html,
            text,
            html_frame,
            text_frame,
            html_loop,
            text_loop,
            subject_reads_papers,
            opts: opts.clone(),
            terms: topics
                .iter()
                .map(|(name, t)| (name.clone(), Scorer::terms_of(t)))
                .collect(),
            cards: Mutex::new(CardCache::default()),
            marker_finder: memchr::memmem::Finder::new(marker.as_bytes()).into_owned(),
            card_markers: (0..CARD_MARKERS).map(|n| card_marker(&marker, n)).collect(),
            marker,
        })
    }

    /// Renders the email of `subscriber` for `date` holding `digest`'s papers (looked up in
    /// `papers`; a paper missing there is left out).
    pub fn render(
        &self,
        subscriber: &Subscriber,
        date: NaiveDate,
        digest: &Digest,
        papers: &HashMap<ArxivId, Arc<Paper>>,
        unsubscribe_url: &str,
    ) -> Result<Rendered, RenderError> {
        let mut email = Email::new(subscriber, date, digest, papers, unsubscribe_url);
        let mut chars = self.opts.text_max_chars;
        let mut rendered = self.render_email(subscriber, &email, chars)?;
        if rendered.html.len() <= MAX_HTML_BYTES {
            return Ok(rendered);
        }
        // Too big for Gmail (it clips at 102 KB): shorter texts first, then fewer papers.
        for limit in [300, 150] {
            let max = self.opts.text_max_chars;
            chars = if max == 0 { limit } else { limit.min(max) };
            rendered = self.render_email(subscriber, &email, chars)?;
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
                email.drop_lowest();
            }
            rendered = self.render_email(subscriber, &email, chars)?;
        }
        Ok(rendered)
    }

    /// Renders `email` with its papers' texts cut to `chars` (0: whole).
    fn render_email(
        &self,
        subscriber: &Subscriber,
        email: &Email<'_>,
        chars: usize,
    ) -> Result<Rendered, RenderError> {
        let cards = if self.html_frame.cards || self.text_frame.cards {
            self.cards(subscriber, email, chars)?
        } else {
            Vec::new()
        };
        let fields: Vec<Vec<PaperView>> = if self.html_frame.reads_papers
            || self.text_frame.reads_papers
            || self.subject_reads_papers
        {
            email
                .groups
                .iter()
                .map(|g| {
                    g.papers
                        .iter()
                        .map(|p| self.paper_view(p, g.topic, chars))
                        .collect()
                })
                .collect()
        } else {
            Vec::new()
        };
        // The templates get a marker in each card's place (and, for a loop over the papers
        // that holds only the card, one in the group's place), and the cards are copied in
        // after: cheaper than passing them through the templates' JSON, and it tells where
        // each is. The markers are the same for both frames, which read one view, turned into
        // JSON once.
        let mut starts = Vec::with_capacity(cards.len());
        let mut count = 0;
        for g in &cards {
            starts.push(count);
            count += g.len();
        }
        let more: Vec<String> = (self.card_markers.len()..count)
            .map(|n| card_marker(&self.marker, n))
            .collect();
        let marker = |gi: usize, pi: usize| {
            (pi < cards.get(gi)?.len()).then_some(())?;
            let n = starts[gi] + pi;
            (self.card_markers.get(n))
                .or_else(|| more.get(n - self.card_markers.len()))
                .map(String::as_str)
        };
        let group_marker = |gi: usize| format!("{}{GROUP_MARK}{gi}\u{1}", self.marker);
        // A template sees what it saw when each had a view of its own: its fields where any
        // template reads them (one that does not read them cannot tell), group markers only
        // where its own loop is joined. Both frames alike (the built-in ones): one view.
        let frame_fields =
            (self.html_frame.reads_papers || self.text_frame.reads_papers).then_some(&fields[..]);
        let frame_view = |joined: bool| {
            let view = email.view(frame_fields, marker, |gi| joined.then(|| group_marker(gi)));
            handlebars::Context::wraps(&view)
        };
        let html_view =
            frame_view(self.html_loop.is_some()).map_err(fail(subscriber, HTML_TEMPLATE))?;
        let text_view = if self.html_loop.is_some() == self.text_loop.is_some() {
            None
        } else {
            Some(frame_view(self.text_loop.is_some()).map_err(fail(subscriber, TEXT_TEMPLATE))?)
        };
        let html = self
            .html
            .render_with_context(HTML_TEMPLATE, &html_view)
            .map_err(fail(subscriber, HTML_TEMPLATE))?;
        let (html, html_cards) = self
            .splice(&html, &cards, self.html_loop.as_ref(), |c| {
                c.html.as_deref()
            })
            .map_err(fail(subscriber, HTML_TEMPLATE))?;
        let text = self
            .text
            .render_with_context(TEXT_TEMPLATE, text_view.as_ref().unwrap_or(&html_view))
            .map_err(fail(subscriber, TEXT_TEMPLATE))?;
        let (text, text_cards) = self
            .splice(&text, &cards, self.text_loop.as_ref(), |c| {
                c.text.as_deref()
            })
            .map_err(fail(subscriber, TEXT_TEMPLATE))?;
        let (text, text_cards) = normalize_with_cards(&text, &text_cards);
        // A subject that does not read the papers cannot tell the frames' view (cards' markers,
        // maybe fields) from one without them: it reuses it. One that reads them gets its own.
        let subject = if self.subject_reads_papers {
            let subject_view = email.view(Some(&fields[..]), |_, _| None, |_| None);
            self.text.render(SUBJECT_TEMPLATE, &subject_view)
        } else {
            self.text.render_with_context(SUBJECT_TEMPLATE, &html_view)
        }
        .map_err(fail(subscriber, SUBJECT_TEMPLATE))?;
        Ok(Rendered {
            subject: one_line(&subject, 200),
            html,
            text,
            html_cards,
            text_cards,
        })
    }

    /// `out` with each card marker replaced by its card's `part` (`cards`: by group and
    /// paper, numbered in that order), each group marker by the group's cards each between
    /// the text of `card_loop`; and where each card went.
    fn splice(
        &self,
        out: &str,
        cards: &[Vec<Arc<Card>>],
        card_loop: Option<&CardLoop>,
        part: impl Fn(&Card) -> Option<&str>,
    ) -> Result<Spliced, String> {
        let mangled = || "a card's place holder came out mangled".to_string();
        if cards.is_empty() {
            return Ok((out.to_string(), Vec::new()));
        }
        let flat: Vec<&Arc<Card>> = cards.iter().flatten().collect();
        let mut joined = String::with_capacity(out.len() + flat.len() * 1024);
        let mut placed = Vec::with_capacity(flat.len());
        let mut rest = out;
        let mut put = |joined: &mut String, card: &Arc<Card>| {
            placed.push((joined.len(), Arc::clone(card)));
            joined.push_str(part(card).unwrap_or_default());
        };
        while let Some(at) = self.marker_finder.find(rest.as_bytes()) {
            joined.push_str(&rest[..at]);
            let after = &rest[at + self.marker.len()..];
            // A marker is random per Renderer and written only by the card slots.
            let (n, tail) = after.split_once('\u{1}').ok_or_else(mangled)?;
            match n.strip_prefix(GROUP_MARK) {
                Some(g) => {
                    let l = card_loop.ok_or_else(mangled)?;
                    let group = g.parse::<usize>().ok().and_then(|g| cards.get(g));
                    for card in group.ok_or_else(mangled)? {
                        joined.push_str(&l.before);
                        put(&mut joined, card);
                        joined.push_str(&l.after);
                    }
                }
                None => {
                    let card = n.parse::<usize>().ok().and_then(|n| flat.get(n));
                    put(&mut joined, card.ok_or_else(mangled)?);
                }
            }
            rest = tail;
        }
        joined.push_str(rest);
        Ok((joined, placed))
    }

    /// The cards of `email`'s papers, by group and paper: those rendered before for the same
    /// topic, paper and length, and the others rendered now and kept.
    fn cards(
        &self,
        subscriber: &Subscriber,
        email: &Email<'_>,
        chars: usize,
    ) -> Result<Vec<Vec<Arc<Card>>>, RenderError> {
        let kept: Vec<Vec<Option<Arc<Card>>>> = {
            let cache = self.cards.lock().unwrap_or_else(|e| e.into_inner());
            email
                .groups
                .iter()
                .map(|g| {
                    g.papers
                        .iter()
                        .map(|p| cache.get(g.topic, p, chars))
                        .collect()
                })
                .collect()
        };
        let mut fresh = Vec::new();
        let mut out = Vec::with_capacity(kept.len());
        for (g, kept) in email.groups.iter().zip(kept) {
            let mut cards = Vec::with_capacity(kept.len());
            for (p, card) in g.papers.iter().zip(kept) {
                let card = match card {
                    Some(card) => card,
                    None => {
                        let card = Arc::new(self.render_card(subscriber, p, g.topic, chars)?);
                        fresh.push((g.topic, card.clone()));
                        card
                    }
                };
                cards.push(card);
            }
            out.push(cards);
        }
        if !fresh.is_empty() {
            let mut cache = self.cards.lock().unwrap_or_else(|e| e.into_inner());
            for (topic, card) in fresh {
                cache.insert(topic, card);
            }
        }
        Ok(out)
    }

    fn render_card(
        &self,
        subscriber: &Subscriber,
        paper: &Arc<Paper>,
        topic: &str,
        chars: usize,
    ) -> Result<Card, RenderError> {
        let view = self.paper_view(paper, topic, chars);
        let html = if self.html_frame.cards {
            let html = self.html.render(HTML_CARD, &view);
            Some(html.map_err(fail(subscriber, HTML_TEMPLATE))?)
        } else {
            None
        };
        let text = if self.text_frame.cards {
            let text = self.text.render(TEXT_CARD, &view);
            Some(text.map_err(fail(subscriber, TEXT_TEMPLATE))?)
        } else {
            None
        };
        Ok(Card::new(paper, chars, html, text))
    }

    /// How many cards this Renderer keeps.
    #[cfg(test)]
    fn cards_kept(&self) -> usize {
        self.cards.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// `p` as templates see it under `topic`, its text cut to `chars` (0: whole).
    fn paper_view(&self, p: &Paper, topic: &str, chars: usize) -> PaperView {
        let none = Vec::new();
        let terms = self.terms.get(topic).unwrap_or(&none);
        let text = match self.opts.text {
            TextChoice::AiSummary => p.ai_summary.as_deref().unwrap_or(&p.abstract_text),
            TextChoice::Abstract => &p.abstract_text,
        };
        let text = trim_words(text, chars);
        PaperView {
            id: p.id.to_string(),
            title: p.title.clone(),
            url: p.hf_url(),
            authors: shorten_authors(&p.authors, self.opts.max_authors),
            organization: p.organization.clone(),
            upvotes: p.upvotes,
            comments: p.num_comments,
            title_parts: highlight(&p.title, terms, Field::Title),
            text_parts: highlight(&text, terms, Field::Abstract),
            text,
            thumbnail: p.thumbnail.clone().filter(|_| self.opts.thumbnails),
            arxiv_abs: p.arxiv_abs_url(),
            arxiv_pdf: p.arxiv_pdf_url(),
            github_repo: p.github_repo.clone(),
            github_name: p.github_repo.as_deref().map(repo_name),
            github_stars: p.github_stars,
            project_page: p.project_page.clone(),
        }
    }
}

/// What the frames get in the place of an email's `n`th card (from 0), `marker` being the
/// Renderer's.
fn card_marker(marker: &str, n: usize) -> String {
    format!("{marker}{n}\u{1}")
}

/// An error rendering template `name` for `subscriber`.
fn fail<E: std::fmt::Display>(
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

/// Moves the template's <style> rules into style attributes, once, when templates load
/// (remote stylesheets are never fetched). The <style> stays for the rules that cannot be
/// inlined (dark mode's media query).
fn inline_css(source: &str) -> Result<String, String> {
    let inlined = css_inline::CSSInliner::options()
        .keep_style_tags(true)
        .load_remote_stylesheets(false)
        .build()
        .inline(source)
        .map_err(|e| format!("inlining its CSS: {e}"))?;
    // The inliner parses HTML: a block helper between table rows, or one inside a tag, would
    // be moved or mangled. Refuse the template rather than render it wrong.
    let tags = |s: &str| {
        let mut t: Vec<String> = s
            .match_indices("{{")
            .map(|(i, _)| s[i..].split("}}").next().unwrap_or("").to_string())
            .collect();
        t.sort();
        t
    };
    if tags(source) != tags(&inlined) {
        return Err(
            "its handlebars tags do not survive CSS inlining in place: put block \
                    helpers that sit between table rows inside HTML comments \
                    (<!--{{#each papers}}-->), and none inside a tag"
                .into(),
        );
    }
    let order = |s: &str| -> Vec<usize> {
        s.match_indices("{{")
            .map(|(i, _)| s[..i].matches("<tr").count())
            .collect()
    };
    if order(source) != order(&inlined) {
        return Err(
            "its handlebars block helpers move when the CSS is inlined: put those \
                    between table rows inside HTML comments (<!--{{#each papers}}-->)"
                .into(),
        );
    }
    Ok(inlined)
}

fn load_override(dir: &Path, name: &'static str) -> Result<Option<(String, String)>, RenderError> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(Some((s, path.display().to_string()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RenderError::Template {
            name,
            origin: path.display().to_string(),
            message: e.to_string(),
        }),
    }
}

/// The inbox preview: the top three titles, or a line saying there is nothing new.
fn preheader_of(groups: &[Group<'_>]) -> String {
    let titles: Vec<&str> = groups
        .iter()
        .flat_map(|g| &g.papers)
        .take(3)
        .map(|p| p.title.as_str())
        .collect();
    if titles.is_empty() {
        "No new papers on your topics today.".to_string()
    } else {
        titles.join(" · ")
    }
}

/// The most HTML an email may hold: Gmail clips messages past 102 KB, and the part grows a
/// little in quoted-printable on the wire, so the budget keeps a margin.
pub const MAX_HTML_BYTES: usize = 90 * 1024;

/// One email's content, before it is shown to the templates.
struct Email<'a> {
    /// The hidden first line that inboxes show beside the subject.
    preheader: String,
    /// Papers left out by the size guard.
    more_count: usize,
    subscriber_name: Option<&'a str>,
    date: String,
    date_long: String,
    date_short: String,
    day_url: String,
    paper_count: usize,
    topic_names: String,
    groups: Vec<Group<'a>>,
    unsubscribe_url: &'a str,
}

struct Group<'a> {
    topic: &'a str,
    papers: Vec<&'a Arc<Paper>>,
}

impl<'a> Email<'a> {
    fn new(
        subscriber: &'a Subscriber,
        date: NaiveDate,
        digest: &'a Digest,
        papers: &'a HashMap<ArxivId, Arc<Paper>>,
        unsubscribe_url: &'a str,
    ) -> Self {
        let groups: Vec<Group> = digest
            .groups
            .iter()
            .map(|g| Group {
                topic: g.topic.as_str(),
                papers: g.papers.iter().filter_map(|id| papers.get(id)).collect(),
            })
            .filter(|g| !g.papers.is_empty())
            .collect();
        Email {
            preheader: preheader_of(&groups),
            more_count: 0,
            subscriber_name: subscriber.name.as_deref(),
            date: date.to_string(),
            date_long: date.format("%A, %-d %B %Y").to_string(),
            date_short: date.format("%b %-d").to_string(),
            day_url: format!("https://huggingface.co/papers/date/{date}"),
            paper_count: groups.iter().map(|g| g.papers.len()).sum(),
            topic_names: topic_names(&groups),
            groups,
            unsubscribe_url,
        }
    }

    /// Leaves out the lowest-ranked paper (fewest upvotes; the last such one shown).
    fn drop_lowest(&mut self) {
        let mut lowest: Option<(usize, usize, i64)> = None;
        for (gi, g) in self.groups.iter().enumerate() {
            for (pi, p) in g.papers.iter().enumerate() {
                if lowest.is_none_or(|(_, _, u)| p.upvotes <= u) {
                    lowest = Some((gi, pi, p.upvotes));
                }
            }
        }
        if let Some((gi, pi, _)) = lowest {
            self.groups[gi].papers.remove(pi);
            self.groups.retain(|g| !g.papers.is_empty());
            self.paper_count -= 1;
            self.more_count += 1;
            self.topic_names = topic_names(&self.groups);
            self.preheader = preheader_of(&self.groups);
        }
    }

    /// What the templates see: each paper as its fields (`fields`, by group and paper) and
    /// its card's marker (`card` of group and paper); each group's `group_marker`, the place
    /// of its cards joined, for a loop over the papers that holds only the card.
    fn view<'v>(
        &'v self,
        fields: Option<&'v [Vec<PaperView>]>,
        card: impl Fn(usize, usize) -> Option<&'v str>,
        group_marker: impl Fn(usize) -> Option<String>,
    ) -> DigestView<'v> {
        DigestView {
            preheader: &self.preheader,
            more_count: self.more_count,
            subscriber_name: self.subscriber_name,
            date: &self.date,
            date_long: &self.date_long,
            date_short: &self.date_short,
            day_url: &self.day_url,
            paper_count: self.paper_count,
            topic_names: &self.topic_names,
            groups: self
                .groups
                .iter()
                .enumerate()
                .map(|(gi, g)| GroupView {
                    topic: g.topic,
                    cards: group_marker(gi),
                    papers: (0..g.papers.len())
                        .map(|pi| PaperEntry {
                            fields: fields.map(|f| &f[gi][pi]),
                            card: card(gi, pi),
                        })
                        .collect(),
                })
                .collect(),
            unsubscribe_url: self.unsubscribe_url,
        }
    }
}

fn topic_names(groups: &[Group<'_>]) -> String {
    groups
        .iter()
        .map(|g| g.topic)
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Serialize)]
struct DigestView<'a> {
    preheader: &'a str,
    more_count: usize,
    subscriber_name: Option<&'a str>,
    date: &'a str,
    date_long: &'a str,
    date_short: &'a str,
    day_url: &'a str,
    paper_count: usize,
    topic_names: &'a str,
    groups: Vec<GroupView<'a>>,
    unsubscribe_url: &'a str,
}

#[derive(Serialize)]
struct GroupView<'a> {
    topic: &'a str,
    /// The place of the group's cards joined, for a loop over the papers that holds only
    /// the card (see `Renderer::splice`).
    #[serde(rename = "__paperboy_cards", skip_serializing_if = "Option::is_none")]
    cards: Option<String>,
    papers: Vec<PaperEntry<'a>>,
}

/// A paper in a template's view: its fields for a template that reads them, its card
/// (rendered beforehand) for a template with a card block.
#[derive(Serialize)]
struct PaperEntry<'a> {
    #[serde(flatten)]
    fields: Option<&'a PaperView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    card: Option<&'a str>,
}

#[derive(Serialize)]
struct PaperView {
    /// The title in pieces, the topic's words marked ("why this paper").
    title_parts: Vec<Part>,
    /// The same for the text shown.
    text_parts: Vec<Part>,
    thumbnail: Option<String>,
    id: String,
    title: String,
    url: String,
    authors: String,
    organization: Option<String>,
    upvotes: i64,
    comments: i64,
    text: String,
    arxiv_abs: String,
    arxiv_pdf: String,
    github_repo: Option<String>,
    github_name: Option<String>,
    github_stars: Option<i64>,
    project_page: Option<String>,
}

/// A piece of text, marked when it is one of the topic's words.
#[derive(Serialize, Debug, Clone, PartialEq)]
struct Part {
    text: String,
    hit: bool,
}

/// Splits `text` into pieces, marking each occurrence of the terms that may match in `field`
/// (whole words, split as the matcher splits them: letters and digits). The pieces are
/// escaped by the template.
fn highlight(text: &str, terms: &[ScoringTerm], field: Field) -> Vec<Part> {
    // Words with their byte spans.
    let mut words: Vec<(usize, usize, String)> = Vec::new();
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                words.push((s, i, text[s..i].to_lowercase()));
                start = None;
            }
            _ => {}
        }
    }
    let mut marked = vec![false; words.len()];
    // The gap before word i joins it to word i - 1 inside one phrase match.
    let mut joined = vec![false; words.len()];
    for (f, phrase, prefix) in terms {
        if f.is_some_and(|f| f != field) || phrase.is_empty() || phrase.len() > words.len() {
            continue;
        }
        let n = phrase.len();
        for i in 0..=words.len() - n {
            let ok = (0..n).all(|k| {
                let w = &words[i + k].2;
                if k == n - 1 && *prefix {
                    w.starts_with(phrase[k].as_str())
                } else {
                    *w == phrase[k]
                }
            });
            if ok {
                marked[i..i + n].iter_mut().for_each(|m| *m = true);
                joined[i + 1..i + n].iter_mut().for_each(|j| *j = true);
            }
        }
    }
    let mut parts: Vec<Part> = Vec::new();
    let mut push = |t: &str, hit: bool| {
        if t.is_empty() {
            return;
        }
        match parts.last_mut() {
            Some(last) if last.hit == hit => last.text.push_str(t),
            _ => parts.push(Part {
                text: t.to_string(),
                hit,
            }),
        }
    };
    let mut at = 0;
    for (i, (s, e, _)) in words.iter().enumerate() {
        push(&text[at..*s], joined[i]);
        push(&text[*s..*e], marked[i]);
        at = *e;
    }
    push(&text[at..], false);
    parts
}

/// "A, B, C, D and 12 more" once there are more than `max` authors.
pub fn shorten_authors(authors: &[String], max: usize) -> String {
    match authors.len() {
        0 => String::new(),
        n if n <= max => match authors {
            [only] => only.clone(),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
            [] => String::new(),
        },
        n => format!("{} and {} more", authors[..max].join(", "), n - max),
    }
}

/// Cuts `s` to at most `max` characters at a word boundary, adding an ellipsis; 0 keeps all.
pub fn trim_words(s: &str, max: usize) -> String {
    if max == 0 || s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max).collect();
    let cut = match cut.rfind(char::is_whitespace) {
        Some(i) if i > max / 2 => &cut[..i],
        _ => &cut,
    };
    format!(
        "{}…",
        cut.trim_end_matches(|c: char| c.is_whitespace() || c == ',' || c == ';')
    )
}

/// "owner/repo" for a GitHub URL; the URL itself otherwise.
fn repo_name(url: &str) -> String {
    url.strip_prefix("https://github.com/")
        .map(|s| s.trim_end_matches('/').to_string())
        .unwrap_or_else(|| url.to_string())
}

/// One line of at most `max` characters: control characters (CR, LF, tabs) become spaces.
fn one_line(s: &str, max: usize) -> String {
    let words = s.split(|c: char| c.is_whitespace() || c.is_control());
    trim_words(&crate::domain::join_words(words), max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("A{i}")).collect()
    }

    #[test]
    fn authors_are_shortened() {
        assert_eq!(shorten_authors(&names(1), 3), "A1");
        assert_eq!(shorten_authors(&names(3), 3), "A1, A2 and A3");
        assert_eq!(shorten_authors(&names(15), 3), "A1, A2, A3 and 12 more");
    }

    #[test]
    fn text_is_trimmed_on_words() {
        assert_eq!(trim_words("one two three four", 9), "one two…");
        assert_eq!(trim_words("short", 9), "short");
        assert_eq!(trim_words("short", 0), "short");
    }

    #[test]
    fn topic_words_are_marked_whole_and_only_in_their_field() {
        let terms = vec![
            (
                None,
                vec!["video".to_string(), "diffusion".to_string()],
                false,
            ),
            (None, vec!["agent".to_string()], true),
            (Some(Field::Abstract), vec!["model".to_string()], false),
        ];
        let parts = highlight(
            "Video-Diffusion <b>for</b> Agentic world models",
            &terms,
            Field::Title,
        );
        let hits: Vec<&str> = parts
            .iter()
            .filter(|p| p.hit)
            .map(|p| p.text.as_str())
            .collect();
        assert_eq!(hits, ["Video-Diffusion", "Agentic"]);
        let all: String = parts.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(
            all, "Video-Diffusion <b>for</b> Agentic world models",
            "nothing lost"
        );
        // Two terms side by side stay two marks; a phrase is one.
        let parts = highlight("video, diffusion", &terms[1..], Field::Title);
        assert!(parts.iter().all(|p| !p.hit));
        let two = vec![
            (None, vec!["video".to_string()], false),
            (None, vec!["diffusion".to_string()], false),
        ];
        let parts = highlight("video, diffusion", &two, Field::Title);
        let hits: Vec<&str> = parts
            .iter()
            .filter(|p| p.hit)
            .map(|p| p.text.as_str())
            .collect();
        assert_eq!(hits, ["video", "diffusion"]);
        let parts = highlight("a model, not models", &terms, Field::Abstract);
        let hits: Vec<&str> = parts
            .iter()
            .filter(|p| p.hit)
            .map(|p| p.text.as_str())
            .collect();
        assert_eq!(hits, ["model"]);
    }

    #[test]
    fn the_built_in_templates_are_put_together_from_cards() {
        let cfg = crate::config::Config::load_str(
            "[smtp]\nfrom = \"P <p@paperboy.test>\"\n\
             [topics.agents]\nkeywords = [\"agent\"]\n\
             [topics.video]\nkeywords = [\"video\"]\n\
             [[subscribers]]\nemail = \"a@example.org\"\ntopics = [\"agents\"]\n\
             [[subscribers]]\nemail = \"b@example.org\"\ntopics = [\"agents\", \"video\"]\n",
            "test",
        )
        .unwrap();
        let r = Renderer::new(&cfg.digest, &cfg.topics).unwrap();
        for frame in [r.html_frame, r.text_frame] {
            assert!(frame.cards && !frame.reads_papers, "{frame:?}");
        }
        // Their loops over the papers hold only the card: each group's cards come joined.
        assert!(r.html_loop.is_some() && r.text_loop.is_some());
        assert!(!r.subject_reads_papers);
        let papers = crate::source::recorded_papers();
        let map = crate::domain::papers_by_id(&papers);
        let group = |topic: &str, from: usize| crate::digest::DigestGroup {
            topic: topic.to_string(),
            papers: papers[from..from + 3]
                .iter()
                .map(|p| p.id.clone())
                .collect(),
        };
        let date = NaiveDate::from_ymd_opt(2026, 4, 10).unwrap();
        let (a, b) = (&cfg.subscribers[0], &cfg.subscribers[1]);
        let for_a = Digest {
            groups: vec![group("agents", 0)],
        };
        r.render(a, date, &for_a, &map, "u").unwrap();
        assert_eq!(r.cards_kept(), 3);
        r.render(b, date, &for_a, &map, "u").unwrap();
        assert_eq!(r.cards_kept(), 3, "the same cards");
        let for_b = Digest {
            groups: vec![group("agents", 1), group("video", 0)],
        };
        r.render(b, date, &for_b, &map, "u").unwrap();
        assert_eq!(
            r.cards_kept(),
            3 + 1 + 3,
            "one more under agents, three under video"
        );
    }

    #[test]
    fn subjects_are_one_line() {
        assert_eq!(one_line("a\r\nBcc: x@y\tz", 200), "a Bcc: x@y z");
    }
}
