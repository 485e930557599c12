//! Label matchers as Prometheus and Alertmanager write them, and the firing alerts they select.
//!
//! A [`Matcher`] is one of
//!
//! ```text
//! name="value"    the label equals value
//! name!="value"   the label differs from value
//! name=~"regex"   the label matches regex (fully anchored)
//! name!~"regex"   the label does not match regex (fully anchored)
//! ```
//!
//! The label name is `[a-zA-Z_][a-zA-Z0-9_]*`; the value is a double-quoted string in which
//! `\"`, `\\` and `\n` are the only escapes (Alertmanager's escapes; Prometheus accepts them
//! too). Spaces around the name, the operator and the value are allowed. A regex is anchored
//! at both ends as Prometheus and Alertmanager do (`^(?:regex)$`): `env=~"prod"` does not match
//! `production`. Regexes use the syntax of Rust's `regex` crate, which is RE2's (Go's, so
//! Prometheus' and Alertmanager's) but for a few details: `\d`, `\w` and `\s` are Unicode-aware.
//!
//! A label that is absent matches as the empty string, as in Prometheus: `team=""` selects the
//! alerts without a `team` label and `team!=""` those with one.
//!
//! [`Matcher::to_promql`] and [`Matcher::to_alertmanager_filter`] write a matcher back for a
//! PromQL selector and for Alertmanager's `filter=` query parameter; `Display` and serde use the
//! Alertmanager form, which [`str::parse`] reads back unchanged.
//!
//! [`FiringAlert`] is a firing alert as rollgate sees it, whichever source it came from, and
//! [`fingerprint`] is the identity Alertmanager gives an alert's label set.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The comparison of a [`Matcher`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`: the label equals the value.
    Eq,
    /// `!=`: the label differs from the value.
    NotEq,
    /// `=~`: the label matches the (anchored) regex.
    Re,
    /// `!~`: the label does not match the (anchored) regex.
    NotRe,
}

impl MatchOp {
    /// The operator as written: `=`, `!=`, `=~` or `!~`.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::NotEq => "!=",
            MatchOp::Re => "=~",
            MatchOp::NotRe => "!~",
        }
    }

    /// Whether the value is a regex (`=~`, `!~`).
    pub fn is_regex(self) -> bool {
        matches!(self, MatchOp::Re | MatchOp::NotRe)
    }
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One label matcher, e.g. `severity=~"critical|page"`. Parse it with [`str::parse`].
///
/// Two matchers are equal when their name, operator and value are.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// The label name.
    pub name: String,
    /// The comparison.
    pub op: MatchOp,
    /// The value (unescaped), or the regex for `=~` and `!~`.
    pub value: String,
    /// `^(?:value)$`, compiled, for `=~` and `!~`.
    regex: Option<regex::Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

/// Why a text is not a matcher.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid matcher {input:?} at character {column}: {problem}")]
pub struct MatcherError {
    /// The text given.
    pub input: String,
    /// Where the problem is: a 1-based character position in `input` (one past its end when
    /// something is missing at the end).
    pub column: usize,
    /// What is wrong.
    pub problem: MatcherProblem,
}

/// What is wrong in a [`MatcherError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatcherProblem {
    /// No label name where one must start.
    #[error(
        "expected a label name ([a-zA-Z_][a-zA-Z0-9_]*) followed by =, !=, =~ or !~ and a \
         double-quoted value, e.g. severity=\"critical\""
    )]
    ExpectedName,
    /// No operator after the label name.
    #[error("expected one of the operators =, !=, =~, !~ after the label name")]
    ExpectedOperator,
    /// The value does not start with a double quote.
    #[error("expected a double-quoted value after the operator, e.g. \"critical\"")]
    ExpectedQuote,
    /// The value's closing double quote is missing.
    #[error("expected a closing double quote at the end of the value")]
    Unterminated,
    /// A backslash followed by something else than `"`, `\` or `n`.
    #[error("unknown escape \\{0} in the value: only \\\", \\\\ and \\n are allowed")]
    UnknownEscape(char),
    /// Text after the closing quote.
    #[error("expected nothing after the value's closing double quote")]
    TrailingText,
    /// The value of `=~` or `!~` is not a valid regex.
    #[error("the value is not a valid regex: {0}")]
    InvalidRegex(String),
}

impl Matcher {
    /// A matcher from its parts, compiling the regex of `=~` and `!~`.
    ///
    /// # Errors
    ///
    /// [`MatcherProblem::ExpectedName`] when `name` is not a label name,
    /// [`MatcherProblem::InvalidRegex`] when a regex does not compile; the error's `input` is
    /// the matcher as it would be written.
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Matcher, MatcherError> {
        let name = name.into();
        let value = value.into();
        let written = || format!("{name}{op}{}", quote_alertmanager(&value));
        if !is_label_name(&name) {
            return Err(MatcherError {
                input: written(),
                column: 1,
                problem: MatcherProblem::ExpectedName,
            });
        }
        let regex = if op.is_regex() {
            Some(compile(&value).map_err(|problem| MatcherError {
                input: written(),
                column: name.chars().count() + op.as_str().len() + 1,
                problem,
            })?)
        } else {
            None
        };
        Ok(Matcher {
            name,
            op,
            value,
            regex,
        })
    }

    /// Whether a label set passes this matcher; an absent label counts as the empty string.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let actual = labels.get(&self.name).map_or("", String::as_str);
        match (self.op, &self.regex) {
            (MatchOp::Eq, _) => actual == self.value,
            (MatchOp::NotEq, _) => actual != self.value,
            (MatchOp::Re, Some(regex)) => regex.is_match(actual),
            (MatchOp::NotRe, Some(regex)) => !regex.is_match(actual),
            // Unreachable: the constructors compile the regex of every regex operator.
            (MatchOp::Re | MatchOp::NotRe, None) => false,
        }
    }

    /// The matcher for the braces of a PromQL selector, e.g. `severity=~"critical|page"`
    /// (`ALERTS{alertstate="firing", severity=~"critical|page"}`). The value is a PromQL
    /// string literal: `\`, `"` and control characters are escaped.
    pub fn to_promql(&self) -> String {
        format!("{}{}{}", self.name, self.op, quote_promql(&self.value))
    }

    /// The matcher as the value of one `filter=` query parameter of Alertmanager's
    /// `GET /api/v2/alerts` (before URL encoding), e.g. `severity=~"critical|page"`. Only
    /// `\`, `"` and newlines are escaped, the escapes Alertmanager reads.
    pub fn to_alertmanager_filter(&self) -> String {
        format!(
            "{}{}{}",
            self.name,
            self.op,
            quote_alertmanager(&self.value)
        )
    }
}

impl fmt::Display for Matcher {
    /// The Alertmanager form ([`Matcher::to_alertmanager_filter`]), which parses back to an
    /// equal matcher.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_alertmanager_filter())
    }
}

impl FromStr for Matcher {
    type Err = MatcherError;

    fn from_str(input: &str) -> Result<Matcher, MatcherError> {
        Parser::new(input).matcher()
    }
}

impl Serialize for Matcher {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Matcher, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One firing alert as rollgate sees it, whichever source reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FiringAlert {
    /// The alert's name (its `alertname` label).
    pub name: String,
    /// All its labels, `alertname` included.
    pub labels: BTreeMap<String, String>,
    /// When it became active (Alertmanager's `startsAt`, Prometheus' `ALERTS_FOR_STATE`).
    pub starts_at: Timestamp,
    /// Its identity: the same labels give the same fingerprint (see [`fingerprint`]).
    pub fingerprint: String,
}

/// The fingerprint Prometheus and Alertmanager give a label set, as Alertmanager prints it
/// (16 lowercase hex digits, e.g. `a95a76968dc9254d`).
///
/// It is the 64-bit FNV-1a hash of the labels sorted by name, each written as its name, the
/// byte `0xff`, its value, the byte `0xff`. An alert pulled from Prometheus therefore has the
/// fingerprint Alertmanager shows for it when their label sets are the same (Prometheus adds
/// its external labels to the alerts it sends).
pub fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    const SEPARATOR: u8 = 0xff;
    let mut hash = OFFSET;
    let mut add = |bytes: &[u8]| {
        for &byte in bytes {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    // BTreeMap iterates in byte order of the names, the order Go's sort.Strings gives.
    for (name, value) in labels {
        add(name.as_bytes());
        add(&[SEPARATOR]);
        add(value.as_bytes());
        add(&[SEPARATOR]);
    }
    format!("{hash:016x}")
}

/// Whether `name` is `[a-zA-Z_][a-zA-Z0-9_]*`.
fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `^(?:regex)$`, compiled.
fn compile(regex: &str) -> Result<regex::Regex, MatcherProblem> {
    regex::Regex::new(&format!("^(?:{regex})$"))
        .map_err(|e| MatcherProblem::InvalidRegex(one_line(&e.to_string())))
}

/// `text` with its whitespace runs collapsed to single spaces (regex errors span lines).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A double-quoted value with Alertmanager's escapes: `\\`, `\"`, `\n`.
fn quote_alertmanager(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A PromQL double-quoted string literal: `\\`, `\"`, `\n`, `\r`, `\t`, and `\xHH` for the
/// other control characters (PromQL refuses a raw newline in a string).
fn quote_promql(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A cursor over the characters of a matcher's text.
struct Parser<'a> {
    input: &'a str,
    chars: Vec<char>,
    /// Index into `chars` of the next character.
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Self {
        Parser {
            input,
            chars: input.chars().collect(),
            pos: 0,
        }
    }

    fn fail(&self, at: usize, problem: MatcherProblem) -> MatcherError {
        MatcherError {
            input: self.input.to_string(),
            column: at + 1,
            problem,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn matcher(mut self) -> Result<Matcher, MatcherError> {
        self.skip_spaces();
        let name = self.name()?;
        self.skip_spaces();
        let op = self.op()?;
        self.skip_spaces();
        let value_at = self.pos;
        let value = self.quoted()?;
        self.skip_spaces();
        if self.pos < self.chars.len() {
            return Err(self.fail(self.pos, MatcherProblem::TrailingText));
        }
        let regex = if op.is_regex() {
            Some(compile(&value).map_err(|problem| self.fail(value_at, problem))?)
        } else {
            None
        };
        Ok(Matcher {
            name,
            op,
            value,
            regex,
        })
    }

    fn name(&mut self) -> Result<String, MatcherError> {
        let start = self.pos;
        if !self
            .peek()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        {
            return Err(self.fail(start, MatcherProblem::ExpectedName));
        }
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.pos += 1;
        }
        Ok(self.chars[start..self.pos].iter().collect())
    }

    fn op(&mut self) -> Result<MatchOp, MatcherError> {
        let first = self.peek();
        let second = self.chars.get(self.pos + 1).copied();
        let (op, len) = match (first, second) {
            (Some('='), Some('~')) => (MatchOp::Re, 2),
            (Some('='), _) => (MatchOp::Eq, 1),
            (Some('!'), Some('=')) => (MatchOp::NotEq, 2),
            (Some('!'), Some('~')) => (MatchOp::NotRe, 2),
            _ => return Err(self.fail(self.pos, MatcherProblem::ExpectedOperator)),
        };
        self.pos += len;
        Ok(op)
    }

    /// A double-quoted value, unescaped.
    fn quoted(&mut self) -> Result<String, MatcherError> {
        if self.peek() != Some('"') {
            return Err(self.fail(self.pos, MatcherProblem::ExpectedQuote));
        }
        self.pos += 1;
        let mut value = String::new();
        loop {
            match self.peek() {
                None => return Err(self.fail(self.pos, MatcherProblem::Unterminated)),
                Some('"') => {
                    self.pos += 1;
                    return Ok(value);
                }
                Some('\\') => {
                    let escaped = match self.chars.get(self.pos + 1).copied() {
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some('n') => '\n',
                        Some(other) => {
                            return Err(self.fail(self.pos, MatcherProblem::UnknownEscape(other)));
                        }
                        None => {
                            return Err(self.fail(self.pos + 1, MatcherProblem::Unterminated));
                        }
                    };
                    value.push(escaped);
                    self.pos += 2;
                }
                Some(c) => {
                    value.push(c);
                    self.pos += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(text: &str) -> Matcher {
        match text.parse() {
            Ok(matcher) => matcher,
            Err(e) => panic!("{text:?} should parse: {e}"),
        }
    }

    fn err(text: &str) -> MatcherError {
        match text.parse::<Matcher>() {
            Ok(matcher) => panic!("{text:?} should not parse, got {matcher:?}"),
            Err(e) => e,
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_the_four_operators() {
        let eq = m(r#"severity="critical""#);
        assert_eq!(
            (eq.name.as_str(), eq.op, eq.value.as_str()),
            ("severity", MatchOp::Eq, "critical")
        );
        assert_eq!(m(r#"a!="b""#).op, MatchOp::NotEq);
        assert_eq!(m(r#"a=~"b|c""#).op, MatchOp::Re);
        assert_eq!(m(r#"_a9!~"b.*""#).op, MatchOp::NotRe);
        // Spaces around the parts, an empty value, a value that looks like an operator.
        let spaced = m(r#"  team  !=  "=~!="  "#);
        assert_eq!(
            (spaced.name.as_str(), spaced.op, spaced.value.as_str()),
            ("team", MatchOp::NotEq, "=~!=")
        );
        assert_eq!(m(r#"team="""#).value, "");
    }

    #[test]
    fn unescapes_values() {
        assert_eq!(m(r#"a="x\"y""#).value, "x\"y");
        assert_eq!(m(r#"a="x\\y""#).value, "x\\y");
        assert_eq!(m(r#"a="x\ny""#).value, "x\ny");
        assert_eq!(m(r#"a="\\""#).value, "\\");
        assert_eq!(m("a=\"é ü\"").value, "é ü");
    }

    #[test]
    fn each_error_names_the_problem_and_where() {
        let cases: [(&str, usize, MatcherProblem); 13] = [
            ("", 1, MatcherProblem::ExpectedName),
            ("   ", 4, MatcherProblem::ExpectedName),
            (r#"9a="b""#, 1, MatcherProblem::ExpectedName),
            (r#"="b""#, 1, MatcherProblem::ExpectedName),
            (
                r#"app.kubernetes.io/name="b""#,
                4,
                MatcherProblem::ExpectedOperator,
            ),
            ("a", 2, MatcherProblem::ExpectedOperator),
            (r#"a=="b""#, 3, MatcherProblem::ExpectedQuote),
            ("a=b", 3, MatcherProblem::ExpectedQuote),
            ("a='b'", 3, MatcherProblem::ExpectedQuote),
            (r#"a="b"#, 5, MatcherProblem::Unterminated),
            (r#"a="b\"#, 6, MatcherProblem::Unterminated),
            (r#"a="b\t""#, 5, MatcherProblem::UnknownEscape('t')),
            (r#"a="b" x"#, 7, MatcherProblem::TrailingText),
        ];
        for (text, column, problem) in cases {
            let e = err(text);
            assert_eq!((e.column, &e.problem), (column, &problem), "{text:?}: {e}");
            assert_eq!(e.input, text);
        }
        let regex = err(r#"a=~"(b""#);
        assert_eq!(regex.column, 4);
        assert!(
            matches!(&regex.problem, MatcherProblem::InvalidRegex(m) if !m.contains('\n')),
            "{regex:?}"
        );
        // `=` and `!=` take any text, even one that is not a regex.
        assert_eq!(m(r#"a="(b""#).value, "(b");
    }

    #[test]
    fn error_messages_say_what_was_expected() {
        assert_eq!(
            err("a=b").to_string(),
            "invalid matcher \"a=b\" at character 3: expected a double-quoted value after the \
             operator, e.g. \"critical\""
        );
        assert!(err("").to_string().contains("expected a label name"));
        assert!(err("a<\"b\"").to_string().contains("=, !=, =~, !~"));
        assert!(
            err(r#"a="\x""#)
                .to_string()
                .contains(r#"unknown escape \x in the value: only \", \\ and \n are allowed"#)
        );
        assert!(err(r#"a=~"[""#).to_string().contains("not a valid regex"));
    }

    #[test]
    fn matching_semantics() {
        let set = labels(&[("severity", "critical"), ("team", "a")]);
        assert!(m(r#"severity="critical""#).matches(&set));
        assert!(!m(r#"severity="crit""#).matches(&set));
        assert!(m(r#"severity!="warning""#).matches(&set));
        assert!(!m(r#"severity!="critical""#).matches(&set));
        assert!(m(r#"severity=~"critical|page""#).matches(&set));
        assert!(!m(r#"severity!~"critical|page""#).matches(&set));
        // Anchored at both ends, alternation included.
        assert!(!m(r#"severity=~"crit""#).matches(&set));
        assert!(!m(r#"severity=~"ritical""#).matches(&set));
        assert!(!m(r#"severity=~"x|crit""#).matches(&set));
        assert!(m(r#"severity=~"crit.*""#).matches(&set));
        assert!(m(r#"severity!~"crit""#).matches(&set));
        // An absent label is the empty string.
        assert!(m(r#"owner="""#).matches(&set));
        assert!(!m(r#"owner!="""#).matches(&set));
        assert!(m(r#"owner=~".*""#).matches(&set));
        assert!(!m(r#"owner=~".+""#).matches(&set));
        assert!(m(r#"owner!~".+""#).matches(&set));
        assert!(!m(r#"team="""#).matches(&set));
        // Escaped characters compare unescaped.
        let odd = labels(&[("v", "a\"b\\c\nd")]);
        assert!(m(r#"v="a\"b\\c\nd""#).matches(&odd));
        assert!(m(r#"v=~"a\"b\\\\c\nd""#).matches(&odd));
    }

    #[test]
    fn writes_promql_and_alertmanager_filters() {
        let re = m(r#"severity=~"critical|page""#);
        assert_eq!(re.to_promql(), r#"severity=~"critical|page""#);
        assert_eq!(re.to_alertmanager_filter(), r#"severity=~"critical|page""#);
        let odd = Matcher::new("v", MatchOp::NotEq, "a\"b\\c\nd\te\u{1}").expect("valid");
        assert_eq!(odd.to_promql(), r#"v!="a\"b\\c\nd\te\x01""#);
        assert_eq!(
            odd.to_alertmanager_filter(),
            "v!=\"a\\\"b\\\\c\\nd\te\u{1}\""
        );
        assert_eq!(odd.to_string(), odd.to_alertmanager_filter());
    }

    #[test]
    fn escaping_round_trips() {
        let values = [
            "",
            "plain",
            "a\"b",
            "back\\slash",
            "\\\"",
            "\\n is not a newline",
            "new\nline",
            "tab\tand \u{1}",
            "ünïcødé ✓",
            "\"",
            "\\",
        ];
        for value in values {
            for op in [MatchOp::Eq, MatchOp::NotEq] {
                let matcher = Matcher::new("label", op, value).expect("valid");
                let text = matcher.to_alertmanager_filter();
                let back: Matcher = text.parse().expect("round trip");
                assert_eq!(back, matcher, "{text}");
                assert_eq!(back.value, value);
            }
        }
        let re = m(r#"path=~"/api/v[0-9]+/\\w+""#);
        assert_eq!(re.value, r"/api/v[0-9]+/\w+");
        assert_eq!(re.to_string().parse::<Matcher>(), Ok(re.clone()));
        assert!(re.matches(&labels(&[("path", "/api/v2/users")])));
    }

    #[test]
    fn new_checks_name_and_regex() {
        assert!(Matcher::new("ok_name", MatchOp::Re, "a|b").is_ok());
        assert_eq!(
            Matcher::new("pod-template-hash", MatchOp::Eq, "x").map_err(|e| e.problem),
            Err(MatcherProblem::ExpectedName)
        );
        let bad = Matcher::new("a", MatchOp::NotRe, "(").map_err(|e| (e.input, e.column));
        assert_eq!(bad, Err((r#"a!~"(""#.to_string(), 4)));
    }

    #[test]
    fn serde_uses_the_written_form() -> Result<(), serde_json::Error> {
        let matcher = m(r#"a=~"x\"y""#);
        let json = serde_json::to_string(&matcher)?;
        assert_eq!(json, r#""a=~\"x\\\"y\"""#);
        assert_eq!(serde_json::from_str::<Matcher>(&json)?, matcher);
        let bad = serde_json::from_str::<Matcher>(r#""a=b""#).map_err(|e| e.to_string());
        assert!(
            bad.as_ref()
                .is_err_and(|e| e.contains("expected a double-quoted value")),
            "{bad:?}"
        );
        Ok(())
    }

    #[test]
    fn fingerprint_is_alertmanagers() {
        // Printed by Alertmanager 0.25 for an alert posted with these labels.
        let set = labels(&[("alertname", "A"), ("sev", "x")]);
        assert_eq!(fingerprint(&set), "a95a76968dc9254d");
        // Order of insertion does not matter; every label does.
        let mut other = BTreeMap::new();
        other.insert("sev".to_string(), "x".to_string());
        other.insert("alertname".to_string(), "A".to_string());
        assert_eq!(fingerprint(&other), fingerprint(&set));
        other.insert("extra".to_string(), String::new());
        assert_ne!(fingerprint(&other), fingerprint(&set));
        // The separator keeps name and value apart.
        assert_ne!(
            fingerprint(&labels(&[("ab", "c")])),
            fingerprint(&labels(&[("a", "bc")]))
        );
        assert_eq!(fingerprint(&BTreeMap::new()), "cbf29ce484222325");
    }

    #[test]
    fn firing_alert_serializes_in_camel_case() -> Result<(), serde_json::Error> {
        let alert = FiringAlert {
            name: "HighErrorRate".into(),
            labels: labels(&[("alertname", "HighErrorRate")]),
            starts_at: Timestamp::from_second(1_700_000_000).expect("in range"),
            fingerprint: "0123456789abcdef".into(),
        };
        let json = serde_json::to_value(&alert)?;
        assert_eq!(json["startsAt"], "2023-11-14T22:13:20Z");
        assert_eq!(serde_json::from_value::<FiringAlert>(json)?, alert);
        Ok(())
    }
}
