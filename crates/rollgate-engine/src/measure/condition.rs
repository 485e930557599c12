//! Conditions in CEL over `result` (`result[0] < 0.05`, `all(result, x, x < 0.5)`,
//! `isNaN(result[0])`).

use cel::common::ast::{CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedExpr, LiteralValue};
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

/// Longest condition accepted, in bytes: conditions are one comparison or a few, and their
/// text is quoted in measurement messages.
pub const MAX_CONDITION_LEN: usize = 1024;

/// Most evaluation steps a condition may take over one measured value, as estimated by
/// [`cost`] before evaluating: `all(result, x, x < 0.5)` over a vector of 100,000 samples is
/// about 600,000. cel-rust has no step limit of its own; a condition over the budget is
/// refused (an Error measurement) instead of holding a thread for seconds or minutes.
pub const MAX_CONDITION_COST: u64 = 1_000_000;

/// What `result` holds: what the metric's query returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultShape {
    /// A number (a PromQL scalar).
    Scalar,
    /// A list of numbers (an instant vector).
    Vector,
    /// A list of lists of numbers (a range query, or a range vector).
    Matrix,
    /// Not known before measuring (the query's type depends on its arguments).
    Unknown,
}

/// Compiles a condition; the error says what is wrong in the expression: a syntax error, a
/// text longer than [`MAX_CONDITION_LEN`], or a variable other than `result`.
pub fn compile(source: &str) -> Result<Condition, String> {
    if source.trim().is_empty() {
        return Err("empty expression".into());
    }
    if source.len() > MAX_CONDITION_LEN {
        return Err(format!(
            "expected a CEL expression of at most {MAX_CONDITION_LEN} bytes, got {}",
            source.len()
        ));
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
    let condition = Condition {
        program,
        source: source.to_string(),
    };
    // Variables are checked whatever `result` holds.
    analyze(&condition, Ty::Dyn, 1)?;
    Ok(condition)
}

/// Checks that a compiled condition is a boolean when `result` has `shape`: `result[0]` alone
/// (a number) is refused naming what it evaluates to.
pub fn check_type(condition: &Condition, shape: ResultShape) -> Result<(), String> {
    let result = match shape {
        ResultShape::Scalar => Ty::Double,
        ResultShape::Vector => Ty::List(1, Box::new(Ty::Double)),
        ResultShape::Matrix => Ty::List(1, Box::new(Ty::List(1, Box::new(Ty::Double)))),
        ResultShape::Unknown => Ty::Dyn,
    };
    let (ty, _) = analyze(condition, result, 1)?;
    match ty {
        Ty::Bool | Ty::Dyn => Ok(()),
        other => Err(format!(
            "\"{}\" evaluates to {} when result is {}, expected a bool (a comparison such as \
             result[0] < 0.05)",
            condition.source,
            other.describe(),
            match shape {
                ResultShape::Scalar => "a number (the query returns a scalar)",
                ResultShape::Vector => "a list of numbers (the query returns a vector)",
                ResultShape::Matrix => "a list of lists of numbers (the query returns a matrix)",
                ResultShape::Unknown => "unknown",
            }
        )),
    }
}

/// An upper bound of the evaluation steps of `condition` with `result` bound to `value`
/// (saturating): each node visited once per iteration of the comprehensions around it, and
/// list copies (`map` and `filter` build their result one concatenation at a time) counted by
/// their length.
pub fn cost(condition: &Condition, value: &MetricValue) -> u64 {
    let (result, total) = match value {
        MetricValue::Scalar(_) => (Ty::Double, 1),
        MetricValue::Vector(samples) => {
            let n = samples.len() as u64;
            (Ty::List(n, Box::new(Ty::Double)), n)
        }
        MetricValue::Matrix(series) => {
            let longest = series.iter().map(|s| s.points.len()).max().unwrap_or(0) as u64;
            let points: u64 = series.iter().map(|s| s.points.len() as u64).sum();
            (
                Ty::List(
                    series.len() as u64,
                    Box::new(Ty::List(longest, Box::new(Ty::Double))),
                ),
                points.saturating_add(series.len() as u64),
            )
        }
    };
    analyze(condition, result, total.max(1)).map_or(u64::MAX, |(_, cost)| cost)
}

/// Evaluates a condition with `result` bound to `value`. A result that is not a bool, or an
/// evaluation failure (index out of range, wrong types), is an error naming the expression; so
/// is a condition whose [`cost`] over this value exceeds [`MAX_CONDITION_COST`], refused
/// without evaluating it.
pub fn evaluate(condition: &Condition, value: &MetricValue) -> Result<bool, String> {
    let estimate = cost(condition, value);
    if estimate > MAX_CONDITION_COST {
        return Err(format!(
            "\"{}\" is too expensive for a result of {} values: about {} evaluation steps, \
             more than the limit of {MAX_CONDITION_COST}; not evaluated",
            condition.source,
            value.len(),
            if estimate == u64::MAX {
                "too many".to_string()
            } else {
                estimate.to_string()
            }
        ));
    }
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

/// The static type of an expression, with an upper bound of the length of lists.
#[derive(Debug, Clone, PartialEq)]
enum Ty {
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Null,
    Type,
    Map,
    /// A list of at most this many elements of this type.
    List(u64, Box<Ty>),
    /// Anything (a list among them, of at most the whole value's size).
    Dyn,
}

impl Ty {
    fn describe(&self) -> &'static str {
        match self {
            Ty::Bool => "a bool",
            Ty::Int => "an int",
            Ty::Uint => "a uint",
            Ty::Double => "a number",
            Ty::String => "a string",
            Ty::Bytes => "bytes",
            Ty::Null => "null",
            Ty::Type => "a type",
            Ty::Map => "a map",
            Ty::List(..) => "a list",
            Ty::Dyn => "a value",
        }
    }

    fn is_numeric(&self) -> bool {
        matches!(self, Ty::Int | Ty::Uint | Ty::Double)
    }
}

/// Walks a compiled expression: its type, its cost, and the variables it names.
struct Analyzer {
    /// Type of `result`.
    result: Ty,
    /// Bound of the length of any list of unknown type (the number of values measured).
    total: u64,
    /// Comprehension variables in scope, innermost last.
    scopes: Vec<(String, Ty)>,
}

fn analyze(condition: &Condition, result: Ty, total: u64) -> Result<(Ty, u64), String> {
    let mut a = Analyzer {
        result,
        total,
        scopes: Vec::new(),
    };
    a.walk(condition.program.expression())
        .map_err(|e| format!("\"{}\": {e}", condition.source))
}

impl Analyzer {
    fn len(&self, t: &Ty) -> u64 {
        match t {
            Ty::List(n, _) => *n,
            Ty::Dyn | Ty::Map => self.total,
            _ => 1,
        }
    }

    /// Leaves of a value: what comparing or searching it touches.
    fn size(&self, t: &Ty) -> u64 {
        match t {
            Ty::List(n, e) => n.saturating_mul(self.size(e).max(1)),
            Ty::Dyn | Ty::Map => self.total,
            _ => 1,
        }
    }

    fn elem(t: &Ty) -> Ty {
        match t {
            Ty::List(_, e) => (**e).clone(),
            _ => Ty::Dyn,
        }
    }

    fn join(a: Ty, b: Ty) -> Ty {
        match (a, b) {
            (a, b) if a == b => a,
            (Ty::List(n, x), Ty::List(m, y)) => Ty::List(n.max(m), Box::new(Self::join(*x, *y))),
            _ => Ty::Dyn,
        }
    }

    fn walk(&mut self, e: &IdedExpr) -> Result<(Ty, u64), String> {
        Ok(match &e.expr {
            Expr::Unspecified => (Ty::Dyn, 1),
            Expr::Literal(l) => (
                match l {
                    LiteralValue::Boolean(_) => Ty::Bool,
                    LiteralValue::Bytes(_) => Ty::Bytes,
                    LiteralValue::Double(_) => Ty::Double,
                    LiteralValue::Int(_) => Ty::Int,
                    LiteralValue::Null => Ty::Null,
                    LiteralValue::String(_) => Ty::String,
                    LiteralValue::UInt(_) => Ty::Uint,
                },
                1,
            ),
            Expr::Ident(name) => {
                let ty = if let Some((_, t)) = self.scopes.iter().rev().find(|(n, _)| n == name) {
                    t.clone()
                } else if name == "result" {
                    self.result.clone()
                } else {
                    return Err(format!(
                        "unknown variable \"{name}\": a condition can only name result"
                    ));
                };
                (ty, 1)
            }
            Expr::Select(s) => {
                let (_, c) = self.walk(&s.operand)?;
                (if s.test { Ty::Bool } else { Ty::Dyn }, c.saturating_add(1))
            }
            Expr::List(l) => {
                let mut elem: Option<Ty> = None;
                let mut cost = 1u64;
                for x in &l.elements {
                    let (t, c) = self.walk(x)?;
                    cost = cost.saturating_add(c);
                    elem = Some(match elem {
                        None => t,
                        Some(p) => Self::join(p, t),
                    });
                }
                (
                    Ty::List(l.elements.len() as u64, Box::new(elem.unwrap_or(Ty::Dyn))),
                    cost,
                )
            }
            Expr::Map(m) => {
                let mut cost = 1u64;
                for entry in &m.entries {
                    match &entry.expr {
                        EntryExpr::StructField(f) => {
                            cost = cost.saturating_add(self.walk(&f.value)?.1);
                        }
                        EntryExpr::MapEntry(me) => {
                            cost = cost
                                .saturating_add(self.walk(&me.key)?.1)
                                .saturating_add(self.walk(&me.value)?.1);
                        }
                    }
                }
                (Ty::Map, cost)
            }
            Expr::Struct(st) => {
                let mut cost = 1u64;
                for entry in &st.entries {
                    if let EntryExpr::StructField(f) = &entry.expr {
                        cost = cost.saturating_add(self.walk(&f.value)?.1);
                    }
                }
                (Ty::Dyn, cost)
            }
            Expr::Comprehension(c) => self.comprehension(c)?,
            Expr::Call(call) => self.call(call)?,
        })
    }

    fn comprehension(&mut self, c: &ComprehensionExpr) -> Result<(Ty, u64), String> {
        let (range, range_cost) = self.walk(&c.iter_range)?;
        let (init, init_cost) = self.walk(&c.accu_init)?;
        let n = self.len(&range);
        let scope = self.scopes.len();
        let item = match (&range, &c.iter_var2) {
            (Ty::List(..), None) => Self::elem(&range),
            // Over a map or with two variables: keys, indices or values.
            _ => Ty::Dyn,
        };
        self.scopes.push((c.iter_var.clone(), item));
        if let Some(v2) = &c.iter_var2 {
            self.scopes.push((v2.clone(), Ty::Dyn));
        }
        // The standard macros add at most one element per iteration to a list accumulator.
        let grown = |elem: Ty| match &init {
            Ty::List(k, _) => Ty::List(k.saturating_add(n), Box::new(elem)),
            other => other.clone(),
        };
        self.scopes.push((c.accu_var.clone(), grown(Ty::Dyn)));
        let (step, _) = self.walk(&c.loop_step)?;
        let accu = grown(Self::elem(&step));
        if let Some(last) = self.scopes.last_mut() {
            last.1 = accu;
        }
        let (_, cond_cost) = self.walk(&c.loop_cond)?;
        let (_, step_cost) = self.walk(&c.loop_step)?;
        let (result, result_cost) = self.walk(&c.result)?;
        self.scopes.truncate(scope);
        let cost = range_cost
            .saturating_add(init_cost)
            .saturating_add(n.saturating_mul(cond_cost.saturating_add(step_cost)))
            .saturating_add(result_cost);
        Ok((result, cost))
    }

    fn call(&mut self, call: &CallExpr) -> Result<(Ty, u64), String> {
        let mut args = Vec::new();
        let mut cost = 1u64;
        if let Some(t) = &call.target {
            let (t, c) = self.walk(t)?;
            cost = cost.saturating_add(c);
            args.push(t);
        }
        for a in &call.args {
            let (t, c) = self.walk(a)?;
            cost = cost.saturating_add(c);
            args.push(t);
        }
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Ty::Dyn);
        let (ty, extra) = match call.func_name.as_str() {
            "_&&_"
            | "_||_"
            | "!_"
            | "@not_strictly_false"
            | "_<_"
            | "_<=_"
            | "_>_"
            | "_>=_"
            | "isNaN"
            | "isInf"
            | "contains"
            | "startsWith"
            | "endsWith"
            | "matches"
            | "has" => (Ty::Bool, 0),
            "_==_" | "_!=_" => (Ty::Bool, self.size(&arg(0)).max(self.size(&arg(1)))),
            "@in" => (Ty::Bool, self.size(&arg(1))),
            "_+_" => match (arg(0), arg(1)) {
                (Ty::List(n, x), Ty::List(m, y)) => (
                    Ty::List(n.saturating_add(m), Box::new(Self::join(*x, *y))),
                    n.saturating_add(m),
                ),
                (a, b) if a == b && (a.is_numeric() || matches!(a, Ty::String | Ty::Bytes)) => {
                    (a, 0)
                }
                (a, b) => (Ty::Dyn, self.size(&a).saturating_add(self.size(&b))),
            },
            "_-_" | "_*_" | "_/_" | "_%_" => match (arg(0), arg(1)) {
                (a, b) if a == b && a.is_numeric() => (a, 0),
                _ => (Ty::Dyn, 0),
            },
            "-_" => match arg(0) {
                a if a.is_numeric() => (a, 0),
                _ => (Ty::Dyn, 0),
            },
            "_?_:_" => (Self::join(arg(1), arg(2)), 0),
            "_[_]" => (Self::elem(&arg(0)), 0),
            "size" => (Ty::Int, 0),
            "int" => (Ty::Int, 0),
            "uint" => (Ty::Uint, 0),
            "double" => (Ty::Double, 0),
            "string" => (Ty::String, self.size(&arg(0))),
            "bytes" => (Ty::Bytes, 0),
            "bool" => (Ty::Bool, 0),
            "type" => (Ty::Type, 0),
            "max" | "min" if args.len() == 1 => (Self::elem(&arg(0)), self.size(&arg(0))),
            "max" | "min" => (
                args.iter().cloned().reduce(Self::join).unwrap_or(Ty::Dyn),
                0,
            ),
            // Anything else may go through its arguments once.
            _ => (
                Ty::Dyn,
                args.iter()
                    .fold(0u64, |acc, t| acc.saturating_add(self.size(t))),
            ),
        };
        Ok((ty, cost.saturating_add(extra)))
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

    #[test]
    fn a_condition_names_only_result() {
        let e = compile("results[0] < 0.05").err().unwrap_or_default();
        assert_eq!(
            e,
            "\"results[0] < 0.05\": unknown variable \"results\": a condition can only name result"
        );
        let e = compile("all(result, x, x < limit)")
            .err()
            .unwrap_or_default();
        assert!(e.contains("unknown variable \"limit\""), "{e}");
        // Comprehension variables are in scope in their body only.
        assert!(compile("all(result, x, x < 0.5)").is_ok());
        assert!(compile("all(result, x, x < 0.5) && x > 0.0").is_err());
        let long = format!("{}true", "1 < 2 && ".repeat(200));
        assert!(
            compile(&long).is_err_and(|e| e.contains("at most 1024 bytes")),
            "too long"
        );
    }

    #[test]
    fn a_condition_must_be_a_bool_for_what_the_query_returns() {
        let c = compile("result[0]").expect("compiles");
        let e = check_type(&c, ResultShape::Vector)
            .err()
            .unwrap_or_default();
        assert!(
            e.starts_with("\"result[0]\" evaluates to a number when result is a list of numbers"),
            "{e}"
        );
        assert!(check_type(&c, ResultShape::Unknown).is_ok(), "not knowable");
        let c = compile("result * 2.0").expect("compiles");
        assert!(check_type(&c, ResultShape::Scalar).is_err());
        let c = compile("result.map(x, x * 2.0)").expect("compiles");
        assert!(
            check_type(&c, ResultShape::Vector).is_err_and(|e| e.contains("evaluates to a list"))
        );
        for ok in [
            "result[0] < 0.05",
            "all(result, x, x < 0.5)",
            "size(result) == 0 || isNaN(result[0])",
            "result[0] > 1.0 ? true : false",
        ] {
            let c = compile(ok).expect("compiles");
            assert_eq!(check_type(&c, ResultShape::Vector), Ok(()), "{ok}");
        }
        let c = compile("all(result, s, all(s, p, p < 1.0))").expect("compiles");
        assert_eq!(check_type(&c, ResultShape::Matrix), Ok(()));
        let c = compile("result[0][1]").expect("compiles");
        assert!(check_type(&c, ResultShape::Matrix).is_err());
    }

    #[test]
    fn an_expensive_condition_over_a_big_result_is_refused_without_evaluating() {
        let big = vector(&vec![0.1; 50_000]);
        // Linear: evaluated.
        let c = compile("all(result, x, x < 0.5)").expect("compiles");
        assert!(cost(&c, &big) <= MAX_CONDITION_COST, "{}", cost(&c, &big));
        assert_eq!(evaluate(&c, &big), Ok(true));
        // Quadratic (and cubic): refused, whatever the values.
        for expensive in [
            "all(result, x, all(result, y, x <= y + 1.0))",
            "size(result.map(x, x)) > 0",
            "all(result, x, all(result, y, all(result, z, x + y + z < 10.0)))",
        ] {
            let c = compile(expensive).expect("compiles");
            let e = evaluate(&c, &big).err().unwrap_or_default();
            assert!(
                e.contains("is too expensive for a result of 50000 values")
                    && e.ends_with("not evaluated"),
                "{expensive}: {e}"
            );
            // The same condition over a small result is evaluated.
            assert!(evaluate(&c, &vector(&[0.1, 0.2])).is_ok(), "{expensive}");
        }
    }

    #[test]
    fn the_cost_bound_grows_with_the_result() {
        let c = compile("all(result, x, all(result, y, x <= y))").expect("compiles");
        let small = cost(&c, &vector(&[1.0; 10]));
        let large = cost(&c, &vector(&[1.0; 100]));
        assert!(large >= small * 90, "quadratic: {small} -> {large}");
        let m = MetricValue::Matrix(vec![
            Series {
                labels: Default::default(),
                points: vec![(1.0, 1.0); 1000],
            };
            1000
        ]);
        let c = compile("all(result, s, all(s, p, p < 1.0))").expect("compiles");
        assert!(cost(&c, &m) > 1_000_000, "{}", cost(&c, &m));
    }
}
