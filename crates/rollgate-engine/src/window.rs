//! Promotion windows: recurring Allow and Deny windows of a pipeline stage
//! (`spec.stages[i].windows`), and whether promotions are allowed at a given instant.
//!
//! A window opens at each occurrence of its schedule, a standard 5-field cron expression
//! (`minute hour day-of-month month day-of-week`) read in the window's IANA time zone, and stays
//! open for its duration (elapsed time, so a window that spans a daylight-saving change lasts
//! exactly that long). Promotions are allowed when no Deny window is open and, if the stage has
//! Allow windows at all, at least one of them is open. Deny beats Allow.
//!
//! Cron follows the standard (Vixie) reading: day of week `0`-`7` with `0` and `7` both Sunday,
//! names (`MON-FRI`, `JAN`) in any case, `*`, `*/n`, ranges `a-b`, `a-b/n` and lists; when both
//! the day of month and the day of week are restricted (neither starts with `*`), a day matching
//! either one fires. Schedules are evaluated with the `jiff-cron` crate, which wants a seconds
//! field first and numbers Sunday `1` to Saturday `7`: [`parse`] converts the expression.
//!
//! Time zones come from the IANA database bundled into the binary (jiff's `tzdb-bundle-always`),
//! never from the machine's `/usr/share/zoneinfo`, so every machine decides the same.
//!
//! Pure: no clock is read; [`Windows::state`] is given the time.

use std::sync::LazyLock;

use jiff::tz::{TimeZone, TimeZoneDatabase};
use jiff::{SignedDuration, Timestamp};
use jiff_cron::Schedule;
use rollgate_api::pipeline::PromotionWindow;

use crate::validate::Problem;

/// How far ahead [`Windows::state`] looks for the next change of state.
pub const HORIZON: SignedDuration = SignedDuration::from_hours(366 * 24);

/// The longest window duration accepted.
pub const MAX_DURATION: SignedDuration = HORIZON;

/// Most state boundaries [`Windows::state`] steps through (and most occurrences one window chains
/// into one open stretch) before it gives up, as it does past [`HORIZON`]. Only schedules firing
/// every few minutes come near it.
const MAX_STEPS: usize = 20_000;

/// The IANA time zone database bundled into the binary.
static TZDB: LazyLock<TimeZoneDatabase> = LazyLock::new(TimeZoneDatabase::bundled);

/// Allow or Deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// Promotions are allowed while it is open.
    Allow,
    /// Promotions are denied while it is open (beats Allow).
    Deny,
}

/// One validated window.
#[derive(Debug, Clone)]
struct Window {
    /// One schedule, or two when day of month and day of week are both restricted (either fires).
    schedules: Vec<Schedule>,
    /// The schedule's time zone.
    tz: TimeZone,
    /// How long it stays open after each occurrence (above zero).
    duration: SignedDuration,
}

/// Validated windows of one stage.
#[derive(Debug, Clone, Default)]
pub struct Windows {
    allow: Vec<Window>,
    deny: Vec<Window>,
}

/// Whether promotions are allowed at an instant, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowState {
    /// Promotions are allowed.
    Open {
        /// When they stop being allowed; `None`: not within [`HORIZON`].
        closes: Option<Timestamp>,
    },
    /// Promotions are not allowed.
    Closed {
        /// When they are allowed again; `None`: not within [`HORIZON`].
        opens: Option<Timestamp>,
    },
}

impl WindowState {
    /// True when promotions are allowed.
    pub fn is_open(&self) -> bool {
        matches!(self, WindowState::Open { .. })
    }
}

/// Parses `windows` of the stage at `field` (e.g. `spec.stages[1].windows`). Every mistake is a
/// [`Problem`] naming `{field}[i].kind|schedule|duration|timeZone` and what was expected.
pub fn parse(field: &str, windows: &[PromotionWindow]) -> Result<Windows, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut out = Windows::default();
    for (i, w) in windows.iter().enumerate() {
        let at = |name: &str| format!("{field}[{i}].{name}");
        let kind = match w.kind.as_str() {
            "Allow" => Some(WindowKind::Allow),
            "Deny" => Some(WindowKind::Deny),
            other => {
                problems.push(Problem {
                    field: at("kind"),
                    expected: format!("Allow or Deny, got \"{other}\""),
                });
                None
            }
        };
        let schedules = match schedules(&w.schedule) {
            Ok(s) => Some(s),
            Err(why) => {
                problems.push(Problem {
                    field: at("schedule"),
                    expected: format!(
                        "a 5-field cron schedule `minute hour day-of-month month day-of-week` \
                         (e.g. `0 9 * * 1-5`), got \"{}\": {why}",
                        w.schedule
                    ),
                });
                None
            }
        };
        let duration = match duration(&w.duration) {
            Ok(d) => Some(d),
            Err(why) => {
                problems.push(Problem {
                    field: at("duration"),
                    expected: why,
                });
                None
            }
        };
        let tz = match time_zone(w.time_zone.as_deref()) {
            Ok(tz) => Some(tz),
            Err(why) => {
                problems.push(Problem {
                    field: at("timeZone"),
                    expected: why,
                });
                None
            }
        };
        if let (Some(kind), Some(schedules), Some(duration), Some(tz)) =
            (kind, schedules, duration, tz)
        {
            let window = Window {
                schedules,
                tz,
                duration,
            };
            match kind {
                WindowKind::Allow => out.allow.push(window),
                WindowKind::Deny => out.deny.push(window),
            }
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

impl Windows {
    /// True when the stage has no window at all: promotions are always allowed.
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    /// Whether promotions are allowed at `now`, and the next instant that changes (searched up to
    /// [`HORIZON`] ahead; overlapping and back-to-back windows count as one stretch).
    pub fn state(&self, now: Timestamp) -> WindowState {
        let horizon = plus(now, HORIZON);
        if self.open_at(now) {
            // Closes when a Deny window opens or the stretch of Allow windows ends, if earlier.
            let deny = self.deny.iter().filter_map(|w| w.next_start(now)).min();
            let allow_end = if self.allow.is_empty() {
                None
            } else {
                stretch_end(&self.allow, now, horizon)
            };
            let closes = deny.into_iter().chain(allow_end).min();
            return WindowState::Open {
                closes: closes.filter(|c| *c <= horizon),
            };
        }
        // Closed: step over Deny stretches and gaps between Allow windows until both agree.
        let mut t = now;
        for _ in 0..MAX_STEPS {
            if t > horizon {
                break;
            }
            let next = if self.deny.iter().any(|w| w.is_open(t)) {
                stretch_end(&self.deny, t, horizon)
            } else if !self.allow.is_empty() && !self.allow.iter().any(|w| w.is_open(t)) {
                self.allow.iter().filter_map(|w| w.next_start(t)).min()
            } else {
                return WindowState::Closed { opens: Some(t) };
            };
            match next {
                Some(next) => t = next,
                None => break,
            }
        }
        WindowState::Closed { opens: None }
    }

    /// True when promotions are allowed at `t`.
    fn open_at(&self, t: Timestamp) -> bool {
        let allowed = self.allow.is_empty() || self.allow.iter().any(|w| w.is_open(t));
        allowed && !self.deny.iter().any(|w| w.is_open(t))
    }
}

impl Window {
    /// The latest occurrence at or before `t`.
    fn last_start(&self, t: Timestamp) -> Option<Timestamp> {
        // jiff-cron 0.3 returns a time within the second of its argument without checking the
        // day of week (`SAT` at Sunday 00:00:00.000000001 gave Sunday 00:00): ask it from a
        // whole second only, and test that second itself with `includes`, which checks it.
        let second = floor_second(t).to_zoned(self.tz.clone());
        self.schedules
            .iter()
            .filter_map(|s| {
                if s.includes(second.clone()) {
                    Some(second.clone())
                } else {
                    s.after(second.clone()).next_back()
                }
            })
            .map(|z| z.timestamp())
            .max()
    }

    /// The earliest occurrence strictly after `t`.
    fn next_start(&self, t: Timestamp) -> Option<Timestamp> {
        // From a whole second only, as in `last_start`.
        let floor = floor_second(t);
        let ceil = if floor == t {
            floor
        } else {
            plus(floor, SignedDuration::from_secs(1))
        };
        let second = ceil.to_zoned(self.tz.clone());
        self.schedules
            .iter()
            .filter_map(|s| {
                if ceil > t && s.includes(second.clone()) {
                    Some(second.clone())
                } else {
                    s.after(second.clone()).next()
                }
            })
            .map(|z| z.timestamp())
            .min()
    }

    /// True when the window is open at `t` (from an occurrence, inclusive, for its duration).
    fn is_open(&self, t: Timestamp) -> bool {
        self.last_start(t)
            .is_some_and(|start| t < plus(start, self.duration))
    }

    /// When the stretch of this window that is open at `t` ends, chaining occurrences that
    /// start before it ends; past `horizon` as found, `None` when the search gave up.
    fn open_until(&self, t: Timestamp, horizon: Timestamp) -> Option<Timestamp> {
        let mut end = plus(self.last_start(t)?, self.duration);
        let mut cursor = t;
        for _ in 0..MAX_STEPS {
            if end > horizon {
                return Some(end);
            }
            match self.next_start(cursor) {
                Some(next) if next <= end => {
                    end = end.max(plus(next, self.duration));
                    cursor = next;
                }
                _ => return Some(end),
            }
        }
        None
    }
}

/// When the stretch of `windows` open at `t` ends: the first instant from `t` on at which none
/// of them is open (overlapping and back-to-back windows merge). Past `horizon` as found, `None`
/// when the search gave up.
fn stretch_end(windows: &[Window], t: Timestamp, horizon: Timestamp) -> Option<Timestamp> {
    let mut end = t;
    for _ in 0..MAX_STEPS {
        let mut next = end;
        for w in windows.iter().filter(|w| w.is_open(end)) {
            next = next.max(w.open_until(end, horizon)?);
        }
        if next == end || next > horizon {
            return Some(next);
        }
        end = next;
    }
    None
}

/// `t` rounded down to a whole second.
fn floor_second(t: Timestamp) -> Timestamp {
    let whole = Timestamp::from_second(t.as_second()).unwrap_or(t);
    if whole > t {
        whole
            .checked_sub(SignedDuration::from_secs(1))
            .unwrap_or(whole)
    } else {
        whole
    }
}

/// `t + d`, saturating at the largest timestamp.
fn plus(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

/// A window's duration: above zero, at most [`MAX_DURATION`].
fn duration(text: &str) -> Result<SignedDuration, String> {
    let wanted = "a duration above zero such as 30m or 8h";
    let d = rollgate_api::duration::parse(text).map_err(|e| format!("{wanted}: {e}"))?;
    match SignedDuration::try_from(d) {
        Ok(d) if d.is_zero() => Err(format!("{wanted}, got \"{text}\"")),
        Ok(d) if d <= MAX_DURATION => Ok(d),
        _ => Err(format!("a duration of at most 366 days, got \"{text}\"")),
    }
}

/// A window's time zone: an IANA name, UTC when absent.
fn time_zone(name: Option<&str>) -> Result<TimeZone, String> {
    let Some(name) = name else {
        return Ok(TimeZone::UTC);
    };
    TZDB.get(name).map_err(|_| {
        format!("an IANA time zone such as UTC or Europe/Paris, got \"{name}\" (unknown)")
    })
}

/// The jiff-cron schedules of a standard 5-field cron expression: one, or two when day of month
/// and day of week are both restricted (standard cron then fires on a day matching either).
fn schedules(expression: &str) -> Result<Vec<Schedule>, String> {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    let [minute, hour, dom, month, dow] = fields[..] else {
        return Err(format!("expected 5 fields, found {}", fields.len()));
    };
    let dow = day_of_week(dow)?;
    // Standard cron tests the first character: `*/2` counts as unrestricted too.
    let unrestricted = |f: &str| f.starts_with('*') || f.starts_with('?');
    let texts = if unrestricted(dom) || unrestricted(&dow) {
        vec![format!("0 {minute} {hour} {dom} {month} {dow}")]
    } else {
        vec![
            format!("0 {minute} {hour} {dom} {month} *"),
            format!("0 {minute} {hour} * {month} {dow}"),
        ]
    };
    texts
        .iter()
        .map(|t| t.parse::<Schedule>().map_err(|e| e.to_string()))
        .collect()
}

/// Converts a standard day-of-week field (0-7, 0 and 7 Sunday) to jiff-cron's numbering
/// (1 Sunday to 7 Saturday). Numeric items are rewritten as lists of days (a range such as
/// `5-7`, Friday to Sunday, has no range form there); `*`, `*/n` (the same days in both
/// numberings, counted from Sunday) and names (which jiff-cron numbers itself) pass unchanged.
fn day_of_week(field: &str) -> Result<String, String> {
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let day = |s: &str| match s.parse::<u32>() {
        Ok(d) if d <= 7 => Ok(d),
        _ => Err(format!(
            "day of week must be 0-7 (0 and 7 = Sunday) or a name, got \"{s}\""
        )),
    };
    let mut out = Vec::new();
    for item in field.split(',') {
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => (base, Some(step)),
            None => (item, None),
        };
        let (first, last) = match base.split_once('-') {
            Some((a, b)) if numeric(a) && numeric(b) => (day(a)?, day(b)?),
            // `n/step`: from n to the end of the week.
            None if numeric(base) => (day(base)?, if step.is_some() { 7 } else { day(base)? }),
            _ => {
                out.push(item.to_string());
                continue;
            }
        };
        let step = match step {
            None => 1,
            Some(s) => match s.parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => return Err(format!("day-of-week step must be above zero, got \"{s}\"")),
            },
        };
        if first > last {
            return Err(format!("day-of-week range \"{base}\" runs backwards"));
        }
        out.extend(
            (first..=last)
                .step_by(step)
                .map(|d| (d % 7 + 1).to_string()),
        );
    }
    Ok(out.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_of_week_numbers_become_sunday_one() {
        assert_eq!(day_of_week("1-5"), Ok("2,3,4,5,6".to_string()));
        assert_eq!(day_of_week("0"), Ok("1".to_string()));
        assert_eq!(day_of_week("7"), Ok("1".to_string()));
        assert_eq!(day_of_week("6"), Ok("7".to_string()));
        assert_eq!(day_of_week("5-7"), Ok("6,7,1".to_string()));
        assert_eq!(day_of_week("0-6/2"), Ok("1,3,5,7".to_string()));
        assert_eq!(day_of_week("1/3"), Ok("2,5,1".to_string()));
        assert_eq!(
            day_of_week("1,3,MON-FRI,*/2"),
            Ok("2,4,MON-FRI,*/2".to_string())
        );
    }

    #[test]
    fn day_of_week_mistakes() {
        for bad in ["8", "1-8", "5-1", "1-5/0", "1-5/x"] {
            assert!(day_of_week(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn both_days_restricted_gives_two_schedules() {
        assert_eq!(schedules("0 12 13 * 5").map(|s| s.len()), Ok(2));
        assert_eq!(schedules("0 12 * * 5").map(|s| s.len()), Ok(1));
        assert_eq!(schedules("0 12 */2 * 5").map(|s| s.len()), Ok(1));
        assert_eq!(schedules("0 12 13 * *").map(|s| s.len()), Ok(1));
    }
}
