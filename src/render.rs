//! Rendering a Digest into subject, HTML and plain text with handlebars: built-in templates,
//! overridable from a directory; strict mode; everything from the feed escaped in HTML.

use std::collections::HashMap;
use std::path::Path;

use chrono::NaiveDate;
use handlebars::{Handlebars, handlebars_helper};
use serde::Serialize;

use crate::config::{DigestConfig, TextChoice};
use crate::digest::Digest;
use crate::domain::{ArxivId, Paper, Subscriber};
use crate::topics::{Field, Scorer, ScoringTerm, Topic};

pub const HTML_TEMPLATE: &str = "digest.html.hbs";
pub const TEXT_TEMPLATE: &str = "digest.txt.hbs";
pub const SUBJECT_TEMPLATE: &str = "subject.hbs";

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

/// One rendered email.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// The templates, compiled once; HTML escapes, text and subject do not.
pub struct Renderer {
    html: Handlebars<'static>,
    text: Handlebars<'static>,
    opts: DigestConfig,
    /// Each topic's words, to highlight in the papers it chose.
    terms: HashMap<String, Vec<ScoringTerm>>,
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
            registry
                .register_template_string(name, source)
                .map_err(|e| RenderError::Template {
                    name,
                    origin,
                    message: e.to_string(),
                })?;
        }
        Ok(Self {
            html,
            text,
            opts: opts.clone(),
            terms: topics
                .iter()
                .map(|(name, t)| (name.clone(), Scorer::terms_of(t)))
                .collect(),
        })
    }

    /// Renders the email of `subscriber` for `date` holding `digest`'s papers (looked up in
    /// `papers`; a paper missing there is left out).
    pub fn render(
        &self,
        subscriber: &Subscriber,
        date: NaiveDate,
        digest: &Digest,
        papers: &HashMap<ArxivId, Paper>,
        unsubscribe_url: &str,
    ) -> Result<Rendered, RenderError> {
        let mut view = self.view(subscriber, date, digest, papers);
        view.unsubscribe_url = unsubscribe_url.to_string();
        let mut rendered = self.render_view(subscriber, &view)?;
        if rendered.html.len() <= MAX_HTML_BYTES {
            return Ok(rendered);
        }
        // Too big for Gmail (it clips at 102 KB): shorter texts first, then fewer papers.
        for limit in [300, 150] {
            for g in &mut view.groups {
                let none = Vec::new();
                let terms = self.terms.get(&g.topic).unwrap_or(&none);
                for p in &mut g.papers {
                    let max = self.opts.text_max_chars;
                    p.text =
                        trim_words(&p.full_text, if max == 0 { limit } else { limit.min(max) });
                    p.text_parts = highlight(&p.text, terms, Field::Abstract);
                }
            }
            rendered = self.render_view(subscriber, &view)?;
            if rendered.html.len() <= MAX_HTML_BYTES {
                return Ok(rendered);
            }
        }
        while rendered.html.len() > MAX_HTML_BYTES && view.paper_count > 1 {
            // Drop a share of the lowest-ranked papers proportional to the excess.
            let excess = rendered.html.len() - MAX_HTML_BYTES;
            let per_paper = rendered.html.len() / view.paper_count.max(1);
            let drop = (excess / per_paper.max(1) + 1).min(view.paper_count - 1);
            for _ in 0..drop {
                view.drop_lowest();
            }
            rendered = self.render_view(subscriber, &view)?;
        }
        Ok(rendered)
    }

    fn render_view(
        &self,
        subscriber: &Subscriber,
        view: &DigestView<'_>,
    ) -> Result<Rendered, RenderError> {
        let fail = |name: &'static str| {
            let who = subscriber.email.to_string();
            move |e: handlebars::RenderError| RenderError::Render {
                name,
                subscriber: who,
                message: e.to_string(),
            }
        };
        let html = self
            .html
            .render(HTML_TEMPLATE, view)
            .map_err(fail(HTML_TEMPLATE))?;
        let text = self
            .text
            .render(TEXT_TEMPLATE, view)
            .map_err(fail(TEXT_TEMPLATE))?;
        let subject = self
            .text
            .render(SUBJECT_TEMPLATE, view)
            .map_err(fail(SUBJECT_TEMPLATE))?;
        Ok(Rendered {
            subject: one_line(&subject, 200),
            html,
            text: normalize_newlines(&text),
        })
    }

    fn view<'a>(
        &self,
        subscriber: &'a Subscriber,
        date: NaiveDate,
        digest: &Digest,
        papers: &HashMap<ArxivId, Paper>,
    ) -> DigestView<'a> {
        let groups: Vec<GroupView> = digest
            .groups
            .iter()
            .map(|g| GroupView {
                topic: g.topic.clone(),
                papers: g
                    .papers
                    .iter()
                    .filter_map(|id| papers.get(id))
                    .map(|p| self.paper_view(p, self.terms.get(&g.topic)))
                    .collect(),
            })
            .filter(|g| !g.papers.is_empty())
            .collect();
        let paper_count = groups.iter().map(|g| g.papers.len()).sum();
        let preheader = preheader_of(&groups);
        DigestView {
            preheader,
            more_count: 0,
            subscriber_name: subscriber.name.as_deref(),
            date: date.to_string(),
            date_long: date.format("%A, %-d %B %Y").to_string(),
            date_short: date.format("%b %-d").to_string(),
            day_url: format!("https://huggingface.co/papers/date/{date}"),
            paper_count,
            topic_names: groups
                .iter()
                .map(|g| g.topic.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            groups,
            unsubscribe_url: String::new(),
        }
    }

    fn paper_view(&self, p: &Paper, terms: Option<&Vec<ScoringTerm>>) -> PaperView {
        let none = Vec::new();
        let terms = terms.unwrap_or(&none);
        let text = match self.opts.text {
            TextChoice::AiSummary => p.ai_summary.as_deref().unwrap_or(&p.abstract_text),
            TextChoice::Abstract => &p.abstract_text,
        };
        PaperView {
            id: p.id.to_string(),
            title: p.title.clone(),
            url: p.hf_url(),
            authors: shorten_authors(&p.authors, self.opts.max_authors),
            organization: p.organization.clone(),
            upvotes: p.upvotes,
            comments: p.num_comments,
            title_parts: highlight(&p.title, terms, Field::Title),
            text_parts: highlight(
                &trim_words(text, self.opts.text_max_chars),
                terms,
                Field::Abstract,
            ),
            text: trim_words(text, self.opts.text_max_chars),
            full_text: text.to_string(),
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
fn preheader_of(groups: &[GroupView]) -> String {
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

#[derive(Serialize)]
struct DigestView<'a> {
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
    groups: Vec<GroupView>,
    unsubscribe_url: String,
}

impl DigestView<'_> {
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
            self.topic_names = self
                .groups
                .iter()
                .map(|g| g.topic.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            self.preheader = preheader_of(&self.groups);
        }
    }
}

#[derive(Serialize)]
struct GroupView {
    topic: String,
    papers: Vec<PaperView>,
}

#[derive(Serialize)]
struct PaperView {
    #[serde(skip)]
    full_text: String,
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
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    trim_words(&crate::domain::normalize_whitespace(&flat), max)
}

fn normalize_newlines(s: &str) -> String {
    // A CR is rare: looking for one byte first is much cheaper than searching for two.
    let s = if s.contains('\r') {
        std::borrow::Cow::Owned(s.replace("\r\n", "\n"))
    } else {
        std::borrow::Cow::Borrowed(s)
    };
    let mut out = String::with_capacity(s.len());
    let mut blank = 0;
    for line in s.lines() {
        // "-- " is the signature separator (RFC 3676): its space is what makes it one.
        let line = if line == "-- " { line } else { line.trim_end() };
        if line.is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim_start_matches('\n').to_string()
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
    fn the_signature_separator_keeps_its_space() {
        assert_eq!(normalize_newlines("a  \n-- \nsig\n\n\n"), "a\n-- \nsig\n\n");
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
    fn subjects_are_one_line() {
        assert_eq!(one_line("a\r\nBcc: x@y\tz", 200), "a Bcc: x@y z");
    }
}
