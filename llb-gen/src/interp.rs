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

/// The longest value interpolation may produce (1 MiB). `A1 = "${A0}${A0}"`, `A2 = "${A1}${A1}"`
/// … doubles per line: without a cap 40 such lines need a terabyte.
pub const MAX_VALUE_BYTES: usize = 1 << 20;
/// The most bytes all interpolated values of one plan may add up to (64 MiB).
pub const MAX_PLAN_BYTES: usize = 64 << 20;

/// How many bytes interpolation may still produce: one per plan, charged for every value.
#[derive(Clone, Debug)]
pub struct Budget {
    pub remaining: usize,
}

impl Budget {
    /// The budget of one plan ([`MAX_PLAN_BYTES`]).
    pub fn plan() -> Budget {
        Budget {
            remaining: MAX_PLAN_BYTES,
        }
    }

    /// No overall limit (each value is still capped at [`MAX_VALUE_BYTES`]).
    pub fn unlimited() -> Budget {
        Budget {
            remaining: usize::MAX,
        }
    }
}

/// Why a value could not be interpolated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// References to names not in the map (only with [`Unknown::Error`]).
    Undefined(Vec<Undefined>),
    /// The value would grow past `limit` bytes at the reference `start..end` of the input;
    /// `plan` is true when the whole plan's budget ran out, not the value's own cap.
    TooLong {
        start: usize,
        end: usize,
        limit: usize,
        plan: bool,
    },
}

impl Failure {
    /// The message of a [`Failure::TooLong`] (None for undefined names).
    pub fn too_long_message(&self) -> Option<String> {
        match self {
            Failure::TooLong {
                limit, plan: false, ..
            } => Some(format!(
                "this value grows past {limit} bytes when `${{…}}` references are substituted"
            )),
            Failure::TooLong {
                limit, plan: true, ..
            } => Some(format!(
                "the interpolated values of this build add up to more than {limit} bytes"
            )),
            Failure::Undefined(_) => None,
        }
    }
}

/// Replace `${NAME}` with values from `vars`. `$$` is a literal `$`. A `$` not followed by `{`
/// or `$` is kept as is (shell text like `$HOME` passes through).
///
/// The result is capped at [`MAX_VALUE_BYTES`]; a longer one gives `Err` with no undefined
/// names (callers that report errors use [`interpolate_in`] to say why).
pub fn interpolate(
    input: &str,
    vars: &BTreeMap<String, String>,
    unknown: Unknown,
) -> Result<String, Vec<Undefined>> {
    interpolate_in(input, vars, unknown, &mut Budget::unlimited()).map_err(|f| match f {
        Failure::Undefined(u) => u,
        Failure::TooLong { .. } => vec![],
    })
}

/// [`interpolate`], charging the result to `budget` and capping it at [`MAX_VALUE_BYTES`]:
/// the error names the reference at which a cap was crossed.
pub fn interpolate_in(
    input: &str,
    vars: &BTreeMap<String, String>,
    unknown: Unknown,
    budget: &mut Budget,
) -> Result<String, Failure> {
    let cap = MAX_VALUE_BYTES.min(budget.remaining);
    let too_long = |start: usize, end: usize| Failure::TooLong {
        start,
        end,
        limit: cap,
        plan: budget.remaining < MAX_VALUE_BYTES,
    };
    if input.len() > cap {
        return Err(too_long(0, input.len()));
    }
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
            if bytes.get(i + 1) == Some(&b'{')
                && let Some(close) = input[i + 2..].find('}')
            {
                let name = &input[i + 2..i + 2 + close];
                let end = i + 3 + close;
                if crate::stack::valid_arg_name(name) {
                    match vars.get(name) {
                        Some(v) if out.len() + v.len() > cap => {
                            return Err(too_long(i, end));
                        }
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
        let ch = input[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8().max(1);
    }
    // Literal text after the last reference can still cross the cap (by less than the input).
    if out.len() > cap {
        return Err(too_long(input.len(), input.len()));
    }
    if errors.is_empty() {
        budget.remaining -= out.len();
        Ok(out)
    } else {
        Err(Failure::Undefined(errors))
    }
}

/// Names a shell gives a meaning of its own: an arg with one of these names is passed to
/// shell text as `LAYERSTACK_ARG_<NAME>` instead, so that the script's own `PATH`, `IFS`, …
/// stay what they are.
const SHELL_SPECIAL: &[&str] = &[
    "PATH",
    "IFS",
    "HOME",
    "ENV",
    "BASH_ENV",
    "CDPATH",
    "SHELLOPTS",
    "BASHOPTS",
    "PS1",
    "PS2",
    "PS4",
    "PWD",
    "OLDPWD",
    "OPTIND",
    "OPTARG",
    "PPID",
    "LINENO",
    "SHLVL",
    "RANDOM",
    "SECONDS",
];

/// `s` as one shell word that the shell reads back unchanged: in single quotes, each `'` as
/// `'\''`.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Shell text with `${NAME}` of build args, the way a Dockerfile gives `ARG`s to `RUN`: each
/// referenced arg becomes a shell variable assigned its (quoted) value before the text, and
/// `${NAME}` stays a parameter expansion. The shell expands it without parsing the value
/// again, so `x; touch /pwned` stays data. `$$` is `$`; unknown `${NAME}` is left to the
/// shell (the image's env). Without references the text is unchanged.
pub fn interpolate_shell(
    input: &str,
    vars: &BTreeMap<String, String>,
    budget: &mut Budget,
) -> Result<String, Failure> {
    let cap = MAX_VALUE_BYTES.min(budget.remaining);
    let bytes = input.as_bytes();
    let mut body = String::with_capacity(input.len());
    let mut assigned: Vec<(String, &str)> = vec![];
    let mut prefix_len = 0usize;
    let mut i = 0;
    while i < input.len() {
        if bytes[i] == b'$' {
            if bytes.get(i + 1) == Some(&b'$') {
                body.push('$');
                i += 2;
                continue;
            }
            if bytes.get(i + 1) == Some(&b'{')
                && let Some(close) = input[i + 2..].find('}')
            {
                let name = &input[i + 2..i + 2 + close];
                let end = i + 3 + close;
                if crate::stack::valid_arg_name(name) {
                    if let Some(v) = vars.get(name) {
                        let var = if SHELL_SPECIAL.contains(&name) {
                            format!("LAYERSTACK_ARG_{name}")
                        } else {
                            name.to_string()
                        };
                        if !assigned.iter().any(|(n, _)| *n == var) {
                            prefix_len += var.len() + v.len() + 8;
                            if prefix_len + input.len() > cap {
                                return Err(Failure::TooLong {
                                    start: i,
                                    end,
                                    limit: cap,
                                    plan: budget.remaining < MAX_VALUE_BYTES,
                                });
                            }
                            assigned.push((var.clone(), v));
                        }
                        body.push_str(&format!("${{{var}}}"));
                    } else {
                        body.push_str(&input[i..end]);
                    }
                    i = end;
                    continue;
                }
            }
        }
        let ch = input[i..].chars().next().unwrap_or('\u{fffd}');
        body.push(ch);
        i += ch.len_utf8().max(1);
    }
    let mut out = String::with_capacity(prefix_len + body.len());
    for (var, v) in &assigned {
        out.push_str(var);
        out.push('=');
        out.push_str(&shell_quote(v));
        out.push_str("; ");
    }
    out.push_str(&body);
    budget.remaining = budget.remaining.saturating_sub(out.len());
    Ok(out)
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
    fn doubling_chains_stop_at_the_cap() {
        // A0 = 16 bytes, A(n) = A(n-1) twice: A16 is 1 MiB, A17 crosses the cap.
        let mut vars = BTreeMap::new();
        vars.insert("A0".to_string(), "x".repeat(16));
        let mut failed_at = None;
        for n in 1..40 {
            let input = format!("${{A{}}}${{A{}}}", n - 1, n - 1);
            match interpolate_in(&input, &vars, Unknown::Error, &mut Budget::unlimited()) {
                Ok(v) => {
                    assert!(v.len() <= MAX_VALUE_BYTES);
                    vars.insert(format!("A{n}"), v);
                }
                Err(f) => {
                    // The second reference is the one that crosses.
                    let half = input.len() / 2;
                    assert_eq!(
                        f,
                        Failure::TooLong {
                            start: half,
                            end: input.len(),
                            limit: MAX_VALUE_BYTES,
                            plan: false
                        }
                    );
                    failed_at = Some(n);
                    break;
                }
            }
        }
        assert_eq!(failed_at, Some(17));
        // The plain API fails too, with no undefined names.
        assert_eq!(
            interpolate("${A16}${A16}", &vars, Unknown::Keep),
            Err(vec![])
        );
    }

    #[test]
    fn the_plan_budget_is_shared() {
        let mut vars = BTreeMap::new();
        vars.insert("B".to_string(), "y".repeat(1000));
        let mut budget = Budget { remaining: 2500 };
        for _ in 0..2 {
            interpolate_in("${B}", &vars, Unknown::Error, &mut budget).unwrap();
        }
        assert_eq!(budget.remaining, 500);
        let e = interpolate_in("a ${B}", &vars, Unknown::Error, &mut budget).unwrap_err();
        assert!(matches!(
            e,
            Failure::TooLong {
                start: 2,
                end: 6,
                limit: 500,
                plan: true
            }
        ));
        assert!(
            e.too_long_message()
                .unwrap()
                .contains("add up to more than 500 bytes")
        );
    }

    #[test]
    fn shell_text_gets_args_as_variables() {
        let mut vars = vars();
        vars.insert("X".into(), "x'; touch /pwned".into());
        vars.insert("PATH".into(), "/evil".into());
        let mut b = Budget::unlimited();
        assert_eq!(
            interpolate_shell("echo ${X} \"${X}\" $$HOME ${NOPE} ${PY}", &vars, &mut b).unwrap(),
            "X='x'\\''; touch /pwned'; PY='3.12'; echo ${X} \"${X}\" $HOME ${NOPE} ${PY}"
        );
        assert_eq!(
            interpolate_shell("ls ${PATH}", &vars, &mut b).unwrap(),
            "LAYERSTACK_ARG_PATH='/evil'; ls ${LAYERSTACK_ARG_PATH}"
        );
        assert_eq!(
            interpolate_shell("echo $$1 $HOME", &vars, &mut b).unwrap(),
            "echo $1 $HOME"
        );
        // The quoting round-trips through a real shell.
        let script = interpolate_shell("printf '%s|' ${X} \"${X}\"", &vars, &mut b).unwrap();
        let out = std::process::Command::new("/bin/sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "x';|touch|/pwned|x'; touch /pwned|"
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
