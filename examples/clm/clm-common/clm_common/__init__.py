"""Shared by every CLM service: the job model and the worker loop."""
from clm_common.worker import Job, Result, Worker

__all__ = ["Job", "Result", "Worker"]
__version__ = "0.3.0"
