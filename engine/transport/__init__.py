"""How the engine talks to Redis, apart from what it says (the scripts and the hot path).

Each piece exists because it measured faster on the on-sale's hot path than redis-py alone;
each can be turned off, and each says when a library would replace it.

* `connection.py`: every engine client is built here from a URL. A blocking pool, so that
  at its limit a request waits for a connection instead of failing; commands packed by
  hiredis in C (a hold's EVALSHA carries 18 keys and arguments: ~2 µs against ~15 µs in
  redis-py's Python packer). Replaced when redis-py packs with hiredis itself.
* `autopipeline.py`: the scripts that requests issue in one turn of the event loop go to
  Redis together, one write and one read (ioredis's `enableAutoPipelining`). Measured in
  the API process: a hold request 103 µs of CPU instead of 150 µs. Off with
  `REDIS_AUTOPIPELINE=0`. Replaced if redis-py gains auto-pipelining.
* `multiplexed.py`: on a plain `redis://` server the auto-pipeline writes to one connection
  per process whose replies are matched to callers in order (ioredis's and hiredis's
  design): no pool checkout, coroutine or timeout context per reply, ~12 µs of CPU saved a
  command (4 µs against 16 µs for a batch of 17 EVALSHA); under wrk a hold went from
  177-181 µs to 150 µs of CPU. Used only where the auto-pipeline is on; TLS, unix sockets
  and clusters keep redis-py pipelines. Replaced by a redis-py multiplexed connection.
* `waiting_cluster.py`: redis-py's async cluster client raises "Too many connections" at its
  bound; this one waits for a free connection instead, as the blocking pool does for a
  single server. Replaced when redis-py's cluster client can wait.

The process-level machinery (batched accepts, the process supervisor) is in `runtime/`.
"""
