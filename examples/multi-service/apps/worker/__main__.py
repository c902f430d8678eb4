"""The worker: prints what it would process and exits with --once."""
import json
import shutil
import sys

import attr
import six

from libs.common import GREETING

if __name__ == "__main__":
    print(json.dumps({"service": "worker", "greeting": GREETING, "attrs": attr.__version__, "six": six.__version__, "jq": bool(shutil.which("jq"))}))
    if "--once" not in sys.argv:
        raise SystemExit("run with --once")
