# layerstack sdist build: one sdist from a lock, built into a wheel on the target platform.
#
# Runs in the image as it is before its lock step (its compilers and headers; emulated for a
# foreign platform), with the sdist mounted from its checksummed HTTP source:
#
#   python -c SCRIPT NAME VERSION PLATFORM SDIST OUT [PIP OPTIONS...]
#
# Builds with `pip wheel --no-deps` (build isolation, build requirements from the image's
# indexes) into OUT and checks that OUT holds exactly one wheel of NAME at VERSION: the group
# install then installs it like any wheel of the lock. Exit 1 with a message that names the
# package on any failure.
import os
import re
import subprocess
import sys

name, version, platform, sdist, out = sys.argv[1:6]
options = sys.argv[6:]
what = "%s %s has no wheel for %s, so its sdist %s is built" % (
    name, version, platform, os.path.basename(sdist))


def fail(msg):
    sys.exit("layerstack: %s: %s" % (what, msg))


try:
    import pip  # noqa: F401
    from pip._vendor.packaging.utils import canonicalize_name
    from pip._vendor.packaging.version import InvalidVersion, Version
except ImportError:
    fail("%s has no pip to build it with (install pip in an earlier step, or lock a version "
         "that has a wheel for %s)" % (sys.executable, platform))
print("layerstack: %s on %s" % (what, platform), flush=True)
cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir",
       "--disable-pip-version-check", "--wheel-dir", out] + options + [sdist]
code = subprocess.call(cmd)
if code != 0:
    fail("`pip wheel` failed (exit %d); its output is above" % code)
wheels = sorted(w for w in os.listdir(out) if w.endswith(".whl"))
if len(wheels) != 1:
    fail("expected one wheel in %s, found %d: %s" % (out, len(wheels), ", ".join(wheels) or "none"))
parts = wheels[0][: -len(".whl")].split("-")
try:
    same = canonicalize_name(parts[0]) == canonicalize_name(name) and Version(
        parts[1].replace("_", "-")) == Version(version)
except (IndexError, InvalidVersion):
    same = False
if not same:
    fail("the sdist built %s, not %s %s as the lock says" % (wheels[0], name, version))
for extra in os.listdir(out):
    if extra != wheels[0]:
        path = os.path.join(out, extra)
        if os.path.isdir(path):
            import shutil
            shutil.rmtree(path)
        else:
            os.remove(path)
print("layerstack: built %s" % wheels[0], flush=True)
