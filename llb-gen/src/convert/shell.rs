//! The shell scripts the converter writes (apt, useradd, `sh -c`): every word taken from the
//! plan is quoted here, in one place, so a script's safety does not rest on validators in
//! another module (they still reject bad input early, with a stack.toml line).

use crate::plan::{AptStep, SignedBy, UserPlan, ctxpath};

/// `/bin/sh -c SCRIPT` as exec arguments.
pub fn sh_c(script: impl Into<String>) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script.into()]
}

/// `script` run by `/bin/sh -c` inside the conda environment `env`: `micromamba run -n ENV`,
/// or for conda and mamba `conda run --no-capture-output -n ENV` (mamba images bring conda,
/// and `conda run` without that flag holds the output back until the command ends).
pub fn in_conda_env(installer: &str, env: &str, script: &str) -> Vec<String> {
    let mut args: Vec<String> = match installer {
        "micromamba" => vec!["micromamba".into(), "run".into()],
        _ => vec!["conda".into(), "run".into(), "--no-capture-output".into()],
    };
    args.extend(["-n".into(), env.into()]);
    args.extend(sh_c(script));
    args
}

/// `word` as the shell reads it back: as it is when it holds only `[A-Za-z0-9_@%+=:,./-]`
/// (and is not empty), else in single quotes.
pub fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if plain {
        word.to_string()
    } else {
        crate::interp::shell_quote(word)
    }
}

/// Words quoted and joined with spaces.
pub fn words<S: AsRef<str>>(ws: &[S]) -> String {
    ws.iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Install apt packages, keeping the downloaded archives for the cache mount.
pub fn apt_install(packages: &[String]) -> String {
    format!(
        "set -eu; rm -f /etc/apt/apt.conf.d/docker-clean; \
         echo 'Binary::apt::APT::Keep-Downloaded-Packages \"true\";' > /etc/apt/apt.conf.d/keep-cache; \
         apt-get update; apt-get install -y --no-install-recommends {}",
        words(packages)
    )
}

/// An apt step: the sources' keys and deb822 files written, then `apt-get update` and one
/// `apt-get install` of the packages and the `.deb` files staged under `files_dir`. A plain
/// package list renders exactly as [`apt_install`].
pub fn apt_step(apt: &AptStep, files_dir: &str) -> String {
    if *apt == AptStep::plain(apt.packages.clone()) {
        return apt_install(&apt.packages);
    }
    let mut s = String::from(
        "set -eu; rm -f /etc/apt/apt.conf.d/docker-clean; \
         echo 'Binary::apt::APT::Keep-Downloaded-Packages \"true\";' > /etc/apt/apt.conf.d/keep-cache; ",
    );
    if apt
        .sources
        .iter()
        .any(|src| matches!(src.signed_by, SignedBy::Context(_)))
    {
        s.push_str("mkdir -p /etc/apt/keyrings; ");
    }
    for src in &apt.sources {
        if let (SignedBy::Context(key), Some(dest)) = (&src.signed_by, src.keyring_path()) {
            let from = quote(&format!("{files_dir}/{}", ctxpath::staged(key)));
            let dest = quote(&dest);
            s.push_str(&format!("cp {from} {dest}; chmod 0644 {dest}; "));
        }
        let file = quote(&format!(
            "/etc/apt/sources.list.d/layerstack-{}.sources",
            src.name
        ));
        s.push_str(&format!(
            "printf '%s\\n' {} > {file}; ",
            words(&src.deb822())
        ));
    }
    s.push_str("apt-get update");
    let mut targets: Vec<String> = apt.packages.clone();
    targets.extend(
        apt.debs
            .iter()
            .map(|d| format!("{files_dir}/{}", ctxpath::staged(d))),
    );
    if !targets.is_empty() {
        s.push_str("; apt-get install -y ");
        if !apt.recommends {
            s.push_str("--no-install-recommends ");
        }
        s.push_str(&words(&targets));
    }
    s
}

/// Create a user (and its group) unless it exists; the shell is bash when the image has it.
/// With an explicit `gid` the user's primary group is that gid (created as group NAME unless
/// a group has it), so merged copies can name it; otherwise it is the group named NAME,
/// created with the uid as gid unless the base image has it already (as `useradd -g NAME`
/// in a Dockerfile would).
pub fn useradd(u: &UserPlan) -> String {
    let name = quote(&u.name);
    let home = quote(
        &u.home
            .clone()
            .unwrap_or_else(|| format!("/home/{}", u.name)),
    );
    let gid = u
        .gid
        .or(u.uid)
        .map(|g| format!(" -g {g}"))
        .unwrap_or_default();
    let uid = u.uid.map(|g| format!(" -u {g}")).unwrap_or_default();
    let shell = match &u.shell {
        Some(s) => quote(s),
        None => "$(if [ -x /bin/bash ]; then echo /bin/bash; else echo /bin/sh; fi)".into(),
    };
    if let Some(g) = u.gid {
        return format!(
            "set -eu; if ! id -u {name} >/dev/null 2>&1; then \
             getent group {g} >/dev/null 2>&1 || groupadd -g {g} {name}; \
             useradd --no-log-init -m -d {home}{uid} -g {g} -s {shell} {name}; fi"
        );
    }
    format!(
        "set -eu; if ! id -u {name} >/dev/null 2>&1; then \
         getent group {name} >/dev/null 2>&1 || groupadd{gid} {name}; \
         useradd --no-log-init -m -d {home}{uid} -g {name} -s {shell} {name}; fi"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("libpq-dev=15.4"), "libpq-dev=15.4");
        assert_eq!(quote("/home/app_user"), "/home/app_user");
        assert_eq!(quote("libfoo*"), "'libfoo*'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b;rm -rf /"), "'a b;rm -rf /'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(words(&["curl", "$(x)"]), "curl '$(x)'");
    }

    #[test]
    fn apt_plain_list_is_unchanged_and_inline_keys_are_deb822_continuations() {
        let plain = AptStep::plain(vec!["curl".into()]);
        assert_eq!(apt_step(&plain, "/x"), apt_install(&["curl".into()]));
        assert!(
            apt_install(&["curl".into()])
                .ends_with("apt-get install -y --no-install-recommends curl")
        );
        let src = crate::plan::AptSource {
            name: "inline".into(),
            types: vec!["deb".into()],
            uris: vec!["file:/srv/repo".into()],
            suites: vec!["./".into()],
            components: vec![],
            architectures: vec![],
            signed_by: SignedBy::Inline(
                "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBF\n-----END PGP PUBLIC KEY BLOCK-----".into(),
            ),
        };
        let apt = AptStep {
            sources: vec![src],
            ..AptStep::default()
        };
        let s = apt_step(&apt, "/x");
        assert!(
            s.contains("Signed-By: ' -----BEGIN PGP PUBLIC KEY BLOCK-----' ' .' ' mQINBF'"),
            "{s}"
        );
        // Sources only: the lists are updated, nothing is installed.
        assert!(
            s.ends_with("layerstack-inline.sources; apt-get update"),
            "{s}"
        );
    }

    #[test]
    fn useradd_quotes_what_it_interpolates() {
        let u = UserPlan {
            name: "app".into(),
            uid: Some(1000),
            gid: None,
            home: Some("/srv/my home".into()),
            shell: None,
        };
        let s = useradd(&u);
        assert!(s.contains("-d '/srv/my home' -u 1000 -g app"), "{s}");
        assert!(s.contains("groupadd -g 1000 app"), "{s}");
        // An explicit gid is the primary group, whatever group NAME the base has.
        let s = useradd(&UserPlan {
            gid: Some(1001),
            ..u
        });
        assert!(
            s.contains("getent group 1001 >/dev/null 2>&1 || groupadd -g 1001 app;"),
            "{s}"
        );
        assert!(s.contains("-u 1000 -g 1001 -s"), "{s}");
    }
}
