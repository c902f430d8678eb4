# layerstack cross-install: install Python wheels for a foreign platform on the build platform.
#
# Runs with the build platform's twin of the image being built (same interpreter version, same
# paths, same environment). The target image's root filesystem is mounted read-only at TARGET;
# what it already has installed is kept (pinned as constraints, never installed twice). The new
# files are written to OUT with their final absolute paths, ready to be merged onto the target.
#
#   python3 cross_install.py MODE INSTALLER ARCH PLATFORM PYTHON -- ARGS...
#
# MODE: `probe` answers in STATUS/status.json whether every requirement has a wheel for the
# target platform (exit 0 either way) and resolves them: STATUS/pylock.toml (PEP 751; pip's
# `--dry-run --report`, uv's `pip compile --format pylock.toml`) lists the wheels the target
# does not have yet with URL and sha256, which the frontend reads back and installs like a
# `lock` step; `install` installs (exit 1 on any failure), used when there is no lock (an index
# without hashes, a local package, the CLI without a gateway).
# INSTALLER: `pip` or `uv` (at UV). ARCH: the wheel machine (`aarch64`). ARGS: what follows
# `pip install` (index options, `-r FILE`, specifiers). PYTHON: the interpreter as the stack
# names it (`python3`), which must be the same file in the image as here.
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile

TARGET = "@CROSS_TARGET@"
OUT = "@CROSS_OUT@"
STATUS = "@CROSS_STATUS@"
UV = "@UV_BIN@"


class Refused(Exception):
    """The install cannot be done for the target platform without emulation."""


def canon(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def site_dirs():
    """The interpreter's package directories, as paths inside the target image."""
    dirs = []
    for p in sys.path:
        if p and ("site-packages" in p or "dist-packages" in p) and os.path.isdir(TARGET + p):
            if p not in dirs:
                dirs.append(p)
    return dirs


def installed():
    """{canonical name: (version, dist-info path inside the target)} of the target image."""
    found = {}
    for d in site_dirs():
        for entry in sorted(os.listdir(TARGET + d)):
            if not entry.endswith(".dist-info"):
                continue
            meta = os.path.join(TARGET + d, entry, "METADATA")
            name = version = None
            try:
                with open(meta, encoding="utf-8", errors="replace") as f:
                    for line in f:
                        if line.startswith("Name:") and name is None:
                            name = line.split(":", 1)[1].strip()
                        elif line.startswith("Version:") and version is None:
                            version = line.split(":", 1)[1].strip()
                        elif not line.strip():
                            break
            except OSError:
                continue
            if name and version and canon(name) not in found:
                found[canon(name)] = (version, os.path.join(d, entry))
    return found


def same_interpreter(name):
    """`name` must resolve to the same path in the image as here (not, say, a venv that only
    the image has on its PATH)."""
    if os.path.isabs(name):
        here, there = name, (name if os.path.lexists(TARGET + name) else None)
    else:
        here = shutil.which(name)
        there = None
        for d in os.environ.get("PATH", "").split(":"):
            if d and os.path.lexists(os.path.join(TARGET + d, name)):
                there = os.path.join(d, name)
                break
    if here != there:
        raise Refused("`%s` is %s in the image but %s on the build platform" % (name, there, here))


def glibc_minor():
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (AttributeError, ValueError, OSError):
        libc = ""
    m = re.match(r"glibc (\d+)\.(\d+)", libc)
    if not m or m.group(1) != "2":
        raise Refused("the build platform's interpreter is not linked with glibc")
    return int(m.group(2))


def pip_platforms(arch, minor):
    tags = ["manylinux_2_%d_%s" % (m, arch) for m in range(minor, 16, -1)]
    tags.append("manylinux2014_%s" % arch)
    if arch in ("x86_64", "i686"):
        tags += ["manylinux_2_%d_%s" % (m, arch) for m in range(16, 4, -1)]
        tags += ["manylinux2010_%s" % arch, "manylinux1_%s" % arch]
    tags.append("linux_%s" % arch)
    return tags


def uv_platform(arch, minor):
    if arch in ("x86_64", "aarch64"):
        return "%s-manylinux_2_%d" % (arch, min(max(minor, 17), 40))
    triples = {
        "armv7l": "armv7-unknown-linux-gnueabihf",
        "ppc64le": "powerpc64le-unknown-linux-gnu",
        "s390x": "s390x-unknown-linux-gnu",
        "riscv64": "riscv64gc-unknown-linux-gnu",
        "i686": "i686-unknown-linux-gnu",
    }
    if arch not in triples:
        raise Refused("uv cannot install for %s" % arch)
    return triples[arch]


def run(cmd, what):
    """Run an installer; Refused with the tail of its output when it fails."""
    shown = cmd if cmd[1:2] != ["-c"] else [cmd[0], "-m", "pip"] + cmd[3:]
    print("+ " + " ".join(shown), flush=True)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    text = p.stdout.decode("utf-8", "replace")
    sys.stdout.write(text)
    sys.stdout.flush()
    if p.returncode != 0:
        missing = re.findall(r"No matching distribution found for (\S+)", text)
        if missing:
            raise Refused("no wheel of %s for this platform" % ", ".join(sorted(set(missing))))
        lines = [l.strip() for l in text.splitlines() if l.strip()]
        errors = [l for l in lines if l.startswith("ERROR") or l.startswith("error") or "×" in l]
        tail = (errors or lines)[-3:]
        raise Refused("%s failed: %s" % (what, " / ".join(tail)[:600]))
    return text


def constraints_file(have, work):
    path = os.path.join(work, "installed-constraints.txt")
    with open(path, "w") as f:
        for name, (version, _) in sorted(have.items()):
            f.write("%s==%s\n" % (name, version))
    return path


def pip_flags(arch, minor):
    v = sys.version_info
    flags = ["--only-binary=:all:", "--python-version", "%d.%d" % (v[0], v[1])]
    flags += ["--implementation", "cp", "--abi", "cp%d%d" % (v[0], v[1]), "--abi", "abi3", "--abi", "none"]
    for t in pip_platforms(arch, minor):
        flags += ["--platform", t]
    return flags


def index_args(args):
    """The index options among ARGS (for the second, --no-deps pass)."""
    out = []
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("--index-url", "-i", "--extra-index-url", "--find-links", "-f", "--trusted-host"):
            out += args[i : i + 2]
            i += 2
            continue
        if a.startswith(("--index-url=", "--extra-index-url=", "--find-links=", "--trusted-host=")) or a == "--no-index":
            out.append(a)
        i += 1
    return out


# pip evaluates environment markers (`; platform_machine == "aarch64"`) against the
# interpreter it runs in, whatever `--platform` says. This runs pip with the target's
# machine in its marker environment (the rest is the same: same Python, same kernel).
PIP_BOOT = """
import sys
from pip._vendor.packaging import markers
_default = markers.default_environment
def _target():
    env = _default()
    env["platform_machine"] = %r
    return env
markers.default_environment = _target
from pip._internal.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def pip_cmd(arch):
    return [sys.executable, "-c", PIP_BOOT % arch]


def pip_plan(args, arch, minor, have, work, sdists=False):
    """Resolve for the target platform; the distributions the target does not have yet.
    With `sdists`, a requirement without a wheel for the target is resolved to its sdist (to be
    built on the target) instead of refusing: see pip_plan_sdists."""
    report = os.path.join(work, "report.json")
    cmd = pip_cmd(arch) + ["install", "--dry-run", "--quiet", "--report", report]
    cmd += ["--target", os.path.join(work, "dry"), "--no-warn-script-location"]
    cmd += pip_flags(arch, minor) + ["-c", constraints_file(have, work)] + args
    try:
        run(cmd, "resolving wheels for the target platform")
    except Refused as e:
        if not (sdists and str(e).startswith(NO_WHEEL)):
            raise
        return pip_plan_sdists(args, arch, minor, have, work)
    return report_items(report, have, sdists=False)


NO_WHEEL = "no wheel of "


def report_installs(report, have):
    """(item, name, version) of a pip report's installs that the target lacks; Refused when
    one would replace a version the target has."""
    with open(report) as f:
        items = json.load(f).get("install", [])
    for item in items:
        meta = item.get("metadata", {})
        name, version = meta.get("name", ""), meta.get("version", "")
        got = have.get(canon(name))
        if got and got[0] == version:
            continue
        if got:
            raise Refused("it would replace %s %s with %s" % (name, got[0], version))
        yield item, name, version


def report_items(report, have, sdists):
    """(name, version, url#sha256=…) of a pip report's installs that the target lacks; an
    sdist URL refused unless `sdists`."""
    new = []
    for item, name, version in report_installs(report, have):
        url = item.get("download_info", {}).get("url", "")
        if not url.split("#")[0].split("?")[0].endswith(".whl"):
            if not sdists or not is_sdist(url):
                raise Refused("%s %s has no wheel for the target platform" % (name, version))
        hashes = item.get("download_info", {}).get("archive_info", {}).get("hashes", {})
        if "sha256" in hashes and "#" not in url:
            url += "#sha256=" + hashes["sha256"]
        new.append((name, version, url))
    return new


def is_sdist(url):
    base = url.split("#")[0].split("?")[0].lower()
    return base.endswith((".tar.gz", ".zip"))


def pip_plan_sdists(args, arch, minor, have, work):
    """A requirement has no wheel for the target: resolve (names and versions) with the
    target's markers but the build platform's tags, sdists allowed (pip builds their metadata
    here), then find each pinned version's file for the target with `--no-deps`: its wheel
    where one fits, else its sdist, which the build then builds on the target platform."""
    report = os.path.join(work, "report-versions.json")
    cmd = pip_cmd(arch) + ["install", "--dry-run", "--quiet", "--report", report]
    cmd += ["--target", os.path.join(work, "dry-versions"), "--no-warn-script-location"]
    cmd += ["-c", constraints_file(have, work)] + args
    run(cmd, "resolving versions (sdists allowed)")
    pins = []
    for item, name, version in report_installs(report, have):
        if item.get("download_info", {}).get("dir_info") is not None or not version:
            raise Refused("%s is a local package" % (name or "a requirement"))
        pins.append("%s==%s" % (name, version))
    if not pins:
        return []
    flags = [f for f in pip_flags(arch, minor) if f != "--only-binary=:all:"]
    report = os.path.join(work, "report-files.json")
    cmd = pip_cmd(arch) + ["install", "--dry-run", "--quiet", "--report", report, "--no-deps"]
    cmd += ["--prefer-binary", "--target", os.path.join(work, "dry-files"), "--no-warn-script-location"]
    cmd += flags + index_args(args) + pins
    run(cmd, "finding the target platform's files (wheels, else sdists)")
    return report_items(report, {}, sdists=True)


def lockable(new, args):
    """Why the resolved wheels cannot be written as a lock the build fetches by checksum
    (None when they can): every URL must be http(s), carry a sha256 and no credentials, and
    no index may need credentials (the build fetches the files without them)."""
    indexes = [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("--index-url", "--extra-index-url")]
    for var in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_INDEX", "UV_DEFAULT_INDEX"):
        indexes += os.environ.get(var, "").split()
    for url in indexes:
        if "@" in url.partition("://")[2].split("/", 1)[0]:
            return "an index URL carries credentials"
    if os.path.exists(os.path.expanduser("~/.netrc")) or os.environ.get("NETRC"):
        return "the indexes may need credentials (a netrc)"
    for name, version, urls in new:
        for url in urls:
            base, _, frag = url.partition("#")
            scheme, _, rest = base.partition("://")
            if scheme not in ("http", "https"):
                return "%s %s comes from %s, not an index" % (name, version, scheme or base)
            if "@" in rest.split("/", 1)[0]:
                return "the URL of %s %s carries credentials" % (name, version)
            if not re.fullmatch(r"sha256=[0-9a-fA-F]{64}", frag):
                return "the index gave no sha256 for %s %s" % (name, version)
    return None


def uv_lock(args, arch, minor, have, work, sdists=False):
    """uv's resolve as a lock: `uv pip compile --format pylock.toml` for the target, the
    packages the target already has left out. ([(name, version, [wheel URL#sha256=…])], None)
    or (None, why not). With `sdists`, binary-only is not asked and a package without a wheel
    for the target keeps its sdist (built on the target platform)."""
    opts, srcs, specs = [], [], []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-r" and i + 1 < len(args):
            srcs.append(args[i + 1])
            i += 2
            continue
        if a in ("--index-url", "--extra-index-url") and i + 1 < len(args):
            opts += args[i : i + 2]
            i += 2
            continue
        if a.startswith(("/", ".")):
            return None, "%s is a local package" % a
        specs.append(a)
        i += 1
    if specs:
        path = os.path.join(work, "specs.in")
        with open(path, "w") as f:
            f.write("\n".join(specs) + "\n")
        srcs.append(path)
    try:
        import tomllib
    except ImportError:
        return None, "the interpreter has no tomllib to read uv's lock"
    # uv takes the format from the name too: it must be pylock.toml or pylock.NAME.toml.
    out = os.path.join(work, "pylock.toml")
    cmd = [UV, "pip", "compile", "--quiet", "--format", "pylock.toml", "-o", out]
    cmd += ["--python-platform", uv_platform(arch, minor)]
    cmd += ["--python-version", "%d.%d" % sys.version_info[:2]]
    if not sdists:
        cmd += ["--only-binary", ":all:"]
    cmd += ["-c", constraints_file(have, work)] + opts + srcs
    try:
        run(cmd, "resolving a lock for the target platform")
        with open(out, "rb") as f:
            packages = tomllib.load(f).get("packages", [])
    except (Refused, OSError, ValueError) as e:
        return None, "uv wrote no lock: %s" % e
    new = []
    for p in packages:
        name, version = p.get("name", ""), p.get("version", "")
        got = have.get(canon(name))
        if got and got[0] == version:
            continue
        if got:
            return None, "it would replace %s %s with %s" % (name, got[0], version)
        wheels = []
        for w in p.get("wheels", []):
            url, sha = w.get("url", ""), w.get("hashes", {}).get("sha256", "")
            wheels.append(url + ("#sha256=" + sha if sha else ""))
        sd = p.get("sdist") if sdists else None
        if isinstance(sd, dict) and sd.get("url"):
            sha = sd.get("hashes", {}).get("sha256", "")
            wheels.append(sd["url"] + ("#sha256=" + sha if sha else ""))
        if not wheels:
            return None, "%s %s has no wheel URL in uv's lock" % (name, version)
        new.append((name, version, wheels))
    return new, None


def toml_str(s):
    # JSON string escapes are TOML basic-string escapes.
    return json.dumps(s, ensure_ascii=False)


def write_pylock(new, platform, path):
    """A PEP 751 pylock.toml of the resolved files (the ones the target does not have yet):
    wheels, and the sdist of a package without a wheel for the target."""
    v = sys.version_info
    lines = [
        "# Resolved by layerstack for %s, CPython %d.%d.%d." % (platform, v[0], v[1], v[2]),
        'lock-version = "1.0"',
        'created-by = "layerstack"',
        'requires-python = "==%d.%d.*"' % (v[0], v[1]),
        "",
    ]
    for name, version, urls in sorted(new, key=lambda n: canon(n[0])):
        wheels, sdist = [], None
        for url in urls:
            base, _, frag = url.partition("#")
            sha = frag.split("=", 1)[1].lower()
            entry = "{ url = %s, hashes = { sha256 = %s } }" % (toml_str(base), toml_str(sha))
            if is_sdist(base):
                sdist = entry
            else:
                wheels.append(entry)
        lines += [
            "[[packages]]",
            "name = %s" % toml_str(canon(name)),
            "version = %s" % toml_str(version),
        ]
        if wheels:
            lines.append("wheels = [%s]" % ", ".join(wheels))
        if sdist:
            lines.append("sdist = %s" % sdist)
        lines.append("")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def pip_install(args, arch, minor, have, work, target):
    new = pip_plan(args, arch, minor, have, work)
    if not new:
        return []
    cmd = pip_cmd(arch) + ["install", "--no-deps", "--target", target]
    cmd += ["--no-warn-script-location"] + pip_flags(arch, minor) + index_args(args)
    cmd += [url for _, _, url in new]
    run(cmd, "installing wheels for the target platform")
    return [canon(n) for n, _, _ in new]


def uv_install(args, arch, minor, have, work, target, dry):
    # uv treats the distributions in the --target directory as installed: seed it with the
    # target's metadata so they are kept, not installed again.
    os.makedirs(target, exist_ok=True)
    seeded = {}
    for name, (version, info) in have.items():
        dest = os.path.join(target, os.path.basename(info))
        shutil.copytree(TARGET + info, dest, symlinks=True)
        seeded[dest] = version
    cmd = [UV, "pip", "install", "--target", target, "--python", sys.executable]
    cmd += ["--python-platform", uv_platform(arch, minor)]
    cmd += ["--python-version", "%d.%d" % sys.version_info[:2], "--only-binary", ":all:"]
    cmd += ["-c", constraints_file(have, work)]
    if dry:
        cmd.append("--dry-run")
    run(cmd + args, "installing wheels for the target platform")
    for dest, version in seeded.items():
        if not os.path.isdir(dest):
            raise Refused("it would replace %s" % os.path.basename(dest))
        shutil.rmtree(dest)
    return None


def records(target):
    """(dist-info dir name, [RECORD rows]) of each distribution in an install directory."""
    out = []
    for entry in sorted(os.listdir(target)):
        if entry.endswith(".dist-info"):
            path = os.path.join(target, entry, "RECORD")
            rows = []
            if os.path.exists(path):
                with open(path, newline="", encoding="utf-8") as f:
                    rows = [r for r in csv.reader(f) if r]
            out.append((entry, rows))
    return out


def make_dirs(path):
    """Create `path` under OUT with the owner and mode its counterpart has in the target, so a
    merge restates the same directory metadata."""
    parts = [p for p in path.split("/") if p]
    cur = ""
    for p in parts:
        cur += "/" + p
        out = OUT + cur
        if os.path.isdir(out):
            continue
        os.mkdir(out)
        try:
            st = os.stat(TARGET + cur)
            os.chmod(out, st.st_mode & 0o7777)
            os.chown(out, st.st_uid, st.st_gid)
        except OSError:
            os.chmod(out, 0o755)


def relocate(target, paths):
    """Move an install directory's contents to their final places under OUT; rewrite RECORDs
    and script shebangs the way a native install writes them."""
    purelib, scripts, data = paths["purelib"], paths["scripts"], paths["data"]
    moved = set()

    def place(rel, dest):
        src = os.path.join(target, rel)
        if not os.path.lexists(src):
            return
        make_dirs(os.path.dirname(dest))
        os.rename(src, OUT + dest)
        moved.add(rel)

    for info, rows in records(target):
        new_rows = []
        for row in rows:
            path = row[0]
            if path.startswith("../../"):
                rel = path[len("../../"):]
                dest = scripts + rel[3:] if rel.startswith("bin/") else os.path.join(data, rel)
            elif path.startswith("bin/"):
                rel = path
                dest = scripts + path[3:]
            else:
                rel = path
                dest = os.path.join(purelib, path)
            rel = os.path.normpath(rel)
            if rel.startswith(".."):
                raise Refused("%s writes outside its install directory: %s" % (info, path))
            if rel != os.path.join(info, "RECORD"):
                place(rel, dest)
                if dest.startswith(scripts + "/"):
                    fix_shebang(OUT + dest)
            new_rows.append([os.path.relpath(dest, purelib)] + row[1:])
        record = os.path.join(purelib, info, "RECORD")
        make_dirs(os.path.dirname(record))
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(new_rows)
        with open(OUT + record, "w", encoding="utf-8") as f:
            f.write(buf.getvalue())
        os.remove(os.path.join(target, info, "RECORD"))
    # Anything no RECORD lists (bytecode of top-level modules, empty dirs) keeps its place.
    for root, dirs, files in os.walk(target, topdown=False):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            full = os.path.join(root, name)
            rel = os.path.relpath(full, target)
            if rel.startswith("bin/"):
                place(rel, scripts + rel[3:])
            else:
                place(rel, os.path.join(purelib, rel))


def fix_shebang(path):
    try:
        with open(path, "rb") as f:
            head = f.readline()
            rest = f.read()
    except OSError:
        return
    if head.startswith(b"#!") and b"python" in head:
        with open(path, "wb") as f:
            f.write(b"#!" + sys.executable.encode() + b"\n" + rest)


def main():
    argv = sys.argv[1:]
    if len(argv) < 6 or argv[5] != "--":
        sys.exit("usage: cross_install.py MODE INSTALLER ARCH PLATFORM PYTHON -- ARGS...")
    mode, installer, arch, platform, python, args = argv[:5] + [argv[6:]]
    # The build platform's twin has the target's interpreter and layout: its paths are the
    # target's.
    paths = sysconfig.get_paths()
    work = tempfile.mkdtemp(prefix="layerstack-cross-")
    status = {"platform": platform, "installer": installer}
    try:
        # The twin must have the target's interpreter and environment where the target has
        # them (a venv made by a `run` step exists only in the target).
        if not os.path.isdir(TARGET + paths["stdlib"]):
            raise Refused("the image has no %s: its Python is not the build platform's %s" % (paths["stdlib"], sys.executable))
        if sys.prefix != sys.base_prefix and not os.path.isfile(os.path.join(TARGET + sys.prefix, "pyvenv.cfg")):
            raise Refused("the image has no venv at %s" % sys.prefix)
        same_interpreter(python)
        minor = glibc_minor()
        have = installed()
        target = os.path.join(OUT, ".layerstack-install")
        if mode == "probe":
            # The resolve: the wheels for the target, written as a pylock.toml the frontend
            # reads back and installs like a `lock` step (HTTP sources + group installs).
            if installer == "uv":
                try:
                    uv_install(args, arch, minor, have, work, os.path.join(work, "t"), True)
                    new, why = uv_lock(args, arch, minor, have, work)
                except Refused as e:
                    # No wheel for something: resolve again keeping sdists (built on the
                    # target); if uv cannot, the step is emulated for the first reason.
                    new, why = uv_lock(args, arch, minor, have, work, sdists=True)
                    if why is not None:
                        raise e
            else:
                new = [(n, v, [u]) for n, v, u in pip_plan(args, arch, minor, have, work, sdists=True)]
                why = None
            if why is None:
                why = lockable(new, args)
            if why is None:
                os.makedirs(STATUS, exist_ok=True)
                write_pylock(new, platform, os.path.join(STATUS, "pylock.toml"))
                status["lock"] = "pylock.toml"
                status["python"] = "%d.%d.%d" % sys.version_info[:3]
                status["libc"] = "glibc2.%d" % minor
                status["executable"] = sys.executable
            else:
                # Installed by this script instead (install mode), as before.
                status["no-lock"] = why
        else:
            if installer == "uv":
                uv_install(args, arch, minor, have, work, target, False)
            else:
                pip_install(args, arch, minor, have, work, target)
            if os.path.isdir(target):
                relocate(target, paths)
                shutil.rmtree(target)
        status["cross"] = True
    except Refused as e:
        status["cross"] = False
        status["reason"] = str(e)
        if mode != "probe":
            print("layerstack: cross-install for %s failed: %s" % (platform, e), file=sys.stderr)
            print(
                "layerstack: set `cross-install = false` on this image (or build with "
                "--build-arg LAYERSTACK_CROSS=false) to install under emulation",
                file=sys.stderr,
            )
            sys.exit(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if mode == "probe":
        os.makedirs(STATUS, exist_ok=True)
        with open(os.path.join(STATUS, "status.json"), "w") as f:
            json.dump(status, f, sort_keys=True)
        print(json.dumps(status, sort_keys=True))


if __name__ == "__main__":
    main()
