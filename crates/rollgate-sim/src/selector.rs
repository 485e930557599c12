//! Label and field selectors as the API server parses and evaluates them.

use serde_json::Value;

/// Operator of one requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    NotEq,
    In,
    NotIn,
    Exists,
    NotExists,
    Gt,
    Lt,
}

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Req {
    key: String,
    op: Op,
    values: Vec<String>,
}

/// A parsed label or field selector. The empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector(Vec<Req>);

/// A selector that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("unable to parse requirement: {0}")]
pub struct SelectorError(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Eq,
    NotEq,
    Bang,
    Gt,
    Lt,
    Comma,
    Open,
    Close,
}

fn lex(s: &str) -> Vec<Tok> {
    let mut toks = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            ',' => toks.push(Tok::Comma),
            '(' => toks.push(Tok::Open),
            ')' => toks.push(Tok::Close),
            '>' => toks.push(Tok::Gt),
            '<' => toks.push(Tok::Lt),
            '=' => {
                if chars.peek() == Some(&'=') {
                    chars.next();
                }
                toks.push(Tok::Eq);
            }
            '!' => {
                if chars.peek() == Some(&'=') {
                    chars.next();
                    toks.push(Tok::NotEq);
                } else {
                    toks.push(Tok::Bang);
                }
            }
            c => {
                let mut ident = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || "=!(),<>".contains(n) {
                        break;
                    }
                    ident.push(n);
                    chars.next();
                }
                toks.push(Tok::Ident(ident));
            }
        }
    }
    toks
}

fn name_part_ok(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A lowercase RFC 1123 subdomain (`a.b-c`), at most 253 characters.
pub fn dns_subdomain_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

/// A lowercase RFC 1123 label (`a-b`), at most 63 characters.
pub fn dns_label_ok(s: &str) -> bool {
    s.len() <= 63 && !s.contains('.') && dns_subdomain_ok(s)
}

/// A qualified name: `name` or `prefix/name` with a DNS subdomain prefix.
pub fn label_key_ok(k: &str) -> bool {
    match k.split_once('/') {
        Some((prefix, name)) => dns_subdomain_ok(prefix) && name_part_ok(name),
        None => name_part_ok(k),
    }
}

/// A label value: empty, or at most 63 alphanumerics with `-_.` inside.
pub fn label_value_ok(v: &str) -> bool {
    v.is_empty() || name_part_ok(v)
}

const NAME_SHAPE: &str = "alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric";

/// Why `k` is not a valid label key (`None`: it is).
pub fn label_key_problem(k: &str) -> Option<String> {
    let (prefix, name) = match k.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if let Some(p) = prefix
        && !dns_subdomain_ok(p)
    {
        return Some(format!(
            "the prefix of key {k:?} must be a lowercase RFC 1123 subdomain (lowercase \
             alphanumerics, '-' or '.', at most 253 characters)"
        ));
    }
    if name.is_empty() {
        Some(format!("the name part of key {k:?} must be non-empty"))
    } else if name.len() > 63 {
        Some(format!(
            "the name part of key {k:?} must be no more than 63 characters"
        ))
    } else if !name_part_ok(name) {
        Some(format!("the name part of key {k:?} must be {NAME_SHAPE}"))
    } else {
        None
    }
}

/// Why `v` is not a valid label value (`None`: it is).
pub fn label_value_problem(v: &str) -> Option<String> {
    if v.len() > 63 {
        Some("a label value must be no more than 63 characters".into())
    } else if !label_value_ok(v) {
        Some(format!("a label value must be empty or {NAME_SHAPE}"))
    } else {
        None
    }
}

impl Selector {
    /// Parses a label selector: `a=b,a==b,a!=b,a in (x,y),a notin (x),a,!a,a>1,a<1`.
    pub fn parse_labels(s: &str) -> Result<Self, SelectorError> {
        let err = |why: &str| SelectorError(format!("{s:?}: {why}"));
        let toks = lex(s);
        let mut i = 0;
        let mut reqs = Vec::new();
        let ident = |i: usize| match toks.get(i) {
            Some(Tok::Ident(s)) => Some(s.clone()),
            _ => None,
        };
        while i < toks.len() {
            let req = if toks[i] == Tok::Bang {
                let key = ident(i + 1).ok_or_else(|| err("expected a key after '!'"))?;
                i += 2;
                Req {
                    key,
                    op: Op::NotExists,
                    values: Vec::new(),
                }
            } else {
                let key = ident(i).ok_or_else(|| err("expected a key"))?;
                i += 1;
                match toks.get(i) {
                    None | Some(Tok::Comma) => Req {
                        key,
                        op: Op::Exists,
                        values: Vec::new(),
                    },
                    Some(t @ (Tok::Eq | Tok::NotEq | Tok::Gt | Tok::Lt)) => {
                        let op = match t {
                            Tok::Eq => Op::Eq,
                            Tok::NotEq => Op::NotEq,
                            Tok::Gt => Op::Gt,
                            _ => Op::Lt,
                        };
                        i += 1;
                        let value = match ident(i) {
                            Some(v) => {
                                i += 1;
                                v
                            }
                            None if matches!(op, Op::Eq | Op::NotEq) => String::new(),
                            None => return Err(err("expected a number")),
                        };
                        if matches!(op, Op::Gt | Op::Lt) && value.parse::<i64>().is_err() {
                            return Err(err(
                                "for 'gt', 'lt' operators, the value must be an integer",
                            ));
                        }
                        Req {
                            key,
                            op,
                            values: vec![value],
                        }
                    }
                    Some(Tok::Ident(word)) if word == "in" || word == "notin" => {
                        let op = if word == "in" { Op::In } else { Op::NotIn };
                        i += 1;
                        if toks.get(i) != Some(&Tok::Open) {
                            return Err(err("expected '(' after in/notin"));
                        }
                        i += 1;
                        let mut values = Vec::new();
                        loop {
                            match toks.get(i) {
                                Some(Tok::Ident(v)) => {
                                    values.push(v.clone());
                                    i += 1;
                                }
                                Some(Tok::Comma) => i += 1,
                                Some(Tok::Close) => {
                                    i += 1;
                                    break;
                                }
                                _ => return Err(err("expected ')'")),
                            }
                        }
                        if values.is_empty() {
                            return Err(err(
                                "for 'in', 'notin' operators, values set can't be empty",
                            ));
                        }
                        Req { key, op, values }
                    }
                    Some(_) => return Err(err("expected an operator")),
                }
            };
            if !label_key_ok(&req.key) {
                return Err(err(&format!("invalid label key {:?}", req.key)));
            }
            if let Some(bad) = req.values.iter().find(|v| !label_value_ok(v)) {
                return Err(err(&format!("invalid label value {bad:?}")));
            }
            reqs.push(req);
            match toks.get(i) {
                None => {}
                Some(Tok::Comma) => {
                    i += 1;
                    if i == toks.len() {
                        return Err(err("trailing ','"));
                    }
                }
                Some(_) => return Err(err("expected ','")),
            }
        }
        Ok(Self(reqs))
    }

    /// Parses a field selector: `a.b=c,d!=e` (`==` too; `\,` and `\=` escape).
    pub fn parse_fields(s: &str) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        for term in split_unescaped(s, ',') {
            if term.trim().is_empty() {
                continue;
            }
            let (key, op, value) = if let Some(at) = find_unescaped(&term, "!=") {
                (&term[..at], Op::NotEq, &term[at + 2..])
            } else if let Some(at) = find_unescaped(&term, "==") {
                (&term[..at], Op::Eq, &term[at + 2..])
            } else if let Some(at) = find_unescaped(&term, "=") {
                (&term[..at], Op::Eq, &term[at + 1..])
            } else {
                return Err(SelectorError(format!(
                    "invalid field selector {term:?}: expected an operator"
                )));
            };
            let key = key.trim();
            if key.is_empty() {
                return Err(SelectorError(format!(
                    "invalid field selector {term:?}: empty field"
                )));
            }
            reqs.push(Req {
                key: key.to_string(),
                op,
                values: vec![unescape(value.trim())],
            });
        }
        Ok(Self(reqs))
    }

    /// Keys the selector tests.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|r| r.key.as_str())
    }

    /// Whether this selector has no requirements.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when `get(key)` satisfies every requirement.
    pub fn matches<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.0.iter().all(|r| {
            let got = get(&r.key);
            let first = r.values.first().map(String::as_str);
            match r.op {
                Op::Eq => got == first,
                Op::NotEq => got != first,
                Op::In => got.is_some_and(|x| r.values.iter().any(|v| v == x)),
                Op::NotIn => got.is_none_or(|x| !r.values.iter().any(|v| v == x)),
                Op::Exists => got.is_some(),
                Op::NotExists => got.is_none(),
                Op::Gt | Op::Lt => {
                    let (Some(have), Some(want)) = (
                        got.and_then(|g| g.parse::<i64>().ok()),
                        first.and_then(|f| f.parse::<i64>().ok()),
                    ) else {
                        return false;
                    };
                    if r.op == Op::Gt {
                        have > want
                    } else {
                        have < want
                    }
                }
            }
        })
    }

    /// Matches a label map (`{"a": "b"}`).
    pub fn matches_label_map(&self, labels: &Value) -> bool {
        self.matches(|k| labels.get(k).and_then(Value::as_str))
    }

    /// Matches the labels of an object.
    pub fn matches_labels(&self, obj: &Value) -> bool {
        self.matches_label_map(&obj["metadata"]["labels"])
    }

    /// Matches fields of an object by dotted path; absent fields read as `""`.
    pub fn matches_fields(&self, obj: &Value) -> bool {
        self.0.iter().all(|r| {
            let mut v = obj;
            for part in r.key.split('.') {
                v = &v[part];
            }
            let got = match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            let want = r.values.first().map_or("", String::as_str);
            match r.op {
                Op::NotEq => got != want,
                _ => got == want,
            }
        })
    }
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            if let Some(last) = parts.last_mut() {
                last.push('\\');
                last.push(c);
            }
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(String::new());
        } else if let Some(last) = parts.last_mut() {
            last.push(c);
        }
    }
    parts
}

/// The byte offset of the first `pat` in `s` outside a `\\` escape (a backslash escapes the
/// character after it, whatever its length in bytes).
fn find_unescaped(s: &str, pat: &str) -> Option<usize> {
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == '\\' {
            chars.next();
            continue;
        }
        if s[i..].starts_with(pat) {
            return Some(i);
        }
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut escaped = false;
    for c in s.chars() {
        if escaped || c != '\\' {
            out.push(c);
            escaped = false;
        } else {
            escaped = true;
        }
    }
    out
}

/// A label selector object (`matchLabels`, `matchExpressions`) as a selector.
pub fn from_label_selector(sel: &Value) -> Selector {
    let mut reqs = Vec::new();
    if let Some(m) = sel["matchLabels"].as_object() {
        for (k, v) in m {
            reqs.push(Req {
                key: k.clone(),
                op: Op::Eq,
                values: vec![v.as_str().unwrap_or_default().to_string()],
            });
        }
    }
    for e in sel["matchExpressions"].as_array().into_iter().flatten() {
        let op = match e["operator"].as_str() {
            Some("In") => Op::In,
            Some("NotIn") => Op::NotIn,
            Some("Exists") => Op::Exists,
            Some("DoesNotExist") => Op::NotExists,
            _ => continue,
        };
        reqs.push(Req {
            key: e["key"].as_str().unwrap_or_default().to_string(),
            op,
            values: e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
        });
    }
    Selector(reqs)
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|r| {
                let first = r.values.first().map_or("", String::as_str);
                match r.op {
                    Op::Eq => format!("{}={first}", r.key),
                    Op::NotEq => format!("{}!={first}", r.key),
                    Op::In => format!("{} in ({})", r.key, r.values.join(",")),
                    Op::NotIn => format!("{} notin ({})", r.key, r.values.join(",")),
                    Op::Exists => r.key.clone(),
                    Op::NotExists => format!("!{}", r.key),
                    Op::Gt => format!("{}>{first}", r.key),
                    Op::Lt => format!("{}<{first}", r.key),
                }
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_selectors_with_characters_beyond_ascii_parse() {
        // Found by the sim_request fuzz target: a multi-byte character (here the U+FFFD a
        // stray `%89` in the query decodes to) made the operator search slice inside it.
        let sel = Selector::parse_fields("metadata.name=caf\u{e9},status.phase!=\u{fffd}")
            .expect("parses");
        let obj = json!({"metadata": {"name": "caf\u{e9}"}, "status": {"phase": "Running"}});
        assert!(sel.matches_fields(&obj));
        assert!(Selector::parse_fields("\u{fffd}").is_err());
        let escaped = Selector::parse_fields("a\\\u{e9}=b").expect("an escaped character");
        assert!(!escaped.matches_fields(&json!({"a": "x"})));
    }

    #[test]
    fn parses_and_matches_every_form() {
        let obj = json!({"metadata": {"labels": {"a": "b", "c": "d", "e": "f", "n": "5"}}});
        for (s, want) in [
            ("", true),
            ("a=b", true),
            ("a==b", true),
            ("a = b", true),
            ("a!=b", false),
            ("a!=x", true),
            ("zz!=x", true),
            ("c in (x,d)", true),
            ("c in(x, d)", true),
            ("c notin (d)", false),
            ("zz notin (d)", true),
            ("e", true),
            ("!e", false),
            ("!zz", true),
            ("n>4", true),
            ("n<5", false),
            ("a=b,c in (d),!zz", true),
            ("a=b,c=x", false),
            ("example.com/x=y", false),
            ("zz=", false),
        ] {
            let sel = Selector::parse_labels(s).expect(s);
            assert_eq!(sel.matches_labels(&obj), want, "{s}");
        }
        for bad in [
            "a in b", "=x", "a in ()", "a=b,", "a b", "a>x", "-a=b", "a=b=c", "a in (x",
        ] {
            assert!(Selector::parse_labels(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn field_selectors_read_paths_and_escapes() {
        let obj = json!({"metadata": {"name": "a,b"}, "status": {"phase": "Running"}, "spec": {}});
        let sel = Selector::parse_fields(r"metadata.name=a\,b,status.phase!=Pending").expect("ok");
        assert!(sel.matches_fields(&obj));
        assert!(
            Selector::parse_fields("spec.nodeName=")
                .expect("ok")
                .matches_fields(&obj)
        );
        assert!(Selector::parse_fields("metadata.name").is_err());
        assert_eq!(
            Selector::parse_fields("a=b,c==d")
                .expect("ok")
                .keys()
                .collect::<Vec<_>>(),
            ["a", "c"]
        );
    }

    #[test]
    fn label_selector_objects_convert() {
        let sel = from_label_selector(&json!({"matchLabels": {"app": "x"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]}));
        assert!(sel.matches_label_map(&json!({"app": "x", "tier": "web"})));
        assert!(!sel.matches_label_map(&json!({"app": "x"})));
        assert_eq!(sel.to_string(), "app=x,tier in (web)");
    }
}
