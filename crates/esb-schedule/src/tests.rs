//! Schedule expressions against dates checked by hand on a calendar (weekdays noted inline).

use super::*;
use chrono::TimeZone;

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

/// `expr`'s next fire after `after` is `want`.
#[track_caller]
fn check(expr: &str, after: DateTime<Utc>, want: Option<DateTime<Utc>>) {
    let s = Schedule::parse(expr).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.next_after(after), want, "{expr} after {after}");
}

/// `expr` is rejected with a message containing `reason`.
#[track_caller]
fn check_err(expr: &str, reason: &str) {
    match Schedule::parse(expr) {
        Ok(s) => panic!("{expr} parsed: {s:?}"),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains(reason), "{expr}: {msg:?} lacks {reason:?}");
            assert!(msg.contains(expr.trim()), "{msg:?} names the expression");
        }
    }
}

#[test]
fn daily_and_lists() {
    check(
        "cron(0 12 * * ? *)",
        at(2026, 1, 1, 11, 59),
        Some(at(2026, 1, 1, 12, 0)),
    );
    // Strictly after: a fire at exactly `after` is not returned again.
    check(
        "cron(0 12 * * ? *)",
        at(2026, 1, 1, 12, 0),
        Some(at(2026, 1, 2, 12, 0)),
    );
    check(
        "cron(5,35 14 * * ? *)",
        at(2026, 1, 1, 14, 5),
        Some(at(2026, 1, 1, 14, 35)),
    );
    // Day-of-month `?` with day-of-week `*` is the other legal spelling of "every day".
    check(
        "cron(0 12 ? * * *)",
        at(2026, 1, 1, 12, 0),
        Some(at(2026, 1, 2, 12, 0)),
    );
    check(
        "  cron(0 12 ? * * *)  ",
        at(2026, 1, 1, 12, 0),
        Some(at(2026, 1, 2, 12, 0)),
    );
}

#[test]
fn steps() {
    let s = Schedule::parse("cron(0/15 * * * ? *)").unwrap();
    let t = Utc.with_ymd_and_hms(2026, 3, 4, 10, 7, 30).unwrap();
    assert_eq!(s.next_after(t), Some(at(2026, 3, 4, 10, 15)));
    assert_eq!(
        s.next_after(at(2026, 3, 4, 10, 45)),
        Some(at(2026, 3, 4, 11, 0))
    );
    check(
        "cron(1/10 * * * ? *)",
        at(2026, 3, 4, 10, 1),
        Some(at(2026, 3, 4, 10, 11)),
    );
    check(
        "cron(1/10 * * * ? *)",
        at(2026, 3, 4, 10, 51),
        Some(at(2026, 3, 4, 11, 1)),
    );
    check(
        "cron(*/20 * * * ? *)",
        at(2026, 3, 4, 10, 41),
        Some(at(2026, 3, 4, 11, 0)),
    );
}

#[test]
fn weekdays_use_aws_numbering() {
    // 2026-11-20 is a Friday, 21 Saturday, 22 Sunday, 23 Monday.
    let fri = at(2026, 11, 20, 17, 55);
    check(
        "cron(0/5 8-17 ? * MON-FRI *)",
        fri,
        Some(at(2026, 11, 23, 8, 0)),
    );
    check(
        "cron(0/5 8-17 ? * 2-6 *)",
        fri,
        Some(at(2026, 11, 23, 8, 0)),
    );
    check("cron(0 12 ? * 1 *)", fri, Some(at(2026, 11, 22, 12, 0)));
    check("cron(0 12 ? * SUN *)", fri, Some(at(2026, 11, 22, 12, 0)));
    check("cron(0 12 ? * 7 *)", fri, Some(at(2026, 11, 21, 12, 0)));
    check(
        "cron(0 12 ? * mon-fri *)",
        fri,
        Some(at(2026, 11, 23, 12, 0)),
    );
    // A lone `L` in day-of-week is its last day: Saturday.
    check("cron(0 12 ? * L *)", fri, Some(at(2026, 11, 21, 12, 0)));
    // A wrapping weekday range: Friday to Monday skips Tuesday-Thursday.
    check(
        "cron(0 12 ? * FRI-MON *)",
        at(2026, 11, 23, 12, 0),
        Some(at(2026, 11, 27, 12, 0)),
    );
}

#[test]
fn wrapping_hour_range() {
    check(
        "cron(0 20-2 * * ? *)",
        at(2026, 1, 1, 2, 30),
        Some(at(2026, 1, 1, 20, 0)),
    );
    check(
        "cron(0 20-2 * * ? *)",
        at(2026, 1, 1, 23, 0),
        Some(at(2026, 1, 2, 0, 0)),
    );
    check(
        "cron(0 20-2 * * ? *)",
        at(2026, 1, 2, 2, 0),
        Some(at(2026, 1, 2, 20, 0)),
    );
}

#[test]
fn last_day_of_month() {
    check(
        "cron(0 10 L * ? *)",
        at(2024, 2, 1, 0, 0),
        Some(at(2024, 2, 29, 10, 0)),
    );
    check(
        "cron(0 10 L * ? *)",
        at(2023, 2, 1, 0, 0),
        Some(at(2023, 2, 28, 10, 0)),
    );
    // 2100 is not a leap year (divisible by 100, not by 400); 2000 was.
    check(
        "cron(0 10 L * ? *)",
        at(2100, 2, 1, 0, 0),
        Some(at(2100, 2, 28, 10, 0)),
    );
    check(
        "cron(0 10 L * ? *)",
        at(2000, 2, 1, 0, 0),
        Some(at(2000, 2, 29, 10, 0)),
    );
    check(
        "cron(0 10 L * ? *)",
        at(2024, 2, 29, 10, 0),
        Some(at(2024, 3, 31, 10, 0)),
    );
    check(
        "cron(0 10 L * ? *)",
        at(2026, 4, 2, 0, 0),
        Some(at(2026, 4, 30, 10, 0)),
    );
}

#[test]
fn nearest_weekday() {
    // 2026-08-01 is a Saturday: 1W moves forward to Monday the 3rd, never into July.
    check(
        "cron(0 10 1W * ? *)",
        at(2026, 7, 31, 12, 0),
        Some(at(2026, 8, 3, 10, 0)),
    );
    // 2026-09-01 is a Tuesday.
    check(
        "cron(0 10 1W * ? *)",
        at(2026, 8, 3, 10, 0),
        Some(at(2026, 9, 1, 10, 0)),
    );
    // 2026-02-15 is a Sunday → Monday 16th; 2026-08-15 a Saturday → Friday 14th.
    check(
        "cron(0 10 15W * ? *)",
        at(2026, 2, 1, 0, 0),
        Some(at(2026, 2, 16, 10, 0)),
    );
    check(
        "cron(0 10 15W * ? *)",
        at(2026, 8, 1, 0, 0),
        Some(at(2026, 8, 14, 10, 0)),
    );
    // 2026-05-31 is a Sunday → back to Friday 29th (Monday would be June). April has no 31st.
    check(
        "cron(0 10 31W * ? *)",
        at(2026, 4, 1, 0, 0),
        Some(at(2026, 5, 29, 10, 0)),
    );
    // 2025-11-30 is a Sunday and the month's last day → Friday 28th.
    check(
        "cron(0 10 30W * ? *)",
        at(2025, 11, 1, 0, 0),
        Some(at(2025, 11, 28, 10, 0)),
    );
    // LW, last weekday: 2026-01-31 is a Saturday → Friday 30th; 2026-02-28 a Saturday → 27th.
    check(
        "cron(0 10 LW * ? *)",
        at(2026, 1, 1, 0, 0),
        Some(at(2026, 1, 30, 10, 0)),
    );
    check(
        "cron(0 10 LW * ? *)",
        at(2026, 1, 30, 10, 0),
        Some(at(2026, 2, 27, 10, 0)),
    );
    // 2026-03-31 is a Tuesday.
    check(
        "cron(0 10 LW * ? *)",
        at(2026, 3, 1, 0, 0),
        Some(at(2026, 3, 31, 10, 0)),
    );
}

#[test]
fn nth_and_last_weekday_of_month() {
    // 2026-08-01 is a Saturday, so the first Monday is the 3rd.
    check(
        "cron(0 10 ? * 2#1 *)",
        at(2026, 8, 1, 0, 0),
        Some(at(2026, 8, 3, 10, 0)),
    );
    check(
        "cron(0 10 ? * MON#1 *)",
        at(2026, 8, 1, 0, 0),
        Some(at(2026, 8, 3, 10, 0)),
    );
    // 2026-03-01 is a Sunday: Tuesdays are the 3rd and 10th.
    check(
        "cron(0 10 ? * 3#2 *)",
        at(2026, 3, 1, 0, 0),
        Some(at(2026, 3, 10, 10, 0)),
    );
    // Last Friday: 2026-11-27 (30th is a Monday); 2026-01-30 (31st is a Saturday).
    check(
        "cron(0 10 ? * 6L *)",
        at(2026, 11, 1, 0, 0),
        Some(at(2026, 11, 27, 10, 0)),
    );
    check(
        "cron(0 10 ? * 6L *)",
        at(2026, 1, 1, 0, 0),
        Some(at(2026, 1, 30, 10, 0)),
    );
    check(
        "cron(0 10 ? * FRIL *)",
        at(2026, 1, 1, 0, 0),
        Some(at(2026, 1, 30, 10, 0)),
    );
}

#[test]
fn year_field() {
    // 2022-11-30 is a Wednesday: the last Friday is the 25th.
    let expr = "cron(15 10 ? * 6L 2019-2022)";
    check(expr, at(2022, 11, 1, 0, 0), Some(at(2022, 11, 25, 10, 15)));
    check(expr, at(2022, 12, 30, 10, 15), None);
    check(expr, at(2026, 1, 1, 0, 0), None);
    check(
        "cron(0 0 1 1 ? 2030)",
        at(2026, 6, 1, 0, 0),
        Some(at(2030, 1, 1, 0, 0)),
    );
    check("cron(0 0 1 1 ? 2030)", at(2030, 1, 1, 0, 0), None);
    check(
        "cron(0 0 1 1 ? 2027,2029)",
        at(2027, 1, 1, 0, 0),
        Some(at(2029, 1, 1, 0, 0)),
    );
    check(
        "cron(0 0 1 JAN ? 2030/2)",
        at(2030, 1, 1, 0, 0),
        Some(at(2032, 1, 1, 0, 0)),
    );
}

#[test]
fn rates_count_from_their_anchor() {
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 7).unwrap();
    let five = Schedule::parse("rate(5 minutes)").unwrap().anchored_at(t0);
    let m = |n| t0 + TimeDelta::minutes(n);
    assert_eq!(five.next_after(t0), Some(m(5)));
    assert_eq!(five.next_after(m(5)), Some(m(10)));
    assert_eq!(five.next_after(m(7)), Some(m(10)));
    assert_eq!(five.next_after(t0 - TimeDelta::hours(1)), Some(m(5)));
    assert_eq!(five.rate_period(), Some(TimeDelta::minutes(5)));

    let one = Schedule::parse("rate(1 minute)").unwrap().anchored_at(t0);
    assert_eq!(one.next_after(m(3) + TimeDelta::seconds(59)), Some(m(4)));
    let hour = Schedule::parse("rate(1 hour)").unwrap().anchored_at(t0);
    assert_eq!(hour.next_after(m(61)), Some(t0 + TimeDelta::hours(2)));
    let days = Schedule::parse("rate(2 days)").unwrap().anchored_at(t0);
    assert_eq!(
        days.next_after(t0 + TimeDelta::days(3)),
        Some(t0 + TimeDelta::days(4))
    );
    assert_eq!(
        Schedule::parse("rate(3 hours)").unwrap().rate_period(),
        Some(TimeDelta::hours(3))
    );
    assert_eq!(
        Schedule::parse("rate(1 day)").unwrap().rate_period(),
        Some(TimeDelta::days(1))
    );

    // Unanchored rates count from the epoch, i.e. land on wall-clock multiples.
    let s = Schedule::parse("rate(15 minutes)").unwrap();
    assert_eq!(
        s.next_after(at(2026, 3, 4, 10, 7)),
        Some(at(2026, 3, 4, 10, 15))
    );
    assert_eq!(s.expression(), "rate(15 minutes)");
}

#[test]
fn invalid_rates() {
    check_err("rate(1 minutes)", "singular unit `minute`");
    check_err("rate(5 minute)", "plural unit `minutes`");
    check_err("rate(1 hours)", "singular unit `hour`");
    check_err("rate(2 day)", "plural unit `days`");
    check_err("rate(0 minutes)", "at least 1");
    check_err("rate(-1 minutes)", "not a positive integer");
    check_err("rate(1.5 minutes)", "not a positive integer");
    check_err("rate(30 seconds)", "rate unit `seconds` is not one of");
    check_err("rate(5 Minutes)", "rate unit `Minutes`");
    check_err("rate(5)", "exactly a value and a unit");
    check_err("rate()", "exactly a value and a unit");
    check_err("rate(5 minutes now)", "exactly a value and a unit");
    check_err("rate(99999999999999999999 minutes)", "too large");
    check_err("rate(9999999999999999 days)", "too large");
    check_err("every 5 minutes", "expected `rate(value unit)` or `cron(");
    check_err("rate 5 minutes", "expected `rate(value unit)`");
    check_err("", "expected `rate(value unit)`");
}

#[test]
fn invalid_crons() {
    check_err("cron(0 12 * * ?)", "exactly 6 fields");
    check_err("cron(0 0 12 * * ? *)", "year), got 7");
    check_err(
        "cron(0 12 * * * *)",
        "exactly one of day-of-month and day-of-week must be `?`",
    );
    check_err(
        "cron(0 12 1 * MON *)",
        "exactly one of day-of-month and day-of-week must be `?`",
    );
    check_err(
        "cron(0 12 ? * ? *)",
        "only one of day-of-month and day-of-week may be `?`",
    );
    check_err("cron(? 12 * * ? *)", "minutes: `?` is only allowed alone");
    check_err(
        "cron(0 12 1,? * ? *)",
        "day-of-month: `?` is only allowed alone",
    );
    check_err("cron(0 12 ? * 3#1,6#3 *)", "only one `#` expression");
    check_err("cron(0 12 ? * 8 *)", "day-of-week: `8`: 8 is outside 1-7");
    check_err("cron(0 12 ? * 0 *)", "day-of-week: `0`: 0 is outside 1-7");
    check_err(
        "cron(0 12 ? * 2#6 *)",
        "the occurrence after `#` must be 1-5",
    );
    check_err("cron(0 12 ? * 2W *)", "`W` is only allowed in day-of-month");
    check_err(
        "cron(0 12 ? * XYZ *)",
        "day-of-week: `XYZ` is not a valid value",
    );
    check_err(
        "cron(0 12 * * ? 1969)",
        "year: `1969`: 1969 is outside 1970-2199",
    );
    check_err("cron(0 12 * * ? 2020-2200)", "2200 is outside 1970-2199");
    check_err(
        "cron(0 12 * * ? 2020/0)",
        "the step must be a positive number",
    );
    // The rest is croner's judgement; the message still names the expression.
    check_err("cron(60 12 * * ? *)", "out of bounds");
    check_err("cron(0 24 * * ? *)", "out of bounds");
    check_err("cron(0 12 32 * ? *)", "out of bounds");
    check_err("cron(0 12 * 13 ? *)", "out of bounds");
    check_err("cron(0 12 * FOO ? *)", "illegal character");
    check_err("cron(0 12 L-3 * ? *)", "cron(0 12 L-3 * ? *)");
    check_err("cron(0/0 12 * * ? *)", "Step cannot be zero");
}
