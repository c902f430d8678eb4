//! BuildKit LLB protobuf types, generated at build time from `proto/`.
//!
//! `llb_gen::pb::Op`, `llb_gen::pb::Definition`, ... mirror BuildKit's
//! `pb` package (solver/pb/ops.proto); `llb_gen::pb::apicaps::ApiCap` mirrors
//! `moby.buildkit.v1.apicaps.APICap`. Every proto `map<>` is a `BTreeMap`,
//! so encoding a message is deterministic (vertex digests depend on it).

#![allow(clippy::all, missing_docs, rustdoc::all)]

include!(concat!(env!("OUT_DIR"), "/pb.rs"));

/// `moby.buildkit.v1.apicaps`: API capability records returned by Ping.
pub mod apicaps {
    include!(concat!(env!("OUT_DIR"), "/moby.buildkit.v1.apicaps.rs"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use std::collections::BTreeMap;

    fn sample_op() -> Op {
        Op {
            inputs: vec![Input {
                digest: "sha256:0123".into(),
                index: 0,
            }],
            op: Some(op::Op::Exec(ExecOp {
                meta: Some(Meta {
                    args: vec!["/bin/sh".into(), "-c".into(), "true".into()],
                    env: vec!["PATH=/usr/bin:/bin".into()],
                    cwd: "/".into(),
                    ..Default::default()
                }),
                mounts: vec![
                    Mount {
                        input: 0,
                        dest: "/".into(),
                        output: 0,
                        ..Default::default()
                    },
                    Mount {
                        input: -1,
                        dest: "/root/.cache".into(),
                        output: -1,
                        mount_type: MountType::Cache as i32,
                        cache_opt: Some(CacheOpt {
                            id: "cache".into(),
                            sharing: CacheSharingOpt::Locked as i32,
                        }),
                        ..Default::default()
                    },
                ],
                network: NetMode::None as i32,
                ..Default::default()
            })),
            platform: Some(Platform {
                architecture: "amd64".into(),
                os: "linux".into(),
                ..Default::default()
            }),
            constraints: Some(WorkerConstraints::default()),
        }
    }

    #[test]
    fn op_round_trips() {
        let op = sample_op();
        let bytes = op.encode_to_vec();
        let back = Op::decode(bytes.as_slice()).unwrap();
        assert_eq!(op, back);
        assert_eq!(bytes, back.encode_to_vec());
    }

    #[test]
    fn map_encoding_is_deterministic() {
        // Insert in different orders; BTreeMap must give identical bytes.
        let keys = [
            "local.sharedkeyhint",
            "local.session",
            "local.followpaths",
            "a",
            "z",
        ];
        let mut a = BTreeMap::new();
        for k in keys {
            a.insert(k.to_string(), format!("v-{k}"));
        }
        let mut b = BTreeMap::new();
        for k in keys.iter().rev() {
            b.insert(k.to_string(), format!("v-{k}"));
        }
        let src = |attrs| Op {
            op: Some(op::Op::Source(SourceOp {
                identifier: "local://context".into(),
                attrs,
            })),
            ..Default::default()
        };
        let (x, y) = (src(a).encode_to_vec(), src(b).encode_to_vec());
        assert_eq!(x, y);
        // Decoding and re-encoding gives the same bytes too.
        assert_eq!(x, Op::decode(x.as_slice()).unwrap().encode_to_vec());

        let mut md = BTreeMap::new();
        md.insert(
            "sha256:b".to_string(),
            OpMetadata {
                caps: [
                    ("source.local".to_string(), true),
                    ("exec.meta.base".to_string(), true),
                ]
                .into_iter()
                .collect(),
                ..Default::default()
            },
        );
        md.insert("sha256:a".to_string(), OpMetadata::default());
        let def = Definition {
            def: vec![x.clone()],
            metadata: md,
            source: None,
        };
        assert_eq!(def.encode_to_vec(), def.clone().encode_to_vec());
    }

    #[test]
    fn field_numbers_match_upstream() {
        // A few spot checks against BuildKit's ops.proto field numbers:
        // tag byte = (field_number << 3) | wire_type.
        let op = Op {
            platform: Some(Platform::default()),
            ..Default::default()
        };
        assert_eq!(op.encode_to_vec(), vec![(10 << 3) | 2, 0]);
        let op = Op {
            constraints: Some(WorkerConstraints::default()),
            ..Default::default()
        };
        assert_eq!(op.encode_to_vec(), vec![(11 << 3) | 2, 0]);
        let m = Mount {
            cache_opt: Some(CacheOpt::default()),
            ..Default::default()
        };
        // (20 << 3) | 2 = 162 needs a two-byte varint tag.
        assert_eq!(m.encode_to_vec(), vec![0xA2, 0x01, 0]);
        let d = Definition {
            source: Some(Source::default()),
            ..Default::default()
        };
        assert_eq!(d.encode_to_vec(), vec![(3 << 3) | 2, 0]);
        let c = FileActionCopy {
            mode_str: "x".into(),
            ..Default::default()
        };
        assert_eq!(c.encode_to_vec(), vec![(15 << 3) | 2, 1, b'x']);
        let cap = apicaps::ApiCap {
            id: "x".into(),
            enabled: true,
            ..Default::default()
        };
        assert_eq!(cap.encode_to_vec(), vec![(1 << 3) | 2, 1, b'x', 2 << 3, 1]);
    }
}
