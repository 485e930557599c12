//! Conditions in CEL over `result` (`result[0] < 0.05`, `all(result, x, x < 0.5)`,
//! `isNaN(result[0])`).

use cel::{Context, Program, Value};

use super::value::MetricValue;

/// A compiled condition.
#[derive(Debug)]
pub struct Condition {
    program: Program,
    source: String,
}

/// CEL macros that also read well as functions: `all(result, x, x < 0.5)` means
/// `result.all(x, x < 0.5)`.
const MACROS: [&str; 5] = ["all", "exists", "exists_one", "map", "filter"];

/// Rewrites the function form of the list macros into CEL's member form.
fn normalize(src: &str) -> String {
    let bytes = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < src.len() {
        let c = src[i..].chars().next().unwrap_or(' ');
        if c == '"' || c == '\'' {
            // Copy a string literal as it is.
            let mut j = i + 1;
            while j < src.len() {
                let d = bytes[j];
                if d == b'\\' {
                    j += 2;
                    continue;
                }
                j += 1;
                if d == c as u8 {
                    break;
                }
            }
            let j = j.min(src.len());
            out.push_str(&src[i..j]);
            i = j;
            continue;
        }
        let word_start = i == 0 || {
            let p = bytes[i - 1];
            !(p.is_ascii_alphanumeric() || p == b'_' || p == b'.')
        };
        if word_start
            && let Some(name) = MACROS.iter().find(|m| {
                src[i..].starts_with(*m) && src[i + m.len()..].trim_start().starts_with('(')
            })
            && let Some(open) = src[i + name.len()..].find('(').map(|o| i + name.len() + o)
            && let Some((args, close)) = split_args(src, open)
            && args.len() == 3
        {
            out.push_str(&format!(
                "({}).{name}({}, {})",
                normalize(args[0].trim()),
                args[1].trim(),
                normalize(args[2].trim())
            ));
            i = close + 1;
            continue;
        }
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// The top-level arguments of the call whose `(` is at `open`, and the index of its `)`.
fn split_args(src: &str, open: usize) -> Option<(Vec<&str>, usize)> {
    let bytes = src.as_bytes();
    let mut depth = 0usize;
    let mut start = open + 1;
    let mut args = Vec::new();
    let mut quote: Option<u8> = None;
    let mut i = open;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            if b == b'\\' {
                i += 2;
                continue;
            }
            if b == q {
                quote = None;
            }
        } else {
            match b {
                b'"' | b'\'' => quote = Some(b),
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        args.push(&src[start..i]);
                        return Some((args, i));
                    }
                }
                b',' if depth == 1 => {
                    args.push(&src[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// Compiles a condition; the error says what is wrong in the expression.
pub fn compile(source: &str) -> Result<Condition, String> {
    if source.trim().is_empty() {
        return Err("empty expression".into());
    }
    let program = Program::compile(&normalize(source)).map_err(|e| {
        let text = e.to_string();
        let first = text
            .lines()
            .next()
            .unwrap_or("syntax error")
            .trim()
            .to_string();
        format!("invalid CEL expression \"{source}\": {first}")
    })?;
    Ok(Condition {
        program,
        source: source.to_string(),
    })
}

/// Evaluates a condition with `result` bound to `value`. A result that is not a bool, or an
/// evaluation failure (index out of range, wrong types), is an error naming the expression.
pub fn evaluate(condition: &Condition, value: &MetricValue) -> Result<bool, String> {
    let mut context = Context::default();
    context.add_variable_from_value("result", value.to_cel());
    // Names already known to the standard library make these fail: ignore, not fatal.
    let _ = context.add_function("isNaN", |x: f64| x.is_nan());
    let _ = context.add_function("isInf", |x: f64| x.is_infinite());
    match condition.program.execute(&context) {
        Ok(Value::Bool(b)) => Ok(b),
        Ok(other) => Err(format!(
            "\"{}\" evaluated to {:?}, expected a bool",
            condition.source,
            other.type_of()
        )),
        Err(e) => Err(format!(
            "evaluating \"{}\" with result = {}: {e}",
            condition.source,
            value.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::value::{Sample, Series};

    fn vector(values: &[f64]) -> MetricValue {
        MetricValue::Vector(
            values
                .iter()
                .map(|v| Sample {
                    labels: Default::default(),
                    value: *v,
                })
                .collect(),
        )
    }

    fn eval(expr: &str, value: &MetricValue) -> Result<bool, String> {
        evaluate(&compile(expr)?, value)
    }

    #[test]
    fn conditions_over_each_result_shape() {
        assert_eq!(eval("result[0] >= 0.95", &vector(&[0.97])), Ok(true));
        assert_eq!(eval("result[0] >= 0.95", &vector(&[0.9])), Ok(false));
        assert_eq!(
            eval("all(result, x, x < 0.5)", &vector(&[0.1, 0.4])),
            Ok(true)
        );
        assert_eq!(
            eval("all(result, x, x < 0.5)", &vector(&[0.1, 0.6])),
            Ok(false)
        );
        assert_eq!(eval("size(result) == 2", &vector(&[0.1, 0.6])), Ok(true));
        assert_eq!(eval("result > 1.0", &MetricValue::Scalar(2.0)), Ok(true));
        let m = MetricValue::Matrix(vec![Series {
            labels: Default::default(),
            points: vec![(1.0, 1.0), (2.0, 3.0)],
        }]);
        assert_eq!(
            eval("size(result[0]) == 2 && result[0][1] == 3.0", &m),
            Ok(true)
        );
    }

    #[test]
    fn nan_and_infinity_are_values() {
        assert_eq!(eval("isNaN(result[0])", &vector(&[f64::NAN])), Ok(true));
        assert_eq!(eval("isNaN(result[0])", &vector(&[0.5])), Ok(false));
        assert_eq!(
            eval("isInf(result[0])", &vector(&[f64::INFINITY])),
            Ok(true)
        );
        // cel-rust has no ordering for NaN: comparing it is an evaluation error (an Error
        // measurement, never a pass); `isNaN` guards against it.
        let e = eval("result[0] < 0.05", &vector(&[f64::NAN]))
            .err()
            .unwrap_or_default();
        assert!(e.contains("no matching overload"), "{e}");
        assert_eq!(
            eval("isNaN(result[0]) || result[0] < 0.05", &vector(&[f64::NAN])),
            Ok(true)
        );
    }

    #[test]
    fn the_function_form_of_macros_is_the_member_form() {
        assert_eq!(
            normalize("all(result, x, x < 0.5)"),
            "(result).all(x, x < 0.5)"
        );
        assert_eq!(
            normalize("size(result) > 0 && exists(result, v, v > f(1, 2)) && \"all(\" != ''"),
            "size(result) > 0 && (result).exists(v, v > f(1, 2)) && \"all(\" != ''"
        );
        assert_eq!(normalize("result.all(x, x > 0)"), "result.all(x, x > 0)");
        assert_eq!(
            eval("exists(result, x, x > 0.5)", &vector(&[0.1, 0.6])),
            Ok(true)
        );
    }

    #[test]
    fn bad_expressions_say_why() {
        let e = compile("result[0] <").err().unwrap_or_default();
        assert!(
            e.starts_with("invalid CEL expression \"result[0] <\""),
            "{e}"
        );
        assert!(compile(" ").is_err());
        let e = eval("result[0] + 1.0", &vector(&[1.0]))
            .err()
            .unwrap_or_default();
        assert!(e.contains("expected a bool"), "{e}");
        let e = eval("result[3] < 1.0", &vector(&[1.0]))
            .err()
            .unwrap_or_default();
        assert!(
            e.contains("evaluating \"result[3] < 1.0\" with result = [1]"),
            "{e}"
        );
    }
}
