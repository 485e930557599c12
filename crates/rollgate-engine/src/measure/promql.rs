//! PromQL syntax of a template's query, checked before anything is measured.
//!
//! The query still holds its `{{args.NAME}}` placeholders, whose values are only known when a
//! run is created. Each is replaced by a value that fits where it stands: a word inside a
//! string literal, a duration inside `[...]`, and elsewhere a number or a name (a threshold,
//! or a metric or label name). The query is valid when one such choice parses.

use promql_parser::parser::value::ValueType;

use super::args::{Place, substitute};
use super::condition::ResultShape;

/// Placeholders outside strings and brackets for which every number/name combination is
/// tried; with more, only "all numbers" and "all names" are.
const MAX_COMBINED: usize = 4;

/// The query with its placeholders replaced: inside strings by `arg`, inside brackets by
/// `5m`, elsewhere by `1` or by `arg` as bit `i` of `names` says for the `i`th such
/// placeholder (bits past 63 repeat the last one).
fn neutral(query: &str, names: u64) -> Result<String, String> {
    let mut code = 0u32;
    substitute(query, |_, place| {
        Ok(match place {
            Place::Quoted(_) => "arg",
            Place::Code { in_brackets: true } => "5m",
            Place::Code { in_brackets: false } => {
                let bit = (names >> code.min(63)) & 1;
                code += 1;
                if bit == 1 { "arg" } else { "1" }
            }
        }
        .to_string())
    })
}

/// Placeholders of `query` that stand outside strings and brackets.
fn code_placeholders(query: &str) -> Result<usize, String> {
    let mut n = 0;
    substitute(query, |_, place| {
        if place == (Place::Code { in_brackets: false }) {
            n += 1;
        }
        Ok(String::new())
    })?;
    Ok(n)
}

/// Checks that `query` is PromQL, placeholders included. The error is one line: a placeholder
/// that is not `{{args.NAME}}`, or `invalid PromQL: ...` with the parser's message for the
/// query with every free placeholder read as a number.
pub fn check(query: &str) -> Result<(), String> {
    let n = code_placeholders(query)?;
    let choices: Vec<u64> = if n <= MAX_COMBINED {
        (0..1u64 << n).collect()
    } else {
        vec![0, u64::MAX]
    };
    let mut first = None;
    for names in choices {
        let text = neutral(query, names)?;
        match promql_parser::parser::parse(&text) {
            Ok(_) => return Ok(()),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    let e = first.unwrap_or_default().replace('\n', " ");
    Err(format!("invalid PromQL: {}", e.trim()))
}

/// What `query` returns as an instant query, when that does not depend on its arguments (no
/// placeholder outside strings and brackets) and it parses.
pub(crate) fn shape(query: &str) -> ResultShape {
    if code_placeholders(query) != Ok(0) {
        return ResultShape::Unknown;
    }
    let Ok(text) = neutral(query, 0) else {
        return ResultShape::Unknown;
    };
    match promql_parser::parser::parse(&text).map(|e| e.value_type()) {
        Ok(ValueType::Scalar) => ResultShape::Scalar,
        Ok(ValueType::Vector) => ResultShape::Vector,
        Ok(ValueType::Matrix) => ResultShape::Matrix,
        Ok(ValueType::String) | Err(_) => ResultShape::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_values_that_fit_where_they_stand() {
        let q = r#"sum(rate(x{hash="{{args.hash}}"}[{{args.window}}])) > {{args.limit}}"#;
        assert_eq!(
            neutral(q, 0).as_deref(),
            Ok(r#"sum(rate(x{hash="arg"}[5m])) > 1"#)
        );
        assert_eq!(
            neutral(r#"x{a="q\"{{args.b}}"}"#, 0).as_deref(),
            Ok(r#"x{a="q\"arg"}"#)
        );
        assert_eq!(
            neutral("{{args.a}} > {{args.b}}", 0b10).as_deref(),
            Ok("1 > arg")
        );
        assert_eq!(code_placeholders(q), Ok(1));
    }

    #[test]
    fn valid_queries_pass_with_placeholders_as_numbers_or_names() {
        for q in [
            "up",
            "sum(rate(x[{{args.w}}]))",
            r#"sum(rate(errors{hash="{{args.hash}}"}[5m])) / sum(rate(requests{hash="{{args.hash}}"}[5m]))"#,
            "rate(x[5m]) > {{args.limit}}",
            // A metric name, and a label name in a grouping.
            r#"{{args.metric}}{job="api"}"#,
            "sum by ({{args.label}}) (rate({{args.metric}}[5m]))",
            "rate(x[{{args.range}}:{{args.step}}])",
            "rate(x[5m] offset {{args.offset}})",
            // A number and a name in one query.
            "histogram_quantile({{args.q}}, sum by (le) (rate({{args.metric}}_bucket[5m])))",
        ] {
            assert_eq!(check(q), Ok(()), "{q}");
        }
    }

    #[test]
    fn the_shape_of_an_answer_is_known_from_the_query() {
        assert_eq!(shape("sum(rate(x[5m]))"), ResultShape::Vector);
        assert_eq!(shape("scalar(up) * 2"), ResultShape::Scalar);
        assert_eq!(shape("up[5m]"), ResultShape::Matrix);
        assert_eq!(shape(r#"up{a="{{args.a}}"}"#), ResultShape::Vector);
        assert_eq!(shape("{{args.metric}}"), ResultShape::Unknown);
    }

    #[test]
    fn syntax_errors_and_bad_placeholders_are_reported() {
        let e = check("sum(rate(http_requests_total[5m]) by (").expect_err("does not parse");
        assert!(e.starts_with("invalid PromQL: "), "{e}");
        assert!(!e.contains('\n'), "{e}");
        assert!(check("rate(x[5m]) >").is_err());
        assert!(check(r#"x{a="unterminated}"#).is_err());
        assert_eq!(
            check("x > {{args.limit"),
            Err("unterminated placeholder in \"x > {{args.limit\"".into())
        );
        assert!(check("x > {{ limit }}").is_err_and(|e| e.contains("expected {{args.NAME}}")));
    }
}
