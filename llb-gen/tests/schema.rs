//! The committed JSON Schema (`schema/stack.schema.json`) is exactly what `llb-gen schema`
//! generates, and every shipped stack points editors at it with a `#:schema` line.

use std::path::{Path, PathBuf};

use llb_gen::stack::schema::{SCHEMA_PATH, schema_json};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn committed_schema_is_the_generated_one() {
    let generated = schema_json().expect("every parser key has a schema type");
    let path = repo().join(SCHEMA_PATH);
    let committed =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        committed == generated,
        "{SCHEMA_PATH} is out of date: run `cargo run -p llb-gen -- schema > {SCHEMA_PATH}`"
    );
}

/// `stack.toml` and `examples/*/stack.toml`: line 1 `# syntax=`, line 2 the `#:schema` line
/// (taplo reads it from the first comment block; BuildKit stops reading directives there).
#[test]
fn shipped_stacks_reference_the_schema() {
    let mut stacks = vec![repo().join("stack.toml")];
    for e in std::fs::read_dir(repo().join("examples")).unwrap() {
        let p = e.unwrap().path().join("stack.toml");
        if p.is_file() {
            stacks.push(p);
        }
    }
    assert!(stacks.len() > 1);
    for path in stacks {
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines();
        let first = lines.next().unwrap_or_default();
        assert!(
            first.starts_with("# syntax="),
            "{}: {first}",
            path.display()
        );
        let second = lines.next().unwrap_or_default();
        let target = second
            .strip_prefix("#:schema ")
            .unwrap_or_else(|| panic!("{}: line 2 is not `#:schema …`: {second}", path.display()));
        let resolved = path.parent().unwrap().join(target.trim());
        assert_eq!(
            resolved.canonicalize().unwrap(),
            repo().join(SCHEMA_PATH).canonicalize().unwrap(),
            "{}",
            path.display()
        );
    }
}
