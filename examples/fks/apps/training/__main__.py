"""fks training (GPU service): trains a small logistic-regression model on ta-lite features.

The real service trains torch models on a GPU; this one trains with numpy on whatever device
there is (the CPU here), saves the weights with safetensors, loads them back and reports the
accuracy. Prints one JSON object and exits.
"""
import json
import os
import shutil
import tempfile

import numpy as np
import safetensors
from safetensors.numpy import load_file, save_file
from tqdm import tqdm

import fks_ta


def features():
    prices = fks_ta.sample_prices(400)
    sma, rsi = fks_ta.sma(prices, 10), fks_ta.rsi(prices, 14)
    rows, labels = [], []
    for i in range(20, len(prices) - 1):
        rows.append([(prices[i] - sma[i]) / sma[i] * 100, (rsi[i] - 50) / 50, 1.0])
        labels.append(1.0 if prices[i + 1] > prices[i] else 0.0)
    return np.asarray(rows), np.asarray(labels)


def train(x, y, epochs=300, lr=0.5):
    w = np.zeros(x.shape[1])
    for _ in tqdm(range(epochs), desc="epochs", disable=None):
        p = 1 / (1 + np.exp(-x @ w))
        w -= lr * x.T @ (p - y) / len(y)
    return w


def gpu_visible():
    return shutil.which("nvidia-smi") is not None or os.path.exists("/dev/nvidia0")


if __name__ == "__main__":
    x, y = features()
    w = train(x, y)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.safetensors")
        save_file({"weights": w}, path)
        loaded = load_file(path)["weights"]
    accuracy = float(((1 / (1 + np.exp(-x @ loaded)) > 0.5) == (y > 0.5)).mean())
    print(json.dumps({
        "service": "training",
        "device": "cuda" if gpu_visible() else "cpu",
        "nvidia_visible_devices": os.environ.get("NVIDIA_VISIBLE_DEVICES"),
        "samples": int(len(y)),
        "accuracy": round(accuracy, 3),
        "weights_roundtrip": bool(np.array_equal(w, loaded)),
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
    }))
