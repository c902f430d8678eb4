//! Sdists in a lock: a package the lock has no wheel of for the target is fetched as its
//! checksummed sdist and built into a wheel on the target platform — in the image as it is
//! before the lock step, so its compilers and headers are there, emulated for a foreign
//! platform (the vertex name says so) — and the group install then installs that wheel like
//! any other.

use crate::llb::{Mount, Output};
use crate::lock::select::LockedFile;
use crate::plan::{LockStep, PlanImage};
use crate::source::Span;

use super::*;

/// Where the sdist is mounted (its HTTP source: one file, `FILENAME`).
const SDIST_DIR: &str = "/run/layerstack/sdist";
/// The scratch output the built wheel is written to (exactly one `.whl`).
pub const SDIST_BUILT: &str = "/run/layerstack/built";

/// Builds one sdist with `pip wheel --no-deps` and checks the result (see the script).
const SDIST_SCRIPT: &str = include_str!("sdist_build.py");

impl<'a> Converter<'a> {
    /// The wheel `f` (an sdist of lock step `l`) builds into on `st`'s platform: a directory
    /// output holding that one wheel. `head` is the lock step's `[KIND NAME I/N]`.
    pub(super) fn build_sdist(
        &mut self,
        st: &State,
        img: &PlanImage,
        l: &LockStep,
        f: &LockedFile,
        head: &str,
        span: Span,
    ) -> Output {
        let sdist = self.fetch_locked(l, f, span);
        let mut args = vec![
            l.python.clone(),
            "-c".into(),
            script(),
            f.name.clone(),
            f.version.clone(),
            st.platform.id(),
            format!("{SDIST_DIR}/{}", f.filename),
            SDIST_BUILT.into(),
        ];
        if let Some(u) = &l.index_url {
            args.extend(["--index-url".into(), u.clone()]);
        }
        for u in &l.extra_index_urls {
            args.extend(["--extra-index-url".into(), u.clone()]);
        }
        let mounts = vec![
            Mount::Bind {
                input: sdist,
                selector: String::new(),
                dest: SDIST_DIR.into(),
            },
            Mount::Output {
                input: None,
                dest: SDIST_BUILT.into(),
            },
        ];
        let build = &self.opts.build_platform;
        let how = if &st.platform == build {
            format!("on {}", st.platform)
        } else {
            format!("on {}, emulated", st.platform)
        };
        let name = format!(
            "{head} lock: build {} {} from its sdist ({how})",
            f.name, f.version
        );
        let exec = self.run(st, args, img, true, &[], mounts, meta(name, span));
        self.g
            .mount_output(exec, SDIST_BUILT)
            .expect("the exec was just built with an output mount at SDIST_BUILT")
    }
}

/// The script without its opening comment (the module's doc says what it does): it travels
/// in the exec's arguments.
fn script() -> String {
    SDIST_SCRIPT
        .lines()
        .skip_while(|l| l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}
