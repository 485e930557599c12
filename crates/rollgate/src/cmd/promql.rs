//! PromQL syntax checks for `rollgate lint`: each Prometheus query of a template, with its
//! `{{args.NAME}}` placeholders replaced by neutral values, must parse.

use rollgate_api::AnalysisTemplateSpec;

/// Replaces each `{{...}}` placeholder with a value that keeps the query parseable where it
/// stands: a word inside a string literal, a duration inside `[...]`, a number elsewhere.
pub fn neutral(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let mut quote: Option<char> = None;
    let mut brackets = 0usize;
    let mut rest = query;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("{{")
            && let Some(end) = rest.find("}}")
        {
            out.push_str(match (quote, brackets) {
                (Some(_), _) => "arg",
                (None, 0) => "1",
                (None, _) => "5m",
            });
            rest = &rest[end + 2..];
            continue;
        }
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), '\\') => {
                // Keep the escaped character with its backslash.
                out.push(c);
                rest = &rest[1..];
                if let Some(next) = rest.chars().next() {
                    out.push(next);
                    rest = &rest[next.len_utf8()..];
                }
                continue;
            }
            (None, '"' | '\'' | '`') => quote = Some(c),
            (None, '[') => brackets += 1,
            (None, ']') => brackets = brackets.saturating_sub(1),
            _ => {}
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// `metrics[i].provider.prometheus.query: invalid PromQL: ...` for each query that
/// does not parse.
pub fn problems(spec: &AnalysisTemplateSpec) -> Vec<String> {
    let mut out = Vec::new();
    for (i, m) in spec.metrics.iter().enumerate() {
        let Some(p) = m.provider.prometheus.as_ref() else {
            continue;
        };
        if let Err(e) = promql_parser::parser::parse(&neutral(&p.query)) {
            let e = e.replace('\n', " ");
            out.push(format!(
                "metrics[{i}].provider.prometheus.query: invalid PromQL: {}",
                e.trim()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_values_that_fit_where_they_stand() {
        assert_eq!(
            neutral(r#"sum(rate(x{hash="{{args.hash}}"}[{{args.window}}])) > {{args.limit}}"#),
            r#"sum(rate(x{hash="arg"}[5m])) > 1"#
        );
        assert_eq!(neutral(r#"x{a="q\"{{args.b}}"}"#), r#"x{a="q\"arg"}"#);
        assert!(promql_parser::parser::parse(&neutral("sum(rate(x[{{args.w}}]))")).is_ok());
    }
}
