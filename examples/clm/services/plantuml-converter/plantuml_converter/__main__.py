"""`python -m plantuml_converter` serves the job queue; `--once FILE.puml [OUT.svg]` converts one file."""
import sys

from clm_common import Worker

from plantuml_converter.convert import convert

sys.exit(Worker("plantuml", convert, ".svg").main())
