"""Converts draw.io diagrams to PNG and SVG."""
