//! Image configs: reading a base image's config and writing the result's
//! (`containerimage.config`), with oci-spec types plus Docker's Healthcheck extension.

use std::collections::BTreeMap;

use oci_spec::image::{
    Arch, ConfigBuilder, HistoryBuilder, ImageConfigurationBuilder, Os, RootFsBuilder,
};
use serde_json::Value;

use crate::plan::Healthcheck;
use crate::platform::Platform;

/// The default PATH BuildKit and Docker use when an image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The runnable part of an image config, as the converter threads it through the steps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `NAME=value`, in order.
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub working_dir: String,
    pub user: String,
    pub labels: BTreeMap<String, String>,
    pub exposed_ports: Vec<String>,
    pub volumes: Vec<String>,
    pub stop_signal: Option<String>,
    pub healthcheck: Option<Healthcheck>,
    /// Docker's `Shell` (Dockerfile `SHELL`): what runs the shell form of commands: `run`
    /// entries and a shell-form `cmd` or `entrypoint` honour it; None = `/bin/sh -c`.
    pub shell: Option<Vec<String>>,
    /// (created_by, empty_layer, comment) entries, oldest first.
    pub history: Vec<HistoryEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    pub created_by: String,
    pub empty_layer: bool,
    pub created: Option<String>,
}

impl ImageConfig {
    /// Parse the config JSON returned by `ResolveImageConfig`.
    pub fn from_json(bytes: &[u8]) -> Result<ImageConfig, String> {
        let v: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("invalid image config JSON: {e}"))?;
        let c = v.get("config").cloned().unwrap_or(Value::Null);
        let strings = |v: Option<&Value>| -> Option<Vec<String>> {
            v.and_then(Value::as_array).map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
        };
        let keys = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_object)
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default()
        };
        let ns = |v: Option<&Value>| v.and_then(Value::as_u64).filter(|n| *n > 0);
        let healthcheck = c.get("Healthcheck").and_then(|h| {
            let test = strings(h.get("Test"))?;
            if test.is_empty() || test == ["NONE"] {
                return None;
            }
            Some(Healthcheck {
                test,
                interval_ns: ns(h.get("Interval")),
                timeout_ns: ns(h.get("Timeout")),
                start_period_ns: ns(h.get("StartPeriod")),
                retries: h
                    .get("Retries")
                    .and_then(Value::as_u64)
                    .filter(|n| *n > 0)
                    .map(|n| n as u32),
            })
        });
        let history = v
            .get("history")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|h| HistoryEntry {
                        created_by: h
                            .get("created_by")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        empty_layer: h
                            .get("empty_layer")
                            .and_then(Value::as_bool)
                            .unwrap_or(false),
                        created: h.get("created").and_then(Value::as_str).map(str::to_string),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(ImageConfig {
            env: strings(c.get("Env")).unwrap_or_default(),
            cmd: strings(c.get("Cmd")),
            shell: strings(c.get("Shell")).filter(|s| !s.is_empty()),
            entrypoint: strings(c.get("Entrypoint")),
            working_dir: c
                .get("WorkingDir")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            user: c
                .get("User")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            labels: c
                .get("Labels")
                .and_then(Value::as_object)
                .map(|o| {
                    o.iter()
                        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                        .collect()
                })
                .unwrap_or_default(),
            exposed_ports: keys(c.get("ExposedPorts")),
            volumes: keys(c.get("Volumes")),
            stop_signal: c
                .get("StopSignal")
                .and_then(Value::as_str)
                .map(str::to_string),
            healthcheck,
            history,
        })
    }

    /// The value of an env var.
    pub fn get_env(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
    }

    /// Set (or replace in place) an env var.
    pub fn set_env(&mut self, name: &str, value: &str) {
        let entry = format!("{name}={value}");
        match self
            .env
            .iter_mut()
            .find(|e| e.split_once('=').map(|(k, _)| k) == Some(name))
        {
            Some(e) => *e = entry,
            None => self.env.push(entry),
        }
    }

    /// The env as a map, for `${VAR}` expansion.
    pub fn env_map(&self) -> BTreeMap<String, String> {
        self.env
            .iter()
            .filter_map(|e| e.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The env a process of this image gets: with a PATH even when the image sets none.
    pub fn process_env(&self) -> Vec<String> {
        let mut env = self.env.clone();
        if self.get_env("PATH").is_none() {
            env.insert(0, format!("PATH={DEFAULT_PATH}"));
        }
        env
    }

    /// The `containerimage.config` JSON for `platform`, byte-stable for equal input.
    pub fn to_json(&self, platform: &Platform, created: Option<&str>) -> Result<Vec<u8>, String> {
        let mut cb = ConfigBuilder::default().env(self.env.clone());
        if let Some(c) = &self.cmd {
            cb = cb.cmd(c.clone());
        }
        if let Some(e) = &self.entrypoint {
            cb = cb.entrypoint(e.clone());
        }
        if !self.working_dir.is_empty() {
            cb = cb.working_dir(self.working_dir.clone());
        }
        if !self.user.is_empty() {
            cb = cb.user(self.user.clone());
        }
        if !self.labels.is_empty() {
            cb = cb.labels(
                self.labels
                    .clone()
                    .into_iter()
                    .collect::<std::collections::HashMap<_, _>>(),
            );
        }
        if !self.exposed_ports.is_empty() {
            cb = cb.exposed_ports(self.exposed_ports.clone());
        }
        if !self.volumes.is_empty() {
            cb = cb.volumes(self.volumes.clone());
        }
        if let Some(s) = &self.stop_signal {
            cb = cb.stop_signal(s.clone());
        }
        let config = cb.build().map_err(|e| e.to_string())?;
        let history = self
            .history
            .iter()
            .map(|h| {
                let mut b = HistoryBuilder::default()
                    .created_by(h.created_by.clone())
                    .empty_layer(h.empty_layer);
                if let Some(c) = &h.created {
                    b = b.created(c.clone());
                }
                b.build().map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut ib = ImageConfigurationBuilder::default()
            .architecture(Arch::from(platform.architecture.as_str()))
            .os(Os::from(platform.os.as_str()))
            .config(config)
            .rootfs(
                RootFsBuilder::default()
                    .typ("layers")
                    .diff_ids(Vec::<String>::new())
                    .build()
                    .map_err(|e| e.to_string())?,
            )
            .history(history);
        if let Some(v) = &platform.variant {
            ib = ib.variant(v.clone());
        }
        if let Some(c) = created {
            ib = ib.created(c.to_string());
        }
        let image = ib.build().map_err(|e| e.to_string())?;
        // Through serde_json::Value (sorted maps) so the bytes do not depend on hash order.
        let mut v = serde_json::to_value(&image).map_err(|e| e.to_string())?;
        if let Some(h) = &self.healthcheck {
            let mut hv = serde_json::Map::new();
            hv.insert("Test".into(), Value::from(h.test.clone()));
            for (k, n) in [
                ("Interval", h.interval_ns),
                ("Timeout", h.timeout_ns),
                ("StartPeriod", h.start_period_ns),
            ] {
                if let Some(n) = n {
                    hv.insert(k.into(), Value::from(n));
                }
            }
            if let Some(r) = h.retries {
                hv.insert("Retries".into(), Value::from(r));
            }
            if let Some(cfg) = v.get_mut("config").and_then(Value::as_object_mut) {
                cfg.insert("Healthcheck".into(), Value::Object(hv));
            }
        }
        if let (Some(shell), Some(cfg)) = (
            &self.shell,
            v.get_mut("config").and_then(Value::as_object_mut),
        ) {
            cfg.insert("Shell".into(), Value::from(shell.clone()));
        }
        serde_json::to_vec(&v).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_fields_we_use() {
        let base = br#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/bin:/usr/bin","LANG=C.UTF-8"],"Cmd":["python3"],"WorkingDir":"/srv","Labels":{"a":"b"},"ExposedPorts":{"80/tcp":{}},"Healthcheck":{"Test":["CMD-SHELL","true"],"Interval":30000000000}},"rootfs":{"type":"layers","diff_ids":[]},"history":[{"created_by":"debootstrap"}]}"#;
        let mut c = ImageConfig::from_json(base).unwrap();
        assert_eq!(c.get_env("PATH"), Some("/usr/local/bin:/usr/bin"));
        assert_eq!(c.cmd.as_deref().unwrap(), ["python3"]);
        assert_eq!(
            c.healthcheck.as_ref().unwrap().interval_ns,
            Some(30_000_000_000)
        );
        c.set_env("LANG", "en_US.UTF-8");
        c.set_env("NEW", "1");
        assert_eq!(
            c.env,
            ["PATH=/usr/local/bin:/usr/bin", "LANG=en_US.UTF-8", "NEW=1"]
        );
        let out = c
            .to_json(&Platform::parse("linux/arm64").unwrap(), None)
            .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["architecture"], "arm64");
        assert_eq!(v["config"]["WorkingDir"], "/srv");
        assert_eq!(v["config"]["Healthcheck"]["Test"][1], "true");
        assert_eq!(v["config"]["ExposedPorts"]["80/tcp"], serde_json::json!({}));
        assert_eq!(ImageConfig::from_json(&out).unwrap().labels["a"], "b");
        assert_eq!(
            out,
            c.to_json(&Platform::parse("linux/arm64").unwrap(), None)
                .unwrap()
        );
    }

    #[test]
    fn default_path_only_when_missing() {
        let c = ImageConfig::default();
        assert_eq!(c.process_env(), [format!("PATH={DEFAULT_PATH}")]);
        assert!(ImageConfig::from_json(b"not json").is_err());
    }
}
