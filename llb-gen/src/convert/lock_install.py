# layerstack lock installer: install wheels into a scratch output the way pip installs them
# into the interpreter that runs this script (the image's root base image, on the build
# platform). Stdlib only, no network: the wheels were downloaded and verified against the
# lock's sha256 by BuildKit (llb.HTTP sources) and are mounted read-only.
#
#   python3 lock_install.py OUT PYTHON_VERSION WHEEL...
#
# Every file is written under OUT with its final absolute path (OUT/usr/local/lib/…), ready to
# be merged onto the image: the wheel's root into purelib or platlib (Root-Is-Purelib), its
# .data directories (purelib, platlib, scripts, headers, data) to the interpreter's sysconfig
# paths, `#!python` scripts and console/gui entry points with this interpreter's shebang,
# bytecode compiled for this interpreter, INSTALLER and a RECORD of every installed file.
import base64
import compileall
import configparser
import csv
import hashlib
import importlib.util
import io
import os
import re
import sys
import sysconfig
import time
import zipfile
from email.parser import Parser

DATA_KEYS = ("purelib", "platlib", "scripts", "headers", "data")


def die(msg):
    sys.stderr.write("layerstack lock install: %s\n" % msg)
    sys.exit(1)


def record_hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def entry_script(module, attr):
    head = attr.split(".")[0]
    return (
        "#!%s\n"
        "# -*- coding: utf-8 -*-\n"
        "import re\n"
        "import sys\n"
        "from %s import %s\n"
        "if __name__ == '__main__':\n"
        "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
        "    sys.exit(%s())\n" % (sys.executable, module, head, attr)
    )


class Installer:
    def __init__(self, out, paths):
        self.out = out
        self.paths = paths

    def write(self, dest, data, mode, mtime=None):
        """Write `data` at absolute path `dest` (under OUT); return the RECORD row."""
        full = self.out + dest
        os.makedirs(os.path.dirname(full), exist_ok=True)
        if os.path.lexists(full):
            die("two wheels install %s" % dest)
        with open(full, "wb") as f:
            f.write(data)
        os.chmod(full, mode)
        if mtime is not None:
            os.utime(full, (mtime, mtime))
        return dest, record_hash(data), str(len(data))

    def install(self, wheel):
        try:
            zf = zipfile.ZipFile(wheel)
        except (OSError, zipfile.BadZipFile) as e:
            die("%s is not a wheel: %s" % (os.path.basename(wheel), e))
        names = zf.namelist()
        infos = [n for n in names if n.count("/") == 1 and n.endswith(".dist-info/WHEEL")]
        if len(infos) != 1:
            die("%s: expected one .dist-info/WHEEL, found %d" % (os.path.basename(wheel), len(infos)))
        dist_info = infos[0].split("/")[0]
        data_dir = dist_info[: -len(".dist-info")] + ".data"
        meta = Parser().parsestr(zf.read(infos[0]).decode("utf-8"))
        purelib = (meta.get("Root-Is-Purelib") or "").strip().lower() == "true"
        root = self.paths["purelib" if purelib else "platlib"]
        # The package's name as the lock spells it (PEP 503-normalized), from the file name.
        project = re.sub(r"[-_.]+", "-", os.path.basename(wheel).split("-")[0]).lower()
        rows = []
        sources = []
        for info in zf.infolist():
            name = info.filename
            if name.endswith("/"):
                continue
            parts = name.split("/")
            if name.startswith("/") or ".." in parts or "\\" in name:
                die("%s: unsafe path %r" % (os.path.basename(wheel), name))
            if name == dist_info + "/RECORD":
                continue  # written below
            # RECORD.jws / RECORD.p7s (signatures of the wheel's RECORD, which does not list
            # them): installed like pip does, with a RECORD row without hash and size.
            unlisted = name.startswith(dist_info + "/RECORD.")
            key = None
            if parts[0] == data_dir:
                if len(parts) < 3 or parts[1] not in DATA_KEYS:
                    die("%s: unknown data directory entry %r" % (os.path.basename(wheel), name))
                key = parts[1]
                rest = "/".join(parts[2:])
                if key == "headers":
                    # pip: include/<the requirement's name>; a lock's names are normalized.
                    base = os.path.join(self.paths["include"], project)
                else:
                    base = self.paths[key]
                dest = os.path.join(base, rest)
            else:
                dest = os.path.join(root, name)
            try:
                data = zf.read(info)
            except (zipfile.BadZipFile, OSError) as e:
                die("%s: %s: %s" % (os.path.basename(wheel), name, e))
            mode = 0o644
            if (info.external_attr >> 16) & 0o111:
                mode = 0o755
            if key == "scripts":
                # Like pip: the mode is the zip entry's (a script is executable only if the
                # wheel says so); only the `#!python` shebang is rewritten.
                if data.startswith(b"#!python"):
                    nl = data.find(b"\n")
                    rest = data[nl:] if nl >= 0 else b"\n"
                    data = b"#!" + sys.executable.encode() + rest
            mtime = time.mktime(info.date_time + (0, 0, -1)) if info.date_time[0] >= 1980 else None
            row = self.write(dest, data, mode, mtime)
            rows.append((row[0], "", "") if unlisted else row)
            if dest.endswith(".py") and key in (None, "purelib", "platlib"):
                sources.append(dest)
        # Console and GUI scripts.
        ep = dist_info + "/entry_points.txt"
        if ep in names:
            cp = configparser.ConfigParser(delimiters=("=",), interpolation=None)
            cp.optionxform = str
            cp.read_string(zf.read(ep).decode("utf-8"))
            for section in ("console_scripts", "gui_scripts"):
                if not cp.has_section(section):
                    continue
                for script, target in cp.items(section):
                    target = target.split("[")[0].strip()
                    module, _, attr = target.partition(":")
                    if not module or not attr:
                        die("%s: entry point %s = %s needs module:attr" % (dist_info, script, target))
                    dest = os.path.join(self.paths["scripts"], script.strip())
                    rows.append(self.write(dest, entry_script(module.strip(), attr.strip()).encode(), 0o755))
        # INSTALLER names this installer (pip writes `pip`, uv `uv`); REQUESTED (empty) like
        # `pip install --no-deps` of every pin of the lock: each package was asked for.
        rows.append(self.write(os.path.join(root, dist_info, "INSTALLER"), b"layerstack\n", 0o644))
        rows.append(self.write(os.path.join(root, dist_info, "REQUESTED"), b"", 0o644))
        # Bytecode for this interpreter, with the final paths in it.
        for src in sources:
            full = self.out + src
            if not compileall.compile_file(full, ddir=os.path.dirname(src), quiet=2):
                continue  # like pip: a file that does not compile is installed without bytecode
            pyc = importlib.util.cache_from_source(src)
            if os.path.exists(self.out + pyc):
                # Like pip: bytecode is listed without hash and size (it is regenerated).
                rows.append((pyc, "", ""))
        record = os.path.join(root, dist_info, "RECORD")
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        for dest, h, size in rows:
            w.writerow((os.path.relpath(dest, root), h, size))
        w.writerow((os.path.relpath(record, root), "", ""))
        self.write(record, buf.getvalue().encode("utf-8"), 0o644)
        print("installed %s (%d files)" % (dist_info[: -len(".dist-info")], len(rows) + 1))


def main():
    if len(sys.argv) < 3:
        die("usage: lock_install.py OUT PYTHON_VERSION WHEEL|DIR...")
    out, want = sys.argv[1], sys.argv[2]
    have = "%d.%d" % sys.version_info[:2]
    if have != want:
        die(
            "the lock was selected for Python %s but the base image's %s is Python %s "
            "(set `python-version` in the stack's `lock`)" % (want, sys.executable, have)
        )
    paths = sysconfig.get_paths()
    inst = Installer(out.rstrip("/"), paths)
    for wheel in sys.argv[3:]:
        if os.path.isdir(wheel):
            # An sdist built into a wheel on the target platform: the one wheel in the directory.
            found = sorted(w for w in os.listdir(wheel) if w.endswith(".whl"))
            if len(found) != 1:
                die("%s: expected one built wheel, found %d" % (wheel, len(found)))
            wheel = os.path.join(wheel, found[0])
        inst.install(wheel)


if __name__ == "__main__":
    main()
