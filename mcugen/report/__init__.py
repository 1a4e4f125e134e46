"""Cost reports: per-layer costs, separable-pair savings, flash and RAM (cost.py),
their text/JSON/Markdown/HTML forms (render.py) and optional plots (plots.py)."""
