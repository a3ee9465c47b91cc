"""The real app over HTTP: it serves the page and exposes each tab's endpoints to gradio_client."""

from __future__ import annotations

import urllib.request


def test_page_is_served_with_four_tabs(app_url):
    with urllib.request.urlopen(app_url, timeout=10) as response:
        html = response.read().decode()
    assert response.status == 200 and "LLM playground" in html


def test_each_tab_exposes_named_endpoints(client):
    endpoints = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert endpoints, "no named API endpoints"
    for expected in ("/tokenize", "/beam_search"):
        assert any(name.startswith(expected) for name in endpoints), (expected, sorted(endpoints))
