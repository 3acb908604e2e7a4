//! PromQL, as far as a dashboard needs: a tokenizer and the selectors, groupings and label
//! lists of a query.

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    Str(String),
    /// A number or a duration (`0.99`, `5m`).
    Num,
    /// `$name` or `${name}` outside strings.
    Var(String),
    /// A range or subquery, `[…]`, with the variables it names.
    Range(Vec<String>),
    Punct(String),
}

pub(crate) fn tokenize(expr: &str) -> Vec<Tok> {
    let chars: Vec<char> = expr.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        i += 1;
        match c {
            c if c.is_whitespace() => {}
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '"' | '\'' | '`' => {
                let mut s = String::new();
                loop {
                    let d = *chars
                        .get(i)
                        .unwrap_or_else(|| panic!("unclosed string in {expr}"));
                    i += 1;
                    match d {
                        '\\' if c != '`' => {
                            s.push(chars[i]);
                            i += 1;
                        }
                        d if d == c => break,
                        d => s.push(d),
                    }
                }
                toks.push(Tok::Str(s));
            }
            '[' => {
                let close = chars[i..].iter().position(|&d| d == ']');
                let close = i + close.unwrap_or_else(|| panic!("unclosed [ in {expr}"));
                let inside: String = chars[i..close].iter().collect();
                toks.push(Tok::Range(variables(&inside)));
                i = close + 1;
            }
            // `$name`, `${name}`, `${name:format}`.
            '$' => {
                let braced = chars.get(i) == Some(&'{');
                let end = |c: char| {
                    if braced {
                        c == '}'
                    } else {
                        !(c.is_ascii_alphanumeric() || c == '_')
                    }
                };
                while i < chars.len() && !end(chars[i]) {
                    i += 1;
                }
                i += usize::from(braced);
                let text: String = chars[start..i].iter().collect();
                toks.extend(variables(&text).into_iter().map(Tok::Var));
            }
            c if c.is_ascii_digit() || c == '.' => {
                while i < chars.len() && (word(chars[i]) || chars[i] == '.') {
                    i += 1;
                }
                toks.push(Tok::Num);
            }
            c if word(c) => {
                while i < chars.len() && word(chars[i]) {
                    i += 1;
                }
                toks.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            _ => {
                let two: String = chars[start..(start + 2).min(chars.len())].iter().collect();
                if ["=~", "!~", "!=", "==", ">=", "<="].contains(&two.as_str()) {
                    i += 1;
                    toks.push(Tok::Punct(two));
                } else {
                    toks.push(Tok::Punct(c.to_string()));
                }
            }
        }
    }
    toks
}

/// The variables (`$x`, `${x}`, `${x:regex}`) named in a piece of text.
pub(crate) fn variables(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        rest = rest[at + 1..].trim_start_matches('{');
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        found.push(rest[..end].to_string());
        rest = &rest[end..];
    }
    found
}

/// Keywords that stand alone (not followed by `(`), and the aggregation operators (followed
/// by `(`, or by `by`/`without`).
pub(crate) const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "atan2",
    "inf",
    "nan",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];
/// Keywords followed by a list of labels.
pub(crate) const GROUPINGS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

pub(crate) fn is_punct(t: Option<&Tok>, p: &str) -> bool {
    matches!(t, Some(Tok::Punct(q)) if q == p)
}

/// The index of the parenthesis that closes the one at `open`.
pub(crate) fn closing(toks: &[Tok], open: usize) -> usize {
    let mut depth = 0;
    for (i, t) in toks.iter().enumerate().skip(open) {
        if is_punct(Some(t), "(") {
            depth += 1;
        } else if is_punct(Some(t), ")") {
            depth -= 1;
            if depth == 0 {
                return i;
            }
        }
    }
    panic!("unbalanced parentheses")
}

/// The index of the parenthesis that opens the one that closes at `close`.
pub(crate) fn opening(toks: &[Tok], close: usize) -> usize {
    let mut depth = 0;
    for i in (0..=close).rev() {
        if is_punct(toks.get(i), ")") {
            depth += 1;
        } else if is_punct(toks.get(i), "(") {
            depth -= 1;
            if depth == 0 {
                return i;
            }
        }
    }
    panic!("unbalanced parentheses")
}

/// One query, read: the metrics it selects (by token index), its label matchers, its
/// grouping clauses and the variables it names.
#[derive(Debug, Default)]
pub(crate) struct Query {
    pub(crate) metrics: Vec<(usize, String)>,
    /// (metric, label, operator, value)
    pub(crate) matchers: Vec<(String, String, String, String)>,
    /// (keyword, labels, the token range its labels must be found in)
    pub(crate) groupings: Vec<(String, Vec<String>, std::ops::Range<usize>)>,
    pub(crate) variables: Vec<String>,
}

impl Query {
    pub(crate) fn read(expr: &str) -> Query {
        let toks = tokenize(expr);
        let mut q = Query::default();
        let mut i = 0;
        while i < toks.len() {
            match &toks[i] {
                Tok::Var(v) => q.variables.push(v.clone()),
                Tok::Range(vars) => q.variables.extend(vars.iter().cloned()),
                Tok::Str(s) => q.variables.extend(variables(s)),
                Tok::Ident(kw) if GROUPINGS.contains(&kw.as_str()) => {
                    let labels = label_list(&toks, i + 1, expr);
                    let after = closing(&toks, i + 1);
                    let scope = match kw.as_str() {
                        // `sum by (l) (arg)` or `sum (arg) by (l)`.
                        "by" | "without" if is_punct(toks.get(after + 1), "(") => {
                            after + 1..closing(&toks, after + 1)
                        }
                        "by" | "without" => opening(&toks, i - 1)..i,
                        // Vector matching: the labels of either side.
                        _ => 0..toks.len(),
                    };
                    q.groupings.push((kw.clone(), labels, scope));
                    i = after;
                }
                // A function or an aggregation.
                Tok::Ident(_) if is_punct(toks.get(i + 1), "(") => {}
                Tok::Ident(kw) if KEYWORDS.contains(&kw.as_str()) => {}
                Tok::Ident(metric) => {
                    q.metrics.push((i, metric.clone()));
                    if is_punct(toks.get(i + 1), "{") {
                        i = q.read_matchers(metric, &toks, i + 1, expr);
                    }
                }
                Tok::Punct(p) if p == "{" => {
                    panic!("a selector without a metric name in {expr}: name the metric")
                }
                Tok::Num | Tok::Punct(_) => {}
            }
            i += 1;
        }
        q
    }

    /// Reads `{l op "v", …}` from `open`; returns the index of its `}`.
    fn read_matchers(&mut self, metric: &str, toks: &[Tok], open: usize, expr: &str) -> usize {
        let mut i = open + 1;
        loop {
            match (&toks[i], toks.get(i + 1), toks.get(i + 2)) {
                (Tok::Punct(p), ..) if p == "}" => return i,
                (Tok::Punct(p), ..) if p == "," => i += 1,
                (Tok::Ident(label), Some(Tok::Punct(op)), Some(Tok::Str(value))) => {
                    self.variables.extend(variables(value));
                    let m = (metric.into(), label.clone(), op.clone(), value.clone());
                    self.matchers.push(m);
                    i += 3;
                }
                _ => panic!("cannot read the matchers of {metric} in {expr}"),
            }
        }
    }

    /// The metrics selected between token indices `range`.
    pub(crate) fn metrics_in(&self, range: &std::ops::Range<usize>) -> impl Iterator<Item = &str> {
        self.metrics
            .iter()
            .filter(move |(at, _)| range.contains(at))
            .map(|(_, m)| m.as_str())
    }
}

/// `( a, b )` from `open`.
pub(crate) fn label_list(toks: &[Tok], open: usize, expr: &str) -> Vec<String> {
    assert!(
        is_punct(toks.get(open), "("),
        "a grouping without labels in {expr}"
    );
    toks[open + 1..closing(toks, open)]
        .iter()
        .filter_map(|t| match t {
            Tok::Ident(l) => Some(l.clone()),
            Tok::Punct(p) if p == "," => None,
            t => panic!("{t:?} in a label list of {expr}"),
        })
        .collect()
}
