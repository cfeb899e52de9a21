"""``grmjudge serve``: one shared judge behind an HTTP API, for RL trainers and applications (``docs/serving.md``).

The service is a Starlette app (`grmjudge.serve.app.create_app`) run by uvicorn; it needs the ``serve`` extra
(``pip install 'grmjudge[serve]'``). Nothing here is imported by ``import grmjudge``.

Modules: ``config`` (limits and reward defaults), ``schemas`` (request bodies), ``errors`` (JSON errors and the
status of backend failures), ``auth`` (API keys, loopback binds), ``metrics`` (Prometheus text), ``rewards``
(RL rewards with groups collected across requests), ``openapi`` (the schema), ``app`` (routes and middleware),
``command`` (the ``grmjudge serve`` command).
"""
