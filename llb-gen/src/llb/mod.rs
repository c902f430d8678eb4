//! A small LLB graph builder: an arena of vertices addressed by value handles, marshalled
//! into a deterministic, content-addressed `pb::Definition` with a source map.

mod caps;
mod dump;
pub mod encode;

use std::collections::{BTreeMap, HashMap};

use sha2::{Digest, Sha256};

pub use dump::dump;

use crate::pb;
use crate::platform::Platform;
use crate::source::{SourceFile, Span};

/// A handle to a vertex in a [`Graph`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VertexId(usize);

/// One output of a vertex: the value states are made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Output {
    pub vertex: VertexId,
    pub index: u32,
}

/// Display and cache metadata of a vertex (not part of its digest).
#[derive(Clone, Debug, Default)]
pub struct VertexMeta {
    /// The progress name (`llb.customname`).
    pub name: String,
    /// Where in the stack file this vertex was declared.
    pub span: Option<Span>,
    pub ignore_cache: bool,
    /// Fold vertices into one progress line (BuildKit ≥ 0.10).
    pub progress_group: Option<(String, String)>,
}

#[derive(Clone, Debug)]
struct Vertex {
    /// The op without its `inputs`: those are filled in from `inputs` when marshalling.
    op: pb::Op,
    inputs: Vec<Output>,
    meta: VertexMeta,
    /// A definition made elsewhere (the Dockerfile frontend's result) standing in for this
    /// vertex: its ops are emitted byte for byte and the vertex's digest is its result's.
    spliced: Option<std::sync::Arc<Spliced>>,
}

/// A foreign Definition, checked once: its ops (without the terminal), their metadata and
/// source map, and the digest of the vertex its terminal points at.
#[derive(Debug)]
struct Spliced {
    defs: Vec<Vec<u8>>,
    metadata: BTreeMap<String, pb::OpMetadata>,
    source: Option<pb::Source>,
    root: String,
}

/// An arena of LLB vertices. Building never fails; [`Graph::marshal`] de-duplicates
/// identical vertices by content digest.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    vertices: Vec<Vertex>,
}

/// How a RUN step reaches the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetMode {
    Sandbox,
    Host,
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheSharing {
    Shared,
    Private,
    Locked,
}

/// A mount of an exec besides its root filesystem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mount {
    /// Read-only bind of (a path of) another state.
    Bind {
        input: Output,
        selector: String,
        dest: String,
    },
    /// A persistent cache directory shared between builds.
    Cache {
        id: String,
        dest: String,
        sharing: CacheSharing,
    },
    Tmpfs {
        dest: String,
    },
    /// A writable mount of `input` (None = scratch) whose result is an output of the exec:
    /// the root filesystem is output 0, these are 1, 2, … in order.
    Output {
        input: Option<Output>,
        dest: String,
    },
    /// A BuildKit secret as a file.
    Secret {
        id: String,
        dest: String,
        optional: bool,
    },
}

/// A process run on a root filesystem.
#[derive(Clone, Debug, Default)]
pub struct Exec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: String,
    pub network: Option<NetMode>,
    pub extra_hosts: Vec<(String, String)>,
    pub mounts: Vec<Mount>,
    /// Env vars whose values come from secrets: (name, secret id, optional).
    pub secret_env: Vec<(String, String, bool)>,
}

/// Owner of created or copied files: a user (and group) name or id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub user: String,
    pub group: Option<String>,
}

impl Owner {
    /// `user[:group]`
    pub fn parse(s: &str) -> Owner {
        match s.split_once(':') {
            Some((u, g)) => Owner {
                user: u.to_string(),
                group: Some(g.to_string()),
            },
            None => Owner {
                user: s.to_string(),
                group: None,
            },
        }
    }
}

/// One file action. Paths are absolute within their states.
#[derive(Clone, Debug)]
pub enum FileAction {
    Copy {
        from: Output,
        src: String,
        dest: String,
        owner: Option<Owner>,
        mode: Option<u32>,
        /// Copy the contents of a source directory rather than the directory itself.
        dir_contents: bool,
        exclude: Vec<String>,
        /// Allow wildcards in `src`.
        wildcard: bool,
        /// A `src` that matches nothing copies nothing (BuildKit's `allowEmptyWildcard`;
        /// needs `wildcard`).
        allow_empty: bool,
    },
    Mkdir {
        path: String,
        mode: u32,
        owner: Option<Owner>,
    },
    Mkfile {
        path: String,
        mode: u32,
        data: Vec<u8>,
        owner: Option<Owner>,
    },
    Rm {
        path: String,
    },
}

impl FileAction {
    /// Everything in `from` copied onto the root, as a layer's contents (the chained-copy
    /// stand-in for MergeOp).
    pub fn copy_tree(from: Output) -> FileAction {
        FileAction::Copy {
            from,
            src: "/".into(),
            dest: "/".into(),
            owner: None,
            mode: None,
            dir_contents: true,
            exclude: vec![],
            wildcard: false,
            allow_empty: false,
        }
    }
}

impl Graph {
    pub fn new() -> Graph {
        Graph::default()
    }

    fn push(&mut self, op: pb::Op, inputs: Vec<Output>, meta: VertexMeta) -> Output {
        self.vertices.push(Vertex {
            op,
            inputs,
            meta,
            spliced: None,
        });
        Output {
            vertex: VertexId(self.vertices.len() - 1),
            index: 0,
        }
    }

    /// The result of a Definition made elsewhere (BuildKit's Dockerfile frontend), as an
    /// output of this graph. Its ops are kept byte for byte (their digests are BuildKit's),
    /// with their metadata and source map; the output is the one its terminal op points at.
    /// Err when the definition is not a well-formed LLB graph: an op that does not decode, no
    /// terminal op, or an input whose digest is not among its ops.
    pub fn splice(&mut self, def: &pb::Definition) -> Result<Output, String> {
        use prost::Message;
        let Some((terminal, ops)) = def.def.split_last() else {
            return Err("the definition has no ops".into());
        };
        let terminal = pb::Op::decode(terminal.as_slice())
            .map_err(|e| format!("its terminal op does not decode: {e}"))?;
        let [root] = terminal.inputs.as_slice() else {
            return Err(format!(
                "its last op has {} inputs; a terminal op has one",
                terminal.inputs.len()
            ));
        };
        if terminal.op.is_some() {
            return Err("its last op is not a terminal op".into());
        }
        let mut known = std::collections::HashSet::new();
        for bytes in ops {
            let op = pb::Op::decode(bytes.as_slice())
                .map_err(|e| format!("an op does not decode: {e}"))?;
            for input in &op.inputs {
                if !known.contains(&input.digest) {
                    return Err(format!(
                        "an op's input {} is not an earlier op of the definition",
                        input.digest
                    ));
                }
            }
            known.insert(digest_of(bytes));
        }
        if !known.contains(&root.digest) {
            return Err(format!("its result {} is not one of its ops", root.digest));
        }
        let index = u32::try_from(root.index).map_err(|_| "a negative output index")?;
        let spliced = Spliced {
            defs: ops.to_vec(),
            metadata: def
                .metadata
                .iter()
                .filter(|(d, _)| known.contains(*d))
                .map(|(d, m)| (d.clone(), m.clone()))
                .collect(),
            source: def.source.clone(),
            root: root.digest.clone(),
        };
        self.vertices.push(Vertex {
            op: pb::Op::default(),
            inputs: vec![],
            meta: VertexMeta::default(),
            spliced: Some(std::sync::Arc::new(spliced)),
        });
        Ok(Output {
            vertex: VertexId(self.vertices.len() - 1),
            index,
        })
    }

    /// A `docker-image://` source.
    pub fn image(
        &mut self,
        reference: &str,
        platform: &Platform,
        resolve_mode: Option<&str>,
        meta: VertexMeta,
    ) -> Output {
        let mut attrs = BTreeMap::new();
        if let Some(m) = resolve_mode.filter(|m| !m.is_empty() && *m != "default") {
            attrs.insert("image.resolvemode".to_string(), m.to_string());
        }
        let op = pb::Op {
            op: Some(pb::op::Op::Source(pb::SourceOp {
                identifier: format!("docker-image://{reference}"),
                attrs,
            })),
            platform: Some(pb_platform(platform)),
            constraints: Some(pb::WorkerConstraints::default()),
            ..Default::default()
        };
        self.push(op, vec![], meta)
    }

    /// A `local://NAME` source (the build context) with its attrs.
    pub fn local(
        &mut self,
        name: &str,
        attrs: BTreeMap<String, String>,
        meta: VertexMeta,
    ) -> Output {
        let op = pb::Op {
            op: Some(pb::op::Op::Source(pb::SourceOp {
                identifier: format!("local://{name}"),
                attrs,
            })),
            constraints: Some(pb::WorkerConstraints::default()),
            ..Default::default()
        };
        self.push(op, vec![], meta)
    }

    /// An `https://…` (or `http://…`) source: one file, `filename`, verified against
    /// `checksum` (`sha256:HEX`) before anything uses it (empty: not verified; BuildKit then
    /// revalidates it with the server on every solve). Attrs as BuildKit's `llb.HTTP`
    /// writes them (`http.checksum`, `http.filename`, and `http.authheadersecret`: the id of
    /// the session secret whose value BuildKit sends as the `Authorization` header); no
    /// platform (not platform-specific).
    pub fn http(
        &mut self,
        url: &str,
        checksum: &str,
        filename: &str,
        auth_secret: Option<&str>,
        meta: VertexMeta,
    ) -> Output {
        let mut attrs = BTreeMap::new();
        if !checksum.is_empty() {
            attrs.insert("http.checksum".to_string(), checksum.to_string());
        }
        if !filename.is_empty() {
            attrs.insert("http.filename".to_string(), filename.to_string());
        }
        if let Some(id) = auth_secret.filter(|s| !s.is_empty()) {
            attrs.insert("http.authheadersecret".to_string(), id.to_string());
        }
        let op = pb::Op {
            op: Some(pb::op::Op::Source(pb::SourceOp {
                identifier: url.to_string(),
                attrs,
            })),
            constraints: Some(pb::WorkerConstraints::default()),
            ..Default::default()
        };
        self.push(op, vec![], meta)
    }

    /// Run a process on `root`; the result is the root filesystem after it.
    pub fn exec(
        &mut self,
        root: Output,
        exec: Exec,
        platform: &Platform,
        meta: VertexMeta,
    ) -> Output {
        let mut inputs = vec![root];
        // BuildKit mounts a root without an output read-only: the root is always output 0.
        let mut outputs: i64 = 1;
        let mut mounts = vec![pb::Mount {
            input: 0,
            dest: "/".into(),
            output: 0,
            ..Default::default()
        }];
        for m in exec.mounts {
            mounts.push(match m {
                Mount::Output { input, dest } => {
                    let idx = match input {
                        None => -1,
                        Some(input) => match inputs.iter().position(|i| *i == input) {
                            Some(i) => i as i64,
                            None => {
                                inputs.push(input);
                                inputs.len() as i64 - 1
                            }
                        },
                    };
                    outputs += 1;
                    pb::Mount {
                        input: idx,
                        dest,
                        output: outputs - 1,
                        ..Default::default()
                    }
                }
                Mount::Bind {
                    input,
                    selector,
                    dest,
                } => {
                    let idx = match inputs.iter().position(|i| *i == input) {
                        Some(i) => i,
                        None => {
                            inputs.push(input);
                            inputs.len() - 1
                        }
                    };
                    pb::Mount {
                        input: idx as i64,
                        selector,
                        dest,
                        output: -1,
                        readonly: true,
                        ..Default::default()
                    }
                }
                Mount::Cache { id, dest, sharing } => pb::Mount {
                    input: -1,
                    dest,
                    output: -1,
                    mount_type: pb::MountType::Cache as i32,
                    cache_opt: Some(pb::CacheOpt {
                        id,
                        sharing: match sharing {
                            CacheSharing::Shared => pb::CacheSharingOpt::Shared,
                            CacheSharing::Private => pb::CacheSharingOpt::Private,
                            CacheSharing::Locked => pb::CacheSharingOpt::Locked,
                        } as i32,
                    }),
                    ..Default::default()
                },
                Mount::Tmpfs { dest } => pb::Mount {
                    input: -1,
                    dest,
                    output: -1,
                    mount_type: pb::MountType::Tmpfs as i32,
                    tmpfs_opt: Some(pb::TmpfsOpt::default()),
                    ..Default::default()
                },
                Mount::Secret { id, dest, optional } => pb::Mount {
                    input: -1,
                    dest,
                    output: -1,
                    mount_type: pb::MountType::Secret as i32,
                    secret_opt: Some(pb::SecretOpt {
                        id,
                        uid: 0,
                        gid: 0,
                        mode: 0o400,
                        optional,
                    }),
                    ..Default::default()
                },
            });
        }
        let network = match exec.network {
            None | Some(NetMode::Sandbox) => pb::NetMode::Unset,
            Some(NetMode::Host) => pb::NetMode::Host,
            Some(NetMode::None) => pb::NetMode::None,
        };
        let op = pb::Op {
            op: Some(pb::op::Op::Exec(pb::ExecOp {
                meta: Some(pb::Meta {
                    args: exec.args,
                    env: exec.env,
                    cwd: if exec.cwd.is_empty() {
                        "/".into()
                    } else {
                        exec.cwd
                    },
                    user: exec.user,
                    extra_hosts: exec
                        .extra_hosts
                        .into_iter()
                        .map(|(host, ip)| pb::HostIp { host, ip })
                        .collect(),
                    ..Default::default()
                }),
                mounts,
                network: network as i32,
                secretenv: exec
                    .secret_env
                    .into_iter()
                    .map(|(name, id, optional)| pb::SecretEnv { id, name, optional })
                    .collect(),
                ..Default::default()
            })),
            platform: Some(pb_platform(platform)),
            constraints: Some(pb::WorkerConstraints::default()),
            ..Default::default()
        };
        self.push(op, inputs, meta)
    }

    /// The output of `exec` that its output mount at `dest` became, read from the op that
    /// [`Graph::exec`] built (the root is output 0, each [`Mount::Output`] the next in order).
    /// None when `exec` is not an exec or has no output mount at `dest`.
    pub fn mount_output(&self, exec: Output, dest: &str) -> Option<Output> {
        let Some(pb::op::Op::Exec(e)) = &self.vertices.get(exec.vertex.0)?.op.op else {
            return None;
        };
        let m = e.mounts.iter().find(|m| m.dest == dest && m.output >= 0)?;
        Some(Output {
            vertex: exec.vertex,
            index: u32::try_from(m.output).ok()?,
        })
    }

    /// Apply file actions in sequence to `base` (None = scratch).
    pub fn file(
        &mut self,
        base: Option<Output>,
        actions: Vec<FileAction>,
        platform: &Platform,
        meta: VertexMeta,
    ) -> Output {
        let mut inputs: Vec<Output> = base.into_iter().collect();
        // Secondary inputs (copy sources) are inputs too; collect them first so the indices
        // of earlier actions' outputs (>= len(inputs)) are known.
        for a in &actions {
            if let FileAction::Copy { from, .. } = a
                && !inputs.contains(from)
            {
                inputs.push(*from);
            }
        }
        let n_inputs = inputs.len() as i64;
        let count = actions.len();
        let mut pb_actions = vec![];
        for (i, a) in actions.into_iter().enumerate() {
            let input = if i == 0 {
                if base.is_some() { 0 } else { -1 }
            } else {
                n_inputs + i as i64 - 1
            };
            let output = if i + 1 == count { 0 } else { -1 };
            let (secondary, action) = match a {
                FileAction::Copy {
                    from,
                    src,
                    dest,
                    owner,
                    mode,
                    dir_contents,
                    exclude,
                    wildcard,
                    allow_empty,
                } => {
                    let idx = inputs
                        .iter()
                        .position(|x| *x == from)
                        .expect("collected above") as i64;
                    (
                        idx,
                        pb::file_action::Action::Copy(pb::FileActionCopy {
                            src,
                            dest,
                            owner: owner.as_ref().map(chown),
                            mode: mode.map(|m| m as i32).unwrap_or(-1),
                            follow_symlink: true,
                            dir_copy_contents: dir_contents,
                            create_dest_path: true,
                            allow_wildcard: wildcard,
                            allow_empty_wildcard: allow_empty,
                            timestamp: -1,
                            exclude_patterns: exclude,
                            ..Default::default()
                        }),
                    )
                }
                FileAction::Mkdir { path, mode, owner } => (
                    -1,
                    pb::file_action::Action::Mkdir(pb::FileActionMkDir {
                        path,
                        mode: mode as i32,
                        make_parents: true,
                        owner: owner.as_ref().map(chown),
                        timestamp: -1,
                    }),
                ),
                FileAction::Mkfile {
                    path,
                    mode,
                    data,
                    owner,
                } => (
                    -1,
                    pb::file_action::Action::Mkfile(pb::FileActionMkFile {
                        path,
                        mode: mode as i32,
                        data,
                        owner: owner.as_ref().map(chown),
                        timestamp: -1,
                    }),
                ),
                FileAction::Rm { path } => (
                    -1,
                    pb::file_action::Action::Rm(pb::FileActionRm {
                        path,
                        allow_not_found: true,
                        allow_wildcard: false,
                    }),
                ),
            };
            pb_actions.push(pb::FileAction {
                input,
                secondary_input: secondary,
                output,
                action: Some(action),
            });
        }
        let op = pb::Op {
            op: Some(pb::op::Op::File(pb::FileOp {
                actions: pb_actions,
            })),
            platform: Some(pb_platform(platform)),
            constraints: Some(pb::WorkerConstraints::default()),
            ..Default::default()
        };
        self.push(op, inputs, meta)
    }

    /// Layer `inputs` on top of each other (MergeOp, BuildKit ≥ 0.10).
    pub fn merge(&mut self, inputs: Vec<Output>, meta: VertexMeta) -> Output {
        let op = pb::Op {
            op: Some(pb::op::Op::Merge(pb::MergeOp {
                inputs: (0..inputs.len())
                    .map(|i| pb::MergeInput { input: i as i64 })
                    .collect(),
            })),
            constraints: Some(pb::WorkerConstraints::default()),
            ..Default::default()
        };
        self.push(op, inputs, meta)
    }

    /// The changes from `lower` to `upper` (DiffOp, BuildKit ≥ 0.10).
    pub fn diff(&mut self, lower: Output, upper: Output, meta: VertexMeta) -> Output {
        let op = pb::Op {
            op: Some(pb::op::Op::Diff(pb::DiffOp {
                lower: Some(pb::LowerDiffInput { input: 0 }),
                upper: Some(pb::UpperDiffInput { input: 1 }),
            })),
            constraints: Some(pb::WorkerConstraints::default()),
            ..Default::default()
        };
        self.push(op, vec![lower, upper], meta)
    }

    /// Marshal the graph reachable from `root` into a Definition. Identical vertices (same
    /// encoded bytes) become one; the order is a deterministic post-order walk from `root`.
    pub fn marshal(&self, root: Output, source: Option<&SourceFile>) -> pb::Definition {
        let mut m = Marshaller {
            graph: self,
            digests: HashMap::new(),
            defs: vec![],
            seen: HashMap::new(),
            metadata: BTreeMap::new(),
            locations: BTreeMap::new(),
            source,
            foreign_infos: vec![],
        };
        let root_digest = m.visit(root.vertex);
        let terminal = pb::Op {
            inputs: vec![pb::Input {
                digest: root_digest,
                index: root.index as i64,
            }],
            ..Default::default()
        };
        let terminal = encode::op(&terminal);
        // Like BuildKit's client: the terminal op records `constraints`, `platform` and the
        // metadata features the other ops use.
        let terminal_md = pb::OpMetadata {
            caps: caps_map(caps::terminal_caps(m.metadata.values())),
            ..Default::default()
        };
        m.metadata.insert(digest_of(&terminal), terminal_md);
        m.defs.push(terminal);
        // Spliced definitions' sources (a Dockerfile) follow ours, their indices shifted.
        let ours = source.filter(|_| !m.locations.is_empty() || !m.foreign_infos.is_empty());
        let source_map = (!m.locations.is_empty() || !m.foreign_infos.is_empty()).then(|| {
            let mut infos: Vec<pb::SourceInfo> = ours
                .map(|f| pb::SourceInfo {
                    filename: f.name.clone(),
                    data: f.text.clone().into_bytes(),
                    definition: None,
                    language: "toml".into(),
                })
                .into_iter()
                .collect();
            infos.append(&mut m.foreign_infos);
            pb::Source {
                locations: std::mem::take(&mut m.locations),
                infos,
            }
        });
        pb::Definition {
            def: m.defs,
            metadata: m.metadata,
            source: source_map,
        }
    }
}

fn chown(o: &Owner) -> pb::ChownOpt {
    let user_opt = |s: &str| pb::UserOpt {
        user: Some(match s.parse::<u32>() {
            Ok(id) => pb::user_opt::User::ById(id),
            Err(_) => pb::user_opt::User::ByName(pb::NamedUserOpt {
                name: s.to_string(),
                input: 0,
            }),
        }),
    };
    pb::ChownOpt {
        user: Some(user_opt(&o.user)),
        group: o.group.as_deref().map(user_opt),
    }
}

/// The whole lines of `span` as an LLB source range (1-based lines; character 0).
pub fn source_range(file: &SourceFile, span: Span) -> pb::Range {
    let (first, last) = file.line_range(span);
    let pos = |line: usize| {
        Some(pb::Position {
            line: line as i32,
            character: 0,
        })
    };
    pb::Range {
        start: pos(first),
        end: pos(last),
    }
}

pub fn pb_platform(p: &Platform) -> pb::Platform {
    pb::Platform {
        architecture: p.architecture.clone(),
        os: p.os.clone(),
        variant: p.variant.clone().unwrap_or_default(),
        ..Default::default()
    }
}

struct Marshaller<'a> {
    graph: &'a Graph,
    digests: HashMap<VertexId, String>,
    defs: Vec<Vec<u8>>,
    seen: HashMap<String, ()>,
    metadata: BTreeMap<String, pb::OpMetadata>,
    locations: BTreeMap<String, pb::Locations>,
    source: Option<&'a SourceFile>,
    /// Source infos of spliced definitions, in splice order (after ours in the source map).
    foreign_infos: Vec<pb::SourceInfo>,
}

impl Marshaller<'_> {
    /// The digest of `root`, after emitting every vertex it depends on in post-order (inputs
    /// in order, then the vertex). Iterative: a stack of thousands of layers (many ops each)
    /// must not grow the call stack.
    fn visit(&mut self, root: VertexId) -> String {
        // (vertex, how many of its inputs were pushed already)
        let mut stack: Vec<(VertexId, usize)> = vec![(root, 0)];
        while let Some((id, next)) = stack.last_mut() {
            let id = *id;
            if self.digests.contains_key(&id) {
                stack.pop();
                continue;
            }
            let inputs = &self.graph.vertices[id.0].inputs;
            if *next < inputs.len() {
                let child = inputs[*next].vertex;
                *next += 1;
                if !self.digests.contains_key(&child) {
                    stack.push((child, 0));
                }
                continue;
            }
            stack.pop();
            self.emit(id);
        }
        self.digests[&root].clone()
    }

    /// Encode vertex `id` (its inputs have digests already) and record its digest.
    fn emit(&mut self, id: VertexId) {
        let v = &self.graph.vertices[id.0];
        if let Some(sp) = &v.spliced {
            self.emit_spliced(sp);
            self.digests.insert(id, sp.root.clone());
            return;
        }
        let mut op = v.op.clone();
        op.inputs = v
            .inputs
            .iter()
            .map(|o| pb::Input {
                digest: self.digests[&o.vertex].clone(),
                index: o.index as i64,
            })
            .collect();
        let bytes = encode::op(&op);
        let digest = digest_of(&bytes);
        if self.seen.insert(digest.clone(), ()).is_none() {
            self.defs.push(bytes);
            let meta = &v.meta;
            let mut md = pb::OpMetadata {
                ignore_cache: meta.ignore_cache,
                // The LLB features the op uses, for the engine to check (as BuildKit's client).
                caps: caps_map(caps::op_caps(&op)),
                ..Default::default()
            };
            if !meta.name.is_empty() {
                md.description
                    .insert("llb.customname".into(), meta.name.clone());
            }
            if let Some((gid, gname)) = &meta.progress_group {
                md.progress_group = Some(pb::ProgressGroup {
                    id: gid.clone(),
                    name: gname.clone(),
                    weak: false,
                });
            }
            if md != pb::OpMetadata::default() {
                self.metadata.insert(digest.clone(), md);
            }
            if let (Some(span), Some(file)) = (meta.span, self.source) {
                let range = source_range(file, span);
                self.locations.insert(
                    digest.clone(),
                    pb::Locations {
                        locations: vec![pb::Location {
                            source_index: 0,
                            ranges: vec![range],
                        }],
                    },
                );
            }
        }
        self.digests.insert(id, digest);
    }
}

impl Marshaller<'_> {
    /// A spliced definition's ops as they are, each once, with their metadata and locations.
    fn emit_spliced(&mut self, sp: &Spliced) {
        // Its source indices move past ours (index 0 when we have a source file) and past
        // earlier spliced definitions'.
        let shift = usize::from(self.source.is_some()) + self.foreign_infos.len();
        if let Some(src) = &sp.source {
            self.foreign_infos.extend(src.infos.iter().cloned());
        }
        for bytes in &sp.defs {
            let digest = digest_of(bytes);
            if self.seen.insert(digest.clone(), ()).is_some() {
                continue;
            }
            self.defs.push(bytes.clone());
            if let Some(md) = sp.metadata.get(&digest) {
                self.metadata.insert(digest.clone(), md.clone());
            }
            if let Some(locs) = sp.source.as_ref().and_then(|s| s.locations.get(&digest)) {
                let mut locs = locs.clone();
                for l in &mut locs.locations {
                    l.source_index += shift as i32;
                }
                self.locations.insert(digest, locs);
            }
        }
    }
}

/// The digest of each op of a Definition, in order (the last is the terminal op).
pub fn op_digests(def: &pb::Definition) -> Vec<String> {
    def.def.iter().map(|b| digest_of(b)).collect()
}

fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn caps_map(caps: std::collections::BTreeSet<&'static str>) -> BTreeMap<String, bool> {
    caps.into_iter().map(|c| (c.to_string(), true)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn amd64() -> Platform {
        Platform::linux_amd64()
    }

    fn named(n: &str) -> VertexMeta {
        VertexMeta {
            name: n.into(),
            ..Default::default()
        }
    }

    #[test]
    fn mount_output_is_the_index_the_exec_gave_its_output_mount() {
        let mut g = Graph::new();
        let img = g.image("docker.io/library/debian", &amd64(), None, named("img"));
        let out = |dest: &str| Mount::Output {
            input: None,
            dest: dest.into(),
        };
        let run = g.exec(
            img,
            Exec {
                args: vec!["true".into()],
                mounts: vec![
                    Mount::Bind {
                        input: img,
                        selector: String::new(),
                        dest: "/in".into(),
                    },
                    out("/a"),
                    Mount::Cache {
                        id: "c".into(),
                        dest: "/c".into(),
                        sharing: CacheSharing::Locked,
                    },
                    out("/b"),
                ],
                ..Default::default()
            },
            &amd64(),
            named("run"),
        );
        let index = |dest: &str| g.mount_output(run, dest).map(|o| o.index);
        assert_eq!(index("/"), Some(0));
        assert_eq!(index("/a"), Some(1));
        assert_eq!(index("/b"), Some(2));
        assert_eq!(index("/in"), None, "a read-only bind is no output");
        assert_eq!(index("/c"), None);
        assert_eq!(g.mount_output(img, "/"), None, "a source is no exec");
        // The handle names that output of the marshalled op.
        let b = g.mount_output(run, "/b").unwrap();
        let def = g.marshal(b, None);
        let terminal = pb::Op::decode(def.def.last().unwrap().as_slice()).unwrap();
        assert_eq!(terminal.inputs[0].index, 2);
    }

    #[test]
    fn identical_vertices_are_one() {
        let mut g = Graph::new();
        let a = g.image(
            "docker.io/library/python:3.12-slim",
            &amd64(),
            None,
            named("a"),
        );
        let b = g.image(
            "docker.io/library/python:3.12-slim",
            &amd64(),
            None,
            named("b"),
        );
        let ea = g.exec(
            a,
            Exec {
                args: vec!["true".into()],
                ..Default::default()
            },
            &amd64(),
            named("x"),
        );
        let eb = g.exec(
            b,
            Exec {
                args: vec!["true".into()],
                ..Default::default()
            },
            &amd64(),
            named("x"),
        );
        let m = g.merge(vec![ea, eb], named("merge"));
        let def = g.marshal(m, None);
        // image, exec, merge, terminal
        assert_eq!(def.def.len(), 4);
        let ops: Vec<pb::Op> = def
            .def
            .iter()
            .map(|b| pb::Op::decode(b.as_slice()).unwrap())
            .collect();
        let digests = op_digests(&def);
        assert_eq!(ops[2].inputs[0].digest, digests[1]);
        assert_eq!(ops[2].inputs[1].digest, digests[1]);
        assert_eq!(ops[3].inputs[0].digest, digests[2]);
        assert!(ops[3].op.is_none());
        // The first name wins for a shared vertex.
        assert_eq!(def.metadata[&digests[0]].description["llb.customname"], "a");
    }

    #[test]
    fn every_op_records_its_caps_and_the_terminal_the_definitions() {
        let mut g = Graph::new();
        let img = g.image(
            "docker.io/library/python:3.12-slim",
            &amd64(),
            None,
            named("img"),
        );
        let run = g.exec(
            img,
            Exec {
                args: vec!["true".into()],
                network: Some(NetMode::Host),
                mounts: vec![Mount::Cache {
                    id: "pip".into(),
                    dest: "/root/.cache/pip".into(),
                    sharing: CacheSharing::Locked,
                }],
                ..Default::default()
            },
            &amd64(),
            VertexMeta {
                ignore_cache: true,
                ..Default::default()
            },
        );
        let def = g.marshal(run, None);
        let digests = op_digests(&def);
        let caps = |n: usize| -> Vec<&str> {
            def.metadata[&digests[n]]
                .caps
                .iter()
                .map(|(c, on)| {
                    assert!(on);
                    c.as_str()
                })
                .collect()
        };
        assert_eq!(caps(0), ["source.image"]);
        assert_eq!(
            caps(1),
            [
                "exec.meta.base",
                "exec.meta.network",
                "exec.mount.bind",
                "exec.mount.cache",
                "exec.mount.cache.sharing"
            ]
        );
        assert_eq!(
            caps(2),
            [
                "constraints",
                "meta.description",
                "meta.ignorecache",
                "platform"
            ]
        );
        // Only the exec is uncached: the terminal records no name of its own.
        assert!(def.metadata[&digests[2]].description.is_empty());
        assert!(!def.metadata[&digests[2]].ignore_cache);
    }

    #[test]
    fn marshalling_is_deterministic() {
        let build = || {
            let mut g = Graph::new();
            let ctx = g.local(
                "context",
                [
                    ("local.sharedkeyhint".into(), "context".into()),
                    ("local.excludepatterns".into(), "[]".into()),
                ]
                .into(),
                named("ctx"),
            );
            let img = g.image(
                "docker.io/library/python:3.12-slim",
                &amd64(),
                Some("local"),
                named("img"),
            );
            let f = g.file(
                Some(img),
                vec![
                    FileAction::Mkdir {
                        path: "/app".into(),
                        mode: 0o755,
                        owner: Some(Owner::parse("appuser")),
                    },
                    FileAction::Copy {
                        from: ctx,
                        src: "/src".into(),
                        dest: "/app/src".into(),
                        owner: None,
                        mode: None,
                        dir_contents: true,
                        exclude: vec![],
                        wildcard: false,
                        allow_empty: false,
                    },
                ],
                &amd64(),
                named("copy"),
            );
            g.marshal(f, Some(&SourceFile::new("stack.toml", "a\nb\n")))
        };
        assert_eq!(build().encode_to_vec(), build().encode_to_vec());
        let def = build();
        let ops: Vec<pb::Op> = def
            .def
            .iter()
            .map(|b| pb::Op::decode(b.as_slice()).unwrap())
            .collect();
        let Some(pb::op::Op::File(f)) = &ops[2].op else {
            panic!("file op expected")
        };
        assert_eq!(f.actions[0].input, 0);
        assert_eq!(f.actions[0].output, -1);
        // The second action works on the first action's output: index len(inputs) + 0.
        assert_eq!(f.actions[1].input, 2);
        assert_eq!(f.actions[1].secondary_input, 1);
        assert_eq!(f.actions[1].output, 0);
    }
}
