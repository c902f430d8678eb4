"""Converts PlantUML diagrams to SVG and PNG."""
