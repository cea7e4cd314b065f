"""Rendering for people: text tables, progress, SVG and HTML."""
