//! Python installs: the installer (pip/uv) and the secrets install steps get.

use crate::diag::Diagnostic;
use crate::stack::ImageDef;

use super::*;

impl Planner<'_> {
    /// The stack's secrets, validated.
    pub(super) fn secrets(&mut self) -> Vec<SecretPlan> {
        let mut out = vec![];
        for d in &self.stack.secrets {
            let key = format!("secrets.{}", d.name.value);
            let env = d.env.as_ref().map(|e| {
                if !crate::stack::valid_arg_name(&e.value) {
                    self.diags.push(
                        Diagnostic::error(format!("invalid env var name `{}`", e.value))
                            .at(e.span)
                            .key(format!("{key}.env")),
                    );
                }
                e.value.clone()
            });
            let target = match (&d.target, &env) {
                (Some(t), _) => Some(self.abs_path(t, &format!("{key}.target"))),
                (None, None) => Some(format!("/run/secrets/{}", d.name.value)),
                (None, Some(_)) => None,
            };
            out.push(SecretPlan {
                id: d.name.value.clone(),
                env,
                target,
                required: d.required.as_ref().is_none_or(|r| r.value),
            });
        }
        out
    }

    /// The image's installer: its own `installer`, else the stack's, else pip.
    pub(super) fn installer(&mut self, img: &ImageDef, key: &str) -> Installer {
        let (value, k) = match (&img.installer, &self.stack.installer) {
            (Some(v), _) => (v, format!("{key}.installer")),
            (None, Some(v)) => (v, "stack.installer".to_string()),
            (None, None) => return Installer::Pip,
        };
        let text = self.text(value, &k);
        match text.as_str() {
            "pip" => Installer::Pip,
            "uv" => Installer::Uv { version: None },
            other => match other.strip_prefix("uv==") {
                Some(v)
                    if !v.is_empty()
                        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') =>
                {
                    Installer::Uv {
                        version: Some(v.to_string()),
                    }
                }
                _ => {
                    self.diags.push(
                        Diagnostic::error(format!("unknown installer `{other}`"))
                            .at(value.span)
                            .key(k)
                            .hint("use \"pip\", \"uv\" or a pinned \"uv==0.5.11\""),
                    );
                    Installer::Pip
                }
            },
        }
    }
}
