//! The locks a build's resolve steps wrote, as `--call lock,format=json` answers them, merged
//! per image into the `pylock.IMAGE.toml` a team commits (`llb-gen lock resolve`).
//!
//! Pure: the CLI runs `docker buildx build --call lock,format=json` and hands its stdout here.

use serde::Deserialize;

/// One resolve step's lock.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Resolved {
    /// `linux/arm64`
    pub platform: String,
    /// The resolve step's progress name: `[layer base 1/1] pip install …: resolve for …`.
    pub step: String,
    /// The interpreter the lock is for (`3.11.2`), when the step said.
    #[serde(default)]
    pub python: Option<String>,
    /// The `pylock.toml` text.
    pub pylock: String,
}

/// The answer of `--call lock,format=json`: a JSON list (buildx may print a line of its own
/// before it). An older buildx prints the text answer whatever the format (`# PLATFORM —
/// STEP` before each lock's text), which is read too (without the Python version). Errors
/// say what was expected.
pub fn parse(stdout: &str) -> Result<Vec<Resolved>, String> {
    let mut json_error = None;
    let mut start = 0;
    for line in stdout.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with('[') && !t.starts_with("[[") {
            let mut de = serde_json::Deserializer::from_str(&stdout[start..]);
            match Vec::<Resolved>::deserialize(&mut de) {
                Ok(list) => return Ok(list),
                Err(e) => {
                    json_error.get_or_insert(e.to_string());
                }
            }
        }
        start += line.len();
    }
    let text = parse_text(stdout);
    if !text.is_empty() || stdout.contains("no resolve step wrote a lock") {
        return Ok(text);
    }
    Err(match json_error {
        Some(e) => format!(
            "`--call lock,format=json` printed what is not a list of locks ({e}):\n{}",
            excerpt(stdout)
        ),
        None => format!(
            "`--call lock,format=json` printed no list of locks:\n{}",
            excerpt(stdout)
        ),
    })
}

/// The text answer: `# PLATFORM — STEP` lines, each followed by its lock's text.
fn parse_text(stdout: &str) -> Vec<Resolved> {
    let header = |line: &str| -> Option<(String, String)> {
        let (platform, step) = line.strip_prefix("# ")?.split_once(" — ")?;
        (platform.contains('/') && !platform.contains(' '))
            .then(|| (platform.to_string(), step.trim_end().to_string()))
    };
    let mut out: Vec<Resolved> = vec![];
    for line in stdout.lines() {
        if let Some((platform, step)) = header(line) {
            out.push(Resolved {
                platform,
                step,
                python: None,
                pylock: String::new(),
            });
        } else if let Some(last) = out.last_mut() {
            last.pylock.push_str(line);
            last.pylock.push('\n');
        }
    }
    for r in &mut out {
        r.pylock = format!("{}\n", r.pylock.trim());
    }
    out
}

fn excerpt(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(400) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The image a step belongs to: `base` of `[layer base 1/2] …`.
fn image_of(step: &str) -> Option<&str> {
    let inner = step.strip_prefix('[')?.split(']').next()?;
    let mut words = inner.split_whitespace();
    let (_kind, image, pos) = (words.next()?, words.next()?, words.next()?);
    let n = pos.split('/').next()?;
    n.parse::<u32>().is_ok().then_some(image)
}

/// `[A-Za-z0-9_-]`, anything else `-`: a name PEP 751 allows between `pylock.` and `.toml`.
fn safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The locks of each image (in the order they came), by image name (`fallback` for a step
/// that names none): what `merge` makes one file of.
pub fn by_image<'a>(locks: &'a [Resolved], fallback: &str) -> Vec<(String, Vec<&'a Resolved>)> {
    let mut out: Vec<(String, Vec<&Resolved>)> = vec![];
    for l in locks {
        let image = image_of(&l.step).unwrap_or(fallback).to_string();
        match out.iter_mut().find(|(i, _)| *i == image) {
            Some((_, v)) => v.push(l),
            None => out.push((image, vec![l])),
        }
    }
    out
}

/// The platforms of `locks`, each once, in order: `linux/arm64, linux/amd64`.
pub fn platforms(locks: &[&Resolved]) -> String {
    let mut seen: Vec<&str> = vec![];
    for l in locks {
        if !seen.contains(&l.platform.as_str()) {
            seen.push(&l.platform);
        }
    }
    seen.join(", ")
}

/// `pylock.IMAGE.toml`
pub fn merged_file_name(image: &str) -> String {
    format!("pylock.{}.toml", safe(image))
}

/// One package of the merged lock: its files, and the platforms (`platform_machine` values)
/// whose locks have it.
struct Merged {
    name: String,
    version: String,
    wheels: Vec<toml::Value>,
    sdist: Option<toml::Value>,
    machines: Vec<String>,
}

/// One `pylock.toml` of an image's locks (every resolve step, every platform): a package in
/// every platform's locks is listed once with the union of their wheels; a package only some
/// platforms have gets `marker = "platform_machine == '…' or …"`, so each platform installs
/// what its own resolve picked. Errors: a lock that is not TOML, a package without a name or
/// version, two versions of one package for one platform, locks for different Pythons.
pub fn merge(image: &str, locks: &[&Resolved]) -> Result<String, String> {
    let mut machines: Vec<String> = vec![];
    let mut packages: Vec<Merged> = vec![];
    let mut requires_python: Option<String> = None;
    for l in locks {
        let bad = |what: String| format!("the lock of {} ({}): {what}", l.platform, l.step);
        let machine = crate::platform::Platform::parse(&l.platform)
            .ok()
            .and_then(|p| p.wheel_machine())
            .ok_or_else(|| bad("no Python machine for this platform".into()))?
            .to_string();
        if !machines.contains(&machine) {
            machines.push(machine.clone());
        }
        let doc: toml::Table = l.pylock.parse().map_err(|e| bad(format!("{e}")))?;
        let rp = doc
            .get("requires-python")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        match (&requires_python, rp) {
            (Some(a), Some(b)) if *a != b => {
                return Err(bad(format!(
                    "requires-python {b:?}, another lock of {image} has {a:?}"
                )));
            }
            (None, Some(b)) => requires_python = Some(b),
            _ => {}
        }
        let list = doc
            .get("packages")
            .and_then(|v| v.as_array())
            .cloned()
            .unwrap_or_default();
        for (i, p) in list.iter().enumerate() {
            let field = |k: &str| p.get(k).and_then(|v| v.as_str()).map(str::to_string);
            let (Some(name), Some(version)) = (field("name"), field("version")) else {
                return Err(bad(format!("packages[{i}] lacks a name or version")));
            };
            let name = crate::lock::normalize_name(&name);
            if let Some(other) = packages
                .iter()
                .find(|m| m.name == name && m.version != version && m.machines.contains(&machine))
            {
                return Err(bad(format!(
                    "{name} {version}, and {} in another step: commit one lock per step instead",
                    other.version
                )));
            }
            let m = match packages
                .iter_mut()
                .position(|m| m.name == name && m.version == version)
            {
                Some(k) => &mut packages[k],
                None => {
                    packages.push(Merged {
                        name,
                        version,
                        wheels: vec![],
                        sdist: None,
                        machines: vec![],
                    });
                    packages.last_mut().unwrap()
                }
            };
            for w in p
                .get("wheels")
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
            {
                let url = w.get("url");
                if !m.wheels.iter().any(|x| x.get("url") == url) {
                    m.wheels.push(w.clone());
                }
            }
            if m.sdist.is_none() {
                m.sdist = p.get("sdist").cloned();
            }
            if !m.machines.contains(&machine) {
                m.machines.push(machine.clone());
            }
        }
    }
    packages.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    let mut out = vec![
        format!(
            "# Resolved by layerstack for `{image}` on {} (llb-gen lock resolve).",
            platforms(locks)
        ),
        "lock-version = \"1.0\"".to_string(),
        "created-by = \"layerstack\"".to_string(),
    ];
    if let Some(rp) = requires_python {
        out.push(format!("requires-python = {}", toml::Value::String(rp)));
    }
    out.push(String::new());
    for m in &packages {
        out.push("[[packages]]".into());
        out.push(format!("name = {}", toml::Value::String(m.name.clone())));
        out.push(format!(
            "version = {}",
            toml::Value::String(m.version.clone())
        ));
        if m.machines.len() < machines.len() {
            let mut ms = m.machines.clone();
            ms.sort();
            let marker: Vec<String> = ms
                .iter()
                .map(|x| format!("platform_machine == '{x}'"))
                .collect();
            out.push(format!(
                "marker = {}",
                toml::Value::String(marker.join(" or "))
            ));
        }
        if !m.wheels.is_empty() {
            out.push("wheels = [".into());
            for w in &m.wheels {
                out.push(format!("  {w},"));
            }
            out.push("]".into());
        }
        if let Some(s) = &m.sdist {
            out.push(format!("sdist = {s}"));
        }
        out.push(String::new());
    }
    Ok(out.join("\n"))
}

/// The packages a lock lists (`[[packages]]` tables), for the summary line.
pub fn package_count(pylock: &str) -> usize {
    pylock
        .lines()
        .filter(|l| l.trim() == "[[packages]]")
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(platform: &str, step: &str) -> Resolved {
        Resolved {
            platform: platform.into(),
            step: step.into(),
            python: Some("3.11.2".into()),
            pylock: "lock-version = \"1.0\"\n\n[[packages]]\nname = \"a\"\n\n[[packages]]\nname = \"b\"\n".into(),
        }
    }

    #[test]
    fn the_answer_is_read_after_any_line_buildx_prints_first() {
        let json = r#"note: something
[{"platform": "linux/arm64", "step": "[layer base 1/1] pip install x: resolve for linux/arm64 (on linux/amd64)", "python": "3.11.2", "pylock": "lock-version = \"1.0\"\n"}]"#;
        let got = parse(json).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].platform, "linux/arm64");
        assert_eq!(got[0].python.as_deref(), Some("3.11.2"));
        assert_eq!(parse("[]").unwrap(), vec![]);
        let err = parse("ERROR: failed to solve").unwrap_err();
        assert!(
            err.contains("no list of locks") && err.contains("failed to solve"),
            "{err}"
        );
        let err = parse("[{\"platform\": 1}]").unwrap_err();
        assert!(err.contains("not a list of locks"), "{err}");
    }

    /// What buildx 0.13 (with dockerd 26) printed for `--print lock,format=json`: an id line,
    /// then the text answer.
    #[test]
    fn an_older_buildxs_text_answer_is_read_too() {
        let text = "sha256:471a1b88\n\
            # linux/arm64 — [layer base 1/1] pip install x==1.0: resolve for linux/arm64 (on linux/amd64)\n\
            # Resolved by layerstack for linux/arm64, CPython 3.11.2.\n\
            lock-version = \"1.0\"\n\n[[packages]]\nname = \"x\"\nversion = \"1.0\"\n\n\
            # linux/amd64 — [service app 1/1] pip install y==1.0: resolve for linux/amd64 (on linux/amd64)\n\
            lock-version = \"1.0\"\n";
        let got = parse(text).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].platform, "linux/arm64");
        assert!(
            got[0]
                .step
                .starts_with("[layer base 1/1] pip install x==1.0")
        );
        assert!(
            got[0].pylock.starts_with("# Resolved by layerstack"),
            "{}",
            got[0].pylock
        );
        assert_eq!(package_count(&got[0].pylock), 1);
        assert!(got[0].pylock.parse::<toml::Table>().is_ok());
        assert_eq!(got[1].platform, "linux/amd64");
        assert_eq!(got[1].pylock, "lock-version = \"1.0\"\n");
        let none = "no resolve step wrote a lock: nothing installs for a foreign platform\n";
        assert_eq!(parse(none).unwrap(), vec![]);
    }

    fn pkg(name: &str, version: &str, wheel: &str) -> String {
        format!(
            "[[packages]]\nname = \"{name}\"\nversion = \"{version}\"\nwheels = [{{ url = \"http://i/{wheel}\", hashes = {{ sha256 = \"{}\" }} }}]\n",
            "ab".repeat(32)
        )
    }

    fn resolved(platform: &str, step: &str, packages: &[String]) -> Resolved {
        Resolved {
            platform: platform.into(),
            step: step.into(),
            python: None,
            pylock: format!(
                "lock-version = \"1.0\"\nrequires-python = \"==3.11.*\"\n\n{}",
                packages.join("\n")
            ),
        }
    }

    #[test]
    fn an_images_locks_merge_into_one_lock_with_markers_where_platforms_differ() {
        let arm = resolved(
            "linux/arm64",
            "[service app 1/2] pip install …",
            &[
                pkg("lsdemo-app", "1.0", "lsdemo_app-1.0-py3-none-any.whl"),
                pkg(
                    "lsdemo-native",
                    "1.0",
                    "lsdemo_native-1.0-cp311-cp311-manylinux_2_17_aarch64.whl",
                ),
                pkg(
                    "lsdemo-armonly",
                    "1.0",
                    "lsdemo_armonly-1.0-py3-none-any.whl",
                ),
            ],
        );
        let amd = resolved(
            "linux/amd64",
            "[service app 1/2] pip install …",
            &[
                pkg("lsdemo-app", "1.0", "lsdemo_app-1.0-py3-none-any.whl"),
                pkg(
                    "lsdemo-native",
                    "1.0",
                    "lsdemo_native-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
                ),
                pkg(
                    "Lsdemo_X86only",
                    "2.0",
                    "lsdemo_x86only-2.0-py3-none-any.whl",
                ),
            ],
        );
        let second = resolved(
            "linux/arm64",
            "[service app 2/2] pip install …",
            &[pkg("extra", "3.0", "extra-3.0-py3-none-any.whl")],
        );
        let all = [arm, amd, second];
        let groups = by_image(&all, "x");
        assert_eq!(groups.len(), 1);
        assert_eq!(merged_file_name(&groups[0].0), "pylock.app.toml");
        assert_eq!(platforms(&groups[0].1), "linux/arm64, linux/amd64");
        let text = merge("app", &groups[0].1).unwrap();
        let doc: toml::Table = text.parse().expect(&text);
        let packages = doc["packages"].as_array().unwrap();
        let get = |n: &str| {
            packages
                .iter()
                .find(|p| p["name"].as_str() == Some(n))
                .expect(n)
        };
        assert!(get("lsdemo-app").get("marker").is_none(), "{text}");
        assert_eq!(get("lsdemo-app")["wheels"].as_array().unwrap().len(), 1);
        assert_eq!(get("lsdemo-native")["wheels"].as_array().unwrap().len(), 2);
        assert_eq!(
            get("lsdemo-armonly")["marker"].as_str(),
            Some("platform_machine == 'aarch64'")
        );
        assert_eq!(
            get("lsdemo-x86only")["marker"].as_str(),
            Some("platform_machine == 'x86_64'")
        );
        assert_eq!(
            get("extra")["marker"].as_str(),
            Some("platform_machine == 'aarch64'")
        );
        assert_eq!(doc["requires-python"].as_str(), Some("==3.11.*"));
        // The merged lock reads as a lock, and picks each platform's own files.
        let file = crate::source::SourceFile::new("pylock.app.toml", &text);
        assert!(crate::lock::pylock::read(&file).is_ok(), "{text}");
        for (platform, want, not) in [
            (
                "linux/arm64",
                ["aarch64.whl", "lsdemo_armonly", "extra-3.0"],
                "x86",
            ),
            (
                "linux/amd64",
                ["x86_64.whl", "lsdemo_x86only", "lsdemo_app"],
                "aarch64",
            ),
        ] {
            let opts = crate::lock::show::ShowOptions {
                platform: platform.into(),
                python: "3.11".into(),
                libc: String::new(),
                choice: Default::default(),
            };
            let shown = crate::lock::show::show(&file, &opts).unwrap();
            for w in want {
                assert!(shown.contains(w), "{platform}: {w}\n{shown}");
            }
            assert!(!shown.contains(not), "{platform}: {not}\n{shown}");
        }

        // Two versions of one package for one platform cannot be one lock.
        let clash = resolved(
            "linux/arm64",
            "[service app 2/2] pip install …",
            &[pkg("lsdemo-app", "2.0", "lsdemo_app-2.0-py3-none-any.whl")],
        );
        let err = merge("app", &[&all[0], &clash]).unwrap_err();
        assert!(err.contains("lsdemo-app 2.0, and 1.0"), "{err}");
        let other_python = Resolved {
            pylock: all[1].pylock.replace("3.11", "3.12"),
            ..all[1].clone()
        };
        let err = merge("app", &[&all[0], &other_python]).unwrap_err();
        assert!(err.contains("requires-python"), "{err}");
        let err = merge(
            "app",
            &[&resolved(
                "linux/arm64",
                "s",
                &["[[packages]]\nname = \"x\"\n".into()],
            )],
        )
        .unwrap_err();
        assert!(err.contains("packages[0] lacks a name or version"), "{err}");
    }

    #[test]
    fn packages_are_counted_and_images_named_safely() {
        let l = lock("linux/arm64", "[layer base 1/1] pip install x: resolve");
        assert_eq!(package_count(&l.pylock), 2);
        assert_eq!(image_of(&l.step), Some("base"));
        assert_eq!(image_of("unnamed"), None);
        assert_eq!(merged_file_name("a.b/c"), "pylock.a-b-c.toml");
        assert_eq!(
            crate::lock::LockFormat::from_file_name(&merged_file_name("a.b")),
            crate::lock::LockFormat::Pylock
        );
    }
}
