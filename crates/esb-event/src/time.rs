//! Date formats API Gateway puts in events: CLF `09/Apr/2025:12:34:56 +0000` and the Java
//! `Date.toString()` form `Wed Apr 09 13:40:00 UTC 2025` used for Cognito `exp`/`iat` claims.
//!
//! Hot path, pure: time comes in as epoch seconds/ms; nothing here reads a clock.

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// UTC calendar fields of an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    /// 1..=12
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// Days since 1970-01-01 (a Thursday), for the weekday.
    days: i64,
}

/// Splits epoch seconds into UTC fields (proleptic Gregorian; H. Hinnant's days-to-civil).
pub fn civil(epoch_secs: i64) -> Civil {
    let days = epoch_secs.div_euclid(86_400);
    let secs = epoch_secs.rem_euclid(86_400) as u32;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: secs / 3600,
        minute: secs / 60 % 60,
        second: secs % 60,
        days,
    }
}

fn two(out: &mut Vec<u8>, n: u32) {
    out.push(b'0' + (n / 10 % 10) as u8);
    out.push(b'0' + (n % 10) as u8);
}

fn year(out: &mut Vec<u8>, y: i64) {
    if (0..10_000).contains(&y) {
        let y = y as u32;
        two(out, y / 100);
        two(out, y % 100);
    } else {
        out.extend_from_slice(itoa::Buffer::new().format(y).as_bytes());
    }
}

/// `dd/MMM/yyyy:HH:mm:ss +0000` (API Gateway `requestTime` / v2 `time`).
pub fn clf(out: &mut Vec<u8>, epoch_ms: u64) {
    let c = civil((epoch_ms / 1000) as i64);
    two(out, c.day);
    out.push(b'/');
    out.extend_from_slice(MONTHS[c.month as usize - 1].as_bytes());
    out.push(b'/');
    year(out, c.year);
    out.push(b':');
    two(out, c.hour);
    out.push(b':');
    two(out, c.minute);
    out.push(b':');
    two(out, c.second);
    out.extend_from_slice(b" +0000");
}

/// `EEE MMM dd HH:mm:ss UTC yyyy` (Java `Date.toString()` in UTC), e.g. `Sun Mar 28 13:40:42 UTC 2021`.
pub fn java_date(out: &mut Vec<u8>, epoch_secs: i64) {
    let c = civil(epoch_secs);
    out.extend_from_slice(WEEKDAYS[c.days.rem_euclid(7) as usize].as_bytes());
    out.push(b' ');
    out.extend_from_slice(MONTHS[c.month as usize - 1].as_bytes());
    out.push(b' ');
    two(out, c.day);
    out.push(b' ');
    two(out, c.hour);
    out.push(b':');
    two(out, c.minute);
    out.push(b':');
    two(out, c.second);
    out.extend_from_slice(b" UTC ");
    year(out, c.year);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_clf(ms: u64, expected: &str) {
        let mut out = Vec::new();
        clf(&mut out, ms);
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    fn check_java(secs: i64, expected: &str) {
        let mut out = Vec::new();
        java_date(&mut out, secs);
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn clf_matches_aws_samples() {
        // aws-lambda-go apigw-request.json: requestTimeEpoch 1589522469693.
        check_clf(1_589_522_469_693, "15/May/2020:06:01:09 +0000");
        // apigw-v2-request-no-authorizer.json: timeEpoch 1587481701067.
        check_clf(1_587_481_701_067, "21/Apr/2020:15:08:21 +0000");
        check_clf(0, "01/Jan/1970:00:00:00 +0000");
        check_clf(951_782_400_000, "29/Feb/2000:00:00:00 +0000");
    }

    #[test]
    fn java_dates() {
        check_java(1_616_939_242, "Sun Mar 28 13:47:22 UTC 2021");
        check_java(1_744_206_000, "Wed Apr 09 13:40:00 UTC 2025");
        check_java(0, "Thu Jan 01 00:00:00 UTC 1970");
        check_java(-86_400, "Wed Dec 31 00:00:00 UTC 1969");
    }
}
