//! Hostile and oversized stacks (issue 14): every limit is a located diagnostic, and what a
//! diagnostic prints is bounded by construction (its size is asserted, not timed).
//!
//! Each stack is generated here, so the inputs are as large as the attack needs.

use llb_gen::diag::{Diagnostic, Diagnostics};
use llb_gen::plan::BuildOptions;
use llb_gen::source::SourceFile;
use llb_gen::stack::{MAX_ENTRIES, MAX_FILE_BYTES, MAX_IMAGES, MAX_STRING_BYTES};

const HEAD: &str = "# syntax=layerstack:dev\n[layers.a]\nfrom = \"python:3.12-slim\"\n";

fn check(text: &str) -> (SourceFile, Diagnostics) {
    let file = SourceFile::new("stack.toml", text);
    let diags = llb_gen::check(&file, &BuildOptions::default());
    (file, diags)
}

/// The errors of `text` as (line, key, message).
fn errors(text: &str) -> Vec<(usize, Option<String>, String)> {
    let (file, diags) = check(text);
    diags
        .errors()
        .map(|d| {
            (
                d.span.map_or(0, |s| file.line_col(s.start).line),
                d.key.clone(),
                d.message.clone(),
            )
        })
        .collect()
}

/// The single error of `text`.
fn one_error(text: &str) -> (usize, Option<String>, String) {
    let mut e = errors(text);
    assert_eq!(e.len(), 1, "{e:#?}");
    e.remove(0)
}

fn rendered(text: &str) -> String {
    let (file, diags) = check(text);
    diags.render(&file)
}

#[test]
fn deep_dotted_key_is_located() {
    let key = vec!["k"; 300].join(".");
    let (line, key_shown, msg) = one_error(&format!("{HEAD}{key} = 1\n"));
    assert_eq!(line, 4);
    assert_eq!(
        msg,
        "invalid TOML: a dotted key of 300 parts; the limit is 80"
    );
    assert!(key_shown.unwrap().starts_with("k.k.k"));
    // A key at the limit is an ordinary unknown key.
    let key = vec!["k"; 80].join(".");
    let (line, _, msg) = one_error(&format!("{HEAD}{key} = 1\n"));
    assert_eq!((line, msg.as_str()), (4, "unknown key `k` in `layers.a`"));
}

#[test]
fn duplicate_key_is_named() {
    let (line, _, msg) = one_error(&format!("{HEAD}apt = []\nfrom = \"x\"\n"));
    assert_eq!(
        (line, msg.as_str()),
        (5, "invalid TOML: duplicate key `from`")
    );
    let (line, _, msg) = one_error(&format!("{HEAD}env = {{ A = \"1\", A = \"2\" }}\n"));
    assert_eq!((line, msg.as_str()), (4, "invalid TOML: duplicate key `A`"));
}

#[test]
fn invalid_utf8_names_line_and_column() {
    let mut bytes = HEAD.as_bytes().to_vec();
    bytes.extend_from_slice(b"env = { X = \"ok \xc3\xa9 \xfe\" }\n");
    let e = SourceFile::from_bytes("stack.toml", bytes).unwrap_err();
    assert_eq!(
        e,
        "stack.toml:4:19: the file is not valid UTF-8 (byte 0xfe at offset 80); save it as UTF-8"
    );
}

#[test]
fn long_unknown_key_gets_no_suggestion_and_a_short_error() {
    // Edit distance on a 60 KB key took 25-60 s; now long words are not compared at all.
    let key = "p".repeat(60_000);
    let text = format!("{HEAD}{key} = 1\n");
    let (line, _, msg) = one_error(&text);
    assert_eq!(line, 4);
    assert!(msg.starts_with("unknown key `ppp"));
    let r = rendered(&text);
    assert!(!r.contains("did you mean"), "{r}");
    assert!(r.len() < 3_000, "{} bytes", r.len());
}

#[test]
fn a_long_line_is_never_repeated_whole() {
    // One 100 KB value on the line of an error, and the error message quoting it.
    let value = "v".repeat(100_000);
    let text = format!("{HEAD}pipp = \"{value}\"\nenv = {{ \"={value}\" = \"1\" }}\n");
    let r = rendered(&text);
    assert!(errors(&text).len() >= 2);
    assert!(r.len() < 4_000, "{} bytes:\n{r}", r.len());
    // The one-line form (what the frontend sends) is bounded too.
    let (file, diags) = check(&text);
    for d in diags.errors() {
        assert!(d.one_line(&file).len() < 1_000);
    }
}

#[test]
fn many_errors_render_the_first_hundred() {
    let mut text = HEAD.to_string();
    for i in 0..2_000 {
        text.push_str(&format!("unknown{i} = 1\n"));
    }
    assert_eq!(errors(&text).len(), 2_000);
    let r = rendered(&text);
    assert!(r.contains("… and 1900 more"), "{}", &r[r.len() - 300..]);
    assert!(r.lines().count() < 100 * 9);
}

#[test]
fn file_size_is_limited() {
    let mut text = HEAD.to_string();
    text.push_str(&"# padding\n".repeat(MAX_FILE_BYTES / 10 + 1));
    let (line, _, msg) = one_error(&text);
    assert_eq!(line, 1);
    assert_eq!(
        msg,
        format!(
            "the stack file is {} bytes; the limit is {MAX_FILE_BYTES} bytes",
            text.len()
        )
    );
}

#[test]
fn string_length_is_limited() {
    let value = "x".repeat(MAX_STRING_BYTES + 1);
    let (line, key, msg) = one_error(&format!("{HEAD}run = [\"true\", \"echo {value}\"]\n"));
    assert_eq!(line, 4);
    assert_eq!(key.as_deref(), Some("layers.a.run[1]"));
    assert_eq!(
        msg,
        format!(
            "this string is {} bytes; the limit is {MAX_STRING_BYTES}",
            MAX_STRING_BYTES + 6
        )
    );
}

#[test]
fn number_of_images_and_entries_is_limited() {
    let mut text = "# syntax=layerstack:dev\n".to_string();
    for i in 0..=MAX_IMAGES {
        text.push_str(&format!("[services.s{i}]\nfrom = \"python:3.12-slim\"\n"));
    }
    let file = SourceFile::new("stack.toml", text);
    let (stack, diags) = llb_gen::stack::parse(&file);
    let e: Vec<&Diagnostic> = diags.errors().collect();
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(
        e[0].key.as_deref(),
        Some(format!("services.s{MAX_IMAGES}").as_str())
    );
    assert_eq!(
        file.line_col(e[0].span.unwrap().start).line,
        2 + 2 * MAX_IMAGES
    );
    assert_eq!(stack.images.len(), MAX_IMAGES);

    let pip: Vec<String> = (0..=MAX_ENTRIES).map(|i| format!("\"p{i}\"")).collect();
    let (line, key, msg) = one_error(&format!("{HEAD}pip = [{}]\n", pip.join(", ")));
    assert_eq!((line, key.as_deref()), (4, Some("layers.a.pip")));
    assert_eq!(
        msg,
        format!("{} entries; the limit is {MAX_ENTRIES}", MAX_ENTRIES + 1)
    );
}

#[test]
fn nul_is_rejected_where_it_is() {
    let e = errors(&format!(
        "{HEAD}env = {{ X = \"a\\u0000b\" }}\nrun = [\"echo \\u0000\"]\n"
    ));
    let got: Vec<(usize, Option<&str>)> = e.iter().map(|(l, k, _)| (*l, k.as_deref())).collect();
    assert_eq!(
        got,
        [(4, Some("layers.a.env.X")), (5, Some("layers.a.run[0]"))]
    );
    assert!(e[0].2.contains("NUL"), "{e:?}");
}

#[test]
fn meaningless_empty_strings_are_rejected() {
    let cases = [
        ("[stack]\npython = \"\"\n", "stack.python"),
        ("[stack]\ninstaller = \"\"\n", "stack.installer"),
        (
            "[layers.b]\nfrom = \"a\"\nindex-url = \"\"\n",
            "layers.b.index-url",
        ),
        (
            "[layers.b]\nfrom = \"a\"\nextra-index-urls = [\"http://127.0.0.1/\", \" \"]\n",
            "layers.b.extra-index-urls[1]",
        ),
        (
            "[layers.b]\nfrom = \"a\"\napt = [\"curl\", \"\"]\n",
            "layers.b.apt[1]",
        ),
        (
            "[layers.b]\nfrom = \"a\"\npip = [\"\"]\n",
            "layers.b.pip[0]",
        ),
        (
            "[layers.b]\nfrom = \"a\"\nworkdir = \"\"\n",
            "layers.b.workdir",
        ),
        (
            "[layers.b]\nfrom = \"a\"\nconda = { file = \"env.yaml\", env = \"\" }\n",
            "layers.b.conda.env",
        ),
        ("[secrets.t]\ntarget = \"\"\n", "secrets.t.target"),
        ("[secrets.t]\nenv = \"\"\n", "secrets.t.env"),
    ];
    for (tail, key) in cases {
        let text = format!("{HEAD}{tail}");
        let e = errors(&text);
        let last = text.lines().count();
        assert!(
            e.iter().any(|(l, k, m)| *l == last
                && k.as_deref() == Some(key)
                && m.ends_with("is empty")),
            "{key}: {e:#?}"
        );
    }
}

/// A chain of `depth` layers, each `from` the previous, and a service on its end.
fn chain(depth: usize) -> String {
    let mut s = "# syntax=layerstack:dev\n[layers.c0]\nfrom = \"python:3.12-slim\"\n".to_string();
    for i in 1..depth {
        s.push_str(&format!(
            "[layers.c{i}]\nfrom = \"c{}\"\nenv = {{ L{i} = \"{i}\" }}\nrun = [\"echo {i}\"]\n",
            i - 1
        ));
    }
    s.push_str(&format!(
        "[services.app]\nfrom = \"c{}\"\ncmd = [\"python3\"]\n",
        depth - 1
    ));
    s
}

#[test]
fn a_2000_deep_chain_needs_no_deep_recursion() {
    // On a thread with a 1 MiB stack: one stack frame per `from` level (what planning,
    // marshalling, hashing and the tree did) overflowed at ~400 levels with 8 MiB.
    let run = || {
        use llb_gen::report::{self, context::Ignore, context::MemContext};
        let text = chain(2000);
        let file = SourceFile::new("stack.toml", text);
        let opts = BuildOptions::default();
        let diags = llb_gen::check(&file, &opts);
        assert!(!diags.has_errors(), "{}", diags.render(&file));
        let o = BuildOptions {
            target: Some("app".into()),
            ..opts.clone()
        };
        let (stack, plan) = llb_gen::load(&file, &o).expect("plans");
        assert_eq!(plan.images.len(), 2001);
        let out = llb_gen::convert::convert(&plan, &o, &llb_gen::convert::NoImages, &file)
            .expect("converts");
        assert!(out.definition.def.len() > 2000);
        let all = report::plan_all(&stack, &opts).expect("plans all");
        assert_eq!(all.images.len(), 2001);
        let dot = report::graph::render(&all.images, "chain", report::graph::Format::Dot);
        assert!(dot.contains("\"layer_c1999\" -> \"service_app\""));
        let tree = report::tree::render(&stack, &all.images, &all.images, &opts.platform, None);
        assert!(tree.contains("service app"));
        let ignore = Ignore::new::<&str>(&[]).unwrap();
        let h = report::hash_image(
            &stack,
            &opts,
            std::slice::from_ref(&opts.platform),
            "app",
            &MemContext::new(),
            &ignore,
        )
        .expect("hashes");
        assert!(!h.digest.is_empty());
    };
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(run)
        .unwrap()
        .join()
        .expect("no stack overflow, no panic");
}

#[test]
fn a_from_cycle_in_a_long_chain_is_found_once() {
    // The cycle check walks each image once (it followed every chain from every image).
    let text = chain(3000).replace("from = \"python:3.12-slim\"", "from = \"c2999\"");
    let e = errors(&text);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!((e[0].0, e[0].1.as_deref()), (3, Some("layers.c0.from")));
    assert!(
        e[0].2.starts_with("`from` cycle: c0 → c2999 → c2998"),
        "{}",
        &e[0].2[..80]
    );
}

#[test]
fn doubling_args_stop_at_the_line_that_crosses_the_cap() {
    // 40 lines of `A(n) = "${A(n-1)}${A(n-1)}"` would need 16 TiB; the cap is 1 MiB, crossed
    // by A17 (16 bytes × 2^17 = 2 MiB).
    let mut text = "# syntax=layerstack:dev\n[args]\nA0 = \"xxxxxxxxxxxxxxxx\"\n".to_string();
    for i in 1..40 {
        text.push_str(&format!("A{i} = \"${{A{}}}${{A{}}}\"\n", i - 1, i - 1));
    }
    text.push_str("[layers.a]\nfrom = \"python:3.12-slim\"\nenv = { X = \"${A39}\" }\n");
    let e = errors(&text);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].0, 3 + 17);
    assert_eq!(e[0].1.as_deref(), Some("args.A17"));
    assert_eq!(
        e[0].2,
        "this value grows past 1048576 bytes when `${…}` references are substituted"
    );
}

#[test]
fn doubling_env_entries_stop_at_the_entry_that_crosses_the_cap() {
    let mut env = vec![format!("E0 = \"{}\"", "x".repeat(16))];
    for i in 1..40 {
        env.push(format!("E{i} = \"${{E{}}}${{E{}}}\"", i - 1, i - 1));
    }
    let text = format!("{HEAD}env = {{ {} }}\n", env.join(", "));
    let file = SourceFile::new("stack.toml", text);
    let (_, plan) = llb_gen::load(&file, &BuildOptions::default()).expect("plans");
    let e = llb_gen::convert::convert(
        &plan,
        &BuildOptions::default(),
        &llb_gen::convert::NoImages,
        &file,
    )
    .expect_err("the env grows past the cap");
    let e: Vec<&Diagnostic> = e.errors().collect();
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].key.as_deref(), Some("layers.a.env.E17"));
    assert_eq!(file.line_col(e[0].span.unwrap().start).line, 2);
}

#[test]
fn source_date_epoch_beyond_year_9999_is_rejected() {
    let file = SourceFile::new("stack.toml", HEAD);
    let with = |v: &str| BuildOptions {
        build_args: [("SOURCE_DATE_EPOCH".to_string(), v.to_string())].into(),
        ..BuildOptions::default()
    };
    assert!(llb_gen::load(&file, &with("253402300799")).is_ok());
    for bad in ["253402300800", "-1", "soon", "99999999999999999999"] {
        let e = llb_gen::load(&file, &with(bad)).expect_err(bad);
        let d = e.primary().unwrap();
        assert_eq!(
            d.key.as_deref(),
            Some("--build-arg SOURCE_DATE_EPOCH"),
            "{bad}"
        );
    }
}

#[test]
fn healthcheck_durations_fit_signed_64_bit_nanoseconds() {
    let hc = |d: &str| format!("{HEAD}healthcheck = {{ cmd = [\"true\"], interval = \"{d}\" }}\n");
    assert!(errors(&hc("2562047h")).is_empty());
    // 2562048h is 9.2234e18 ns: above i64::MAX, below u64::MAX.
    let (line, key, msg) = one_error(&hc("2562048h"));
    assert_eq!(
        (line, key.as_deref()),
        (4, Some("layers.a.healthcheck.interval"))
    );
    assert!(
        msg.contains("longer than the longest Docker accepts"),
        "{msg}"
    );
}

#[test]
fn secrets_cannot_take_over_paths_and_are_hinted_as_secrets() {
    for (target, _) in [
        ("/", ""),
        ("/run/layerstack/requirements", ""),
        ("/run/layerstack/x/", ""),
    ] {
        let text = format!("{HEAD}pip = [\"x\"]\n[secrets.t]\ntarget = \"{target}\"\n");
        let (line, key, msg) = one_error(&text);
        assert_eq!(
            (line, key.as_deref()),
            (6, Some("secrets.t.target")),
            "{target}"
        );
        assert!(msg.starts_with("a secret cannot be mounted at"), "{msg}");
    }
    let (line, key, _) = one_error(&format!("{HEAD}[secrets.t]\nenv = \"PATH\"\n"));
    assert_eq!((line, key.as_deref()), (5, Some("secrets.t.env")));

    // `${TOKEN}` of a secret: the hint is the secret's env var, never "declare it under [args]".
    let text = format!(
        "{HEAD}index-url = \"https://u:${{TOKEN}}@127.0.0.1/simple\"\npip = [\"x\"]\n[secrets.token]\nenv = \"TOKEN\"\n"
    );
    let (file, diags) = check(&text);
    let d = diags.errors().next().expect("an error");
    assert_eq!(file.line_col(d.span.unwrap().start).line, 4);
    let hint = d.hint.as_deref().unwrap();
    assert!(
        hint.contains("is a secret") && hint.contains("$TOKEN"),
        "{hint}"
    );
    assert!(!hint.contains("[args]"), "{hint}");
}

#[test]
fn build_args_reach_shell_fields_as_variables_not_code() {
    use llb_gen::plan::StepKind;
    let text = format!(
        "{HEAD}[args]\nX = \"\"\n[services.s]\nfrom = \"a\"\nrun = [\"printf '%s|' ${{X}} \\\"${{X}}\\\" > out\"]\n\
         cmd = \"serve ${{X}}\"\nhealthcheck = {{ cmd = \"check ${{X}}\" }}\nentrypoint = [\"tini\", \"${{X}}\"]\n"
    );
    let file = SourceFile::new("stack.toml", text);
    let evil = "x; touch pwned";
    let o = BuildOptions {
        target: Some("s".into()),
        build_args: [("X".to_string(), evil.to_string())].into(),
        ..BuildOptions::default()
    };
    let (_, plan) = llb_gen::load(&file, &o).expect("plans");
    let s = plan.images.last().unwrap();
    let StepKind::Run { command, .. } = &s.steps.last().unwrap().kind else {
        panic!("{:?}", s.steps)
    };
    assert_eq!(
        command,
        "X='x; touch pwned'; printf '%s|' ${X} \"${X}\" > out"
    );
    // Run as the build would: the value is data, `pwned` is never created.
    let dir = std::env::temp_dir().join(format!("hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let st = std::process::Command::new("/bin/sh")
        .args(["-c", command])
        .current_dir(&dir)
        .status()
        .unwrap();
    assert!(st.success());
    assert!(!dir.join("pwned").exists());
    assert_eq!(
        std::fs::read_to_string(dir.join("out")).unwrap(),
        "x;|touch|pwned|x; touch pwned|"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let shell = |v: &str| format!("X='x; touch pwned'; {v} ${{X}}");
    assert_eq!(
        s.config.cmd.as_ref().map(|c| c.argv(None)),
        Some(vec!["/bin/sh".to_string(), "-c".into(), shell("serve")])
    );
    let hc = s.config.healthcheck.clone().flatten().unwrap();
    assert_eq!(hc.test, ["CMD-SHELL".to_string(), shell("check")]);
    // Exec form has no shell: the value is one argument, as written.
    assert_eq!(
        s.config.entrypoint.as_ref().map(|c| c.argv(None)),
        Some(vec!["tini".to_string(), evil.to_string()])
    );
}

#[test]
fn apt_globs_and_literal_context_paths_are_quoted() {
    let text = format!(
        "{HEAD}apt = [\"libpq-dev=15.*\", \"curl\"]\nrequirements = [\"reqs[gpu].txt\"]\ncopy = [\"data[0-9].csv\"]\n"
    );
    let file = SourceFile::new("stack.toml", text);
    let o = BuildOptions::default();
    let (_, plan) = llb_gen::load(&file, &o).expect("plans");
    let out =
        llb_gen::convert::convert(&plan, &o, &llb_gen::convert::NoImages, &file).expect("converts");
    let mut scripts = vec![];
    let mut includes = vec![];
    for bytes in &out.definition.def {
        use prost::Message;
        let op = llb_gen::pb::Op::decode(bytes.as_slice()).unwrap();
        match op.op {
            Some(llb_gen::pb::op::Op::Exec(e)) => {
                scripts.extend(e.meta.map(|m| m.args.join(" ")));
            }
            Some(llb_gen::pb::op::Op::Source(s)) => {
                includes.extend(s.attrs.get("local.includepattern").cloned());
            }
            _ => {}
        }
    }
    assert!(
        scripts.iter().any(
            |s| s.ends_with("apt-get install -y --no-install-recommends 'libpq-dev=15.*' curl")
        ),
        "{scripts:#?}"
    );
    // The requirements file is a literal name; the copy source is a pattern.
    assert!(
        includes.contains(&r#"["reqs\\[gpu].txt"]"#.to_string()),
        "{includes:#?}"
    );
    assert!(
        includes.contains(&r#"["data[0-9].csv"]"#.to_string()),
        "{includes:#?}"
    );
    assert_eq!(
        llb_gen::plan::resources::literal_pattern(r"reqs\[gpu].txt").as_deref(),
        Some("reqs[gpu].txt")
    );
    assert_eq!(
        llb_gen::plan::resources::literal_pattern("data[0-9].csv"),
        None
    );
}

#[test]
fn the_cli_locates_invalid_utf8_and_refuses_huge_files_before_reading_them() {
    let dir = std::env::temp_dir().join(format!("hostile-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_llb-gen"))
            .args(["check", p.to_str().unwrap()])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let mut bad = HEAD.as_bytes().to_vec();
    bad.extend_from_slice(b"run = [\"\xff\"]\n");
    let (ok, err) = run("bad.toml", &bad);
    assert!(!ok);
    assert!(
        err.contains("bad.toml:4:9: the file is not valid UTF-8 (byte 0xff at offset 69)"),
        "{err}"
    );
    let huge = vec![b'#'; MAX_FILE_BYTES + 1];
    let (ok, err) = run("huge.toml", &huge);
    assert!(!ok);
    assert!(
        err.contains("the stack file is 2097153 bytes; the limit is 2097152 bytes"),
        "{err}"
    );
    assert!(err.len() < 1_000);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_cycle_made_by_a_variant_overlay_is_reported_under_the_variant() {
    let text = format!(
        "{HEAD}[layers.b]\nfrom = \"a\"\n[variants.v]\nplatforms = [\"linux/amd64\"]\n[variants.v.layers.a]\nfrom = \"b\"\n"
    );
    let e = errors(&text);
    assert!(!e.is_empty());
    for (line, key, msg) in &e {
        assert!(msg.starts_with("`from` cycle"), "{msg}");
        assert_eq!(
            (*line, key.as_deref()),
            (9, Some("variants.v.layers.a.from"))
        );
    }
}
