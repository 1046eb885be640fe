//! The template as a plain value tree, with YAML short-form tags already turned into their long forms.
//!
//! After parsing, `!Sub x` and `{"Fn::Sub": x}` are the same [`CfnValue`], so the rest of the crate
//! only ever sees CloudFormation's JSON shape.

use std::collections::BTreeMap;

use serde_yaml_ng::Value as Yaml;

use crate::error::SamError;

/// A CloudFormation value. Mapping keys are strings (YAML numbers and booleans used as keys are
/// written out as text), kept sorted so every walk over a template is deterministic.
#[derive(Clone, Debug, PartialEq)]
pub enum CfnValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    List(Vec<CfnValue>),
    Map(BTreeMap<String, CfnValue>),
}

/// Nesting deeper than this is refused: no real template comes near, and it keeps every recursive
/// walk in this crate far from the stack's end.
pub(crate) const MAX_DEPTH: usize = 100;
/// Nodes in one template; aliases are expanded, so this also bounds "billion laughs" inputs.
pub(crate) const MAX_NODES: usize = 1_000_000;

impl CfnValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            CfnValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&BTreeMap<String, CfnValue>> {
        match self {
            CfnValue::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&CfnValue> {
        self.as_map().and_then(|m| m.get(key))
    }

    /// `{"Ref": ..}`, `{"Fn::X": ..}` (and `{"Condition": ..}` when `with_condition`): the
    /// function name and its argument.
    pub fn intrinsic(&self, with_condition: bool) -> Option<(&str, &CfnValue)> {
        let m = self.as_map()?;
        if m.len() != 1 {
            return None;
        }
        let (k, v) = m.iter().next()?;
        let is_fn = k == "Ref" || k.starts_with("Fn::") || (with_condition && k == "Condition");
        is_fn.then_some((k.as_str(), v))
    }

    /// A scalar as text, the way CloudFormation turns numbers and booleans into strings.
    pub fn scalar_text(&self) -> Option<String> {
        match self {
            CfnValue::String(s) => Some(s.clone()),
            CfnValue::Int(i) => Some(i.to_string()),
            CfnValue::Float(f) => Some(f.to_string()),
            CfnValue::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    fn short(tag: &str, value: CfnValue) -> CfnValue {
        CfnValue::Map(BTreeMap::from([(tag.to_string(), value)]))
    }

    /// Plain JSON, for `Input` strings and `Fn::ToJsonString`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            CfnValue::Null => J::Null,
            CfnValue::Bool(b) => J::Bool(*b),
            CfnValue::Int(i) => J::from(*i),
            CfnValue::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            CfnValue::String(s) => J::String(s.clone()),
            CfnValue::List(l) => J::Array(l.iter().map(CfnValue::to_json).collect()),
            CfnValue::Map(m) => {
                J::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }
}

/// Parses a template: JSON when it looks like JSON and parses as such, YAML otherwise.
pub fn parse_template(text: &str) -> Result<CfnValue, SamError> {
    if text.trim_start().starts_with('{')
        && let Ok(j) = serde_json::from_str::<serde_json::Value>(text)
    {
        let mut budget = MAX_NODES;
        return from_json(&j, 0, &mut budget);
    }
    let mut y: Yaml = serde_yaml_ng::from_str(text).map_err(|e| SamError::Parse {
        reason: e.to_string(),
    })?;
    y.apply_merge().map_err(|e| SamError::Parse {
        reason: format!("YAML merge key: {e}"),
    })?;
    let mut budget = MAX_NODES;
    from_yaml(&y, 0, &mut budget)
}

fn spend(depth: usize, budget: &mut usize) -> Result<(), SamError> {
    if depth > MAX_DEPTH {
        return Err(SamError::TooLarge {
            reason: format!("nested deeper than {MAX_DEPTH} levels"),
        });
    }
    if *budget == 0 {
        return Err(SamError::TooLarge {
            reason: format!("more than {MAX_NODES} values (after expanding aliases)"),
        });
    }
    *budget -= 1;
    Ok(())
}

fn from_json(
    j: &serde_json::Value,
    depth: usize,
    budget: &mut usize,
) -> Result<CfnValue, SamError> {
    use serde_json::Value as J;
    spend(depth, budget)?;
    Ok(match j {
        J::Null => CfnValue::Null,
        J::Bool(b) => CfnValue::Bool(*b),
        J::Number(n) => number(n.as_i64(), n.as_f64()),
        J::String(s) => CfnValue::String(s.clone()),
        J::Array(a) => CfnValue::List(
            a.iter()
                .map(|v| from_json(v, depth + 1, budget))
                .collect::<Result<_, _>>()?,
        ),
        J::Object(o) => {
            let mut m = BTreeMap::new();
            for (k, v) in o {
                m.insert(k.clone(), from_json(v, depth + 1, budget)?);
            }
            CfnValue::Map(m)
        }
    })
}

fn number(int: Option<i64>, float: Option<f64>) -> CfnValue {
    match (int, float) {
        (Some(i), _) => CfnValue::Int(i),
        (None, Some(f)) => CfnValue::Float(f),
        (None, None) => CfnValue::Null,
    }
}

fn from_yaml(y: &Yaml, depth: usize, budget: &mut usize) -> Result<CfnValue, SamError> {
    spend(depth, budget)?;
    Ok(match y {
        Yaml::Null => CfnValue::Null,
        Yaml::Bool(b) => CfnValue::Bool(*b),
        Yaml::Number(n) => number(n.as_i64(), n.as_f64()),
        // Timestamps (`2010-09-09`) are plain strings here: serde_yaml_ng resolves no timestamp tag.
        Yaml::String(s) => CfnValue::String(s.clone()),
        Yaml::Sequence(s) => CfnValue::List(
            s.iter()
                .map(|v| from_yaml(v, depth + 1, budget))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Mapping(m) => {
            let mut out = BTreeMap::new();
            for (k, v) in m {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Number(n) => n.to_string(),
                    Yaml::Bool(b) => b.to_string(),
                    Yaml::Null => "null".to_string(),
                    _ => {
                        return Err(SamError::Parse {
                            reason: "a mapping key is a list, mapping or tagged value".into(),
                        });
                    }
                };
                out.insert(key, from_yaml(v, depth + 1, budget)?);
            }
            CfnValue::Map(out)
        }
        Yaml::Tagged(t) => {
            let tag = t.tag.to_string();
            let name = tag.strip_prefix('!').unwrap_or(&tag);
            let inner = from_yaml(&t.value, depth + 1, budget)?;
            match name {
                "Ref" => CfnValue::short("Ref", inner),
                "Condition" => CfnValue::short("Condition", inner),
                // `!GetAtt A.B.C` splits on the first dot only; the list form passes through.
                "GetAtt" => match inner {
                    CfnValue::String(s) => {
                        let parts = match s.split_once('.') {
                            Some((a, b)) => vec![a.to_string(), b.to_string()],
                            None => vec![s],
                        };
                        CfnValue::short(
                            "Fn::GetAtt",
                            CfnValue::List(parts.into_iter().map(CfnValue::String).collect()),
                        )
                    }
                    other => CfnValue::short("Fn::GetAtt", other),
                },
                // YAML's own `!!str` and friends: keep the value.
                n if n.starts_with('!') => inner,
                n => CfnValue::short(&format!("Fn::{n}"), inner),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> CfnValue {
        CfnValue::String(v.into())
    }
    fn l(v: Vec<CfnValue>) -> CfnValue {
        CfnValue::List(v)
    }
    fn m(kv: Vec<(&str, CfnValue)>) -> CfnValue {
        CfnValue::Map(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }
    fn check(yaml: &str, expected: CfnValue) {
        let got = parse_template(&format!("X: {yaml}")).unwrap();
        assert_eq!(got.get("X").unwrap(), &expected, "yaml {yaml:?}");
    }

    #[test]
    fn every_short_form_becomes_its_long_form() {
        check("!Ref A", m(vec![("Ref", s("A"))]));
        check("!Condition C", m(vec![("Condition", s("C"))]));
        check("!Sub 'a-${B}'", m(vec![("Fn::Sub", s("a-${B}"))]));
        for tag in [
            "Join",
            "If",
            "Select",
            "Split",
            "FindInMap",
            "Equals",
            "Not",
            "And",
            "Or",
            "Base64",
            "Cidr",
            "GetAZs",
            "ImportValue",
            "Transform",
            "Length",
            "ToJsonString",
        ] {
            check(
                &format!("!{tag} [a, b]"),
                m(vec![(
                    &format!("Fn::{tag}") as &str,
                    l(vec![s("a"), s("b")]),
                )]),
            );
        }
        check("!GetAZs ''", m(vec![("Fn::GetAZs", s(""))]));
        check(
            "!Transform {Name: AWS::Include, Parameters: {Location: x}}",
            m(vec![(
                "Fn::Transform",
                m(vec![
                    ("Name", s("AWS::Include")),
                    ("Parameters", m(vec![("Location", s("x"))])),
                ]),
            )]),
        );
    }

    #[test]
    fn getatt_scalar_splits_on_the_first_dot_and_list_form_passes_through() {
        check(
            "!GetAtt A.B",
            m(vec![("Fn::GetAtt", l(vec![s("A"), s("B")]))]),
        );
        check(
            "!GetAtt A.B.C",
            m(vec![("Fn::GetAtt", l(vec![s("A"), s("B.C")]))]),
        );
        check(
            "!GetAtt [A, B.C]",
            m(vec![("Fn::GetAtt", l(vec![s("A"), s("B.C")]))]),
        );
    }

    #[test]
    fn nested_tags_keep_their_structure() {
        check(
            "!Sub ['${A}-x', {A: !Ref P}]",
            m(vec![(
                "Fn::Sub",
                l(vec![s("${A}-x"), m(vec![("A", m(vec![("Ref", s("P"))]))])]),
            )]),
        );
        check(
            "[a, !If [C, !Ref X, !Ref AWS::NoValue]]",
            l(vec![
                s("a"),
                m(vec![(
                    "Fn::If",
                    l(vec![
                        s("C"),
                        m(vec![("Ref", s("X"))]),
                        m(vec![("Ref", s("AWS::NoValue"))]),
                    ]),
                )]),
            ]),
        );
        check(
            "!Join ['', [!Select [0, !Split [',', !Ref L]]]]",
            m(vec![(
                "Fn::Join",
                l(vec![
                    s(""),
                    l(vec![m(vec![(
                        "Fn::Select",
                        l(vec![
                            CfnValue::Int(0),
                            m(vec![(
                                "Fn::Split",
                                l(vec![s(","), m(vec![("Ref", s("L"))])]),
                            )]),
                        ]),
                    )])]),
                ]),
            )]),
        );
    }

    #[test]
    fn dates_stay_strings_and_scalars_keep_their_types() {
        let t = parse_template(
            "AWSTemplateFormatVersion: 2010-09-09\nA: 3\nB: 1.5\nC: true\nD: ~\n3: x\n",
        )
        .unwrap();
        assert_eq!(t.get("AWSTemplateFormatVersion"), Some(&s("2010-09-09")));
        assert_eq!(t.get("A"), Some(&CfnValue::Int(3)));
        assert_eq!(t.get("B"), Some(&CfnValue::Float(1.5)));
        assert_eq!(t.get("C"), Some(&CfnValue::Bool(true)));
        assert_eq!(t.get("D"), Some(&CfnValue::Null));
        assert_eq!(t.get("3"), Some(&s("x")));
    }

    #[test]
    fn json_templates_and_merge_keys() {
        let t = parse_template(r#"{"A": {"Fn::Sub": "x"}, "B": [1, 2.5]}"#).unwrap();
        assert_eq!(t.get("A"), Some(&m(vec![("Fn::Sub", s("x"))])));
        assert_eq!(
            t.get("B"),
            Some(&l(vec![CfnValue::Int(1), CfnValue::Float(2.5)]))
        );
        let t = parse_template("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n").unwrap();
        assert_eq!(
            t.get("d"),
            Some(&m(vec![("x", CfnValue::Int(1)), ("y", CfnValue::Int(3))]))
        );
    }

    #[test]
    fn hostile_inputs_are_refused_not_crashed_on() {
        let deep = format!("X: {}1{}", "[".repeat(120), "]".repeat(120));
        assert!(parse_template(&deep).is_err());
        let laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
        assert!(parse_template(laughs).is_err());
        assert!(parse_template("[a: b]: c").is_err());
        assert!(parse_template(": : :").is_err());
    }
}
