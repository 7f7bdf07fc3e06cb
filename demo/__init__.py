"""The built-in demo: a deterministic candidate pool, a local HTTP server and a runner for the curation job.

``python -m demo`` renders the pool (``pool.py``, pictures from ``scenes.py`` plus real
photos), serves it on 127.0.0.1 with the web's usual bad behaviour (``server.py``) and runs
``pipelines.curate`` on the local runner over it (``run.py``).
"""
