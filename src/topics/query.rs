//! Topic queries: terms, "quoted phrases", AND / OR / NOT (and implicit AND), parentheses,
//! prefix wildcards (`quantiz*`), field scopes (`title:`, `abstract:`, `author:`, `org:`,
//! `keyword:`), `repo:yes|no`, and numeric filters (`upvotes>=N`, `stars>=N`).
//!
//! Words are matched whole and case-insensitively, tokenised the same way in the query and in
//! the paper (letters and digits; hyphens and punctuation separate words). NOT binds tighter
//! than AND, AND tighter than OR; `-term` is `NOT term`.

use std::fmt;

use super::text::{Field, PaperText, tokenize};
use crate::domain::Paper;

#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// Words in a row (one word, or a phrase); the last may be a prefix.
    Term {
        field: Option<Field>,
        words: Vec<String>,
        prefix: bool,
    },
    HasRepo(bool),
    Number {
        what: Numeric,
        op: Op,
        value: i64,
    },
    Not(Box<Query>),
    And(Vec<Query>),
    Or(Vec<Query>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numeric {
    Upvotes,
    Stars,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Ge,
    Gt,
    Le,
    Lt,
    Eq,
}

/// A query that does not parse: where (a 1-based character column) and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub column: usize,
    pub message: String,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for QueryError {}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    And,
    Or,
    Not,
    /// A word or field:value, as written.
    Atom(String),
    /// A quoted phrase, with the field written before it (`title:"..."`), if any.
    Quoted(Option<String>, String),
}

fn lex(src: &str) -> Result<Vec<(usize, Tok)>, QueryError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push((col, Tok::LParen));
            i += 1;
        } else if c == ')' {
            out.push((col, Tok::RParen));
            i += 1;
        } else if c == '-' && chars.get(i + 1).is_some_and(|n| !n.is_whitespace()) {
            out.push((col, Tok::Not));
            i += 1;
        } else if c == '"' {
            let (text, next) = quoted(&chars, i)?;
            out.push((col, Tok::Quoted(None, text)));
            i = next;
        } else {
            let start = i;
            while i < chars.len()
                && !chars[i].is_whitespace()
                && !matches!(chars[i], '(' | ')' | '"')
            {
                i += 1;
            }
            let atom: String = chars[start..i].iter().collect();
            if atom.ends_with(':') && chars.get(i) == Some(&'"') {
                let (text, next) = quoted(&chars, i)?;
                out.push((
                    col,
                    Tok::Quoted(Some(atom.trim_end_matches(':').into()), text),
                ));
                i = next;
                continue;
            }
            out.push((
                col,
                match atom.as_str() {
                    "AND" => Tok::And,
                    "OR" => Tok::Or,
                    "NOT" => Tok::Not,
                    _ => Tok::Atom(atom),
                },
            ));
        }
    }
    Ok(out)
}

fn quoted(chars: &[char], open: usize) -> Result<(String, usize), QueryError> {
    let mut i = open + 1;
    while i < chars.len() && chars[i] != '"' {
        i += 1;
    }
    if i == chars.len() {
        return Err(QueryError {
            column: open + 1,
            message: "this quote is never closed: expected a closing \"".into(),
        });
    }
    Ok((chars[open + 1..i].iter().collect(), i + 1))
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    end: usize,
    depth: usize,
}

/// Deeper nesting than this is refused (a parser that recursed without end would crash).
const MAX_DEPTH: usize = 64;

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }

    fn column(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |(c, _)| *c)
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, QueryError> {
        Err(QueryError {
            column: self.column(),
            message: message.into(),
        })
    }

    fn or(&mut self) -> Result<Query, QueryError> {
        let mut parts = vec![self.and()?];
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().expect("one")
        } else {
            Query::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Query, QueryError> {
        let mut parts = vec![self.not()?];
        loop {
            match self.peek() {
                Some(Tok::And) => {
                    self.pos += 1;
                    parts.push(self.not()?);
                }
                Some(Tok::Or | Tok::RParen) | None => break,
                Some(_) => parts.push(self.not()?), // implicit AND
            }
        }
        Ok(if parts.len() == 1 {
            parts.pop().expect("one")
        } else {
            Query::And(parts)
        })
    }

    fn not(&mut self) -> Result<Query, QueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err(format!("nested more than {MAX_DEPTH} deep"));
        }
        let q = self.not_inner();
        self.depth -= 1;
        q
    }

    fn not_inner(&mut self) -> Result<Query, QueryError> {
        if self.peek() == Some(&Tok::Not) {
            self.pos += 1;
            if matches!(self.peek(), None | Some(Tok::RParen | Tok::And | Tok::Or)) {
                return self.err("expected a term, a phrase or '(' after NOT");
            }
            return Ok(Query::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Query, QueryError> {
        let col = self.column();
        let Some((_, tok)) = self.toks.get(self.pos).cloned() else {
            return self.err("expected a term, a phrase or '(', found the end of the query");
        };
        self.pos += 1;
        match tok {
            Tok::LParen => {
                if self.peek() == Some(&Tok::RParen) {
                    return self.err("expected a query inside the parentheses");
                }
                let q = self.or()?;
                if self.peek() != Some(&Tok::RParen) {
                    return self.err("expected ')' to close the '(' before");
                }
                self.pos += 1;
                Ok(q)
            }
            Tok::RParen => Err(QueryError {
                column: col,
                message: "unexpected ')': no '(' is open".into(),
            }),
            Tok::And | Tok::Or => Err(QueryError {
                column: col,
                message: "expected a term, a phrase or '(' before AND/OR".into(),
            }),
            Tok::Not => unreachable!("handled by not()"),
            Tok::Quoted(field, text) => {
                let field = field.map(|f| field_named(&f, col)).transpose()?;
                let (text, prefix) = strip_star(text.trim_end());
                term(field, text, prefix, col)
            }
            Tok::Atom(atom) => atom_query(&atom, col),
        }
    }
}

fn field_named(name: &str, column: usize) -> Result<Field, QueryError> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "title" => Field::Title,
        "abstract" => Field::Abstract,
        "keyword" => Field::Keyword,
        "author" => Field::Author,
        "org" => Field::Org,
        other => {
            return Err(QueryError {
                column,
                message: format!(
                    "unknown field {other:?}: expected title, abstract, keyword, author, org or repo"
                ),
            });
        }
    })
}

fn term(
    field: Option<Field>,
    text: &str,
    prefix: bool,
    column: usize,
) -> Result<Query, QueryError> {
    let words = tokenize(text);
    if words.is_empty() {
        return Err(QueryError {
            column,
            message: format!("{text:?} holds no word to match"),
        });
    }
    Ok(Query::Term {
        field,
        words,
        prefix,
    })
}

fn atom_query(atom: &str, col: usize) -> Result<Query, QueryError> {
    let lower = atom.to_ascii_lowercase();
    if matches!(atom, "and" | "or" | "not" | "And" | "Or" | "Not") {
        return Err(QueryError {
            column: col,
            message: format!(
                "{atom:?}: write the operator in capitals ({}), or quote it to search for the word",
                atom.to_uppercase()
            ),
        });
    }
    for (name, what) in [("upvotes", Numeric::Upvotes), ("stars", Numeric::Stars)] {
        if let Some(rest) = lower.strip_prefix(name)
            && rest.starts_with(['>', '<', '='])
        {
            let (op, num) = [
                (">=", Op::Ge),
                ("<=", Op::Le),
                (">", Op::Gt),
                ("<", Op::Lt),
                ("=", Op::Eq),
            ]
            .into_iter()
            .find_map(|(s, op)| rest.strip_prefix(s).map(|n| (op, n)))
            .expect("starts with one of them");
            let value = num.parse().map_err(|_| QueryError {
                column: col,
                message: format!("expected a whole number after {name}, found {num:?}"),
            })?;
            return Ok(Query::Number { what, op, value });
        }
    }
    if let Some((name, value)) = atom.split_once(':') {
        if name.eq_ignore_ascii_case("repo") {
            return match value.to_ascii_lowercase().as_str() {
                "yes" | "true" => Ok(Query::HasRepo(true)),
                "no" | "false" => Ok(Query::HasRepo(false)),
                other => Err(QueryError {
                    column: col,
                    message: format!("expected repo:yes or repo:no, found repo:{other}"),
                }),
            };
        }
        if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphabetic()) {
            let field = field_named(name, col)?;
            if value.is_empty() {
                return Err(QueryError {
                    column: col + atom.len(),
                    message: format!("expected a term or a \"phrase\" after {name}:"),
                });
            }
            let (value, prefix) = strip_star(value);
            return term(Some(field), value, prefix, col);
        }
    }
    let (value, prefix) = strip_star(atom);
    term(None, value, prefix, col)
}

fn strip_star(s: &str) -> (&str, bool) {
    match s.strip_suffix('*') {
        Some(rest) => (rest, true),
        None => (s, false),
    }
}

impl Query {
    pub fn parse(src: &str) -> Result<Self, QueryError> {
        let toks = lex(src)?;
        if toks.is_empty() {
            return Err(QueryError {
                column: 1,
                message: "the query is empty".into(),
            });
        }
        let mut p = Parser {
            toks,
            pos: 0,
            end: src.chars().count() + 1,
            depth: 0,
        };
        let q = p.or()?;
        if p.pos < p.toks.len() {
            return p.err("unexpected ')': no '(' is open");
        }
        Ok(q)
    }

    pub fn matches(&self, paper: &Paper, text: &PaperText) -> bool {
        match self {
            Query::Term {
                field,
                words,
                prefix,
            } => text.contains_words(*field, words, *prefix),
            Query::HasRepo(want) => paper.github_repo.is_some() == *want,
            Query::Number { what, op, value } => {
                let have = match what {
                    Numeric::Upvotes => paper.upvotes,
                    Numeric::Stars => paper.github_stars.unwrap_or(0),
                };
                match op {
                    Op::Ge => have >= *value,
                    Op::Gt => have > *value,
                    Op::Le => have <= *value,
                    Op::Lt => have < *value,
                    Op::Eq => have == *value,
                }
            }
            Query::Not(q) => !q.matches(paper, text),
            Query::And(qs) => qs.iter().all(|q| q.matches(paper, text)),
            Query::Or(qs) => qs.iter().any(|q| q.matches(paper, text)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(words: &[&str]) -> Query {
        Query::Term {
            field: None,
            words: words.iter().map(|w| w.to_string()).collect(),
            prefix: false,
        }
    }

    #[test]
    fn the_grammar() {
        let p = |s| Query::parse(s).unwrap();
        assert_eq!(p("diffusion"), t(&["diffusion"]));
        assert_eq!(
            p("video diffusion"),
            Query::And(vec![t(&["video"]), t(&["diffusion"])])
        );
        assert_eq!(p("\"video diffusion\""), t(&["video", "diffusion"]));
        assert_eq!(p("text-to-image"), t(&["text", "to", "image"]));
        assert_eq!(
            p("a OR b c"),
            Query::Or(vec![t(&["a"]), Query::And(vec![t(&["b"]), t(&["c"])])])
        );
        assert_eq!(
            p("(a OR b) AND c"),
            Query::And(vec![Query::Or(vec![t(&["a"]), t(&["b"])]), t(&["c"])])
        );
        assert_eq!(p("NOT a"), Query::Not(Box::new(t(&["a"]))));
        assert_eq!(p("-a"), Query::Not(Box::new(t(&["a"]))));
        assert_eq!(
            p("quantiz*"),
            Query::Term {
                field: None,
                words: vec!["quantiz".into()],
                prefix: true
            }
        );
        assert_eq!(
            p("title:\"world model\""),
            Query::Term {
                field: Some(Field::Title),
                words: vec!["world".into(), "model".into()],
                prefix: false
            }
        );
        assert_eq!(
            p("author:Hinton"),
            Query::Term {
                field: Some(Field::Author),
                words: vec!["hinton".into()],
                prefix: false
            }
        );
        assert_eq!(p("repo:yes"), Query::HasRepo(true));
        assert_eq!(
            p("upvotes>=10"),
            Query::Number {
                what: Numeric::Upvotes,
                op: Op::Ge,
                value: 10
            }
        );
        assert_eq!(
            p("stars>100"),
            Query::Number {
                what: Numeric::Stars,
                op: Op::Gt,
                value: 100
            }
        );
    }

    #[test]
    fn errors_say_where_and_what_was_expected() {
        let cases = [
            ("", 1, "empty"),
            ("(diffusion", 11, "expected ')'"),
            ("diffusion)", 10, "unexpected ')'"),
            ("a AND", 6, "found the end"),
            ("OR b", 1, "before AND/OR"),
            ("NOT", 4, "after NOT"),
            ("\"open phrase", 1, "never closed"),
            ("colour:red", 1, "unknown field \"colour\""),
            ("title:", 7, "after title:"),
            ("upvotes>=many", 1, "whole number"),
            ("repo:maybe", 1, "repo:yes or repo:no"),
            ("()", 2, "inside the parentheses"),
            ("--", 2, "holds no word"),
            (
                "diffusion or flow",
                11,
                "write the operator in capitals (OR)",
            ),
        ];
        for (src, col, says) in cases {
            let e = Query::parse(src).expect_err(src);
            assert_eq!(e.column, col, "{src:?}: {e}");
            assert!(e.message.contains(says), "{src:?}: {e}");
        }
    }
}
