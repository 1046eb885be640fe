//! AWS EventBridge schedule expressions (`rate(...)`, 6-field `cron(...)`) and the scheduled-event
//! JSON delivered to a function. No IO and no clock: every time is an argument.
//!
//! `cron()` evaluation is delegated to `croner` (which knows `L`, `W`, `LW`, `#` and years); this
//! crate adds what AWS is stricter or different about and croner does not check: exactly six
//! fields, exactly one of day-of-month/day-of-week is `?`, weekday numbers 1-7 (1 = SUN), one `#`
//! at most, years 1970-2199, `L` alone in day-of-week meaning Saturday, and wrapping ranges
//! (`20-2`). `rate()` is parsed here entirely (croner has no such syntax).

mod event;

pub use event::{ScheduledEvent, rule_arn};

use chrono::{DateTime, TimeDelta, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// A schedule expression that is not valid AWS syntax. The user's config is at fault; retrying
/// cannot help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid schedule expression `{expression}`: {reason}")]
pub struct ScheduleError {
    pub expression: String,
    pub reason: String,
}

/// A parsed schedule. All times are UTC; fires land on whole seconds.
#[derive(Debug, Clone)]
pub struct Schedule {
    expression: String,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// Fires at `anchor + k * period`, k ≥ 1.
    Rate {
        period: TimeDelta,
        anchor: DateTime<Utc>,
    },
    Cron(Box<Cron>),
}

impl Schedule {
    /// Parses `rate(value unit)` or `cron(min hour dom month dow year)`.
    ///
    /// A rate schedule counts from the Unix epoch until [`Schedule::anchored_at`] says otherwise
    /// (AWS counts from the rule's creation; the caller knows when that was).
    pub fn parse(expression: &str) -> Result<Schedule, ScheduleError> {
        let err = |reason: String| ScheduleError {
            expression: expression.to_string(),
            reason,
        };
        let trimmed = expression.trim();
        let kind = if let Some(inner) = call_body(trimmed, "rate") {
            let period = parse_rate(inner).map_err(err)?;
            Kind::Rate {
                period,
                anchor: DateTime::UNIX_EPOCH,
            }
        } else if let Some(inner) = call_body(trimmed, "cron") {
            Kind::Cron(Box::new(parse_cron(inner).map_err(err)?))
        } else {
            return Err(err(
                "expected `rate(value unit)` or `cron(minutes hours day-of-month month day-of-week year)`"
                    .to_string(),
            ));
        };
        Ok(Schedule {
            expression: trimmed.to_string(),
            kind,
        })
    }

    /// Sets the instant a rate schedule counts from (the first fire is one period later). No effect
    /// on cron schedules.
    pub fn anchored_at(mut self, start: DateTime<Utc>) -> Schedule {
        if let Kind::Rate { anchor, .. } = &mut self.kind {
            *anchor = start;
        }
        self
    }

    /// The expression as written (trimmed).
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The period of a rate schedule; `None` for cron.
    pub fn rate_period(&self) -> Option<TimeDelta> {
        match &self.kind {
            Kind::Rate { period, .. } => Some(*period),
            Kind::Cron(_) => None,
        }
    }

    /// The first fire strictly after `after`, or `None` if the schedule never fires again (a cron
    /// whose year field lies in the past, or an instant past what chrono can represent).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.kind {
            Kind::Rate { period, anchor } => {
                if after < *anchor {
                    return anchor.checked_add_signed(*period);
                }
                let period_s = period.num_seconds();
                let elapsed_s = (after - *anchor).num_seconds();
                let k = elapsed_s / period_s + 1;
                anchor.checked_add_signed(TimeDelta::try_seconds(k.checked_mul(period_s)?)?)
            }
            // croner errs (TimeSearchLimitExceeded) when nothing matches before its year limit.
            Kind::Cron(cron) => cron.find_next_occurrence(&after, false).ok(),
        }
    }
}

/// `name(...)` → the text between the parentheses.
fn call_body<'a>(s: &'a str, name: &str) -> Option<&'a str> {
    s.strip_prefix(name)?.strip_prefix('(')?.strip_suffix(')')
}

fn parse_rate(inner: &str) -> Result<TimeDelta, String> {
    let mut words = inner.split_whitespace();
    let (Some(value), Some(unit), None) = (words.next(), words.next(), words.next()) else {
        return Err("rate needs exactly a value and a unit, e.g. `rate(5 minutes)`".to_string());
    };
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("rate value `{value}` is not a positive integer"));
    }
    let n: i64 = value
        .parse()
        .map_err(|_| format!("rate value `{value}` is too large"))?;
    if n < 1 {
        return Err("rate value must be at least 1".to_string());
    }
    let (singular, seconds) = match unit {
        "minute" | "minutes" => ("minute", 60),
        "hour" | "hours" => ("hour", 3600),
        "day" | "days" => ("day", 86_400),
        _ => {
            return Err(format!(
                "rate unit `{unit}` is not one of minute, minutes, hour, hours, day, days"
            ));
        }
    };
    // AWS rejects `rate(1 minutes)` and `rate(5 minute)`; so do we, so a config that works here
    // works when deployed.
    let plural = unit.len() != singular.len();
    if n == 1 && plural {
        return Err(format!("a rate of 1 takes the singular unit `{singular}`"));
    }
    if n != 1 && !plural {
        return Err(format!("a rate of {n} takes the plural unit `{singular}s`"));
    }
    n.checked_mul(seconds)
        .and_then(TimeDelta::try_seconds)
        .ok_or_else(|| format!("rate value `{value}` is too large"))
}

const FIELD_NAMES: [&str; 6] = [
    "minutes",
    "hours",
    "day-of-month",
    "month",
    "day-of-week",
    "year",
];

fn parse_cron(inner: &str) -> Result<Cron, String> {
    let fields: Vec<&str> = inner.split_whitespace().collect();
    if fields.len() != 6 {
        return Err(format!(
            "cron needs exactly 6 fields (minutes hours day-of-month month day-of-week year), got {}",
            fields.len()
        ));
    }
    let upper: Vec<String> = fields.iter().map(|f| f.to_ascii_uppercase()).collect();
    let (dom, dow) = (upper[2].as_str(), upper[4].as_str());
    match (dom == "?", dow == "?") {
        (true, true) => {
            return Err("only one of day-of-month and day-of-week may be `?`".to_string());
        }
        (false, false) => {
            return Err(
                "exactly one of day-of-month and day-of-week must be `?` (AWS does not combine them)"
                    .to_string(),
            );
        }
        _ => {}
    }
    for (i, f) in upper.iter().enumerate() {
        let day_field = i == 2 || i == 4;
        if f.contains('?') && !(day_field && f == "?") {
            return Err(format!(
                "{}: `?` is only allowed alone, in day-of-month or day-of-week",
                FIELD_NAMES[i]
            ));
        }
    }

    let minutes = wrap_ranges(&upper[0], 0, 59);
    let hours = wrap_ranges(&upper[1], 0, 23);
    let month = wrap_ranges(&months_to_numbers(&upper[3]), 1, 12);
    let dow = check_day_of_week(&upper[4])?;
    check_years(&upper[5])?;

    let croner_pattern = format!(
        "0 {minutes} {hours} {dom} {month} {dow} {year}",
        year = upper[5]
    );
    CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Required)
        .alternative_weekdays(true)
        .sloppy_ranges(true)
        .build()
        .parse(&croner_pattern)
        .map_err(|e| e.to_string())
}

const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

fn months_to_numbers(field: &str) -> String {
    let mut out = field.to_string();
    for (i, name) in MONTHS.iter().enumerate() {
        out = out.replace(name, &(i + 1).to_string());
    }
    out
}

/// Validates an AWS day-of-week field and rewrites it into what croner (in Quartz weekday mode)
/// reads the same way: names become 1-7 and a lone `L` (last day of the week) becomes 7.
fn check_day_of_week(field: &str) -> Result<String, String> {
    if field == "?" {
        return Ok(field.to_string());
    }
    let mut out = field.to_string();
    for (i, name) in WEEKDAYS.iter().enumerate() {
        out = out.replace(name, &(i + 1).to_string());
    }
    if out.matches('#').count() > 1 {
        return Err("day-of-week: only one `#` expression is allowed".to_string());
    }
    if out.contains('W') {
        return Err("day-of-week: `W` is only allowed in day-of-month".to_string());
    }
    let mut items = Vec::new();
    for item in out.split(',') {
        if item == "*" {
            items.push(item.to_string());
            continue;
        }
        if item == "L" {
            items.push("7".to_string());
            continue;
        }
        if let Some((day, nth)) = item.split_once('#') {
            if !matches!(nth, "1" | "2" | "3" | "4" | "5") {
                return Err(format!(
                    "day-of-week: `{item}`: the occurrence after `#` must be 1-5"
                ));
            }
            check_numbers(day, 1, 7, "day-of-week", item)?;
        } else if let Some(day) = item.strip_suffix('L') {
            check_numbers(day, 1, 7, "day-of-week", item)?;
        } else {
            check_numbers(item, 1, 7, "day-of-week", item)?;
        }
        items.push(wrap_ranges(item, 1, 7));
    }
    Ok(items.join(","))
}

fn check_years(field: &str) -> Result<(), String> {
    if field == "*" {
        return Ok(());
    }
    for item in field.split(',') {
        check_numbers(item, 1970, 2199, "year", item)?;
    }
    Ok(())
}

/// Checks every number of a `a`, `a-b`, `a/s`, `a-b/s` or `*/s` item against `lo..=hi` (the step
/// is not a value, so it is only checked to be a number).
fn check_numbers(part: &str, lo: u32, hi: u32, field: &str, item: &str) -> Result<(), String> {
    let (range, step) = match part.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (part, None),
    };
    if let Some(step) = step
        && !matches!(step.parse::<u32>(), Ok(s) if s >= 1)
    {
        return Err(format!(
            "{field}: `{item}`: the step must be a positive number"
        ));
    }
    if range == "*" && step.is_some() {
        return Ok(());
    }
    for n in range.split('-') {
        match n.parse::<u32>() {
            Ok(v) if (lo..=hi).contains(&v) => {}
            Ok(v) => return Err(format!("{field}: `{item}`: {v} is outside {lo}-{hi}")),
            Err(_) => return Err(format!("{field}: `{item}` is not a valid value")),
        }
    }
    Ok(())
}

/// AWS lets a range wrap past the end (`20-2` in hours = 20..23 and 0..2); croner does not, so
/// plain wrapping ranges are split in two. Anything else is passed through for croner to judge.
fn wrap_ranges(field: &str, min: u32, max: u32) -> String {
    field
        .split(',')
        .map(|item| {
            if let Some((a, b)) = item.split_once('-')
                && let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>())
                && a > b
                && a <= max
                && b >= min
            {
                return format!("{a}-{max},{min}-{b}");
            }
            item.to_string()
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests;
