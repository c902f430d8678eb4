//! The vertex-name grammar, written once: `[LABEL] TEXT` for an image's own vertices,
//! `[LABEL I/N] TEXT` for its numbered steps, `[internal] TEXT` for vertices of no image.
//! LABEL is `layer NAME` or `service NAME` ([`crate::plan::PlanImage::label`]), with ` venv`
//! for a service's venv builder. `llb-gen/tests/architecture.rs` holds every snapshot to it.

use std::fmt::Display;

/// `[LABEL] TEXT`.
pub fn vertex(label: &str, text: impl Display) -> String {
    format!("[{label}] {text}")
}

/// `[LABEL I/N] TEXT`: step `i` (from 1) of `n`.
pub fn step(label: &str, i: usize, n: usize, text: impl Display) -> String {
    format!("[{label} {i}/{n}] {text}")
}

/// `[internal] TEXT`.
pub fn internal(text: impl Display) -> String {
    format!("[internal] {text}")
}

/// The label of a service's venv builder: `service api venv`.
pub fn venv_label(image_label: &str) -> String {
    format!("{image_label} venv")
}
