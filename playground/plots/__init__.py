"""Plotly figure builders, one module per topic: data in, Figure out, no model calls. What it
leaves out: computing the data (the backend modules) and HTML views (`playground.html`)."""
