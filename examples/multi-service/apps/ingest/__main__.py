"""The ingest service: runs from the venv built in the builder stage."""
import json
import sys

import idna
import six

from libs.common import GREETING

print(json.dumps({"service": "ingest", "greeting": GREETING, "python": sys.executable, "prefix": sys.prefix, "idna": idna.__version__, "six": six.__version__}))
