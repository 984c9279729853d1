"""The control plane: its /_mock/ routes, the MockControl client, the pytest plugin."""
