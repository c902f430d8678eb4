"""fks ai (ML service): a trading signal from ta-lite indicators and a numpy trend fit.

Cross-checks the C library against numpy, so it exercises both bases it is built on:
the CPU base (ta-lite) and the ML base (numpy, joblib). Prints one JSON object and exits.
"""
import json

import joblib
import numpy as np

import fks_ta


def signal():
    prices = fks_ta.sample_prices(120)
    p = np.asarray(prices)
    sma = np.asarray(fks_ta.sma(prices, 20)[19:], dtype=float)
    ref = np.convolve(p, np.ones(20) / 20, mode="valid")  # the same SMA, in numpy
    slope, intercept = np.polyfit(np.arange(len(p[-30:])), p[-30:], 1)
    forecast = slope * 30 + intercept  # one step past the last 30 prices
    rsi = fks_ta.rsi(prices, 14)[-1]
    z = (p[-1] - sma[-1]) / p[-20:].std()
    action = "buy" if slope > 0 and rsi < 70 else "sell" if slope < 0 and rsi > 30 else "hold"
    return {
        "service": "ai",
        "numpy": np.__version__,
        "joblib": joblib.__version__,
        "ta_lite": fks_ta.VERSION,
        "sma_matches_numpy": bool(np.allclose(sma, ref)),
        "trend_slope": round(float(slope), 4),
        "forecast": round(float(forecast), 4),
        "rsi_14": round(rsi, 2),
        "zscore": round(float(z), 3),
        "action": action,
    }


if __name__ == "__main__":
    print(json.dumps(signal()))
