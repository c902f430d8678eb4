"""Turns percent-format slide sources into the notebooks a course ships."""
