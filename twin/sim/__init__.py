"""Simulation: one clock and event bus; crowd, traffic, hazards and response models (see DESIGN.md)."""
