//! The LLB capabilities each op uses, recorded in its `OpMetadata.caps` the way BuildKit's Go
//! client (`client/llb`, `addCap` in source.go, exec.go, fileop.go, merge.go, diff.go and
//! `State.Marshal` for the terminal op) records them.
//!
//! BuildKit checks every recorded cap against the ones it knows when it loads a definition
//! (`solver/llbsolver/vertex.go`, `WithValidateCaps`), so an engine too old for a feature the
//! graph uses fails with the feature's name instead of silently ignoring a field it does not
//! know. The caps are derived from the op itself, so identical ops always carry the same set.

use std::collections::BTreeSet;

use crate::pb;

/// The caps `op` needs, as BuildKit's client records them for the same op.
pub fn op_caps(op: &pb::Op) -> BTreeSet<&'static str> {
    let mut caps = BTreeSet::new();
    match &op.op {
        None => {}
        Some(pb::op::Op::Source(s)) => source(s, &mut caps),
        Some(pb::op::Op::Exec(e)) => exec(e, &mut caps),
        Some(pb::op::Op::File(f)) => file(f, &mut caps),
        Some(pb::op::Op::Merge(_)) => {
            caps.insert("mergeop");
        }
        Some(pb::op::Op::Diff(_)) => {
            caps.insert("diffop");
        }
    }
    caps
}

/// The terminal op's caps: `constraints` and `platform`, and the metadata features any op
/// of the definition uses.
pub fn terminal_caps<'a>(
    metadata: impl IntoIterator<Item = &'a pb::OpMetadata>,
) -> BTreeSet<&'static str> {
    let mut caps = BTreeSet::from(["constraints", "platform"]);
    for md in metadata {
        if md.ignore_cache {
            caps.insert("meta.ignorecache");
        }
        if !md.description.is_empty() {
            caps.insert("meta.description");
        }
        if md.export_cache.is_some() {
            caps.insert("meta.exportcache");
        }
    }
    caps
}

fn source(s: &pb::SourceOp, caps: &mut BTreeSet<&'static str>) {
    let attr = |k: &str| s.attrs.get(k).is_some_and(|v| !v.is_empty());
    if s.identifier.starts_with("docker-image://") {
        caps.insert("source.image");
        // Only the forced pull needs the cap (client/llb/source.go, Image).
        if s.attrs.get("image.resolvemode").map(String::as_str) == Some("pull") {
            caps.insert("source.image.resolvemode");
        }
        for (a, cap) in [
            ("image.layerlimit", "source.image.layerlimit"),
            ("image.checksum", "source.image.checksum"),
        ] {
            if attr(a) {
                caps.insert(cap);
            }
        }
    } else if s.identifier.starts_with("https://") || s.identifier.starts_with("http://") {
        // client/llb/source.go, HTTP.
        caps.insert("source.http");
        if attr("http.checksum") {
            caps.insert("source.http.checksum");
        }
        if attr("http.authheadersecret") {
            caps.insert("source.http.auth");
        }
    } else if s.identifier.starts_with("local://") {
        caps.insert("source.local");
        for (a, cap) in [
            ("local.unique", "source.local.unique"),
            ("local.session", "source.local.sessionid"),
            ("local.includepattern", "source.local.includepatterns"),
            ("local.followpaths", "source.local.followpaths"),
            ("local.excludepatterns", "source.local.excludepatterns"),
            ("local.sharedkeyhint", "source.local.sharedkeyhint"),
            ("local.metadatatransfer", "source.local.metadatatransfer"),
        ] {
            if attr(a) {
                caps.insert(cap);
            }
        }
    }
}

fn exec(e: &pb::ExecOp, caps: &mut BTreeSet<&'static str>) {
    caps.insert("exec.meta.base");
    if let Some(meta) = &e.meta {
        if meta.proxy_env.is_some() {
            caps.insert("exec.meta.proxyenv");
        }
        if !meta.ulimit.is_empty() {
            caps.insert("exec.meta.ulimit");
        }
        if !meta.valid_exit_codes.is_empty() {
            caps.insert("exec.validexitcode");
        }
    }
    if e.network != pb::NetMode::Unset as i32 {
        caps.insert("exec.meta.network");
    }
    if e.security == pb::SecurityMode::Insecure as i32 {
        caps.insert("exec.meta.security");
    }
    if !e.cdi_devices.is_empty() {
        caps.insert("exec.meta.cdi");
    }
    let mut secrets = !e.secretenv.is_empty();
    for m in &e.mounts {
        if !m.selector.is_empty() {
            caps.insert("exec.mount.selector");
        }
        match pb::MountType::try_from(m.mount_type) {
            Ok(pb::MountType::Cache) => {
                caps.insert("exec.mount.cache");
                caps.insert("exec.mount.cache.sharing");
            }
            Ok(pb::MountType::Tmpfs) => {
                caps.insert("exec.mount.tmpfs");
                if m.tmpfs_opt.as_ref().is_some_and(|t| t.size > 0) {
                    caps.insert("exec.mount.tmpfs.size");
                }
            }
            Ok(pb::MountType::Secret) => secrets = true,
            Ok(pb::MountType::Ssh) => {
                caps.insert("exec.mount.ssh");
            }
            // A bind of another state; a scratch root or output (input -1) binds nothing.
            Ok(pb::MountType::Bind) | Err(_) if m.input >= 0 => {
                caps.insert("exec.mount.bind");
            }
            Ok(pb::MountType::Bind) | Err(_) => {}
        }
        if m.content_cache != pb::MountContentCache::Default as i32 {
            caps.insert("exec.mount.cache.content");
        }
    }
    if secrets {
        caps.insert("exec.mount.secret");
    }
    if !e.secretenv.is_empty() {
        caps.insert("exec.secretenv");
    }
}

fn file(f: &pb::FileOp, caps: &mut BTreeSet<&'static str>) {
    caps.insert("file.base");
    for a in &f.actions {
        match &a.action {
            Some(pb::file_action::Action::Copy(c)) => {
                if !c.include_patterns.is_empty() || !c.exclude_patterns.is_empty() {
                    caps.insert("file.copy.includeexcludepatterns");
                }
                if !c.required_paths.is_empty() {
                    caps.insert("file.copy.requiredpaths");
                }
                if c.always_replace_existing_dest_paths {
                    caps.insert("file.copy.alwaysreplaceexistingdestpaths");
                }
                if !c.mode_str.is_empty() {
                    caps.insert("file.copy.modestring");
                }
            }
            Some(pb::file_action::Action::Symlink(_)) => {
                caps.insert("file.symlink.create");
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn exec_op(e: pb::ExecOp) -> pb::Op {
        pb::Op {
            op: Some(pb::op::Op::Exec(e)),
            ..Default::default()
        }
    }

    #[test]
    fn exec_caps_follow_its_mounts_and_meta() {
        let op = exec_op(pb::ExecOp {
            meta: Some(pb::Meta::default()),
            mounts: vec![
                // A root on another state, with a selector.
                pb::Mount {
                    input: 0,
                    selector: "/x".into(),
                    dest: "/".into(),
                    ..Default::default()
                },
                pb::Mount {
                    input: -1,
                    mount_type: pb::MountType::Cache as i32,
                    ..Default::default()
                },
                pb::Mount {
                    input: -1,
                    mount_type: pb::MountType::Tmpfs as i32,
                    tmpfs_opt: Some(pb::TmpfsOpt { size: 0 }),
                    ..Default::default()
                },
            ],
            network: pb::NetMode::Host as i32,
            secretenv: vec![pb::SecretEnv {
                id: "t".into(),
                name: "T".into(),
                optional: false,
            }],
            ..Default::default()
        });
        assert_eq!(
            op_caps(&op).into_iter().collect::<Vec<_>>(),
            [
                "exec.meta.base",
                "exec.meta.network",
                "exec.mount.bind",
                "exec.mount.cache",
                "exec.mount.cache.sharing",
                "exec.mount.secret",
                "exec.mount.selector",
                "exec.mount.tmpfs",
                "exec.secretenv",
            ]
        );
        // A scratch root in the sandbox network needs only the base.
        let bare = exec_op(pb::ExecOp {
            mounts: vec![pb::Mount {
                input: -1,
                dest: "/".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        assert_eq!(
            op_caps(&bare).into_iter().collect::<Vec<_>>(),
            ["exec.meta.base"]
        );
    }

    #[test]
    fn source_caps_follow_the_attrs_set() {
        let src = |id: &str, attrs: &[(&str, &str)]| pb::Op {
            op: Some(pb::op::Op::Source(pb::SourceOp {
                identifier: id.into(),
                attrs: attrs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            })),
            ..Default::default()
        };
        let caps = |op: pb::Op| op_caps(&op).into_iter().collect::<Vec<_>>();
        assert_eq!(
            caps(src(
                "local://context",
                &[
                    ("local.sharedkeyhint", "context"),
                    ("local.excludepatterns", "[\"*.pyc\"]"),
                    ("local.session", "")
                ]
            )),
            [
                "source.local",
                "source.local.excludepatterns",
                "source.local.sharedkeyhint"
            ]
        );
        assert_eq!(
            caps(src(
                "docker-image://docker.io/library/python:3.12",
                &[("image.resolvemode", "local")]
            )),
            ["source.image"]
        );
        assert_eq!(
            caps(src(
                "docker-image://docker.io/library/python:3.12",
                &[("image.resolvemode", "pull")]
            )),
            ["source.image", "source.image.resolvemode"]
        );
        assert_eq!(
            caps(src(
                "https://files.example/a-1.0-py3-none-any.whl",
                &[
                    ("http.checksum", "sha256:00"),
                    ("http.filename", "a-1.0-py3-none-any.whl")
                ]
            )),
            ["source.http", "source.http.checksum"]
        );
        assert_eq!(
            caps(src(
                "https://files.example/a-1.0-py3-none-any.whl",
                &[
                    ("http.checksum", "sha256:00"),
                    ("http.authheadersecret", "pypi")
                ]
            )),
            ["source.http", "source.http.auth", "source.http.checksum"]
        );
    }

    #[test]
    fn file_merge_and_diff_caps() {
        let copy = pb::FileActionCopy {
            exclude_patterns: vec!["*.pyc".into()],
            ..Default::default()
        };
        let op = pb::Op {
            op: Some(pb::op::Op::File(pb::FileOp {
                actions: vec![pb::FileAction {
                    action: Some(pb::file_action::Action::Copy(copy)),
                    ..Default::default()
                }],
            })),
            ..Default::default()
        };
        assert_eq!(
            op_caps(&op).into_iter().collect::<Vec<_>>(),
            ["file.base", "file.copy.includeexcludepatterns"]
        );
        let merge = pb::Op {
            op: Some(pb::op::Op::Merge(pb::MergeOp::default())),
            ..Default::default()
        };
        assert_eq!(op_caps(&merge).into_iter().collect::<Vec<_>>(), ["mergeop"]);
        assert!(op_caps(&pb::Op::default()).is_empty());
    }

    #[test]
    fn the_terminal_records_the_metadata_features_used() {
        let named = pb::OpMetadata {
            description: [("llb.customname".to_string(), "x".to_string())].into(),
            ..Default::default()
        };
        let no_cache = pb::OpMetadata {
            ignore_cache: true,
            ..Default::default()
        };
        assert_eq!(
            terminal_caps([&named, &no_cache])
                .into_iter()
                .collect::<Vec<_>>(),
            [
                "constraints",
                "meta.description",
                "meta.ignorecache",
                "platform"
            ]
        );
        assert_eq!(
            terminal_caps([]).into_iter().collect::<Vec<_>>(),
            ["constraints", "platform"]
        );
    }
}
