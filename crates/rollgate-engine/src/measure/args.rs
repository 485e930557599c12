//! `{{args.NAME}}` placeholders, substituted so that a value can never change a query.
//!
//! Inside a PromQL string literal a value is escaped for that literal (`"` and `'` strings:
//! backslash, the quote and control characters; backtick raw strings cannot escape, so a value
//! with a backtick is refused there). Outside string literals only plain tokens are accepted
//! (numbers, durations, names): anything else is refused rather than spliced into the query.

use std::collections::BTreeMap;

/// Where in a PromQL query a placeholder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// Outside string literals; `in_brackets` inside `[...]` (a range or subquery duration).
    Code {
        /// Inside `[...]`.
        in_brackets: bool,
    },
    /// Inside a string literal opened by this quote character.
    Quoted(char),
}

/// Walks a PromQL query and replaces each `{{args.NAME}}` placeholder with what `value`
/// returns for its name and where it stands. Escapes written in the query's own string
/// literals are kept as they are.
pub(crate) fn substitute(
    query: &str,
    mut value: impl FnMut(&str, Place) -> Result<String, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(query.len());
    let mut quote: Option<char> = None;
    let mut brackets = 0usize;
    let mut rest = query;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("{{") {
            let end = rest
                .find("}}")
                .ok_or_else(|| format!("unterminated placeholder in \"{query}\""))?;
            let name = placeholder(&rest[2..end])?;
            let place = match quote {
                Some(q) => Place::Quoted(q),
                None => Place::Code {
                    in_brackets: brackets > 0,
                },
            };
            out.push_str(&value(name, place)?);
            rest = &rest[end + 2..];
            continue;
        }
        match (quote, c) {
            (Some(q), '\\') if q != '`' => {
                // An escape inside the template itself: copy it and the escaped character.
                out.push(c);
                rest = &rest[1..];
                if let Some(next) = rest.chars().next() {
                    out.push(next);
                    rest = &rest[next.len_utf8()..];
                }
                continue;
            }
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'' | '`') => quote = Some(c),
            (None, '[') => brackets += 1,
            (None, ']') => brackets = brackets.saturating_sub(1),
            _ => {}
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    Ok(out)
}

/// Substitutes placeholders in a PromQL query, escaping each value for where it stands.
pub fn render_query(query: &str, args: &BTreeMap<String, String>) -> Result<String, String> {
    substitute(query, |name, place| {
        let value = args
            .get(name)
            .ok_or_else(|| format!("argument \"{name}\" has no value"))?;
        escape(name, value, place)
    })
}

/// Substitutes placeholders in a plain value (address, header): no escaping applies.
pub fn render_plain(text: &str, args: &BTreeMap<String, String>) -> Result<String, String> {
    substitute_plain(text, |name| {
        args.get(name)
            .cloned()
            .ok_or_else(|| format!("argument \"{name}\" has no value"))
    })
}

/// Replaces each `{{args.NAME}}` placeholder of a plain value with what `value` returns for
/// its name.
pub(crate) fn substitute_plain(
    text: &str,
    mut value: impl FnMut(&str) -> Result<String, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("unterminated placeholder in \"{text}\""))?;
        out.push_str(&value(placeholder(&after[2..end])?)?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn placeholder(inner: &str) -> Result<&str, String> {
    inner
        .trim()
        .strip_prefix("args.")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("unknown placeholder {{{{{inner}}}}}: expected {{{{args.NAME}}}}"))
}

fn escape(name: &str, value: &str, place: Place) -> Result<String, String> {
    match place {
        Place::Quoted('`') => {
            if value.contains('`') {
                Err(format!(
                    "argument \"{name}\" contains a backtick and stands in a backtick string, which cannot escape it"
                ))
            } else {
                Ok(value.to_string())
            }
        }
        Place::Quoted(q) => {
            let mut s = String::with_capacity(value.len());
            for c in value.chars() {
                match c {
                    '\\' => s.push_str("\\\\"),
                    '\n' => s.push_str("\\n"),
                    '\r' => s.push_str("\\r"),
                    '\t' => s.push_str("\\t"),
                    c if c == q => {
                        s.push('\\');
                        s.push(c);
                    }
                    c if c.is_control() => s.push_str(&format!("\\u{:04x}", u32::from(c))),
                    c => s.push(c),
                }
            }
            Ok(s)
        }
        Place::Code { .. } => {
            let plain = !value.is_empty()
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '.' | '-' | '+'));
            if plain {
                Ok(value.to_string())
            } else {
                Err(format!(
                    "argument \"{name}\" stands outside a quoted string, so it must be a number, \
                     duration or name, got \"{value}\""
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_value_cannot_change_the_query() {
        let q = r#"sum(rate(errors{hash="{{args.hash}}"}[5m]))"#;
        let evil = r#"x"} or vector(1) or up{a=""#;
        let out = render_query(q, &args(&[("hash", evil)])).expect("renders");
        assert_eq!(
            out,
            r#"sum(rate(errors{hash="x\"} or vector(1) or up{a=\""}[5m]))"#
        );
        // Single-quoted strings escape the single quote.
        let out = render_query("up{a='{{args.v}}'}", &args(&[("v", "it's\\")])).expect("renders");
        assert_eq!(out, r"up{a='it\'s\\'}");
    }

    #[test]
    fn tokens_outside_strings_must_be_plain() {
        let q = "rate(errors[{{args.window}}]) > {{args.limit}}";
        let ok = render_query(q, &args(&[("window", "5m"), ("limit", "0.05")])).expect("ok");
        assert_eq!(ok, "rate(errors[5m]) > 0.05");
        let e = render_query(q, &args(&[("window", "5m]) or vector(1"), ("limit", "1")]));
        assert!(e.is_err_and(|e| e.contains("outside a quoted string")));
    }

    #[test]
    fn backtick_strings_refuse_backticks() {
        let q = "up{a=`{{args.v}}`}";
        assert_eq!(
            render_query(q, &args(&[("v", "a\"b")])).as_deref(),
            Ok("up{a=`a\"b`}")
        );
        assert!(render_query(q, &args(&[("v", "a`b")])).is_err());
    }

    #[test]
    fn escapes_in_the_template_are_kept_and_missing_args_named() {
        let q = r#"up{a="x\"{{args.v}}"}"#;
        assert_eq!(
            render_query(q, &args(&[("v", "y")])).as_deref(),
            Ok(r#"up{a="x\"y"}"#)
        );
        assert_eq!(
            render_query("{{args.nope}}", &args(&[])),
            Err("argument \"nope\" has no value".to_string())
        );
        assert!(render_query("{{args.v", &args(&[("v", "1")])).is_err());
        assert!(render_query("{{ other }}", &args(&[])).is_err());
        assert_eq!(
            render_plain("http://{{ args.host }}:9090", &args(&[("host", "prom")])).as_deref(),
            Ok("http://prom:9090")
        );
    }
}
