//! Promotion windows (`spec.stages[i].windows`): validation, cron day-of-week numbering, time
//! zones across daylight-saving changes, Deny over Allow, and merged stretches.
//!
//! Every expected instant below was worked out by hand from the calendar: 2026-03-29 and
//! 2026-10-25 are the last Sundays of March and October, when Europe/Paris goes from CET (+01)
//! to CEST (+02) and back.

use jiff::Timestamp;
use rollgate_api::pipeline::PromotionWindow;
use rollgate_engine::validate::Problem;
use rollgate_engine::window::{self, WindowState, Windows};

const FIELD: &str = "spec.stages[1].windows";

fn win(kind: &str, schedule: &str, duration: &str, tz: Option<&str>) -> PromotionWindow {
    PromotionWindow {
        kind: kind.into(),
        schedule: schedule.into(),
        duration: duration.into(),
        time_zone: tz.map(Into::into),
    }
}

fn parse(windows: &[PromotionWindow]) -> Windows {
    window::parse(FIELD, windows).expect("valid windows")
}

fn at(text: &str) -> Timestamp {
    text.parse().expect("a test timestamp")
}

fn open(closes: Option<&str>) -> WindowState {
    WindowState::Open {
        closes: closes.map(at),
    }
}

fn closed(opens: Option<&str>) -> WindowState {
    WindowState::Closed {
        opens: opens.map(at),
    }
}

/// Weekdays 09:00-17:00 in Paris.
fn paris_office_hours() -> PromotionWindow {
    win("Allow", "0 9 * * 1-5", "8h", Some("Europe/Paris"))
}

#[test]
fn no_windows_is_always_open() {
    let w = parse(&[]);
    assert!(w.is_empty());
    assert_eq!(w.state(at("2026-06-05T11:00:00Z")), open(None));
}

#[test]
fn weekday_allow_window_in_paris_across_spring_dst_change() {
    let w = parse(&[paris_office_hours()]);
    assert!(!w.is_empty());
    // Friday 27 March, 10:00 CET: open until 17:00 CET.
    assert_eq!(
        w.state(at("2026-03-27T09:00:00Z")),
        open(Some("2026-03-27T16:00:00Z"))
    );
    // Friday 18:00 CET: the weekend; Monday 30 March 09:00 is CEST (+02), 07:00 UTC.
    assert_eq!(
        w.state(at("2026-03-27T17:00:00Z")),
        closed(Some("2026-03-30T07:00:00Z"))
    );
    // Saturday and the Sunday of the change itself.
    assert_eq!(
        w.state(at("2026-03-28T12:00:00Z")),
        closed(Some("2026-03-30T07:00:00Z"))
    );
    assert_eq!(
        w.state(at("2026-03-29T01:30:00Z")),
        closed(Some("2026-03-30T07:00:00Z"))
    );
    // Monday 08:30 CEST (06:30 UTC, which a fixed +01 would call 07:30, inside the window).
    assert_eq!(
        w.state(at("2026-03-30T06:30:00Z")),
        closed(Some("2026-03-30T07:00:00Z"))
    );
    // Monday 10:30 CEST: open until 17:00 CEST, 15:00 UTC.
    assert_eq!(
        w.state(at("2026-03-30T08:30:00Z")),
        open(Some("2026-03-30T15:00:00Z"))
    );
    // The opening instant itself is open; the closing instant is closed.
    assert_eq!(
        w.state(at("2026-03-30T07:00:00Z")),
        open(Some("2026-03-30T15:00:00Z"))
    );
    assert_eq!(
        w.state(at("2026-03-30T15:00:00Z")),
        closed(Some("2026-03-31T07:00:00Z"))
    );
}

#[test]
fn weekday_allow_window_in_paris_across_autumn_dst_change() {
    let w = parse(&[paris_office_hours()]);
    // Friday 23 October 16:00 CEST: open until 17:00 CEST, 15:00 UTC.
    assert_eq!(
        w.state(at("2026-10-23T14:00:00Z")),
        open(Some("2026-10-23T15:00:00Z"))
    );
    // Friday 18:00 CEST: Monday 26 October 09:00 is CET (+01) again, 08:00 UTC.
    assert_eq!(
        w.state(at("2026-10-23T16:00:00Z")),
        closed(Some("2026-10-26T08:00:00Z"))
    );
    // Monday 08:30 CET (07:30 UTC, which a fixed +02 would call 09:30, inside the window).
    assert_eq!(
        w.state(at("2026-10-26T07:30:00Z")),
        closed(Some("2026-10-26T08:00:00Z"))
    );
    // Monday 13:00 CET: open until 17:00 CET, 16:00 UTC.
    assert_eq!(
        w.state(at("2026-10-26T12:00:00Z")),
        open(Some("2026-10-26T16:00:00Z"))
    );
}

#[test]
fn friday_18_00_opens_monday_09_00_paris() {
    let w = parse(&[paris_office_hours()]);
    // Friday 5 June 2026 18:00 CEST -> Monday 8 June 09:00 CEST.
    assert_eq!(
        w.state(at("2026-06-05T16:00:00Z")),
        closed(Some("2026-06-08T07:00:00Z"))
    );
    // Friday 4 December 2026 18:00 CET -> Monday 7 December 09:00 CET.
    assert_eq!(
        w.state(at("2026-12-04T17:00:00Z")),
        closed(Some("2026-12-07T08:00:00Z"))
    );
}

#[test]
fn deny_beats_allow_friday_afternoon_freeze() {
    let w = parse(&[
        paris_office_hours(),
        // Fridays from 12:00 to midnight.
        win("Deny", "0 12 * * FRI", "12h", Some("Europe/Paris")),
    ]);
    // Friday 5 June 11:00 CEST: open until the freeze at 12:00 CEST.
    assert_eq!(
        w.state(at("2026-06-05T09:00:00Z")),
        open(Some("2026-06-05T10:00:00Z"))
    );
    // Friday 13:00 CEST: frozen; the freeze ends at midnight, but the Allow window closed at
    // 17:00, so the next opening is Monday 09:00 CEST.
    assert_eq!(
        w.state(at("2026-06-05T11:00:00Z")),
        closed(Some("2026-06-08T07:00:00Z"))
    );
    // Thursday 13:00 CEST: no freeze, open until 17:00.
    assert_eq!(
        w.state(at("2026-06-04T11:00:00Z")),
        open(Some("2026-06-04T15:00:00Z"))
    );
}

#[test]
fn deny_only_closes_then_reopens() {
    let w = parse(&[win("Deny", "0 12 * * 5", "12h", Some("Europe/Paris"))]);
    // Thursday 4 June 13:00 CEST: no Allow window, so open until Friday 12:00 CEST.
    assert_eq!(
        w.state(at("2026-06-04T11:00:00Z")),
        open(Some("2026-06-05T10:00:00Z"))
    );
    // Friday 12:00 CEST exactly: closed until Saturday 00:00 CEST (Friday 22:00 UTC).
    assert_eq!(
        w.state(at("2026-06-05T10:00:00Z")),
        closed(Some("2026-06-05T22:00:00Z"))
    );
    // Reopened at midnight, until the next Friday noon.
    assert_eq!(
        w.state(at("2026-06-05T22:00:00Z")),
        open(Some("2026-06-12T10:00:00Z"))
    );
}

#[test]
fn back_to_back_and_overlapping_windows_merge() {
    // 09:00-17:00 then 17:00-19:00: one stretch.
    let w = parse(&[
        win("Allow", "0 9 * * 1-5", "8h", None),
        win("Allow", "0 17 * * 1-5", "2h", None),
    ]);
    assert_eq!(
        w.state(at("2026-06-01T10:00:00Z")),
        open(Some("2026-06-01T19:00:00Z"))
    );
    // 09:00-17:00 and 15:00-19:00: one stretch.
    let w = parse(&[
        win("Allow", "0 9 * * *", "8h", None),
        win("Allow", "0 15 * * *", "4h", None),
    ]);
    assert_eq!(
        w.state(at("2026-06-01T10:00:00Z")),
        open(Some("2026-06-01T19:00:00Z"))
    );
    // A window overlapping its own next occurrence never closes.
    let w = parse(&[win("Allow", "0 */4 * * *", "5h", None)]);
    assert_eq!(w.state(at("2026-06-01T10:00:00Z")), open(None));
    // Two back-to-back Deny days: a weekend freeze ends Monday 00:00.
    let w = parse(&[
        win("Deny", "0 0 * * SAT", "24h", None),
        win("Deny", "0 0 * * SUN", "24h", None),
    ]);
    assert_eq!(
        w.state(at("2026-06-06T10:00:00Z")),
        closed(Some("2026-06-08T00:00:00Z"))
    );
}

#[test]
fn a_long_freeze_over_a_frequent_allow_window_ends_with_the_freeze() {
    // Allowed 30 s of every minute; frozen from 1 June 00:00 CEST (31 May 22:00 UTC) for 300 h,
    // until 13 June 12:00 CEST, when a minute (and so an Allow window) starts.
    let w = parse(&[
        win("Allow", "* * * * *", "30s", Some("Europe/Paris")),
        win("Deny", "0 0 1 * *", "300h", Some("Europe/Paris")),
    ]);
    assert_eq!(
        w.state(at("2026-06-06T10:00:00Z")),
        closed(Some("2026-06-13T10:00:00Z"))
    );
    // Outside the freeze the state flips every 30 s.
    assert_eq!(
        w.state(at("2026-06-20T10:00:10Z")),
        open(Some("2026-06-20T10:00:30Z"))
    );
    assert_eq!(
        w.state(at("2026-06-20T10:00:40Z")),
        closed(Some("2026-06-20T10:01:00Z"))
    );
}

#[test]
fn a_window_that_never_fires_gives_up_after_the_horizon() {
    // 30 February never happens: always closed, no opening found.
    let w = parse(&[win("Allow", "0 0 30 2 *", "1h", None)]);
    assert_eq!(w.state(at("2026-06-01T10:00:00Z")), closed(None));
    // A yearly window more than 366 days away is not found either; one within is.
    let w = parse(&[win("Allow", "0 0 29 2 *", "1h", None)]);
    assert_eq!(w.state(at("2026-06-01T10:00:00Z")), closed(None));
    assert_eq!(
        w.state(at("2027-06-01T10:00:00Z")),
        closed(Some("2028-02-29T00:00:00Z"))
    );
}

/// jiff-cron 0.3 answers an instant inside a second with the next (or previous) whole second
/// without checking the day of week; the window module asks it from whole seconds only.
#[test]
fn day_of_week_holds_at_and_just_before_midnight() {
    let w = parse(&[win("Allow", "0 0 * * SAT", "1h", None)]);
    // Sunday 00:00:00 exactly: Saturday's hour is over, the next is a week later.
    assert_eq!(
        w.state(at("2026-06-07T00:00:00Z")),
        closed(Some("2026-06-13T00:00:00Z"))
    );
    // Saturday 23:59:59.5: the next whole second is Sunday, not a Saturday.
    assert_eq!(
        w.state(at("2026-06-06T23:59:59.5Z")),
        closed(Some("2026-06-13T00:00:00Z"))
    );
    // Friday 23:59:59.5: Saturday 00:00 is half a second away.
    assert_eq!(
        w.state(at("2026-06-05T23:59:59.5Z")),
        closed(Some("2026-06-06T00:00:00Z"))
    );
    assert_eq!(
        w.state(at("2026-06-06T00:00:00.5Z")),
        open(Some("2026-06-06T01:00:00Z"))
    );
}

/// The state at `t` of a one-hour daily 12:00 UTC window on the days `dow` names.
fn noon_on(dow: &str, t: &str) -> bool {
    parse(&[win("Allow", &format!("0 12 * * {dow}"), "1h", None)])
        .state(at(t))
        .is_open()
}

// 2026-06-01 is a Monday.
const MON: &str = "2026-06-01T12:30:00Z";
const TUE: &str = "2026-06-02T12:30:00Z";
const WED: &str = "2026-06-03T12:30:00Z";
const THU: &str = "2026-06-04T12:30:00Z";
const FRI: &str = "2026-06-05T12:30:00Z";
const SAT: &str = "2026-06-06T12:30:00Z";
const SUN: &str = "2026-06-07T12:30:00Z";
const WEEK: [&str; 7] = [MON, TUE, WED, THU, FRI, SAT, SUN];

fn days(dow: &str) -> Vec<bool> {
    WEEK.iter().map(|t| noon_on(dow, t)).collect()
}

#[test]
fn day_of_week_numbering_is_standard() {
    let t = true;
    let f = false;
    assert_eq!(days("1-5"), [t, t, t, t, t, f, f]);
    assert_eq!(days("MON-FRI"), [t, t, t, t, t, f, f]);
    assert_eq!(days("mon-fri"), [t, t, t, t, t, f, f]);
    assert_eq!(days("0"), [f, f, f, f, f, f, t]);
    assert_eq!(days("7"), [f, f, f, f, f, f, t]);
    assert_eq!(days("SUN"), [f, f, f, f, f, f, t]);
    assert_eq!(days("1"), [t, f, f, f, f, f, f]);
    assert_eq!(days("6"), [f, f, f, f, f, t, f]);
    assert_eq!(days("5-7"), [f, f, f, f, t, t, t]);
    assert_eq!(days("0,6"), [f, f, f, f, f, t, t]);
    assert_eq!(days("*/2"), [f, t, f, t, f, t, t]);
    assert_eq!(days("1-5/2"), [t, f, t, f, t, f, f]);
    assert_eq!(days("*"), [t, t, t, t, t, t, t]);
}

#[test]
fn day_of_month_or_day_of_week_when_both_are_restricted() {
    // Standard cron: the 13th, and every Friday. 2026-08-13 is a Thursday.
    let w = parse(&[win("Allow", "0 12 13 * 5", "1h", None)]);
    assert!(w.state(at("2026-08-13T12:30:00Z")).is_open());
    assert!(w.state(at("2026-08-07T12:30:00Z")).is_open());
    assert_eq!(
        w.state(at("2026-08-12T12:30:00Z")),
        closed(Some("2026-08-13T12:00:00Z"))
    );
    // With `*` in either, only the other restricts.
    let w = parse(&[win("Allow", "0 12 * JAN-MAR 5", "1h", None)]);
    assert!(!w.state(at("2026-08-07T12:30:00Z")).is_open());
    assert!(w.state(at("2026-03-27T12:30:00Z")).is_open());
}

fn problems(windows: &[PromotionWindow]) -> Vec<Problem> {
    match window::parse(FIELD, windows) {
        Ok(_) => Vec::new(),
        Err(p) => p,
    }
}

fn fields(windows: &[PromotionWindow]) -> Vec<String> {
    problems(windows).into_iter().map(|p| p.field).collect()
}

#[test]
fn every_validation_error_names_its_field() {
    let ok = || win("Allow", "0 9 * * 1-5", "8h", Some("Europe/Paris"));
    let cases: Vec<(PromotionWindow, &str, &str)> = vec![
        (
            win("Maybe", "0 9 * * 1-5", "8h", None),
            "kind",
            "Allow or Deny",
        ),
        (
            win("allow", "0 9 * * 1-5", "8h", None),
            "kind",
            "Allow or Deny",
        ),
        (win("Allow", "0 9 * *", "8h", None), "schedule", "5 fields"),
        (
            win("Allow", "0 0 9 * * 1", "8h", None),
            "schedule",
            "5 fields",
        ),
        (win("Allow", "", "8h", None), "schedule", "5 fields"),
        (win("Allow", "0 9 * * 8", "8h", None), "schedule", "0-7"),
        (
            win("Allow", "0 9 * * 5-1", "8h", None),
            "schedule",
            "backwards",
        ),
        (win("Allow", "61 9 * * *", "8h", None), "schedule", "cron"),
        (win("Allow", "0 24 * * *", "8h", None), "schedule", "cron"),
        (win("Allow", "0 9 32 * *", "8h", None), "schedule", "cron"),
        (win("Allow", "0 9 * 13 *", "8h", None), "schedule", "cron"),
        (
            win("Allow", "0 9 * * MOONDAY", "8h", None),
            "schedule",
            "cron",
        ),
        (
            win("Allow", "0 9 * * 1", "0", None),
            "duration",
            "above zero",
        ),
        (
            win("Allow", "0 9 * * 1", "0s", None),
            "duration",
            "above zero",
        ),
        (
            win("Allow", "0 9 * * 1", "soon", None),
            "duration",
            "above zero",
        ),
        (
            win("Allow", "0 9 * * 1", "-1h", None),
            "duration",
            "negative",
        ),
        (
            win("Allow", "0 9 * * 1", "9000h", None),
            "duration",
            "366 days",
        ),
        (
            win("Allow", "0 9 * * 1", "8h", Some("Mars/Olympus")),
            "timeZone",
            "IANA",
        ),
        (
            win("Allow", "0 9 * * 1", "8h", Some("")),
            "timeZone",
            "IANA",
        ),
    ];
    for (bad, name, expected) in cases {
        // The bad window second, so the index shows in the field.
        let found = problems(&[ok(), bad.clone()]);
        assert_eq!(found.len(), 1, "{bad:?}: {found:?}");
        assert_eq!(found[0].field, format!("{FIELD}[1].{name}"), "{bad:?}");
        assert!(
            found[0].expected.contains(expected),
            "{bad:?}: {:?} should contain {expected:?}",
            found[0].expected
        );
    }
    // All mistakes of one window are reported together.
    assert_eq!(
        fields(&[win("Sometimes", "every day", "never", Some("Nowhere"))]),
        [
            format!("{FIELD}[0].kind"),
            format!("{FIELD}[0].schedule"),
            format!("{FIELD}[0].duration"),
            format!("{FIELD}[0].timeZone"),
        ]
    );
    // The time zone defaults to UTC; names are found in any case.
    assert!(fields(&[win("Deny", "0 9 * * 1", "1h", None)]).is_empty());
    assert!(fields(&[win("Deny", "0 9 * * 1", "1h", Some("europe/paris"))]).is_empty());
}

#[test]
fn the_time_zone_default_is_utc() {
    let w = parse(&[win("Allow", "0 9 * * *", "1h", None)]);
    assert_eq!(
        w.state(at("2026-06-01T08:30:00Z")),
        closed(Some("2026-06-01T09:00:00Z"))
    );
    let w = parse(&[win("Allow", "0 9 * * *", "1h", Some("America/New_York"))]);
    // 09:00 EDT (-04) is 13:00 UTC.
    assert_eq!(
        w.state(at("2026-06-01T08:30:00Z")),
        closed(Some("2026-06-01T13:00:00Z"))
    );
}
