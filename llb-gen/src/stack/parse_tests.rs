//! Unit tests of the stack parser (`parse.rs`).

use super::*;

fn parse_str(s: &str) -> (Stack, Diagnostics) {
    parse(&SourceFile::new("stack.toml", s))
}

#[test]
fn parses_a_small_stack() {
    let (stack, diags) = parse_str(
        r#"# syntax=layerstack:dev
[stack]
name = "demo"
[args]
PY = "3.12"
TAG = { default = "v1", description = "the tag" }
[layers.base]
from = "python:${PY}-slim"
apt = ["curl"]
user = "appuser"
[services.api]
from = "base"
copy = ["app", { src = "conf", dest = "/etc/app", chown = false }]
cmd = ["python", "-m", "app"]
expose = [8000, "9000/udp"]
healthcheck = { cmd = "curl -f localhost:8000", interval = "10s", retries = 3 }
"#,
    );
    assert!(diags.items.is_empty(), "{diags:?}");
    assert_eq!(stack.syntax.as_ref().unwrap().value, "layerstack:dev");
    assert_eq!(stack.args.len(), 2);
    assert_eq!(stack.args[1].default.as_ref().unwrap().value, "v1");
    let api = stack.image("api").unwrap();
    assert_eq!(api.kind, Kind::Service);
    assert_eq!(api.copy.len(), 2);
    assert_eq!(api.copy[1].chown, Chown::No);
    assert_eq!(
        api.expose
            .iter()
            .map(|p| p.value.as_str())
            .collect::<Vec<_>>(),
        ["8000", "9000/udp"]
    );
    assert_eq!(
        api.cmd.as_ref().unwrap().value,
        Command::Exec(vec!["python".into(), "-m".into(), "app".into()])
    );
    assert_eq!(stack.default_target(), Some("api"));
}

#[test]
fn reports_every_problem() {
    let (_, diags) =
        parse_str("[layers.a]\npipp = []\napt = 3\n[services.a]\nfrom = \"x\"\n[bogus]\n");
    let msgs: Vec<String> = diags
        .items
        .iter()
        .map(|d| format!("{}|{}", d.key.clone().unwrap_or_default(), d.message))
        .collect();
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("layers.a.pipp|unknown key")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m == "layers.a.apt|expected a list of strings, found integer"),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("services.a|`a` is defined twice")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter().any(|m| m.starts_with("bogus|unknown key")),
        "{msgs:?}"
    );
    let pipp = diags
        .items
        .iter()
        .find(|d| d.message.contains("pipp"))
        .unwrap();
    assert_eq!(pipp.hint.as_deref(), Some("did you mean `pip`?"));
}

#[test]
fn invalid_toml_is_located() {
    let (_, diags) = parse_str("[layers.a]\nfrom = \n");
    assert!(diags.has_errors());
    assert!(diags.items[0].span.is_some());
}

#[test]
fn syntax_directive_after_other_directives() {
    assert_eq!(
        syntax_directive("# check=skip=all\n# syntax=x/y\n")
            .unwrap()
            .value,
        "x/y"
    );
    assert!(syntax_directive("# check=skip=all\n# a comment\n# syntax=x\n").is_none());
}

#[test]
fn syntax_directive_on_first_line_only() {
    assert_eq!(
        syntax_directive("# syntax=foo/bar:1\n").unwrap().value,
        "foo/bar:1"
    );
    assert_eq!(syntax_directive("\n#syntax = x\n").unwrap().value, "x");
    assert!(syntax_directive("[stack]\n# syntax=x\n").is_none());
    assert!(syntax_directive("# hello\n# syntax=x\n").is_none());
}
