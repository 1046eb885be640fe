//! SAM's `Globals` merge (`samtranslator/plugins/globals/globals.py`): the resource wins for scalars
//! and type mismatches, mappings merge recursively, lists are global + local (no dedup).

use crate::value::CfnValue;

/// Merges a resource's `Properties` over the matching `Globals` section.
///
/// An intrinsic (`{"Fn::If": ..}`, `{"Ref": ..}`) is an opaque value here: merging into it key by
/// key would change its meaning, so the resource's side simply wins.
pub(crate) fn merge(global: &CfnValue, local: &CfnValue) -> CfnValue {
    match (global, local) {
        (CfnValue::Map(g), CfnValue::Map(l))
            if global.intrinsic(false).is_none() && local.intrinsic(false).is_none() =>
        {
            let mut out = g.clone();
            for (k, lv) in l {
                let merged = match g.get(k) {
                    Some(gv) => merge(gv, lv),
                    None => lv.clone(),
                };
                out.insert(k.clone(), merged);
            }
            CfnValue::Map(out)
        }
        (CfnValue::List(g), CfnValue::List(l)) => {
            CfnValue::List(g.iter().chain(l.iter()).cloned().collect())
        }
        _ => local.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::parse_template;

    fn check(global: &str, local: &str, expected: &str) {
        let g = parse_template(&format!("X: {global}")).unwrap();
        let l = parse_template(&format!("X: {local}")).unwrap();
        let e = parse_template(&format!("X: {expected}")).unwrap();
        assert_eq!(
            merge(g.get("X").unwrap(), l.get("X").unwrap()),
            *e.get("X").unwrap(),
            "{global} + {local}"
        );
    }

    #[test]
    fn sam_merge_rules() {
        // Scalars and type mismatches: the resource wins.
        check("{Timeout: 30}", "{Timeout: 5}", "{Timeout: 5}");
        check("{Timeout: 30}", "{}", "{Timeout: 30}");
        check("{Layers: [a]}", "{Layers: b}", "{Layers: b}");
        check("{Env: {A: 1}}", "{Env: [x]}", "{Env: [x]}");
        // Mappings merge recursively, function wins per key.
        check(
            "{Environment: {Variables: {A: g, B: g}}}",
            "{Environment: {Variables: {B: l, C: l}}}",
            "{Environment: {Variables: {A: g, B: l, C: l}}}",
        );
        // Lists: global then local, duplicates kept.
        check(
            "{Layers: [a, b]}",
            "{Layers: [b, c]}",
            "{Layers: [a, b, b, c]}",
        );
        // Intrinsics are opaque.
        check(
            "{Runtime: !If [C, python3.12, python3.11]}",
            "{Runtime: !Ref R}",
            "{Runtime: !Ref R}",
        );
        check("{Vars: {A: 1}}", "{Vars: !Ref M}", "{Vars: !Ref M}");
        check("{Vars: !Ref M}", "{Vars: {A: 1}}", "{Vars: {A: 1}}");
    }
}
