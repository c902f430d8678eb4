//! Building the frontend image once per test binary, so `# syntax=` in test stacks finds it.

use std::process::Command;
use std::sync::OnceLock;

use crate::{Engine, display_command, exec, frontend_image, repo_root};

/// Build and load the frontend image (`scripts/build-frontend.sh`) once per test process.
/// Skipped when `LAYERSTACK_FRONTEND_PREBUILT=1` says the image is already there.
pub fn ensure_frontend(_engine: &Engine) {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let result = DONE.get_or_init(|| {
        if std::env::var("LAYERSTACK_FRONTEND_PREBUILT").is_ok_and(|v| v == "1") {
            return Ok(());
        }
        let mut cmd = Command::new(repo_root().join("scripts/build-frontend.sh"));
        cmd.arg(frontend_image()).current_dir(repo_root());
        match exec(&mut cmd, None) {
            // On a standalone BuildKit the frontend comes from the registry it mirrors.
            Ok(o) if o.status.success() => crate::builder::publish_frontend(),
            Ok(o) => Err(format!(
                "{} failed:\n{}\n{}",
                display_command(&cmd),
                o.stdout,
                o.stderr
            )),
            Err(e) => Err(format!("{}: {e}", display_command(&cmd))),
        }
    });
    if let Err(e) = result {
        panic!("cannot build the frontend image: {e}");
    }
}
