"""Plotly figure builders, one module per topic: data in, Figure out, no model calls."""
