"""HTML builders for token views; every token string goes through html.escape."""
