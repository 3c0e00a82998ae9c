"""Serving a registered version over HTTP (torch-free), shadow and canary routing, the prediction log and its monitor.

``app`` (the ASGI app), ``router`` (primary / canary by hash of the request
id), ``models`` (verified loading, micro-batching), ``predlog`` (JSONL log)
and ``monitor`` (the report 'calibgate monitor' prints). Only ``app`` needs
the ``serve`` extra (starlette, uvicorn, prometheus-client).
"""
