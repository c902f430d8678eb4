"""ragex: regex code search with ripgrep, symbol extraction with tree-sitter.

The ML parts (embeddings with torch) are what the real ragex adds on top; this example keeps
the shape: ripgrep from the system layer, tree-sitter from the ml layer, torch imported only
when asked about.
"""

__version__ = "0.1.0"
