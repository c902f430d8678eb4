"""`python -m drawio_converter` serves the job queue; `--once FILE.drawio [OUT.png]` converts one file."""
import sys

from clm_common import Worker

from drawio_converter.convert import convert

sys.exit(Worker("drawio", convert, ".png").main())
