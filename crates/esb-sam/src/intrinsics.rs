//! Local evaluation of CloudFormation intrinsic functions and `Conditions`, with SAM CLI's defaults
//! for pseudo-parameters.
//!
//! Only the properties esb reads are resolved, so an unresolvable `Role: !GetAtt R.Arn` never
//! matters. What cannot be known outside AWS (a table's name, an imported value) is an
//! [`SamError::Unresolved`] naming the property it sits in.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;

use crate::error::SamError;
use crate::value::{CfnValue, MAX_DEPTH};

/// What a `Ref` or `Fn::GetAtt` to a resource can give locally.
#[derive(Clone, Debug)]
pub(crate) enum ResourceRef {
    /// A function esb will serve, under this name.
    Function(String),
    /// Anything else: only its type, for the message.
    Other(String),
}

/// SAM CLI's local values for pseudo-parameters (`intrinsics_symbol_table.py`).
const PSEUDO: &[(&str, &str)] = &[
    ("AWS::Region", "us-east-1"),
    ("AWS::AccountId", "123456789012"),
    ("AWS::StackName", "local"),
    (
        "AWS::StackId",
        "arn:aws:cloudformation:us-east-1:123456789012:stack/local/51af3dc0-da77-11e4-872e-1234567db123",
    ),
    ("AWS::Partition", "aws"),
    ("AWS::URLSuffix", "localhost"),
];

/// Work allowed per resolution; conditions are cached, so real templates use a tiny fraction.
const MAX_STEPS: usize = 2_000_000;

pub(crate) struct Resolver<'t> {
    params: BTreeMap<String, Result<CfnValue, String>>,
    pseudo: BTreeMap<String, String>,
    mappings: Option<&'t BTreeMap<String, CfnValue>>,
    conditions: Option<&'t BTreeMap<String, CfnValue>>,
    resources: BTreeMap<String, ResourceRef>,
    cache: RefCell<BTreeMap<String, bool>>,
    evaluating: RefCell<BTreeSet<String>>,
    steps: Cell<usize>,
}

impl<'t> Resolver<'t> {
    /// `overrides` win over `Default`s; an override named like a pseudo-parameter
    /// (`AWS::Region`) replaces SAM CLI's default, as `sam local --parameter-overrides` allows.
    pub(crate) fn new(
        template: &'t CfnValue,
        overrides: &BTreeMap<String, String>,
        resources: BTreeMap<String, ResourceRef>,
        warnings: &mut Vec<String>,
    ) -> Self {
        let mut pseudo: BTreeMap<String, String> = PSEUDO
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut params = BTreeMap::new();
        let declared = template.get("Parameters").and_then(CfnValue::as_map);
        for (name, decl) in declared.into_iter().flatten() {
            let ty = decl
                .get("Type")
                .and_then(CfnValue::as_str)
                .unwrap_or("String");
            let raw = match overrides.get(name) {
                Some(v) => Ok(v.clone()),
                None if ty.starts_with("AWS::SSM::Parameter::Value") => Err(format!(
                    "parameter {name} is read from SSM Parameter Store; pass its value as an override"
                )),
                None => match decl.get("Default").map(CfnValue::scalar_text) {
                    Some(Some(d)) => Ok(d),
                    Some(None) => match decl.get("Default") {
                        // A list default on a list-typed parameter.
                        Some(CfnValue::List(items)) => Ok(items
                            .iter()
                            .filter_map(CfnValue::scalar_text)
                            .collect::<Vec<_>>()
                            .join(",")),
                        _ => Err(format!(
                            "parameter {name} has a Default that is not a scalar"
                        )),
                    },
                    None => Err(format!(
                        "parameter {name} has no Default; pass its value as an override"
                    )),
                },
            };
            let is_list = ty == "CommaDelimitedList" || ty.starts_with("List<");
            let value = raw.map(|s| {
                if is_list {
                    CfnValue::List(
                        s.split(',')
                            .map(|p| CfnValue::String(p.trim().to_string()))
                            .collect(),
                    )
                } else {
                    CfnValue::String(s)
                }
            });
            params.insert(name.clone(), value);
        }
        for (k, v) in overrides {
            if k.starts_with("AWS::") && pseudo.contains_key(k) {
                pseudo.insert(k.clone(), v.clone());
            } else if !params.contains_key(k) {
                warnings.push(format!(
                    "parameter override {k} matches no parameter of the template; ignored"
                ));
            }
        }
        Self {
            params,
            pseudo,
            mappings: template.get("Mappings").and_then(CfnValue::as_map),
            conditions: template.get("Conditions").and_then(CfnValue::as_map),
            resources,
            cache: RefCell::new(BTreeMap::new()),
            evaluating: RefCell::new(BTreeSet::new()),
            steps: Cell::new(0),
        }
    }

    pub(crate) fn region(&self) -> &str {
        self.pseudo
            .get("AWS::Region")
            .map_or("us-east-1", String::as_str)
    }

    pub(crate) fn account(&self) -> &str {
        self.pseudo
            .get("AWS::AccountId")
            .map_or("123456789012", String::as_str)
    }

    pub(crate) fn function_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:lambda:{}:{}:function:{name}",
            self.pseudo
                .get("AWS::Partition")
                .map_or("aws", String::as_str),
            self.region(),
            self.account()
        )
    }

    /// Resolves every intrinsic in `v`. `None` is `AWS::NoValue`: the property is absent.
    pub(crate) fn resolve(&self, v: &CfnValue, at: &str) -> Result<Option<CfnValue>, SamError> {
        self.resolve_at(v, at, 0)
    }

    /// Resolves `v` only if it is itself an intrinsic, so the entries of a plain mapping can be
    /// resolved (and fail) one by one.
    pub(crate) fn resolve_shallow(
        &self,
        v: &CfnValue,
        at: &str,
    ) -> Result<Option<CfnValue>, SamError> {
        if v.intrinsic(false).is_some() {
            self.resolve(v, at)
        } else {
            Ok(Some(v.clone()))
        }
    }

    /// Evaluates the named condition.
    pub(crate) fn condition(&self, name: &str, at: &str) -> Result<bool, SamError> {
        self.condition_at(name, at, 0)
    }

    fn tick(&self, at: &str, depth: usize) -> Result<(), SamError> {
        let n = self.steps.get() + 1;
        self.steps.set(n);
        if n > MAX_STEPS || depth > 2 * MAX_DEPTH {
            return Err(SamError::TooLarge {
                reason: format!("{at}: intrinsic functions nest or repeat too much"),
            });
        }
        Ok(())
    }

    fn resolve_at(
        &self,
        v: &CfnValue,
        at: &str,
        depth: usize,
    ) -> Result<Option<CfnValue>, SamError> {
        self.tick(at, depth)?;
        if let Some((name, arg)) = v.intrinsic(false) {
            return self.call(name, arg, at, depth + 1);
        }
        Ok(Some(match v {
            CfnValue::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    if let Some(r) = self.resolve_at(item, &format!("{at}[{i}]"), depth + 1)? {
                        out.push(r);
                    }
                }
                CfnValue::List(out)
            }
            CfnValue::Map(m) => {
                let mut out = BTreeMap::new();
                for (k, item) in m {
                    if let Some(r) = self.resolve_at(item, &format!("{at}.{k}"), depth + 1)? {
                        out.insert(k.clone(), r);
                    }
                }
                CfnValue::Map(out)
            }
            scalar => scalar.clone(),
        }))
    }

    fn string_at(&self, v: &CfnValue, at: &str, depth: usize) -> Result<String, SamError> {
        match self.resolve_at(v, at, depth)? {
            Some(r) => r
                .scalar_text()
                .ok_or_else(|| SamError::invalid(at, "expected a string, found a list or mapping")),
            None => Err(SamError::invalid(
                at,
                "AWS::NoValue where a string is needed",
            )),
        }
    }

    fn list_at(&self, v: &CfnValue, at: &str, depth: usize) -> Result<Vec<CfnValue>, SamError> {
        match self.resolve_at(v, at, depth)? {
            Some(CfnValue::List(l)) => Ok(l),
            _ => Err(SamError::invalid(at, "expected a list")),
        }
    }

    fn args<'a>(
        arg: &'a CfnValue,
        name: &str,
        at: &str,
        n: std::ops::RangeInclusive<usize>,
    ) -> Result<&'a [CfnValue], SamError> {
        match arg {
            CfnValue::List(l) if n.contains(&l.len()) => Ok(l),
            _ => Err(SamError::invalid(
                at,
                format!(
                    "{name} takes a list of {} arguments",
                    if n.start() == n.end() {
                        n.start().to_string()
                    } else {
                        format!("{} to {}", n.start(), n.end())
                    }
                ),
            )),
        }
    }

    fn call(
        &self,
        name: &str,
        arg: &CfnValue,
        at: &str,
        depth: usize,
    ) -> Result<Option<CfnValue>, SamError> {
        let text = |s: String| Ok(Some(CfnValue::String(s)));
        match name {
            "Ref" => {
                let target = self.string_at(arg, at, depth)?;
                self.reference(&target, at)
            }
            "Fn::GetAtt" => {
                let a = Self::args(arg, name, at, 2..=2)?;
                let res = self.string_at(&a[0], at, depth)?;
                let attr = self.string_at(&a[1], at, depth)?;
                text(self.get_att(&res, &attr, at)?)
            }
            "Fn::Sub" => {
                let (tpl, vars) = match arg {
                    CfnValue::String(s) => (s.as_str(), None),
                    CfnValue::List(l) if l.len() == 2 => match (&l[0], l[1].as_map()) {
                        (CfnValue::String(s), Some(m)) => (s.as_str(), Some(m)),
                        _ => {
                            return Err(SamError::invalid(
                                at,
                                "Fn::Sub takes a string or [string, {variables}]",
                            ));
                        }
                    },
                    _ => {
                        return Err(SamError::invalid(
                            at,
                            "Fn::Sub takes a string or [string, {variables}]",
                        ));
                    }
                };
                text(self.sub(tpl, vars, at, depth)?)
            }
            "Fn::Join" => {
                let a = Self::args(arg, name, at, 2..=2)?;
                let delim = self.string_at(&a[0], at, depth)?;
                let items = self.list_at(&a[1], at, depth)?;
                let parts = items
                    .iter()
                    .map(|i| {
                        i.scalar_text()
                            .ok_or_else(|| SamError::invalid(at, "Fn::Join items must be strings"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                text(parts.join(&delim))
            }
            "Fn::Select" => {
                let a = Self::args(arg, name, at, 2..=2)?;
                let idx = self.string_at(&a[0], at, depth)?;
                let idx: usize = idx.parse().map_err(|_| {
                    SamError::invalid(at, format!("Fn::Select index {idx:?} is not a number"))
                })?;
                let items = self.list_at(&a[1], at, depth)?;
                let len = items.len();
                items.into_iter().nth(idx).map(Some).ok_or_else(|| {
                    SamError::invalid(
                        at,
                        format!("Fn::Select index {idx} is past the list's end ({len} items)"),
                    )
                })
            }
            "Fn::Split" => {
                let a = Self::args(arg, name, at, 2..=2)?;
                let delim = self.string_at(&a[0], at, depth)?;
                let s = self.string_at(&a[1], at, depth)?;
                if delim.is_empty() {
                    return Err(SamError::invalid(at, "Fn::Split with an empty delimiter"));
                }
                Ok(Some(CfnValue::List(
                    s.split(delim.as_str())
                        .map(|p| CfnValue::String(p.into()))
                        .collect(),
                )))
            }
            "Fn::FindInMap" => {
                let a = Self::args(arg, name, at, 3..=4)?;
                let keys = [
                    self.string_at(&a[0], at, depth)?,
                    self.string_at(&a[1], at, depth)?,
                    self.string_at(&a[2], at, depth)?,
                ];
                let found = self
                    .mappings
                    .and_then(|m| m.get(&keys[0]))
                    .and_then(|m| m.get(&keys[1]))
                    .and_then(|m| m.get(&keys[2]));
                match (found, a.get(3).and_then(|d| d.get("DefaultValue"))) {
                    (Some(v), _) => self.resolve_at(v, at, depth),
                    (None, Some(d)) => self.resolve_at(d, at, depth),
                    (None, None) => Err(SamError::invalid(
                        at,
                        format!(
                            "Fn::FindInMap: Mappings has no {}.{}.{}",
                            keys[0], keys[1], keys[2]
                        ),
                    )),
                }
            }
            "Fn::If" => {
                let a = Self::args(arg, name, at, 3..=3)?;
                let cond = a[0].as_str().ok_or_else(|| {
                    SamError::invalid(at, "Fn::If's first argument must be a condition name")
                })?;
                let branch = if self.condition_at(cond, at, depth)? {
                    &a[1]
                } else {
                    &a[2]
                };
                self.resolve_at(branch, at, depth)
            }
            "Fn::Equals" | "Fn::Not" | "Fn::And" | "Fn::Or" => {
                Ok(Some(CfnValue::Bool(self.cond_expr(name, arg, at, depth)?)))
            }
            "Fn::Base64" => {
                let s = self.string_at(arg, at, depth)?;
                text(base64::engine::general_purpose::STANDARD.encode(s))
            }
            "Fn::ToJsonString" => match self.resolve_at(arg, at, depth)? {
                Some(v) => text(v.to_json().to_string()),
                None => Err(SamError::invalid(at, "Fn::ToJsonString of AWS::NoValue")),
            },
            "Fn::Length" => {
                let l = self.list_at(arg, at, depth)?;
                Ok(Some(CfnValue::Int(l.len() as i64)))
            }
            "Fn::ImportValue" => Err(SamError::unresolved(
                at,
                "Fn::ImportValue reads another stack's outputs",
            )),
            "Fn::GetAZs" => Err(SamError::unresolved(
                at,
                "Fn::GetAZs lists the account's availability zones",
            )),
            "Fn::Cidr" => Err(SamError::unresolved(
                at,
                "Fn::Cidr is not evaluated locally",
            )),
            "Fn::Transform" => Err(SamError::unresolved(
                at,
                "Fn::Transform runs a CloudFormation macro",
            )),
            other => Err(SamError::invalid(
                at,
                format!("unknown intrinsic function {other}"),
            )),
        }
    }

    fn reference(&self, target: &str, at: &str) -> Result<Option<CfnValue>, SamError> {
        if target == "AWS::NoValue" {
            return Ok(None);
        }
        if let Some(v) = self.pseudo.get(target) {
            return Ok(Some(CfnValue::String(v.clone())));
        }
        if let Some(p) = self.params.get(target) {
            return p
                .clone()
                .map(Some)
                .map_err(|reason| SamError::unresolved(at, reason));
        }
        match self.resources.get(target) {
            Some(ResourceRef::Function(name)) => Ok(Some(CfnValue::String(name.clone()))),
            Some(ResourceRef::Other(ty)) => Err(SamError::unresolved(
                at,
                format!("Ref to {target} ({ty}) names a resource that exists only in AWS"),
            )),
            None if target.starts_with("AWS::") => Err(SamError::unresolved(
                at,
                format!("pseudo-parameter {target} has no local value"),
            )),
            // SAM's generated resources: `MyFn.Version`, `MyFn.Alias`, `MyApi.Stage`, ...
            None if target
                .split_once('.')
                .is_some_and(|(res, _)| self.resources.contains_key(res)) =>
            {
                Err(SamError::unresolved(
                    at,
                    format!("Ref to {target} names a resource that exists only in AWS"),
                ))
            }
            None => Err(SamError::invalid(
                at,
                format!("Ref to {target}, which is neither a parameter nor a resource"),
            )),
        }
    }

    fn get_att(&self, res: &str, attr: &str, at: &str) -> Result<String, SamError> {
        match self.resources.get(res) {
            Some(ResourceRef::Function(name)) if attr == "Arn" => Ok(self.function_arn(name)),
            Some(ResourceRef::Function(_)) => Err(SamError::unresolved(
                at,
                format!("Fn::GetAtt {res}.{attr}: only a function's Arn is known locally"),
            )),
            Some(ResourceRef::Other(ty)) => Err(SamError::unresolved(
                at,
                format!("Fn::GetAtt {res}.{attr} ({ty}) exists only in AWS"),
            )),
            None => Err(SamError::invalid(
                at,
                format!("Fn::GetAtt to {res}, which is not a resource"),
            )),
        }
    }

    fn sub(
        &self,
        tpl: &str,
        vars: Option<&BTreeMap<String, CfnValue>>,
        at: &str,
        depth: usize,
    ) -> Result<String, SamError> {
        let mut out = String::with_capacity(tpl.len());
        let mut rest = tpl;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let body = &rest[i + 2..];
            // `${!Literal}` writes `${Literal}`.
            if let Some(lit) = body.strip_prefix('!') {
                out.push_str("${");
                rest = lit;
                continue;
            }
            let Some(end) = body.find('}') else {
                out.push_str(&rest[i..]);
                rest = "";
                break;
            };
            let name = body[..end].trim();
            let value = match vars.and_then(|m| m.get(name)) {
                Some(v) => self.string_at(v, at, depth)?,
                None => match name.split_once('.') {
                    Some((res, attr)) if !name.starts_with("AWS::") => {
                        self.get_att(res, attr, at)?
                    }
                    _ => match self.reference(name, at)? {
                        Some(v) => v.scalar_text().ok_or_else(|| {
                            SamError::invalid(at, format!("Fn::Sub: ${{{name}}} is a list"))
                        })?,
                        None => String::new(),
                    },
                },
            };
            out.push_str(&value);
            rest = &body[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn condition_at(&self, name: &str, at: &str, depth: usize) -> Result<bool, SamError> {
        if let Some(b) = self.cache.borrow().get(name) {
            return Ok(*b);
        }
        let expr = self.conditions.and_then(|c| c.get(name)).ok_or_else(|| {
            SamError::invalid(at, format!("condition {name} is not defined in Conditions"))
        })?;
        if !self.evaluating.borrow_mut().insert(name.to_string()) {
            return Err(SamError::invalid(
                at,
                format!("condition {name} refers to itself"),
            ));
        }
        let cat = format!("Conditions.{name}");
        let r = self.cond_value(expr, &cat, depth + 1);
        self.evaluating.borrow_mut().remove(name);
        let b = r?;
        self.cache.borrow_mut().insert(name.to_string(), b);
        Ok(b)
    }

    /// A condition expression: `Fn::Equals/Not/And/Or`, `{Condition: name}`, or a boolean.
    fn cond_value(&self, v: &CfnValue, at: &str, depth: usize) -> Result<bool, SamError> {
        self.tick(at, depth)?;
        match v.intrinsic(true) {
            Some(("Condition", arg)) => {
                let name = arg
                    .as_str()
                    .ok_or_else(|| SamError::invalid(at, "Condition takes a condition name"))?;
                self.condition_at(name, at, depth + 1)
            }
            Some((f @ ("Fn::Equals" | "Fn::Not" | "Fn::And" | "Fn::Or"), arg)) => {
                self.cond_expr(f, arg, at, depth + 1)
            }
            _ => match self.resolve_at(v, at, depth + 1)? {
                Some(CfnValue::Bool(b)) => Ok(b),
                Some(CfnValue::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
                Some(CfnValue::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
                _ => Err(SamError::invalid(at, "a condition must be true or false")),
            },
        }
    }

    fn cond_expr(&self, f: &str, arg: &CfnValue, at: &str, depth: usize) -> Result<bool, SamError> {
        match f {
            "Fn::Equals" => {
                let a = Self::args(arg, f, at, 2..=2)?;
                let x = self.resolve_at(&a[0], at, depth)?;
                let y = self.resolve_at(&a[1], at, depth)?;
                // CloudFormation compares `"1"` and `1` as equal: both are strings to it.
                Ok(
                    match (
                        x.as_ref().and_then(CfnValue::scalar_text),
                        y.as_ref().and_then(CfnValue::scalar_text),
                    ) {
                        (Some(x), Some(y)) => x == y,
                        _ => x == y,
                    },
                )
            }
            "Fn::Not" => {
                let a = Self::args(arg, f, at, 1..=1)?;
                Ok(!self.cond_value(&a[0], at, depth)?)
            }
            "Fn::And" | "Fn::Or" => {
                let a = Self::args(arg, f, at, 1..=10)?;
                let mut acc = f == "Fn::And";
                for c in a {
                    let b = self.cond_value(c, at, depth)?;
                    acc = if f == "Fn::And" { acc && b } else { acc || b };
                }
                Ok(acc)
            }
            _ => Err(SamError::invalid(
                at,
                format!("{f} is not a condition function"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::parse_template;

    const TEMPLATE: &str = r#"
Parameters:
  Stage: {Type: String, Default: dev}
  Size: {Type: Number, Default: 256}
  Names: {Type: CommaDelimitedList, Default: "a, b,c"}
  NoDefault: {Type: String}
  FromSsm: {Type: 'AWS::SSM::Parameter::Value<String>', Default: /my/param}
Mappings:
  Sizes:
    dev: {Mem: 128}
    prod: {Mem: 1024}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  IsDev: !Not [!Condition IsProd]
  Both: !And [!Condition IsDev, !Equals ['256', !Ref Size]]
  Either: !Or [!Condition IsProd, !Equals [x, y]]
  Loop: !Not [!Condition Loop]
Resources:
  Fn:
    Type: AWS::Serverless::Function
  Table:
    Type: AWS::DynamoDB::Table
"#;

    fn check(expr: &str, overrides: &[(&str, &str)], expected: Result<CfnValue, &str>) {
        let t = parse_template(TEMPLATE).unwrap();
        let v = parse_template(&format!("X: {expr}")).unwrap();
        let overrides = overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let resources = BTreeMap::from([
            ("Fn".to_string(), ResourceRef::Function("fn-name".into())),
            (
                "Table".to_string(),
                ResourceRef::Other("AWS::DynamoDB::Table".into()),
            ),
        ]);
        let r = Resolver::new(&t, &overrides, resources, &mut Vec::new());
        let got = r.resolve(v.get("X").unwrap(), "Resources.Fn.Properties.P");
        match (got, expected) {
            (Ok(Some(v)), Ok(e)) => assert_eq!(v, e, "{expr}"),
            (Ok(None), Ok(e)) => panic!("{expr}: NoValue, expected {e:?}"),
            (Err(e), Err(needle)) => {
                let msg = e.to_string();
                assert!(msg.contains(needle), "{expr}: {msg:?} lacks {needle:?}");
                assert!(
                    msg.starts_with("Resources.Fn.Properties.P") || msg.contains("Conditions."),
                    "{msg}"
                );
            }
            (got, want) => panic!("{expr}: got {got:?}, want {want:?}"),
        }
    }

    fn s(v: &str) -> Result<CfnValue, &'static str> {
        Ok(CfnValue::String(v.into()))
    }

    #[test]
    fn refs_to_parameters_pseudo_parameters_and_resources() {
        check("!Ref Stage", &[], s("dev"));
        check("!Ref Stage", &[("Stage", "prod")], s("prod"));
        check("!Ref Size", &[], s("256"));
        check(
            "!Ref Names",
            &[],
            Ok(CfnValue::List(vec![
                CfnValue::String("a".into()),
                CfnValue::String("b".into()),
                CfnValue::String("c".into()),
            ])),
        );
        check("!Ref AWS::Region", &[], s("us-east-1"));
        check(
            "!Ref AWS::Region",
            &[("AWS::Region", "eu-west-1")],
            s("eu-west-1"),
        );
        check("!Ref AWS::AccountId", &[], s("123456789012"));
        check("!Ref AWS::StackName", &[], s("local"));
        check("!Ref AWS::Partition", &[], s("aws"));
        check("!Ref AWS::URLSuffix", &[], s("localhost"));
        check("!Ref Fn", &[], s("fn-name"));
        check("!Ref NoDefault", &[], Err("has no Default"));
        check("!Ref NoDefault", &[("NoDefault", "v")], s("v"));
        check("!Ref FromSsm", &[], Err("SSM"));
        check(
            "!Ref Table",
            &[],
            Err("cannot be resolved locally: Ref to Table (AWS::DynamoDB::Table)"),
        );
        check("!Ref Nope", &[], Err("neither a parameter nor a resource"));
        check("!Ref AWS::NotificationARNs", &[], Err("no local value"));
    }

    #[test]
    fn no_value_removes_list_items_and_map_entries() {
        check(
            "[a, !Ref AWS::NoValue, b]",
            &[],
            Ok(CfnValue::List(vec![
                CfnValue::String("a".into()),
                CfnValue::String("b".into()),
            ])),
        );
        check(
            "{A: !If [IsProd, x, !Ref AWS::NoValue], B: y}",
            &[],
            Ok(CfnValue::Map(BTreeMap::from([(
                "B".to_string(),
                CfnValue::String("y".into()),
            )]))),
        );
    }

    #[test]
    fn get_att_gives_a_function_arn_only() {
        check(
            "!GetAtt Fn.Arn",
            &[],
            s("arn:aws:lambda:us-east-1:123456789012:function:fn-name"),
        );
        check(
            "!GetAtt [Fn, Arn]",
            &[],
            s("arn:aws:lambda:us-east-1:123456789012:function:fn-name"),
        );
        check("!GetAtt Fn.Version", &[], Err("only a function's Arn"));
        check("!GetAtt Table.Arn", &[], Err("exists only in AWS"));
        check("!GetAtt Nope.Arn", &[], Err("not a resource"));
    }

    #[test]
    fn sub_in_both_forms_with_literals() {
        check("!Sub '${AWS::StackName}-${Stage}'", &[], s("local-dev"));
        check(
            "!Sub 'arn=${Fn.Arn}'",
            &[],
            s("arn=arn:aws:lambda:us-east-1:123456789012:function:fn-name"),
        );
        check("!Sub ['${A}/${Stage}', {A: !Ref Size}]", &[], s("256/dev"));
        check("!Sub ['${Stage}', {Stage: own}]", &[], s("own"));
        check(
            "!Sub 'keep ${!Literal} and ${Stage}'",
            &[],
            s("keep ${Literal} and dev"),
        );
        check("!Sub 'open ${Stage'", &[], s("open ${Stage"));
        check("!Sub '${Table}'", &[], Err("Ref to Table"));
        check("{'Fn::Sub': '${Stage}'}", &[], s("dev"));
    }

    #[test]
    fn join_select_split_find_in_map() {
        check("!Join ['-', [a, !Ref Stage, 3]]", &[], s("a-dev-3"));
        check("!Join [',', !Ref Names]", &[], s("a,b,c"));
        check("!Select [1, !Ref Names]", &[], s("b"));
        check("!Select ['0', [x, y]]", &[], s("x"));
        check("!Select [5, [x]]", &[], Err("past the list's end"));
        check("!Select [2, !Split ['/', 'a/b/c']]", &[], s("c"));
        check(
            "!FindInMap [Sizes, !Ref Stage, Mem]",
            &[],
            Ok(CfnValue::Int(128)),
        );
        check(
            "!FindInMap [Sizes, !Ref Stage, Mem]",
            &[("Stage", "prod")],
            Ok(CfnValue::Int(1024)),
        );
        check(
            "!FindInMap [Sizes, qa, Mem, {DefaultValue: 512}]",
            &[],
            Ok(CfnValue::Int(512)),
        );
        check(
            "!FindInMap [Sizes, qa, Mem]",
            &[],
            Err("Mappings has no Sizes.qa.Mem"),
        );
        check("!Join ['-']", &[], Err("takes a list of 2 arguments"));
    }

    #[test]
    fn if_and_condition_functions() {
        check("!If [IsProd, big, small]", &[], s("small"));
        check("!If [IsProd, big, small]", &[("Stage", "prod")], s("big"));
        check("!If [IsDev, dev, other]", &[], s("dev"));
        check("!If [Both, yes, no]", &[], s("yes"));
        check("!If [Both, yes, no]", &[("Size", "1")], s("no"));
        check("!If [Either, yes, no]", &[("Stage", "prod")], s("yes"));
        check("!If [Either, yes, no]", &[], s("no"));
        check("!Equals [a, a]", &[], Ok(CfnValue::Bool(true)));
        check("!If [Loop, a, b]", &[], Err("refers to itself"));
        check("!If [Missing, a, b]", &[], Err("not defined in Conditions"));
    }

    #[test]
    fn the_rest() {
        check("!Base64 hi", &[], s("aGk="));
        check(
            "!ToJsonString {a: [1, !Ref Stage]}",
            &[],
            s(r#"{"a":[1,"dev"]}"#),
        );
        check("!Length [a, b]", &[], Ok(CfnValue::Int(2)));
        check("!ImportValue X", &[], Err("another stack"));
        check("!GetAZs ''", &[], Err("availability zones"));
        check("!Cidr [a, 1, 2]", &[], Err("Fn::Cidr"));
        check("!Transform {Name: X}", &[], Err("macro"));
        check("{'Fn::Nope': 1}", &[], Err("unknown intrinsic"));
    }
}
