"""Fault rules, their effects, prompt markers, drift and transport faults."""
