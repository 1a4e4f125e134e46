"""IR + memory plan -> C files, through jinja2 templates only."""
