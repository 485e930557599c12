//! Checks of backfill data, for the mistakes promtool accepts silently.

use std::collections::HashMap;

/// Timestamps above this are taken for milliseconds (1e11 s is the year 5138; a millisecond
/// timestamp of today is ~1.7e12).
const MAX_SECONDS: f64 = 1e11;

/// `text` ready for promtool: blank lines dropped, exactly one `# EOF` at the end. Refuses a
/// sample without timestamp, a timestamp in milliseconds, and a series whose samples are not in
/// strictly ascending time order.
pub(crate) fn prepare(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len() + 8);
    let mut last: HashMap<&str, f64> = HashMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        let number = index + 1;
        if line.is_empty() || line == "# EOF" {
            continue;
        }
        if !line.starts_with('#') {
            let (series, rest) = split_series(line)
                .ok_or_else(|| format!("line {number}: cannot read the sample `{line}`"))?;
            // `value timestamp [# exemplar]`
            let mut fields = rest.split_whitespace();
            let _value = fields.next();
            let timestamp = match fields.next() {
                Some(t) if t != "#" => t
                    .parse::<f64>()
                    .map_err(|_| format!("line {number}: `{t}` is not a timestamp in `{line}`"))?,
                _ => {
                    return Err(format!(
                        "line {number}: every backfilled sample needs a timestamp (seconds): `{line}`"
                    ));
                }
            };
            if timestamp.abs() > MAX_SECONDS {
                return Err(format!(
                    "line {number}: timestamp {timestamp} looks like milliseconds; \
                     OpenMetrics timestamps are seconds: `{line}`"
                ));
            }
            if let Some(previous) = last.insert(series, timestamp)
                && timestamp <= previous
            {
                return Err(format!(
                    "line {number}: samples of `{series}` must be in strictly ascending time \
                     order ({timestamp} after {previous}); promtool would drop this one"
                ));
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("# EOF\n");
    Ok(out)
}

/// Splits `name{labels} rest` (or `name rest`) into the series and the rest.
fn split_series(line: &str) -> Option<(&str, &str)> {
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    if line[name_end..].starts_with('{') {
        let mut in_string = false;
        let mut escaped = false;
        for (offset, c) in line[name_end..].char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if in_string => escaped = true,
                '"' => in_string = !in_string,
                '}' if !in_string => {
                    let end = name_end + offset + 1;
                    return Some((&line[..end], &line[end..]));
                }
                _ => {}
            }
        }
        None
    } else {
        Some((&line[..name_end], &line[name_end..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_good_data_and_adds_eof() -> Result<(), String> {
        let text = "# TYPE m gauge\nm{a=\"x} y\"} 1 100\nm{a=\"x} y\"} 2 160\n\nm 5 100.5\n";
        let out = prepare(text)?;
        assert!(out.ends_with("m 5 100.5\n# EOF\n"), "{out}");
        assert_eq!(prepare("m 1 10\n# EOF\n")?, "m 1 10\n# EOF\n");
        Ok(())
    }

    #[test]
    fn refuses_what_promtool_mangles() {
        let missing = prepare("m 1\n").err().unwrap_or_default();
        assert!(missing.contains("needs a timestamp"), "{missing}");
        let millis = prepare("m 1 1700000000000\n").err().unwrap_or_default();
        assert!(millis.contains("milliseconds"), "{millis}");
        let order = prepare("m{a=\"1\"} 1 20\nm{a=\"2\"} 1 10\nm{a=\"1\"} 2 20\n")
            .err()
            .unwrap_or_default();
        assert!(order.contains("ascending"), "{order}");
        let broken = prepare("m{a=\"1 1 20\n").err().unwrap_or_default();
        assert!(broken.contains("cannot read"), "{broken}");
    }
}
