"""Unit tests (run on a developer machine with `python -m pytest tests`; never shipped in the image)."""
from src.policy import Policy, decide, trend


def test_trend():
    assert trend([1, 2, 3]) == 1.0
    assert trend([5]) == 0.0


def test_scale_up_on_rising_load():
    d = decide(Policy("x", "250m", 0.5), 2, ["200m", "300m", "400m"])
    assert d["action"] == "scale-up" and d["desired"] > 2
