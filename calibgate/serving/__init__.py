"""Serving a registered version over HTTP (torch-free), shadow and canary routing, the prediction log and its monitor.

``app`` (the ASGI app), ``router`` (primary / canary by hash of the request
id), ``models`` (verified loading, micro-batching), ``predlog`` (JSONL log),
``protocol`` (uvicorn's h11 protocol with a receive deadline and a connection
cap) and ``monitor`` (the report 'calibgate monitor' prints). Only ``app`` and
``protocol`` need the ``serve`` extra (starlette, uvicorn, prometheus-client).
"""
