"""The program on top of everything: the `amphi` command and how it runs the API.

Two pieces of process machinery live here, each because it measured better than the
library's default on the on-sale's hot path; the module docstrings have the figures.

* `serving.py`: N API processes, each listening on a socket of its own (SO_REUSEPORT), as
  gunicorn's `--reuse-port` and nginx's `reuseport` do. uvicorn's `--workers` shares one
  socket, and one process took most new connections (8,500 holds/s instead of 12,000 with
  wrk). Off: `amphi serve --workers 1` behind a balancer per process, or uvicorn's own
  `--workers` for another way to fan out. Replaced when uvicorn can listen per process.
* `accept.py`: uvloop accepting up to 128 waiting connections a turn instead of one
  (libuv's behaviour since 1.45): with 1,000 new connections against a busy process, 40-200
  requests a run timed out before. Used only by `serving.py`'s uvicorn config (`loop=`);
  uvicorn's `--loop uvloop` is the way back. Replaced when libuv accepts in batches again.

Beside them in the core: the access log's buffered JSON handler (`amphi/logs.py`, nginx's
`access_log ... buffer=` idea: the logging module's per-line cost was a sixth of a hold's
time; `LOG_FORMAT=text` uses the standard handler).
"""
