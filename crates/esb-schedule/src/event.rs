//! The EventBridge scheduled-event JSON (`"detail-type": "Scheduled Event"`) a schedule sends
//! when it has no `input` of its own.

use chrono::{DateTime, SecondsFormat, Utc};

/// One scheduled event, as EventBridge delivers it to Lambda (aws-compat §7.1).
///
/// The id is passed in (a fresh UUID per fire) so this stays free of randomness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledEvent<'a> {
    pub id: &'a str,
    pub account: &'a str,
    pub region: &'a str,
    /// The rule's ARN, see [`rule_arn`].
    pub rule_arn: &'a str,
    pub time: DateTime<Utc>,
}

/// Field order follows AWS's own sample; consumers compare structurally, but humans reading logs
/// expect this order.
#[derive(serde::Serialize)]
struct Wire<'a> {
    version: &'static str,
    id: &'a str,
    #[serde(rename = "detail-type")]
    detail_type: &'static str,
    source: &'static str,
    account: &'a str,
    time: String,
    region: &'a str,
    resources: [&'a str; 1],
    detail: Empty,
}

#[derive(serde::Serialize)]
struct Empty {}

impl ScheduledEvent<'_> {
    /// The event as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        let wire = Wire {
            version: "0",
            id: self.id,
            detail_type: "Scheduled Event",
            source: "aws.events",
            account: self.account,
            // Second precision with `Z`, as EventBridge writes it.
            time: self.time.to_rfc3339_opts(SecondsFormat::Secs, true),
            region: self.region,
            resources: [self.rule_arn],
            detail: Empty {},
        };
        serde_json::to_vec(&wire).expect("a struct of strings always serializes")
    }

    /// What the function receives: the schedule's `input` verbatim when it has one (SAM: "nothing
    /// from the event text itself is passed to the target"), the scheduled event otherwise.
    pub fn payload(&self, input: Option<&str>) -> Vec<u8> {
        match input {
            Some(input) => input.as_bytes().to_vec(),
            None => self.to_json(),
        }
    }
}

/// `arn:aws:events:{region}:{account}:rule/{name}`.
pub fn rule_arn(region: &str, account: &str, rule_name: &str) -> String {
    format!("arn:aws:events:{region}:{account}:rule/{rule_name}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn matches_the_aws_sample_structurally() {
        let arn = rule_arn("us-east-1", "123456789012", "my-scheduled-rule");
        let ev = ScheduledEvent {
            id: "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
            account: "123456789012",
            region: "us-east-1",
            rule_arn: &arn,
            time: Utc.with_ymd_and_hms(2015, 10, 8, 16, 53, 6).unwrap()
                + chrono::TimeDelta::milliseconds(789),
        };
        let got: serde_json::Value = serde_json::from_slice(&ev.to_json()).unwrap();
        // aws-compat §7.1, the fixture from the Lambda docs, with the fraction of a second dropped.
        let want = serde_json::json!({
            "version": "0",
            "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": "2015-10-08T16:53:06Z",
            "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/my-scheduled-rule"],
            "detail": {}
        });
        assert_eq!(got, want);
        let text = String::from_utf8(ev.to_json()).unwrap();
        assert!(text.starts_with(r#"{"version":"0","id":"#), "{text}");
    }

    #[test]
    fn input_replaces_the_event_verbatim() {
        let ev = ScheduledEvent {
            id: "x",
            account: "1",
            region: "r",
            rule_arn: "a",
            time: DateTime::UNIX_EPOCH,
        };
        assert_eq!(ev.payload(Some("{\"a\": 1}")), b"{\"a\": 1}");
        assert_eq!(ev.payload(None), ev.to_json());
    }
}
