//! Base image configs: how the converter looks them up (the edge resolves them first).

use std::collections::BTreeMap;

use crate::platform::Platform;

/// Base image configs, looked up by the edge (the frontend resolves them through the gateway
/// before converting; the CLI has none or a fixed set).
pub trait ImageResolver {
    /// The config JSON of `reference` for `platform`, or None when unknown.
    fn config(&self, reference: &str, platform: &Platform) -> Option<Vec<u8>>;

    /// The digest `reference` resolved to (BuildKit's ResolveImageConfig answers the digest of
    /// the index or manifest the tag points at), or None when unknown. A known digest pins the
    /// base image's source to `reference@digest`, as the Dockerfile frontend pins `FROM`, so a
    /// tag that moves during a build cannot mix images; unknown (offline) leaves it as written.
    fn digest(&self, _reference: &str, _platform: &Platform) -> Option<String> {
        None
    }

    /// What BuildKit's Dockerfile frontend answered for a `dockerfile` image
    /// ([`crate::plan::DockerfileBuild::key`]) on `platform`, or None when nobody ran it
    /// (offline: the converter then reports that it cannot build the image).
    fn dockerfile(&self, _key: &str, _platform: &Platform) -> Option<&DockerfileResult> {
        None
    }

    /// The frontend input `name` the client sent (`context:NAME=input:name`, bake's
    /// `target:OTHER`): its Definition and its image config (`input-metadata:name`; empty when
    /// the client sent none), or None when there is none (offline).
    fn input(&self, _name: &str) -> Option<&DockerfileResult> {
        None
    }
}

/// A Dockerfile image as the Dockerfile frontend built it, or a frontend input (another bake
/// target's result): its Definition (taken as it is: the converter splices its ops into the
/// graph byte for byte) and its image config.
#[derive(Clone, Debug)]
pub struct DockerfileResult {
    pub definition: crate::pb::Definition,
    /// The `containerimage.config` JSON it answered.
    pub config: Vec<u8>,
}

/// A resolver that knows no image: every base starts from an empty config.
pub struct NoImages;

impl ImageResolver for NoImages {
    fn config(&self, _: &str, _: &Platform) -> Option<Vec<u8>> {
        None
    }
}

/// Configs and digests resolved ahead of time, keyed by (reference, platform id).
#[derive(Clone, Debug, Default)]
pub struct ResolvedImages {
    pub configs: BTreeMap<(String, String), Vec<u8>>,
    pub digests: BTreeMap<(String, String), String>,
    /// Dockerfile images, keyed by (build key, platform id).
    pub dockerfiles: BTreeMap<(String, String), DockerfileResult>,
    /// Frontend inputs (bake `target:` contexts), keyed by input name.
    pub inputs: BTreeMap<String, DockerfileResult>,
}

impl ImageResolver for ResolvedImages {
    fn config(&self, reference: &str, platform: &Platform) -> Option<Vec<u8>> {
        self.configs
            .get(&(reference.to_string(), platform.id()))
            .cloned()
    }

    fn digest(&self, reference: &str, platform: &Platform) -> Option<String> {
        self.digests
            .get(&(reference.to_string(), platform.id()))
            .cloned()
    }

    fn dockerfile(&self, key: &str, platform: &Platform) -> Option<&DockerfileResult> {
        self.dockerfiles.get(&(key.to_string(), platform.id()))
    }

    fn input(&self, name: &str) -> Option<&DockerfileResult> {
        self.inputs.get(name)
    }
}

/// `reference` pinned to `digest` the way the Dockerfile frontend pins `FROM`: the name and tag
/// as written, then `@digest` (`python:3.12-slim@sha256:…`). A reference that already names a
/// digest stays as written. Err for a digest that is not `algorithm:hex`.
pub fn pinned_reference(reference: &str, digest: &str) -> Result<String, String> {
    let valid = digest.split_once(':').is_some_and(|(alg, hex)| {
        !alg.is_empty()
            && alg
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
            && hex.len() >= 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if !valid {
        return Err(format!(
            "the engine resolved it to `{digest}`, which is not a digest (algorithm:hex)"
        ));
    }
    Ok(if reference.contains('@') {
        reference.to_string()
    } else {
        format!("{reference}@{digest}")
    })
}
