//! Encodes an `Op` exactly as BuildKit's Go code re-marshals it, so vertex digests survive the
//! round trip BuildKit makes when it loads a definition.
//!
//! BuildKit (v0.32: `solver/llbsolver/vertex.go`, `recomputeDigests`) decodes every op,
//! re-encodes it with `proto.MarshalOptions{Deterministic: true}` and keys source maps,
//! progress and errors by the digest of *those* bytes. An op whose bytes differ gets a digest
//! the frontend never saw, and a failing step loses its stack.toml excerpt.
//!
//! The Go rule (google.golang.org/protobuf `internal/impl/codec_message.go` +
//! `internal/order.LegacyFieldOrder`, and `codec_map.go`):
//! - fields outside a oneof first, by field number; then each oneof's field, oneofs in
//!   declaration order;
//! - proto3 scalars equal to their zero value are left out; a set message (even empty) and a
//!   set oneof member (even zero) are written;
//! - map entries sorted by key, each entry writing both key (1) and value (2), zero or not.
//!
//! prost writes fields by number with a oneof at its lowest number, and leaves a map entry's
//! zero key or value out. For the messages inside an op that differs only in:
//! - `Op`: the `op` oneof (2–8) is written before `platform` (10) and `constraints` (11);
//! - `SourceOp.attrs`: an empty attr value (or key) is left out of its entry.
//!
//! Every other message reachable from `Op` has its oneof (`FileAction.action`, `UserOpt.user`)
//! numbered above all its other fields, and no maps, so prost's bytes are already Go's; those
//! are encoded with prost. `tests/wire_order.rs` checks every op of every example against the
//! Go rule with a raw field walker, so a future difference fails a test.

use prost::Message;

use crate::pb;

/// The bytes of `op` as BuildKit's Go code marshals it (see the module docs).
pub fn op(op: &pb::Op) -> Vec<u8> {
    // Destructured so a field added to the proto cannot be silently left out here.
    let pb::Op {
        inputs,
        platform,
        constraints,
        op,
    } = op;
    let mut b = Vec::new();
    for i in inputs {
        message(&mut b, 1, i);
    }
    if let Some(p) = platform {
        message(&mut b, 10, p);
    }
    if let Some(c) = constraints {
        message(&mut b, 11, c);
    }
    match op {
        None => {}
        Some(pb::op::Op::Exec(e)) => message(&mut b, 2, e),
        Some(pb::op::Op::Source(s)) => bytes(&mut b, 3, &source_op(s)),
        Some(pb::op::Op::File(f)) => message(&mut b, 4, f),
        Some(pb::op::Op::Merge(m)) => message(&mut b, 6, m),
        Some(pb::op::Op::Diff(d)) => message(&mut b, 7, d),
    }
    b
}

/// `SourceOp`: `identifier` (1), then `attrs` (2) entries by key with key and value always.
fn source_op(s: &pb::SourceOp) -> Vec<u8> {
    let pb::SourceOp { identifier, attrs } = s;
    let mut b = Vec::new();
    if !identifier.is_empty() {
        bytes(&mut b, 1, identifier.as_bytes());
    }
    // A BTreeMap iterates in byte order of its keys: Go's sort of string keys.
    for (k, v) in attrs {
        let mut entry = Vec::with_capacity(k.len() + v.len() + 4);
        bytes(&mut entry, 1, k.as_bytes());
        bytes(&mut entry, 2, v.as_bytes());
        bytes(&mut b, 2, &entry);
    }
    b
}

/// A nested message field whose prost encoding is Go's (see the module docs).
fn message<M: Message>(b: &mut Vec<u8>, field: u32, m: &M) {
    bytes(b, field, &m.encode_to_vec());
}

/// A length-delimited field: key, length, bytes.
fn bytes(b: &mut Vec<u8>, field: u32, data: &[u8]) {
    varint(b, (u64::from(field) << 3) | 2);
    varint(b, data.len() as u64);
    b.extend_from_slice(data);
}

fn varint(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push((v as u8) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn platform() -> pb::Platform {
        pb::Platform {
            architecture: "arm64".into(),
            os: "linux".into(),
            variant: "v8".into(),
            ..Default::default()
        }
    }

    #[test]
    fn op_writes_platform_and_constraints_before_the_oneof() {
        let op = pb::Op {
            inputs: vec![pb::Input {
                digest: "sha256:ab".into(),
                index: 1,
            }],
            op: Some(pb::op::Op::Merge(pb::MergeOp {
                inputs: vec![pb::MergeInput { input: 0 }],
            })),
            platform: Some(platform()),
            constraints: Some(pb::WorkerConstraints::default()),
        };
        let b = super::op(&op);
        // The same fields, only in another order, as prost's.
        assert_eq!(b.len(), op.encode_to_vec().len());
        assert_eq!(pb::Op::decode(b.as_slice()).unwrap(), op);
        let input = [0x0a, 13, 0x0a, 9]
            .into_iter()
            .chain(*b"sha256:ab")
            .chain([0x10, 1]);
        let plat = [0x52, 18, 0x0a, 5]
            .into_iter()
            .chain(*b"arm64")
            .chain([0x12, 5])
            .chain(*b"linux")
            .chain([0x1a, 2])
            .chain(*b"v8");
        let expected: Vec<u8> = input
            .chain(plat)
            .chain([0x5a, 0])
            // merge = 6: MergeOp{inputs: [MergeInput{input: 0}]} = 0a 00
            .chain([0x32, 2, 0x0a, 0])
            .collect();
        assert_eq!(b, expected);
    }

    #[test]
    fn source_attrs_keep_empty_values_and_sort_by_key() {
        let attrs: BTreeMap<String, String> = [
            ("local.sharedkeyhint".to_string(), "".to_string()),
            ("a".to_string(), "x".to_string()),
            ("".to_string(), "y".to_string()),
        ]
        .into();
        let op = pb::Op {
            op: Some(pb::op::Op::Source(pb::SourceOp {
                identifier: "local://context".into(),
                attrs,
            })),
            ..Default::default()
        };
        let b = super::op(&op);
        assert_eq!(pb::Op::decode(b.as_slice()).unwrap(), op);
        let mut expected = vec![0x1a, 0, 0x0a, 15];
        expected.extend_from_slice(b"local://context");
        // "" → "y": the empty key is written (Go writes both halves of every entry).
        expected.extend_from_slice(&[0x12, 5, 0x0a, 0, 0x12, 1, b'y']);
        expected.extend_from_slice(&[0x12, 6, 0x0a, 1, b'a', 0x12, 1, b'x']);
        expected.extend_from_slice(&[0x12, 23, 0x0a, 19]);
        expected.extend_from_slice(b"local.sharedkeyhint");
        expected.extend_from_slice(&[0x12, 0]);
        expected[1] = (expected.len() - 2) as u8;
        assert_eq!(b, expected);
    }

    #[test]
    fn the_terminal_op_is_only_its_input() {
        let op = pb::Op {
            inputs: vec![pb::Input {
                digest: "d".into(),
                index: 0,
            }],
            ..Default::default()
        };
        assert_eq!(super::op(&op), vec![0x0a, 3, 0x0a, 1, b'd']);
    }

    #[test]
    fn long_lengths_are_varints() {
        let mut b = vec![];
        bytes(&mut b, 3, &[7; 300]);
        assert_eq!(&b[..3], &[0x1a, 0xac, 0x02]);
        assert_eq!(b.len(), 303);
    }
}
