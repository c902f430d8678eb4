//! Image config changes: env, labels, ports, healthcheck, cmd and entrypoint.

use crate::diag::Diagnostic;
use crate::interp::Unknown;
use crate::stack::{Command, ImageDef, Sp};

use super::*;

impl Planner<'_> {
    /// A `cmd`, `entrypoint` or healthcheck test: exec form interpolated word by word, shell
    /// form as shell text (§5).
    pub(super) fn process(&mut self, c: &Sp<Command>, key: &str) -> Process {
        match &c.value {
            Command::Exec(items) => Process::Exec(
                items
                    .iter()
                    .map(|i| self.text_with(&Sp::new(i.clone(), c.span), key, Unknown::Shell))
                    .collect(),
            ),
            Command::Shell(s) => Process::Shell(self.shell_text(&Sp::new(s.clone(), c.span), key)),
        }
    }

    pub(super) fn duration(&mut self, s: &Option<Sp<String>>, key: &str) -> Option<u64> {
        let s = s.as_ref()?;
        match parse_duration(&s.value) {
            Ok(ns) => Some(ns),
            Err(e) => {
                self.diags.push(
                    Diagnostic::error(e)
                        .at(s.span)
                        .key(key.to_string())
                        .hint("durations look like \"30s\", \"1m30s\" or \"500ms\""),
                );
                None
            }
        }
    }

    pub(super) fn config(
        &mut self,
        img: &ImageDef,
        key: &str,
        user: Option<String>,
        workdir: Option<String>,
    ) -> ConfigChanges {
        let env = self.env_list(&img.env, &format!("{key}.env"), Unknown::Keep);
        let labels = self.env_list(&img.labels, &format!("{key}.labels"), Unknown::Error);
        let mut ports = vec![];
        for p in &img.expose {
            let v = self.text(p, &format!("{key}.expose"));
            match normalize_port(&v) {
                Ok(n) => ports.push(n),
                Err(e) => self.diags.push(
                    Diagnostic::error(e)
                        .at(p.span)
                        .key(format!("{key}.expose"))
                        .hint("ports look like 8000 or \"53/udp\""),
                ),
            }
        }
        let healthcheck = img.healthcheck.as_ref().map(|h| {
            let hk = format!("{key}.healthcheck");
            let test = h.test.as_ref()?;
            // Docker runs a `CMD-SHELL` test with the container's shell (its config's `Shell`).
            let test = match self.process(test, &hk) {
                Process::Exec(argv) => [vec![HEALTHCHECK_EXEC.to_string()], argv].concat(),
                Process::Shell(line) => vec![HEALTHCHECK_SHELL.to_string(), line],
            };
            Some(Healthcheck {
                test,
                interval_ns: self.duration(&h.interval, &format!("{hk}.interval")),
                timeout_ns: self.duration(&h.timeout, &format!("{hk}.timeout")),
                start_period_ns: self.duration(&h.start_period, &format!("{hk}.start-period")),
                retries: h.retries.as_ref().map(|r| r.value),
            })
        });
        ConfigChanges {
            env,
            workdir,
            user,
            cmd: img
                .cmd
                .as_ref()
                .map(|c| self.process(c, &format!("{key}.cmd"))),
            entrypoint: img
                .entrypoint
                .as_ref()
                .map(|c| self.process(c, &format!("{key}.entrypoint"))),
            exposed_ports: ports,
            healthcheck,
            labels,
            stop_signal: img
                .stop_signal
                .as_ref()
                .map(|s| self.text(s, &format!("{key}.stop-signal"))),
        }
    }
}
