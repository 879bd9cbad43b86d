"""Python entry points of tools/ (`python -m tools.render`)."""
