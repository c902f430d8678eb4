//! `${NAME}` interpolation of build args (and, for env values, of the image's current env).

use std::collections::BTreeMap;

/// What to do with a `${NAME}` that is not in the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unknown {
    /// Report it (fields that are not shell text).
    Error,
    /// Leave `${NAME}` (and `$$`) in place for a later pass.
    Keep,
    /// Leave `${NAME}` for the shell; `$$` becomes `$` (final pass over shell text).
    Shell,
    /// Replace with the empty string (Dockerfile ENV semantics).
    Empty,
}

/// A reference that could not be resolved: its name and byte range within the input string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Undefined {
    pub name: String,
    pub start: usize,
    pub end: usize,
}

/// Replace `${NAME}` with values from `vars`. `$$` is a literal `$`. A `$` not followed by `{`
/// or `$` is kept as is (shell text like `$HOME` passes through).
pub fn interpolate(
    input: &str,
    vars: &BTreeMap<String, String>,
    unknown: Unknown,
) -> Result<String, Vec<Undefined>> {
    let mut out = String::with_capacity(input.len());
    let mut errors = vec![];
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < input.len() {
        if bytes[i] == b'$' {
            if bytes.get(i + 1) == Some(&b'$') {
                // Keep `$$` for the later env pass; it turns into `$` there.
                out.push_str(if unknown == Unknown::Keep { "$$" } else { "$" });
                i += 2;
                continue;
            }
            if bytes.get(i + 1) == Some(&b'{') {
                if let Some(close) = input[i + 2..].find('}') {
                    let name = &input[i + 2..i + 2 + close];
                    let end = i + 3 + close;
                    if crate::stack::valid_arg_name(name) {
                        match vars.get(name) {
                            Some(v) => out.push_str(v),
                            None => match unknown {
                                Unknown::Error => errors.push(Undefined {
                                    name: name.to_string(),
                                    start: i,
                                    end,
                                }),
                                Unknown::Keep | Unknown::Shell => out.push_str(&input[i..end]),
                                Unknown::Empty => {}
                            },
                        }
                        i = end;
                        continue;
                    }
                }
            }
        }
        let ch = input[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8().max(1);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        [("PY", "3.12"), ("TAG", "v1")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn substitutes_and_escapes() {
        assert_eq!(
            interpolate("python:${PY}-slim", &vars(), Unknown::Error).unwrap(),
            "python:3.12-slim"
        );
        assert_eq!(
            interpolate("cost $$5 ${TAG}", &vars(), Unknown::Error).unwrap(),
            "cost $5 v1"
        );
        assert_eq!(
            interpolate("echo $HOME ${X}", &vars(), Unknown::Keep).unwrap(),
            "echo $HOME ${X}"
        );
        assert_eq!(
            interpolate("a${X}b", &vars(), Unknown::Empty).unwrap(),
            "ab"
        );
        assert_eq!(
            interpolate("$$ ${X} ${PY}", &vars(), Unknown::Shell).unwrap(),
            "$ ${X} 3.12"
        );
        assert_eq!(
            interpolate("$$ ${X}", &vars(), Unknown::Keep).unwrap(),
            "$$ ${X}"
        );
        assert_eq!(
            interpolate("é${PY}é", &vars(), Unknown::Error).unwrap(),
            "é3.12é"
        );
        assert_eq!(
            interpolate("${unterminated", &vars(), Unknown::Error).unwrap(),
            "${unterminated"
        );
    }

    #[test]
    fn reports_undefined_with_positions() {
        let e = interpolate("x ${NOPE} ${PY} ${ALSO}", &vars(), Unknown::Error).unwrap_err();
        assert_eq!(
            e,
            vec![
                Undefined {
                    name: "NOPE".into(),
                    start: 2,
                    end: 9
                },
                Undefined {
                    name: "ALSO".into(),
                    start: 16,
                    end: 23
                }
            ]
        );
    }
}
