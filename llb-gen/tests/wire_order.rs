//! Every op we emit must be encoded exactly as BuildKit's Go code re-encodes it: BuildKit
//! re-marshals each op when it loads a definition and keys source maps and errors by the new
//! digest. Without Go at hand, each op of every example's Definition (and a sample of every op
//! kind with every field set) is walked field by field against the Go rule, with the schema
//! read from `proto/ops.proto` (so the rule does not come from our own encoder):
//!
//! google.golang.org/protobuf (`internal/impl/codec_message.go`, `internal/order`
//! `LegacyFieldOrder`, `codec_map.go`; used by `pb.Op.Marshal` with `Deterministic: true`):
//! - fields outside a (non-synthetic) oneof come first, ascending by number; oneof members
//!   come last, oneofs in declaration order;
//! - a repeated field's elements are contiguous; a packed field is one record; any other field
//!   appears at most once;
//! - proto3 implicit-presence scalars equal to zero (0, false, "", empty bytes) are not
//!   written; set messages (even empty) and set oneof members (even zero) are;
//! - repeated numeric scalars are packed (wire type 2);
//! - map entries are sorted by key, and each entry is key (1) then value (2), both always
//!   written;
//! - strings are valid UTF-8 (Go refuses to marshal anything else).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto};

use llb_gen::pb;

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Message descriptors of `proto/ops.proto` by full name (`.pb.Op`, `.pb.SourceOp.AttrsEntry`).
struct Schema(HashMap<String, DescriptorProto>);

impl Schema {
    fn load() -> Schema {
        let fds = protox::compile(["ops.proto"], [crate_dir().join("proto")])
            .expect("proto/ops.proto compiles");
        let mut map = HashMap::new();
        fn add(map: &mut HashMap<String, DescriptorProto>, prefix: &str, m: &DescriptorProto) {
            let name = format!("{prefix}.{}", m.name());
            for n in &m.nested_type {
                add(map, &name, n);
            }
            map.insert(name, m.clone());
        }
        for f in &fds.file {
            for m in &f.message_type {
                add(&mut map, &format!(".{}", f.package()), m);
            }
        }
        Schema(map)
    }

    fn message(&self, name: &str) -> &DescriptorProto {
        self.0
            .get(name)
            .unwrap_or_else(|| panic!("no message {name} in proto/ops.proto"))
    }
}

/// One field record as read off the wire.
struct Record<'a> {
    number: u64,
    wire: u8,
    /// The varint value (wire type 0); the fixed value (1, 5).
    int: u64,
    /// The payload (wire type 2).
    data: &'a [u8],
}

fn read_varint(b: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint longer than 10 bytes".into())
}

fn records(b: &[u8]) -> Result<Vec<Record<'_>>, String> {
    let mut pos = 0;
    let mut out = vec![];
    while pos < b.len() {
        let key = read_varint(b, &mut pos)?;
        let (number, wire) = (key >> 3, (key & 7) as u8);
        let mut rec = Record {
            number,
            wire,
            int: 0,
            data: &[],
        };
        match wire {
            0 => rec.int = read_varint(b, &mut pos)?,
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                let bytes = b.get(pos..pos + n).ok_or("truncated fixed field")?;
                rec.int = bytes
                    .iter()
                    .rev()
                    .fold(0u64, |acc, x| (acc << 8) | u64::from(*x));
                pos += n;
            }
            2 => {
                let len = read_varint(b, &mut pos)? as usize;
                rec.data = b
                    .get(pos..pos + len)
                    .ok_or("length past the end of the message")?;
                pos += len;
            }
            w => {
                return Err(format!(
                    "field {number}: wire type {w} is not used by proto3"
                ));
            }
        }
        out.push(rec);
    }
    Ok(out)
}

fn is_repeated(f: &FieldDescriptorProto) -> bool {
    f.label() == Label::Repeated
}

fn is_numeric_scalar(t: Type) -> bool {
    !matches!(t, Type::String | Type::Bytes | Type::Message | Type::Group)
}

/// The wire type Go writes a field (or one element of it) with.
fn wire_type(f: &FieldDescriptorProto) -> u8 {
    let packed = is_repeated(f)
        && is_numeric_scalar(f.r#type())
        && f.options.as_ref().and_then(|o| o.packed) != Some(false);
    if packed {
        return 2;
    }
    match f.r#type() {
        Type::Double | Type::Fixed64 | Type::Sfixed64 => 1,
        Type::Float | Type::Fixed32 | Type::Sfixed32 => 5,
        Type::String | Type::Bytes | Type::Message | Type::Group => 2,
        _ => 0,
    }
}

/// In a real (not proto3-`optional`) oneof: its declaration index.
fn oneof(f: &FieldDescriptorProto) -> Option<i32> {
    f.oneof_index.filter(|_| !f.proto3_optional())
}

/// Go's marshal order: fields outside a oneof by number, then oneofs in declaration order.
fn order_key(f: &FieldDescriptorProto) -> (bool, i32, i32) {
    match oneof(f) {
        None => (false, 0, f.number()),
        Some(i) => (true, i, f.number()),
    }
}

fn map_entry<'a>(schema: &'a Schema, f: &FieldDescriptorProto) -> Option<&'a DescriptorProto> {
    if f.r#type() != Type::Message || !is_repeated(f) {
        return None;
    }
    let m = schema.message(f.type_name());
    m.options
        .as_ref()
        .and_then(|o| o.map_entry)
        .unwrap_or(false)
        .then_some(m)
}

/// A map key as compared by Go's deterministic marshal (`order.GenericKeyOrder`).
#[derive(PartialEq, PartialOrd, Debug)]
enum Key<'a> {
    Int(i128),
    Str(&'a [u8]),
}

fn key_of<'a>(f: &FieldDescriptorProto, r: &Record<'a>) -> Key<'a> {
    match f.r#type() {
        Type::String => Key::Str(r.data),
        Type::Int32 | Type::Int64 => Key::Int(i128::from(r.int as i64)),
        Type::Sint32 | Type::Sint64 => {
            Key::Int(i128::from((r.int >> 1) as i64 ^ -((r.int & 1) as i64)))
        }
        _ => Key::Int(i128::from(r.int)),
    }
}

/// Check `b` as an encoding of message `name`; violations go to `errs`, prefixed by `path`.
fn check(schema: &Schema, name: &str, b: &[u8], path: &str, errs: &mut Vec<String>) {
    let msg = schema.message(name);
    let recs = match records(b) {
        Ok(r) => r,
        Err(e) => return errs.push(format!("{path}: {e}")),
    };
    let mut prev: Option<((bool, i32, i32), &FieldDescriptorProto)> = None;
    let mut prev_key: Option<Key> = None;
    for r in &recs {
        let Some(f) = msg.field.iter().find(|f| f.number() as u64 == r.number) else {
            errs.push(format!("{path}: field {} is not in {name}", r.number));
            continue;
        };
        let here = format!("{path}.{}", f.name());
        let key = order_key(f);
        if let Some((pk, pf)) = prev {
            if key < pk {
                errs.push(format!(
                    "{here} (field {}) written after {} (field {}): Go writes {}",
                    f.number(),
                    pf.name(),
                    pf.number(),
                    if oneof(pf).is_some() && oneof(f).is_none() {
                        "oneof members after every other field".to_string()
                    } else {
                        "fields in ascending number".to_string()
                    }
                ));
            } else if key == pk
                && (!is_repeated(f) || wire_type(f) == 2 && is_numeric_scalar(f.r#type()))
            {
                errs.push(format!("{here}: written twice"));
            }
        }
        if prev.is_some_and(|(pk, _)| pk != key) {
            prev_key = None;
        }
        prev = Some((key, f));
        if r.wire != wire_type(f) {
            errs.push(format!(
                "{here}: wire type {}, Go writes {}",
                r.wire,
                wire_type(f)
            ));
            continue;
        }
        // Implicit presence: Go leaves out a zero scalar that is neither repeated, in a
        // oneof nor proto3 `optional`.
        let implicit = !is_repeated(f) && f.oneof_index.is_none() && f.r#type() != Type::Message;
        let zero = match r.wire {
            2 => r.data.is_empty(),
            _ => r.int == 0,
        };
        if implicit && zero {
            errs.push(format!("{here}: zero value written (Go leaves it out)"));
        }
        if f.r#type() == Type::String && std::str::from_utf8(r.data).is_err() {
            errs.push(format!("{here}: not UTF-8 (Go refuses to marshal it)"));
        }
        if let Some(entry) = map_entry(schema, f) {
            check_map_entry(schema, entry, r.data, &here, &mut prev_key, errs);
        } else if f.r#type() == Type::Message {
            check(schema, f.type_name(), r.data, &here, errs);
        } else if r.wire == 2 && is_numeric_scalar(f.r#type()) {
            let mut pos = 0;
            while pos < r.data.len() {
                if let Err(e) = read_varint(r.data, &mut pos) {
                    errs.push(format!("{here}: packed: {e}"));
                    break;
                }
            }
        }
    }
}

/// A map entry: key (1) then value (2), both written; keys ascending across entries.
fn check_map_entry<'a>(
    schema: &Schema,
    entry: &DescriptorProto,
    b: &'a [u8],
    path: &str,
    prev_key: &mut Option<Key<'a>>,
    errs: &mut Vec<String>,
) {
    let recs = match records(b) {
        Ok(r) => r,
        Err(e) => return errs.push(format!("{path}: {e}")),
    };
    let numbers: Vec<u64> = recs.iter().map(|r| r.number).collect();
    if numbers != [1, 2] {
        return errs.push(format!(
            "{path}: map entry has fields {numbers:?}; Go writes key (1) and value (2), always"
        ));
    }
    let field = |n: i32| entry.field.iter().find(|f| f.number() == n).unwrap();
    let (kf, vf) = (field(1), field(2));
    for (r, f) in recs.iter().zip([kf, vf]) {
        if r.wire != wire_type(f) {
            errs.push(format!("{path}: map {} has wire type {}", f.name(), r.wire));
            return;
        }
    }
    let key = key_of(kf, &recs[0]);
    if let Some(p) = prev_key.as_ref()
        && *p >= key
    {
        errs.push(format!(
            "{path}: map key {key:?} after {p:?}: Go sorts entries by key"
        ));
    }
    if vf.r#type() == Type::Message {
        check(
            schema,
            vf.type_name(),
            recs[1].data,
            &format!("{path}[value]"),
            errs,
        );
    }
    *prev_key = Some(key);
}

fn check_definition(schema: &Schema, what: &str, def: &pb::Definition) -> Vec<String> {
    let mut errs = vec![];
    for (i, op) in def.def.iter().enumerate() {
        check(schema, ".pb.Op", op, &format!("{what} op {i}"), &mut errs);
    }
    errs
}

fn repo() -> PathBuf {
    crate_dir().parent().expect("workspace root").to_path_buf()
}

/// Every shipped stack: `stack.toml` and `examples/*/stack.toml`.
fn stacks() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(repo().join("examples"))
        .expect("examples/")
        .filter_map(|e| e.ok().map(|e| e.path().join("stack.toml")))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out.insert(0, repo().join("stack.toml"));
    out
}

/// `(target, platforms)` for every service and layer, with each variant where there are some.
fn targets(path: &Path) -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(path).unwrap();
    let file = llb_gen::source::SourceFile::new("stack.toml", text);
    let (stack, diags) = llb_gen::stack::parse(&file);
    assert!(!diags.has_errors(), "{}", diags.render(&file));
    let all = vec!["linux/amd64".to_string(), "linux/arm64".to_string()];
    let mut out = vec![];
    for img in &stack.images {
        let name = &img.name.value;
        if stack.variants.is_empty() {
            out.push((name.clone(), all.clone()));
        }
        for v in &stack.variants {
            let platforms: Vec<String> = if v.platforms.is_empty() {
                all.clone()
            } else {
                v.platforms.iter().map(|p| p.value.clone()).collect()
            };
            out.push((format!("{name}@{}", v.name.value), platforms));
        }
    }
    out
}

fn llb(path: &Path, args: &[&str]) -> pb::Definition {
    let out = Command::new(env!("CARGO_BIN_EXE_llb-gen"))
        .arg("llb")
        .arg(path)
        .args(args)
        .output()
        .expect("run llb-gen");
    assert!(
        out.status.success(),
        "llb-gen llb {} {args:?}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    pb::Definition::decode(out.stdout.as_slice()).expect("llb-gen prints a Definition")
}

#[test]
fn every_example_op_is_encoded_in_gos_field_order() {
    let schema = Schema::load();
    let mut errs = vec![];
    let (mut defs, mut ops) = (0, 0);
    for path in stacks() {
        for (target, platforms) in targets(&path) {
            for platform in &platforms {
                // Native; on arm64 also cross-installed on amd64 with MergeOp and no network.
                let mut runs = vec![vec!["--build-platform", platform.as_str()]];
                if platform != "linux/amd64" {
                    runs.push(vec!["--merge", "--network", "none"]);
                }
                for extra in runs {
                    let mut args = vec!["--target", target.as_str(), "--platform", platform];
                    args.extend(extra);
                    let def = llb(&path, &args);
                    let what = format!("{} {}", path.display(), args.join(" "));
                    defs += 1;
                    ops += def.def.len();
                    errs.extend(check_definition(&schema, &what, &def));
                }
            }
        }
    }
    assert!(defs >= 60, "only {defs} definitions checked");
    assert!(
        errs.is_empty(),
        "{} violations of Go's field order in {ops} ops of {defs} definitions; first ones:\n{}",
        errs.len(),
        errs.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
}

fn chown() -> Option<pb::ChownOpt> {
    Some(pb::ChownOpt {
        user: Some(pb::UserOpt {
            user: Some(pb::user_opt::User::ByName(pb::NamedUserOpt {
                name: "app".into(),
                input: 1,
            })),
        }),
        // A zero oneof member is still written.
        group: Some(pb::UserOpt {
            user: Some(pb::user_opt::User::ById(0)),
        }),
    })
}

/// One op of each kind with every field set (most to non-zero values), encoded by the marshal
/// code path's encoder.
fn every_field() -> Vec<pb::Op> {
    let platform = Some(pb::Platform {
        architecture: "arm".into(),
        os: "linux".into(),
        variant: "v7".into(),
        os_version: "10".into(),
        os_features: vec!["f1".into(), "".into()],
    });
    let constraints = Some(pb::WorkerConstraints {
        filter: vec!["a".into()],
    });
    let inputs = vec![
        pb::Input {
            digest: "sha256:00".into(),
            index: 0,
        },
        pb::Input {
            digest: "sha256:11".into(),
            index: 2,
        },
    ];
    let op = |op| pb::Op {
        inputs: inputs.clone(),
        op: Some(op),
        platform: platform.clone(),
        constraints: constraints.clone(),
    };
    let exec = pb::ExecOp {
        meta: Some(pb::Meta {
            args: vec!["sh".into(), "".into()],
            env: vec!["A=1".into()],
            cwd: "/w".into(),
            user: "app".into(),
            proxy_env: Some(pb::ProxyEnv {
                http_proxy: "h".into(),
                https_proxy: "s".into(),
                ftp_proxy: "f".into(),
                no_proxy: "n".into(),
                all_proxy: "a".into(),
            }),
            extra_hosts: vec![pb::HostIp {
                host: "x".into(),
                ip: "127.0.0.1".into(),
            }],
            hostname: "h".into(),
            ulimit: vec![pb::Ulimit {
                name: "nofile".into(),
                soft: -1,
                hard: 1024,
            }],
            cgroup_parent: "c".into(),
            remove_mount_stubs_recursive: true,
            valid_exit_codes: vec![0, 1, -2],
        }),
        mounts: vec![
            pb::Mount {
                input: 0,
                selector: "/s".into(),
                dest: "/".into(),
                output: 0,
                readonly: true,
                mount_type: pb::MountType::Bind as i32,
                result_id: "r".into(),
                content_cache: pb::MountContentCache::On as i32,
                ..Default::default()
            },
            pb::Mount {
                input: -1,
                dest: "/t".into(),
                output: -1,
                mount_type: pb::MountType::Tmpfs as i32,
                tmpfs_opt: Some(pb::TmpfsOpt { size: 1 << 20 }),
                cache_opt: Some(pb::CacheOpt {
                    id: "c".into(),
                    sharing: pb::CacheSharingOpt::Locked as i32,
                }),
                secret_opt: Some(pb::SecretOpt {
                    id: "s".into(),
                    uid: 1,
                    gid: 2,
                    mode: 0o400,
                    optional: true,
                }),
                ssh_opt: Some(pb::SshOpt {
                    id: "k".into(),
                    uid: 1,
                    gid: 2,
                    mode: 0o600,
                    optional: true,
                }),
                ..Default::default()
            },
        ],
        network: pb::NetMode::None as i32,
        security: pb::SecurityMode::Insecure as i32,
        secretenv: vec![pb::SecretEnv {
            id: "tok".into(),
            name: "TOKEN".into(),
            optional: true,
        }],
        cdi_devices: vec![pb::CdiDevice {
            name: "nvidia.com/gpu=all".into(),
            optional: true,
        }],
    };
    let source = pb::SourceOp {
        identifier: "local://context".into(),
        attrs: BTreeMap::from([
            ("local.sharedkeyhint".to_string(), "context".to_string()),
            ("local.followpaths".to_string(), String::new()),
            ("".to_string(), "empty key".to_string()),
        ]),
    };
    use pb::file_action::Action;
    let actions = vec![
        Action::Copy(pb::FileActionCopy {
            src: "/a".into(),
            dest: "/b".into(),
            owner: chown(),
            mode: -1,
            follow_symlink: true,
            dir_copy_contents: true,
            attempt_unpack_docker_compatibility: true,
            create_dest_path: true,
            allow_wildcard: true,
            allow_empty_wildcard: true,
            timestamp: -1,
            include_patterns: vec!["i".into()],
            exclude_patterns: vec!["e".into()],
            always_replace_existing_dest_paths: true,
            mode_str: "u+x".into(),
            required_paths: vec!["r".into()],
        }),
        Action::Mkfile(pb::FileActionMkFile {
            path: "/f".into(),
            mode: 0o644,
            data: b"x".to_vec(),
            owner: chown(),
            timestamp: 1,
        }),
        Action::Mkdir(pb::FileActionMkDir {
            path: "/d".into(),
            mode: 0o755,
            make_parents: true,
            owner: chown(),
            timestamp: 1,
        }),
        Action::Rm(pb::FileActionRm {
            path: "/r".into(),
            allow_not_found: true,
            allow_wildcard: true,
        }),
        Action::Symlink(pb::FileActionSymlink {
            oldpath: "/o".into(),
            newpath: "/n".into(),
            owner: chown(),
            timestamp: 1,
        }),
    ];
    let file = pb::FileOp {
        actions: actions
            .into_iter()
            .enumerate()
            .map(|(i, a)| pb::FileAction {
                input: i as i64 - 1,
                secondary_input: 1,
                output: -1,
                action: Some(a),
            })
            .collect(),
    };
    vec![
        op(pb::op::Op::Exec(exec)),
        op(pb::op::Op::Source(source)),
        op(pb::op::Op::File(file)),
        op(pb::op::Op::Merge(pb::MergeOp {
            inputs: vec![pb::MergeInput { input: 0 }, pb::MergeInput { input: 1 }],
        })),
        op(pb::op::Op::Diff(pb::DiffOp {
            lower: Some(pb::LowerDiffInput { input: 0 }),
            upper: Some(pb::UpperDiffInput { input: 1 }),
        })),
        // An op with every oneof member unset but a platform (a terminal op has only inputs).
        pb::Op {
            op: None,
            ..op(pb::op::Op::Merge(pb::MergeOp::default()))
        },
    ]
}

#[test]
fn every_op_kind_with_every_field_set_is_encoded_in_gos_field_order() {
    let schema = Schema::load();
    let ops = every_field();
    let def = pb::Definition {
        def: ops.iter().map(llb_gen::llb::encode::op).collect(),
        ..Default::default()
    };
    for (op, bytes) in ops.iter().zip(&def.def) {
        assert_eq!(&pb::Op::decode(bytes.as_slice()).unwrap(), op, "round trip");
    }
    let errs = check_definition(&schema, "sample", &def);
    assert!(errs.is_empty(), "{}", errs.join("\n"));
    // With BuildKit's own code at hand (`LLBCMP=/opt/buildkit-v0.32.2/bin/llbcmp`), compare
    // with what it re-marshals too.
    if let Some(llbcmp) = std::env::var_os("LLBCMP") {
        use std::io::Write;
        let mut child = Command::new(llbcmp)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("run $LLBCMP");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&def.encode_to_vec())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "llbcmp: {text}");
        assert!(
            text.contains(&format!(
                "{} ops re-marshal to identical bytes, 0 differ",
                ops.len()
            )),
            "{text}"
        );
    }
}

/// The walker itself: prost's own order for `Op` (the oneof at field 2, before platform and
/// constraints) and a map entry without its empty value are what it must reject.
#[test]
fn the_walker_rejects_what_go_would_reencode() {
    let schema = Schema::load();
    let op = &every_field()[1];
    let prost_bytes = op.encode_to_vec();
    let errs = check_definition(
        &schema,
        "prost",
        &pb::Definition {
            def: vec![prost_bytes],
            ..Default::default()
        },
    );
    let all = errs.join("\n");
    assert!(
        all.contains("prost op 0.platform (field 10) written after source (field 3): Go writes oneof members after every other field"),
        "{all}"
    );
    assert!(
        all.contains("map entry has fields [1]; Go writes key (1) and value (2), always"),
        "{all}"
    );
    assert!(all.contains("map entry has fields [2]"), "{all}");
    // Hand-made violations: a zero scalar, descending numbers, unsorted map keys.
    let bad = |bytes: Vec<u8>| {
        let mut errs = vec![];
        check(&schema, ".pb.Op", &bytes, "x", &mut errs);
        errs.join("\n")
    };
    // Input{digest: "", index: 0} written explicitly.
    assert!(bad(vec![0x0a, 4, 0x0a, 0, 0x10, 0]).contains("x.inputs.digest: zero value written"));
    // Input{index: 1, digest: "d"}: 2 before 1.
    assert!(bad(vec![0x0a, 5, 0x10, 1, 0x0a, 1, b'd']).contains("written after"));
    // SourceOp attrs {"b": "1", "a": "1"} in that order.
    let e = |k: u8| [0x12, 6, 0x0a, 1, k, 0x12, 1, b'1'];
    let mut src = vec![0x1a, 16];
    src.extend(e(b'b'));
    src.extend(e(b'a'));
    assert!(bad(src).contains("Go sorts entries by key"));
}
