//! The target listing, written once: what `llb-gen targets` prints and what the frontend's
//! `frontend.targets` answers — every service, then every layer, then every service in every
//! variant (`NAME@VARIANT`), each with the stack.toml span that declares it.

use crate::source::Span;
use crate::stack::{Kind, Stack};

/// One buildable target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `api`, or `api@cuda` for a service in a variant.
    pub name: String,
    /// The image built (`api`).
    pub image: String,
    pub kind: Kind,
    /// The stack's default target.
    pub default: bool,
    /// `build-only = true`: buildable, never shipped.
    pub build_only: bool,
    /// The image's own description (trimmed, may be empty).
    pub description: String,
    /// `from` as written (a Dockerfile image: its Dockerfile's path).
    pub base: String,
    /// For `NAME@VARIANT`: the variant.
    pub variant: Option<VariantTarget>,
    /// The image's table, or the variant's for `NAME@VARIANT`.
    pub span: Span,
}

/// A variant as the listing shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VariantTarget {
    pub name: String,
    /// The stack's default variant.
    pub default: bool,
    /// Its platforms as written (empty: any).
    pub platforms: Vec<String>,
    pub torch: Option<String>,
    pub description: Option<String>,
}

/// Every target of `stack`, in listing order.
pub fn list(stack: &Stack) -> Vec<Target> {
    let default = stack.default_target();
    let base = |img: &crate::stack::ImageDef| {
        img.from
            .as_ref()
            .map(|f| f.value.clone())
            // A Dockerfile image: its Dockerfile is where it starts from.
            .or_else(|| img.dockerfile.as_ref().map(|d| d.file.value.clone()))
            .unwrap_or_default()
    };
    let mut out: Vec<Target> = stack
        .services()
        .chain(stack.layers())
        .map(|img| Target {
            name: img.name.value.clone(),
            image: img.name.value.clone(),
            kind: img.kind,
            default: default == Some(img.name.value.as_str()),
            build_only: img.is_build_only(),
            description: img
                .description
                .as_ref()
                .map(|d| d.value.trim().to_string())
                .unwrap_or_default(),
            base: base(img),
            variant: None,
            span: img.span,
        })
        .collect();
    for (v, variant) in stack.variants.iter().zip(variants(stack)) {
        for img in stack.services() {
            out.push(Target {
                name: format!("{}@{}", img.name.value, v.name.value),
                image: img.name.value.clone(),
                kind: Kind::Service,
                default: false,
                build_only: img.is_build_only(),
                description: String::new(),
                base: base(img),
                variant: Some(variant.clone()),
                span: v.span,
            });
        }
    }
    out
}

/// The stack's variants, in order.
pub fn variants(stack: &Stack) -> Vec<VariantTarget> {
    let default_variant = stack.default_variant().map(|v| v.name.value.as_str());
    stack
        .variants
        .iter()
        .map(|v| VariantTarget {
            name: v.name.value.clone(),
            default: default_variant == Some(v.name.value.as_str()),
            platforms: v.platforms.iter().map(|p| p.value.clone()).collect(),
            torch: v.torch.as_ref().map(|t| t.value.clone()),
            description: v.description.as_ref().map(|d| d.value.clone()),
        })
        .collect()
}
