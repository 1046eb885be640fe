//! `${VAR}` and `${VAR:-default}` in config values, resolved through a lookup the binary passes in.

use std::cell::RefCell;

/// Expands `${NAME}` / `${NAME:-default}`; `$$` is a literal `$`. The lookup is injected so that
/// only the leaf binary reads the process environment.
pub struct Interpolator<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    /// Variables that were referenced but unset (expanded to ""), reported as warnings.
    pub(crate) missing: RefCell<Vec<String>>,
}

impl<'a> Interpolator<'a> {
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self {
            lookup,
            missing: RefCell::new(Vec::new()),
        }
    }

    pub fn expand(&self, s: &str) -> Result<String, String> {
        if !s.contains('$') {
            return Ok(s.to_string());
        }
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            if let Some(stripped) = after.strip_prefix('$') {
                out.push('$');
                rest = stripped;
            } else if let Some(body) = after.strip_prefix('{') {
                let end = body
                    .find('}')
                    .ok_or_else(|| format!("unclosed ${{ in {s:?}"))?;
                let expr = &body[..end];
                let (name, default) = match expr.split_once(":-") {
                    Some((n, d)) => (n, Some(d)),
                    None => (expr, None),
                };
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    return Err(format!("bad variable name {name:?} in {s:?}"));
                }
                match ((self.lookup)(name), default) {
                    (Some(v), _) if !v.is_empty() || default.is_none() => out.push_str(&v),
                    (_, Some(d)) => out.push_str(d),
                    (None, None) => {
                        self.missing.borrow_mut().push(name.to_string());
                    }
                    (Some(_), None) => unreachable!("handled by the first arm"),
                }
                rest = &body[end + 1..];
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &str) {
        let lookup = |k: &str| match k {
            "A" => Some("x".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let i = Interpolator::new(&lookup);
        assert_eq!(i.expand(input).unwrap(), expected, "input {input:?}");
    }

    #[test]
    fn expands_variables_defaults_and_escapes() {
        check("plain", "plain");
        check("${A}", "x");
        check("a-${A}-b", "a-x-b");
        check("${B:-dflt}", "dflt");
        check("${EMPTY:-dflt}", "dflt");
        check("${EMPTY}", "");
        check("$$A", "$A");
        check("cost $5", "cost $5");
        check("${MISSING}", "");
    }

    #[test]
    fn rejects_broken_syntax() {
        let lookup = |_: &str| None;
        let i = Interpolator::new(&lookup);
        assert!(i.expand("${A").is_err());
        assert!(i.expand("${A B}").is_err());
    }
}
