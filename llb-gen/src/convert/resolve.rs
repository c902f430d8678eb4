//! Base image configs: how the converter looks them up (the edge resolves them first).

use std::collections::BTreeMap;

use crate::platform::Platform;

/// Base image configs, looked up by the edge (the frontend resolves them through the gateway
/// before converting; the CLI has none or a fixed set).
pub trait ImageResolver {
    /// The config JSON of `reference` for `platform`, or None when unknown.
    fn config(&self, reference: &str, platform: &Platform) -> Option<Vec<u8>>;
}

/// A resolver that knows no image: every base starts from an empty config.
pub struct NoImages;

impl ImageResolver for NoImages {
    fn config(&self, _: &str, _: &Platform) -> Option<Vec<u8>> {
        None
    }
}

/// Configs resolved ahead of time, keyed by (reference, platform id).
#[derive(Clone, Debug, Default)]
pub struct ResolvedImages {
    pub configs: BTreeMap<(String, String), Vec<u8>>,
}

impl ImageResolver for ResolvedImages {
    fn config(&self, reference: &str, platform: &Platform) -> Option<Vec<u8>> {
        self.configs
            .get(&(reference.to_string(), platform.id()))
            .cloned()
    }
}
