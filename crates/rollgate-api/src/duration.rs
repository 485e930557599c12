//! Durations as rollgate's resources, scenario files and command line write them: a whole
//! number of seconds (`30`), or a duration with units in jiff's friendly or Go-style format
//! (`30s`, `5m`, `1h30m`, `1.5h`, `500ms`, `2 minutes`). Negative durations are refused.
//!
//! Every crate parses durations with [`parse`], so a duration the controller accepts is one
//! `rollgate lint`, `rollgate simulate` and `rollgate status --timeout` accept too.

use std::time::Duration;

use k8s_openapi::jiff::SignedDuration;

/// Why a text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Neither a number of seconds nor a duration with units.
    #[error("expected seconds or a duration such as 30s, 5m or 1h30m, got \"{0}\"")]
    Invalid(String),
    /// A valid duration, but below zero.
    #[error("must not be negative, got \"{0}\"")]
    Negative(String),
}

/// Parses a duration: a whole number of seconds, or a duration with units. Surrounding
/// whitespace is ignored; an empty text is [`DurationError::Invalid`].
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let t = text.trim();
    let signed = match t.parse::<i64>() {
        Ok(secs) => SignedDuration::from_secs(secs),
        Err(_) => t
            .parse::<SignedDuration>()
            .map_err(|_| DurationError::Invalid(text.to_string()))?,
    };
    Duration::try_from(signed).map_err(|_| DurationError::Negative(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Result<Duration, DurationError> {
        Ok(Duration::from_secs(s))
    }

    #[test]
    fn plain_numbers_are_seconds() {
        assert_eq!(parse("0"), secs(0));
        assert_eq!(parse("30"), secs(30));
        assert_eq!(parse(" 90 "), secs(90));
    }

    #[test]
    fn friendly_and_go_style_units() {
        assert_eq!(parse("30s"), secs(30));
        assert_eq!(parse("5m"), secs(300));
        assert_eq!(parse("1h30m"), secs(5400));
        assert_eq!(parse("1.5h"), secs(5400));
        assert_eq!(parse("2 minutes"), secs(120));
        assert_eq!(parse("1h 2m 3s"), secs(3723));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn negative_durations_are_refused() {
        assert_eq!(parse("-5"), Err(DurationError::Negative("-5".into())));
        assert_eq!(parse("-5m"), Err(DurationError::Negative("-5m".into())));
        assert_eq!(
            parse("-5m").map_err(|e| e.to_string()),
            Err("must not be negative, got \"-5m\"".to_string())
        );
    }

    #[test]
    fn anything_else_is_invalid_and_quoted_as_written() {
        for text in ["", "  ", "soon", "5 parsecs", "now()", "1x", "m5"] {
            assert_eq!(
                parse(text),
                Err(DurationError::Invalid(text.into())),
                "{text:?}"
            );
        }
        assert_eq!(
            parse("often").map_err(|e| e.to_string()),
            Err("expected seconds or a duration such as 30s, 5m or 1h30m, got \"often\"".into())
        );
    }
}
