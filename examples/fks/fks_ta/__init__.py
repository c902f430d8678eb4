"""Python binding (ctypes) for ta-lite, the C library compiled in the build-only ta-lite layer.

The library is found the way a TA-Lib wrapper finds libta_lib: through the dynamic linker's
cache, which the service's `ldconfig` (run after its copies) refreshed once the library had been
copied into /usr/local/lib.
"""
import ctypes
import ctypes.util
import math

_path = ctypes.util.find_library("ta_lite")  # "libta_lite.so.0", from `ldconfig -p`
if _path is None:
    raise ImportError("libta_lite not found in the linker cache (was ldconfig run after copying it into /usr/local/lib?)")
_lib = ctypes.CDLL(_path)
_lib.ta_version.restype = ctypes.c_char_p
for _name in ("ta_sma", "ta_ema", "ta_rsi"):
    fn = getattr(_lib, _name)
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.POINTER(ctypes.c_double), ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_double)]

LIBRARY = _path
VERSION = _lib.ta_version().decode()


def _call(fn, prices, period):
    n = len(prices)
    arr = (ctypes.c_double * n)(*prices)
    out = (ctypes.c_double * n)()
    if fn(arr, n, period, out) < 0:
        raise ValueError(f"bad arguments: {n} prices, period {period}")
    return [None if math.isnan(v) else v for v in out]


def sma(prices, period):
    return _call(_lib.ta_sma, prices, period)


def ema(prices, period):
    return _call(_lib.ta_ema, prices, period)


def rsi(prices, period=14):
    return _call(_lib.ta_rsi, prices, period)


def sample_prices(n=60, start=100.0):
    """A deterministic, gently trending and oscillating price series (no randomness)."""
    return [round(start + 0.15 * i + 2.5 * math.sin(i / 3.0), 4) for i in range(n)]
