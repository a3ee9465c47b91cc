"""Every API parameter of the real app has a name a `gradio_client` user can read.

Gradio names a parameter after the handler's argument; a handler taking `*values` leaves it as
`param_N`, which says nothing (the Base vs chat endpoints had `param_4` ... `param_12`).
"""

from __future__ import annotations

import re

UNNAMED = re.compile(r"param_\d+")


def test_no_endpoint_has_an_unnamed_parameter(client):
    api = client.view_api(print_info=False, return_format="dict")
    endpoints = {**api["named_endpoints"], **{str(key): value for key, value in api["unnamed_endpoints"].items()}}
    assert endpoints, "no API endpoints"
    unnamed = [f"{endpoint}: {parameter.get('parameter_name')!r} ({parameter.get('label')})"
               for endpoint, info in endpoints.items() for parameter in info["parameters"]
               if not parameter.get("parameter_name") or UNNAMED.fullmatch(parameter["parameter_name"])]
    assert not unnamed, "parameters without a name:\n" + "\n".join(unnamed)


def test_base_vs_chat_sampling_parameters_are_named(client):
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    names = [parameter["parameter_name"] for parameter in api["/side_by_side"]["parameters"]]
    assert names == ["prompt", "base_model", "chat_model", "max_tokens",
                     "temperature", "top_k", "top_p", "min_p", "order", "seed"]
