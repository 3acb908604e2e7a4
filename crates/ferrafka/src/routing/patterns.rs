//! Routing patterns: one route for every topic whose name matches a regular expression,
//! including topics created after the server started.
//!
//! librdkafka reads a subscription entry starting with `^` as a regex. Who evaluates it depends
//! on the group protocol: under `classic` librdkafka does, with the C library's POSIX extended
//! regex (or its own small engine where the C library has none), searching the name (`^orders`
//! matches `orders-eu`); under KIP-848 (`group.protocol=consumer`) the broker does, with RE2/J,
//! matching the whole name (`^orders` matches only `orders`). ferrafka resolves a concrete topic
//! to its route with the `regex` crate under the same semantics, and at boot refuses the
//! constructs the engine in use lacks, so both always agree on which topics a pattern matches.

use regex::Regex;
use regex_syntax::ast::{self, Ast, ClassSet, ClassSetItem, GroupKind, LiteralKind};

use crate::config::Problem;

/// Which engine evaluates a pattern, following the consumer's `group.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PatternEngine {
    /// `group.protocol=classic`: librdkafka matches the pattern against the cluster's topics on
    /// every metadata refresh (`topic.metadata.refresh.interval.ms`); POSIX extended regex,
    /// searched (a pattern without `$` matches names that start with it).
    Client,
    /// `group.protocol=consumer` (KIP-848): the group coordinator matches it with RE2/J against
    /// the whole topic name.
    Broker,
}

impl PatternEngine {
    /// The engine of a consumer with these librdkafka properties.
    pub(crate) fn of(kafka: &std::collections::BTreeMap<String, String>) -> Self {
        if crate::kafka::uses_consumer_protocol(kafka) {
            PatternEngine::Broker
        } else {
            PatternEngine::Client
        }
    }

    fn describe(self) -> &'static str {
        match self {
            PatternEngine::Client => {
                "the classic group protocol, where librdkafka evaluates it as a POSIX extended regex"
            }
            PatternEngine::Broker => {
                "group.protocol=consumer (KIP-848), where the broker evaluates it with RE2/J"
            }
        }
    }
}

/// A routing pattern: its route's name, its regular expression and the engine that evaluates
/// it.
#[derive(Debug, Clone)]
pub struct TopicPattern {
    name: String,
    source: String,
    engine: PatternEngine,
    regex: Regex,
}

impl TopicPattern {
    /// The route's name (for `info`, logs and metrics).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The regular expression as written, starting with `^`: the subscription entry.
    pub fn regex(&self) -> &str {
        &self.source
    }

    /// The engine that evaluates it.
    pub fn engine(&self) -> PatternEngine {
        self.engine
    }

    /// Whether the pattern matches `topic`, as its engine decides.
    pub fn matches(&self, topic: &str) -> bool {
        self.regex.is_match(topic)
    }

    /// Checks `source` for `engine` and compiles it; every problem goes to `problems`.
    pub(crate) fn compile(
        path: &str,
        name: &str,
        source: &str,
        engine: PatternEngine,
        problems: &mut Vec<Problem>,
    ) -> Option<TopicPattern> {
        let before = problems.len();
        let problem = |what: String, fix: &str| Problem::new(path, source, &what, fix);
        if !source.starts_with('^') {
            problems.push(problem(
                "needs to start with `^`: librdkafka subscribes to any other entry as a topic \
                 name"
                    .into(),
                "anchor it, e.g. `^orders-.*`",
            ));
        }
        let parsed = match ast::parse::Parser::new().parse(source) {
            Ok(parsed) => parsed,
            Err(e) => {
                problems.push(problem(
                    format!("needs to be a valid regular expression: {}", e.kind()),
                    "fix the syntax (RE2 syntax, as in the `regex` crate)",
                ));
                return None;
            }
        };
        let mut lacking = Vec::new();
        unsupported(&parsed, engine, &mut lacking);
        lacking.sort();
        lacking.dedup();
        if !lacking.is_empty() {
            problems.push(problem(
                format!(
                    "needs to use only what the engine in use understands: under {} there is no {}",
                    engine.describe(),
                    lacking.join(", ")
                ),
                match engine {
                    PatternEngine::Client => {
                        "rewrite it with `.`, `[...]` (no `\\` inside), `[[:digit:]]`, `*`, `+`, \
                         `?`, `{n,m}`, `(...)`, `|`, `^`, `$` and `\\` before a metacharacter, e.g. \
                         `[0-9]` for `\\d`; or switch to `group.protocol=consumer`"
                    }
                    PatternEngine::Broker => {
                        "rewrite it in RE2 syntax (no class set operations, `\\<`, `\\>`, \
                         `\\b{...}`, or flags other than i, m, s, U)"
                    }
                },
            ));
        }
        if problems.len() > before {
            return None;
        }
        let anchored = match engine {
            PatternEngine::Client => source.to_string(),
            // RE2/J's `matches()`: the whole name.
            PatternEngine::Broker => format!("^(?:{source})$"),
        };
        match Regex::new(&anchored) {
            Ok(regex) => Some(TopicPattern {
                name: name.to_string(),
                source: source.to_string(),
                engine,
                regex,
            }),
            Err(e) => {
                problems.push(problem(
                    format!("needs to be a valid regular expression: {e}"),
                    "fix the syntax",
                ));
                None
            }
        }
    }
}

/// Collects the constructs of `ast` that `engine` lacks, described for an error message.
fn unsupported(node: &Ast, engine: PatternEngine, lacking: &mut Vec<&'static str>) {
    let client = engine == PatternEngine::Client;
    match node {
        Ast::Empty(_) | Ast::Dot(_) => {}
        Ast::Flags(_) if client => lacking.push("inline flags `(?i)`"),
        Ast::Flags(set) => broker_flags(&set.flags, lacking),
        Ast::Literal(literal) => literal_support(literal, client, lacking),
        Ast::Assertion(a) => {
            use ast::AssertionKind::*;
            match a.kind {
                StartLine | EndLine | StartText | EndText if !client => {}
                StartLine | EndLine => {}
                StartText | EndText => lacking.push("`\\A` or `\\z` (use `^` and `$`)"),
                WordBoundary | NotWordBoundary if client => {
                    lacking.push("word boundaries `\\b`, `\\B`")
                }
                WordBoundary | NotWordBoundary => {}
                _ => lacking.push("word boundaries `\\<`, `\\>`, `\\b{...}`"),
            }
        }
        Ast::ClassUnicode(_) if client => lacking.push("Unicode classes `\\p{..}`"),
        Ast::ClassPerl(_) if client => lacking.push("`\\d`, `\\w`, `\\s` (use `[0-9]`, ...)"),
        Ast::ClassUnicode(_) | Ast::ClassPerl(_) => {}
        Ast::ClassBracketed(class) => class_support(&class.kind, client, lacking),
        Ast::Repetition(rep) => {
            if !rep.greedy && client {
                lacking.push("lazy repetitions `*?`, `+?`, `??`");
            }
            unsupported(&rep.ast, engine, lacking);
        }
        Ast::Group(group) => {
            match &group.kind {
                GroupKind::CaptureIndex(_) => {}
                _ if client => lacking.push("non-capturing or named groups `(?:...)`"),
                GroupKind::CaptureName {
                    starts_with_p: false,
                    ..
                } => lacking.push("named groups `(?<name>...)` (write `(?P<name>...)`)"),
                GroupKind::CaptureName { .. } => {}
                GroupKind::NonCapturing(flags) => broker_flags(flags, lacking),
            }
            unsupported(&group.ast, engine, lacking);
        }
        Ast::Alternation(alt) => alt
            .asts
            .iter()
            .for_each(|a| unsupported(a, engine, lacking)),
        Ast::Concat(cat) => cat
            .asts
            .iter()
            .for_each(|a| unsupported(a, engine, lacking)),
    }
}

/// RE2/J knows the flags i, m, s and U.
fn broker_flags(flags: &ast::Flags, lacking: &mut Vec<&'static str>) {
    use ast::{Flag, FlagsItemKind};
    for item in &flags.items {
        if let FlagsItemKind::Flag(Flag::Unicode | Flag::CRLF | Flag::IgnoreWhitespace) = item.kind
        {
            lacking.push("the flags u, R or x");
        }
    }
}

fn literal_support(literal: &ast::Literal, client: bool, lacking: &mut Vec<&'static str>) {
    match literal.kind {
        LiteralKind::Verbatim | LiteralKind::Meta => {}
        // POSIX gives `\` before an ordinary character no meaning.
        _ if client => lacking.push("escapes other than `\\` before a metacharacter"),
        // RE2 lets any punctuation be escaped, and knows the escapes the `regex` crate does.
        _ => {}
    }
}

fn class_support(set: &ClassSet, client: bool, lacking: &mut Vec<&'static str>) {
    match set {
        ClassSet::BinaryOp(_) => lacking.push("class set operations `&&`, `--`, `~~`"),
        ClassSet::Item(item) => class_item_support(item, client, lacking),
    }
}

fn class_item_support(item: &ClassSetItem, client: bool, lacking: &mut Vec<&'static str>) {
    match item {
        ClassSetItem::Empty(_) | ClassSetItem::Ascii(_) => {}
        ClassSetItem::Literal(l) if client && l.kind != LiteralKind::Verbatim => {
            // Inside POSIX brackets `\` is an ordinary character: `[\.]` also matches `\`.
            lacking.push("`\\` inside brackets (`[\\.]` is `[.]` there)");
        }
        ClassSetItem::Range(r) if client => {
            for l in [&r.start, &r.end] {
                if l.kind != LiteralKind::Verbatim {
                    lacking.push("`\\` inside brackets (`[\\.]` is `[.]` there)");
                }
            }
        }
        ClassSetItem::Literal(_) | ClassSetItem::Range(_) => {}
        ClassSetItem::Unicode(_) | ClassSetItem::Perl(_) if client => {
            lacking.push("`\\d`, `\\w`, `\\s` or `\\p{..}` inside brackets")
        }
        ClassSetItem::Unicode(_) | ClassSetItem::Perl(_) => {}
        ClassSetItem::Bracketed(_) if client => lacking.push("nested brackets"),
        ClassSetItem::Bracketed(inner) => class_support(&inner.kind, client, lacking),
        ClassSetItem::Union(union) => union
            .items
            .iter()
            .for_each(|i| class_item_support(i, client, lacking)),
    }
}

#[cfg(test)]
mod tests;
