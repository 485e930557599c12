//! `lint`: files checked as `rollgate lint -f FILE...` checks them.

use crate::input::text;

/// A line starting with this begins a new file, named by the rest of the line (a YAML
/// comment, so one manifest is an input as it is).
pub const FILE_MARK: &str = "#=== ";

/// The input: one or more files, each starting at a line `#=== NAME` (text before the first
/// such line is a file named `input.yaml`). Checks that linting them never panics.
pub fn lint(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let _ = rollgate_lint::lint(&files(text));
}

/// The files of the input, as (name, text).
pub fn files(text: &str) -> Vec<(String, String)> {
    let mut files = vec![("input.yaml".to_string(), String::new())];
    for line in text.split_inclusive('\n') {
        match line.strip_prefix(FILE_MARK) {
            Some(name) => files.push((name.trim_end().to_string(), String::new())),
            None => {
                if let Some((_, body)) = files.last_mut() {
                    body.push_str(line);
                }
            }
        }
    }
    if files.len() > 1 && files[0].1.trim().is_empty() {
        files.remove(0);
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_split_the_input_into_named_files() {
        let f = files("#=== a.yaml\nkind: Service\n#=== b.yaml\nkind: Rollout\n");
        assert_eq!(
            f,
            vec![
                ("a.yaml".to_string(), "kind: Service\n".to_string()),
                ("b.yaml".to_string(), "kind: Rollout\n".to_string()),
            ]
        );
        assert_eq!(
            files("kind: X\n"),
            vec![("input.yaml".into(), "kind: X\n".into())]
        );
    }
}
