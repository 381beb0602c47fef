"""The ``linli`` command and the tools that compose the three parts (demo, benchmark).

``server``, ``sync`` and ``client_sdk`` keep their one-way imports (server → sync ← client_sdk);
this package is the only place that may use the server and the SDK together, as an operator or
a field-app developer would.
"""
