"""HTML builders for token views; every token string goes through html.escape. What it leaves
out: charts (`playground.plots`) and the page around the HTML (`playground.ui`)."""
