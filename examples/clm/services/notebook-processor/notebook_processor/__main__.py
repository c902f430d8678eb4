"""`python -m notebook_processor` serves the job queue; `--once SLIDES.py [OUT]` processes one file."""
import sys

from clm_common import Worker

from notebook_processor.process import convert

sys.exit(Worker("notebook", convert, ".ipynb").main())
