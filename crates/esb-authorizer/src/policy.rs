//! The authorizer function's answer: an IAM policy (REST, HTTP API 1.0) or a simple response
//! (HTTP API 2.0), parsed and validated once, then evaluated against each request's method ARN.
//! Hot path when served from the cache: evaluation allocates only the allowed context it returns.

use serde_json::{Map, Value};

use crate::Refusal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// One policy statement: does `Effect` apply to (any of `actions`) on (any of `resources`)?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub effect: Effect,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
}

impl Statement {
    fn applies_to(&self, method_arn: &str) -> bool {
        self.actions
            .iter()
            .any(|a| wildcard_match(&a.to_ascii_lowercase(), "execute-api:invoke"))
            && self.resources.iter().any(|r| wildcard_match(r, method_arn))
    }
}

/// What an authorizer answered, validated; cacheable per identity and reusable for any method.
#[derive(Debug, Clone, PartialEq)]
pub enum Grant {
    /// An IAM policy response.
    Policy {
        principal_id: String,
        statements: Vec<Statement>,
        context: Map<String, Value>,
        usage_identifier_key: Option<String>,
    },
    /// An HTTP API simple response (`{"isAuthorized": bool, "context": {...}}`).
    Simple {
        authorized: bool,
        context: Map<String, Value>,
    },
}

/// A request the authorizer let through: what lands in `requestContext.authorizer`.
#[derive(Debug, Clone, PartialEq)]
pub struct Allowed {
    /// Absent for simple responses.
    pub principal_id: Option<String>,
    pub context: Map<String, Value>,
    pub usage_identifier_key: Option<String>,
}

impl Grant {
    /// Decides one request. An explicit Deny on a matching statement wins over any Allow; with
    /// no matching Allow the request is refused too.
    pub fn decide(&self, method_arn: &str) -> Result<Allowed, Refusal> {
        match self {
            Grant::Simple {
                authorized: true,
                context,
            } => Ok(Allowed {
                principal_id: None,
                context: context.clone(),
                usage_identifier_key: None,
            }),
            Grant::Simple {
                authorized: false, ..
            } => Err(Refusal::NotAllowed),
            Grant::Policy {
                principal_id,
                statements,
                context,
                usage_identifier_key,
            } => {
                let matching = statements.iter().filter(|s| s.applies_to(method_arn));
                let mut allowed = false;
                for s in matching {
                    match s.effect {
                        Effect::Deny => return Err(Refusal::ExplicitDeny),
                        Effect::Allow => allowed = true,
                    }
                }
                if !allowed {
                    return Err(Refusal::NotAllowed);
                }
                Ok(Allowed {
                    principal_id: Some(principal_id.clone()),
                    context: context.clone(),
                    usage_identifier_key: usage_identifier_key.clone(),
                })
            }
        }
    }
}

/// IAM-style matching: `*` is any run of characters (`/` and `:` included), `?` exactly one.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Greedy with backtracking to the last `*`: linear in practice, no recursion.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

fn invalid(reason: impl Into<String>) -> Refusal {
    Refusal::Misconfigured(reason.into())
}

/// A string or an array of strings (IAM's `Action`/`Resource`).
fn strings(v: Option<&Value>, field: &str) -> Result<Vec<String>, Refusal> {
    match v {
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| invalid(format!("{field} entries must be strings")))
            })
            .collect(),
        _ => Err(invalid(format!(
            "a statement's {field} must be a string or an array of strings"
        ))),
    }
}

fn statement(v: &Value) -> Result<Statement, Refusal> {
    let obj = v
        .as_object()
        .ok_or_else(|| invalid("a statement must be an object"))?;
    let effect = match obj.get("Effect").and_then(Value::as_str) {
        Some(e) if e.eq_ignore_ascii_case("allow") => Effect::Allow,
        Some(e) if e.eq_ignore_ascii_case("deny") => Effect::Deny,
        _ => return Err(invalid("a statement's Effect must be Allow or Deny")),
    };
    Ok(Statement {
        effect,
        actions: strings(obj.get("Action"), "Action")?,
        resources: strings(obj.get("Resource"), "Resource")?,
    })
}

/// Parses an IAM policy response (aws-compat §4.3). `flat_context` enforces REST's rule that
/// context values are strings, numbers or booleans.
pub(crate) fn parse_policy(v: &Value, flat_context: bool) -> Result<Grant, Refusal> {
    let obj = v
        .as_object()
        .ok_or_else(|| invalid("the response must be a JSON object"))?;
    let principal_id = obj
        .get("principalId")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("principalId must be a string"))?
        .to_string();
    let doc = obj
        .get("policyDocument")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("policyDocument must be an object"))?;
    let statements = match doc.get("Statement") {
        Some(Value::Array(items)) => items.iter().map(statement).collect::<Result<_, _>>()?,
        Some(single @ Value::Object(_)) => vec![statement(single)?],
        _ => return Err(invalid("policyDocument.Statement must be an array")),
    };
    let context = context(obj.get("context"), flat_context)?;
    let usage_identifier_key = match obj.get("usageIdentifierKey") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(invalid("usageIdentifierKey must be a string")),
    };
    Ok(Grant::Policy {
        principal_id,
        statements,
        context,
        usage_identifier_key,
    })
}

/// Parses an HTTP API simple response (aws-compat §4.4); context values may be any JSON.
pub(crate) fn parse_simple(v: &Value) -> Result<Grant, Refusal> {
    let obj = v
        .as_object()
        .ok_or_else(|| invalid("the response must be a JSON object"))?;
    let authorized = obj
        .get("isAuthorized")
        .and_then(Value::as_bool)
        .ok_or_else(|| invalid("isAuthorized must be a boolean"))?;
    Ok(Grant::Simple {
        authorized,
        context: context(obj.get("context"), false)?,
    })
}

fn context(v: Option<&Value>, flat: bool) -> Result<Map<String, Value>, Refusal> {
    match v {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => {
            if flat
                && let Some((k, _)) = m.iter().find(|(_, v)| {
                    !matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
                })
            {
                return Err(invalid(format!(
                    "context value {k:?} must be a string, number or boolean"
                )));
            }
            Ok(m.clone())
        }
        Some(_) => Err(invalid("context must be an object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/users/42";

    #[test]
    fn wildcards() {
        #[track_caller]
        fn check(p: &str, t: &str, want: bool) {
            assert_eq!(wildcard_match(p, t), want, "{p} ~ {t}");
        }
        check("*", "", true);
        check("*", ARN, true);
        check(ARN, ARN, true);
        check(
            "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/users/*",
            ARN,
            true,
        );
        check(
            "arn:aws:execute-api:us-east-1:123456789012:abc123/*/GET/*",
            ARN,
            true,
        );
        check(
            "arn:aws:execute-api:us-east-1:123456789012:abc123/*",
            ARN,
            true,
        );
        check("arn:aws:execute-api:*:*:abc123/*/*/*", ARN, true);
        check(
            "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/POST/*",
            ARN,
            false,
        );
        check(
            "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/users/4?",
            ARN,
            true,
        );
        check(
            "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/users/?",
            ARN,
            false,
        );
        check(
            "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/users",
            ARN,
            false,
        );
        check(
            "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/get/users/42",
            ARN,
            false,
        );
        check("a*b*c", "aXbYc", true);
        check("a*b*c", "aXbYcZ", false);
        check("a**", "a", true);
        check("?", "", false);
        check("*a", "bbbba", true);
        check("é?", "éü", true);
    }

    fn policy(statements: Value) -> Grant {
        parse_policy(
            &json!({"principalId": "user-1", "policyDocument": {"Version": "2012-10-17", "Statement": statements}}),
            true,
        )
        .unwrap()
    }

    #[track_caller]
    fn check_decision(statements: Value, want: Result<(), Refusal>) {
        let got = policy(statements).decide(ARN).map(|_| ());
        assert_eq!(got, want);
    }

    #[test]
    fn explicit_deny_wins_and_an_allow_is_needed() {
        let allow_users = json!({"Action": "execute-api:Invoke", "Effect": "Allow",
            "Resource": "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/users/*"});
        let deny_all = json!({"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": "*"});
        let deny_post = json!({"Action": "execute-api:Invoke", "Effect": "Deny",
            "Resource": "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/POST/*"});
        check_decision(json!([allow_users.clone()]), Ok(()));
        check_decision(
            json!([allow_users.clone(), deny_all.clone()]),
            Err(Refusal::ExplicitDeny),
        );
        check_decision(
            json!([deny_all, allow_users.clone()]),
            Err(Refusal::ExplicitDeny),
        );
        check_decision(json!([allow_users.clone(), deny_post.clone()]), Ok(()));
        check_decision(json!([deny_post]), Err(Refusal::NotAllowed));
        check_decision(json!([]), Err(Refusal::NotAllowed));
        // A single statement object, arrays for Action and Resource (aws-lambda-go's fixture).
        check_decision(allow_users, Ok(()));
        check_decision(
            json!([{"Action": ["execute-api:Invoke"], "Effect": "Allow",
                "Resource": ["arn:aws:execute-api:us-east-1:123456789012:abc123/prod/POST/*", ARN]}]),
            Ok(()),
        );
        // Actions other than Invoke do not grant it; wildcarded actions do, in any case.
        check_decision(
            json!([{"Action": "execute-api:ManageConnections", "Effect": "Allow", "Resource": "*"}]),
            Err(Refusal::NotAllowed),
        );
        check_decision(
            json!([{"Action": "execute-api:*", "Effect": "Allow", "Resource": "*"}]),
            Ok(()),
        );
        check_decision(
            json!([{"Action": "*", "Effect": "allow", "Resource": "*"}]),
            Ok(()),
        );
        check_decision(
            json!([{"Action": "Execute-API:invoke", "Effect": "Allow", "Resource": "*"}]),
            Ok(()),
        );
    }

    #[test]
    fn allowed_carries_principal_and_context() {
        let g = parse_policy(
            &json!({"principalId": "user-123",
                "policyDocument": {"Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"}]},
                "context": {"tenant": "acme", "admin": true, "level": 3},
                "usageIdentifierKey": "key-1"}),
            true,
        )
        .unwrap();
        let a = g.decide(ARN).unwrap();
        assert_eq!(a.principal_id.as_deref(), Some("user-123"));
        assert_eq!(
            Value::Object(a.context),
            json!({"tenant": "acme", "admin": true, "level": 3})
        );
        assert_eq!(a.usage_identifier_key.as_deref(), Some("key-1"));
    }

    #[track_caller]
    fn check_invalid(v: Value, flat: bool, reason: &str) {
        match parse_policy(&v, flat) {
            Err(Refusal::Misconfigured(r)) => assert!(r.contains(reason), "{r:?} lacks {reason:?}"),
            other => panic!("{v} gave {other:?}"),
        }
    }

    #[test]
    fn invalid_policies() {
        let st = json!([{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"}]);
        check_invalid(json!("Allow"), true, "JSON object");
        check_invalid(
            json!({"policyDocument": {"Statement": st}}),
            true,
            "principalId",
        );
        check_invalid(
            json!({"principalId": 7, "policyDocument": {"Statement": st}}),
            true,
            "principalId",
        );
        check_invalid(json!({"principalId": "u"}), true, "policyDocument");
        check_invalid(
            json!({"principalId": "u", "policyDocument": {}}),
            true,
            "Statement",
        );
        check_invalid(
            json!({"principalId": "u", "policyDocument": {"Statement": [{"Action": "x", "Resource": "*"}]}}),
            true,
            "Effect",
        );
        check_invalid(
            json!({"principalId": "u", "policyDocument": {"Statement": [{"Effect": "Maybe", "Action": "x", "Resource": "*"}]}}),
            true,
            "Effect",
        );
        check_invalid(
            json!({"principalId": "u", "policyDocument": {"Statement": [{"Effect": "Allow", "Resource": "*"}]}}),
            true,
            "Action",
        );
        check_invalid(
            json!({"principalId": "u", "policyDocument": {"Statement": [{"Effect": "Allow", "Action": "x", "Resource": [1]}]}}),
            true,
            "Resource entries",
        );
        // REST context values are flat; an object or array is a configuration error there.
        let nested = json!({"principalId": "u", "policyDocument": {"Statement": st}, "context": {"a": {"b": 1}}});
        check_invalid(nested.clone(), true, "context value \"a\"");
        assert!(parse_policy(&nested, false).is_ok());
        check_invalid(
            json!({"principalId": "u", "policyDocument": {"Statement": st}, "context": [1]}),
            true,
            "context must be an object",
        );
        check_invalid(
            json!({"principalId": "u", "policyDocument": {"Statement": st}, "usageIdentifierKey": 1}),
            true,
            "usageIdentifierKey",
        );
    }

    #[test]
    fn simple_responses() {
        let yes = parse_simple(
            &json!({"isAuthorized": true, "context": {"list": [1, 2], "m": {"k": "v"}}}),
        )
        .unwrap();
        let a = yes.decide(ARN).unwrap();
        assert_eq!(a.principal_id, None);
        assert_eq!(
            Value::Object(a.context),
            json!({"list": [1, 2], "m": {"k": "v"}})
        );
        let no = parse_simple(&json!({"isAuthorized": false})).unwrap();
        assert_eq!(no.decide(ARN), Err(Refusal::NotAllowed));
        for bad in [
            json!({}),
            json!({"isAuthorized": "true"}),
            json!([true]),
            json!({"isAuthorized": true, "context": 1}),
        ] {
            assert!(
                matches!(parse_simple(&bad), Err(Refusal::Misconfigured(_))),
                "{bad}"
            );
        }
    }
}
