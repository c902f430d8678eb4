//! A readable text rendering of a marshalled Definition, for snapshots and `--format text`.

use std::collections::HashMap;
use std::fmt::Write;

use prost::Message;

use super::op_digests;
use crate::pb;

/// Render every op with sequential ids (`v0`, `v1`, …) instead of digests, so the dump reads
/// like the graph and stays stable when unrelated bytes change.
pub fn dump(def: &pb::Definition) -> String {
    let digests = op_digests(def);
    let ids: HashMap<&str, usize> = digests
        .iter()
        .enumerate()
        .map(|(i, d)| (d.as_str(), i))
        .collect();
    let input = |i: &pb::Input| -> String {
        match ids.get(i.digest.as_str()) {
            Some(n) if i.index == 0 => format!("v{n}"),
            Some(n) => format!("v{n}[{}]", i.index),
            None => format!("<missing {}>", i.digest),
        }
    };
    let mut out = String::new();
    let source_name = def
        .source
        .as_ref()
        .and_then(|s| s.infos.first())
        .map(|i| i.filename.clone())
        .unwrap_or_default();
    for (n, bytes) in def.def.iter().enumerate() {
        let op = match pb::Op::decode(bytes.as_slice()) {
            Ok(op) => op,
            Err(e) => {
                let _ = writeln!(out, "v{n} = <undecodable: {e}>");
                continue;
            }
        };
        let inputs: Vec<String> = op.inputs.iter().map(input).collect();
        let platform = op.platform.as_ref().map(|p| {
            let mut s = format!("{}/{}", p.os, p.architecture);
            if !p.variant.is_empty() {
                s.push('/');
                s.push_str(&p.variant);
            }
            s
        });
        let head = match &op.op {
            None => format!("v{n} = result {}", inputs.join(", ")),
            Some(pb::op::Op::Source(s)) => format!("v{n} = source {}", s.identifier),
            Some(pb::op::Op::Exec(_)) => format!("v{n} = exec"),
            Some(pb::op::Op::File(_)) => format!("v{n} = file"),
            Some(pb::op::Op::Merge(_)) => format!("v{n} = merge {}", inputs.join(" + ")),
            Some(pb::op::Op::Diff(_)) => format!(
                "v{n} = diff {} → {}",
                inputs.first().cloned().unwrap_or_default(),
                inputs.get(1).cloned().unwrap_or_default()
            ),
        };
        let _ = write!(out, "{head}");
        if let Some(p) = platform {
            let _ = write!(out, "  [{p}]");
        }
        out.push('\n');
        let md = def.metadata.get(&digests[n]);
        if let Some(name) = md.and_then(|m| m.description.get("llb.customname")) {
            let _ = writeln!(out, "    name: {name}");
        }
        if md.is_some_and(|m| m.ignore_cache) {
            let _ = writeln!(out, "    no-cache");
        }
        if let Some(locs) = def
            .source
            .as_ref()
            .and_then(|s| s.locations.get(&digests[n]))
        {
            for l in &locs.locations {
                for r in &l.ranges {
                    let a = r.start.as_ref().map(|p| p.line).unwrap_or(0);
                    let b = r.end.as_ref().map(|p| p.line).unwrap_or(a);
                    let lines = if a == b {
                        format!("{a}")
                    } else {
                        format!("{a}-{b}")
                    };
                    let _ = writeln!(out, "    at: {source_name}:{lines}");
                }
            }
        }
        match &op.op {
            Some(pb::op::Op::Source(s)) => {
                for (k, v) in &s.attrs {
                    if k == "local.session" {
                        continue;
                    }
                    let _ = writeln!(out, "    {k}: {v}");
                }
            }
            Some(pb::op::Op::Exec(e)) => {
                if let Some(m) = &e.meta {
                    let _ = writeln!(out, "    args: {}", quote_all(&m.args));
                    for env in &m.env {
                        let _ = writeln!(out, "    env: {env}");
                    }
                    let _ = writeln!(out, "    cwd: {}", m.cwd);
                    if !m.user.is_empty() {
                        let _ = writeln!(out, "    user: {}", m.user);
                    }
                    for h in &m.extra_hosts {
                        let _ = writeln!(out, "    host: {}={}", h.host, h.ip);
                    }
                }
                match pb::NetMode::try_from(e.network) {
                    Ok(pb::NetMode::Host) => out.push_str("    network: host\n"),
                    Ok(pb::NetMode::None) => out.push_str("    network: none\n"),
                    _ => {}
                }
                for s in &e.secretenv {
                    let _ = writeln!(out, "    secret-env: {} from secret {}", s.name, s.id);
                }
                for m in &e.mounts {
                    let _ = writeln!(out, "    mount {}", mount(m, &inputs));
                }
            }
            Some(pb::op::Op::File(f)) => {
                for a in &f.actions {
                    let on = |idx: i64| -> String {
                        if idx < 0 {
                            "scratch".into()
                        } else if (idx as usize) < inputs.len() {
                            inputs[idx as usize].clone()
                        } else {
                            format!("action{}", idx as usize - inputs.len())
                        }
                    };
                    let line = match &a.action {
                        Some(pb::file_action::Action::Copy(c)) => {
                            let mut s = format!(
                                "copy {}:{} → {}:{}",
                                on(a.secondary_input),
                                c.src,
                                on(a.input),
                                c.dest
                            );
                            if let Some(o) = &c.owner {
                                s.push_str(&format!(" owner={}", owner(o)));
                            }
                            if c.mode >= 0 {
                                s.push_str(&format!(" mode={:o}", c.mode));
                            }
                            if c.dir_copy_contents {
                                s.push_str(" contents");
                            }
                            if c.allow_wildcard {
                                s.push_str(" wildcard");
                            }
                            if c.allow_empty_wildcard {
                                s.push_str(" allow-empty");
                            }
                            if !c.exclude_patterns.is_empty() {
                                s.push_str(&format!(" exclude={}", c.exclude_patterns.join(",")));
                            }
                            s
                        }
                        Some(pb::file_action::Action::Mkdir(m)) => {
                            let mut s =
                                format!("mkdir {}:{} mode={:o}", on(a.input), m.path, m.mode);
                            if let Some(o) = &m.owner {
                                s.push_str(&format!(" owner={}", owner(o)));
                            }
                            s
                        }
                        Some(pb::file_action::Action::Mkfile(m)) => {
                            format!(
                                "mkfile {}:{} mode={:o} ({} bytes)",
                                on(a.input),
                                m.path,
                                m.mode,
                                m.data.len()
                            )
                        }
                        Some(pb::file_action::Action::Rm(r)) => {
                            format!("rm {}:{}", on(a.input), r.path)
                        }
                        Some(pb::file_action::Action::Symlink(s)) => {
                            format!("symlink {}:{} → {}", on(a.input), s.newpath, s.oldpath)
                        }
                        None => "<empty action>".into(),
                    };
                    let _ = writeln!(out, "    {line}");
                }
            }
            _ => {}
        }
    }
    out
}

fn quote_all(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '"') {
                format!("{a:?}")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn owner(o: &pb::ChownOpt) -> String {
    let one = |u: &Option<pb::UserOpt>| match u.as_ref().and_then(|u| u.user.as_ref()) {
        Some(pb::user_opt::User::ByName(n)) => n.name.clone(),
        Some(pb::user_opt::User::ById(id)) => id.to_string(),
        None => String::new(),
    };
    let g = one(&o.group);
    if g.is_empty() {
        one(&o.user)
    } else {
        format!("{}:{g}", one(&o.user))
    }
}

fn mount(m: &pb::Mount, inputs: &[String]) -> String {
    let mt = pb::MountType::try_from(m.mount_type).unwrap_or(pb::MountType::Bind);
    match mt {
        pb::MountType::Bind => {
            let src = if m.input >= 0 {
                inputs.get(m.input as usize).cloned().unwrap_or_default()
            } else {
                "scratch".into()
            };
            let sel = if m.selector.is_empty() {
                String::new()
            } else {
                format!(":{}", m.selector)
            };
            let ro = if m.readonly { " ro" } else { "" };
            let out = if m.output >= 0 {
                format!(" → output {}", m.output)
            } else {
                String::new()
            };
            format!("{} ← {src}{sel}{ro}{out}", m.dest)
        }
        pb::MountType::Cache => {
            let c = m.cache_opt.clone().unwrap_or_default();
            let sharing = match pb::CacheSharingOpt::try_from(c.sharing) {
                Ok(pb::CacheSharingOpt::Locked) => "locked",
                Ok(pb::CacheSharingOpt::Private) => "private",
                _ => "shared",
            };
            format!("{} cache id={} sharing={sharing}", m.dest, c.id)
        }
        pb::MountType::Tmpfs => format!("{} tmpfs", m.dest),
        pb::MountType::Secret => {
            let s = m.secret_opt.clone().unwrap_or_default();
            format!(
                "{} secret id={}{}",
                m.dest,
                s.id,
                if s.optional { " optional" } else { "" }
            )
        }
        pb::MountType::Ssh => format!("{} ssh", m.dest),
    }
}
