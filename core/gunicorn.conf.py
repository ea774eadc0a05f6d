"""gunicorn settings for the web process: `gunicorn -c core/gunicorn.conf.py core.wsgi:application`.

The same server shape bench/webhook_load.py measures (gthread workers with keep-alive). Sync workers close the
connection after every request, so Meta and the TLS proxy would pay a new connection per webhook POST.
Measured on the 2-core machine (see bench/README.md): 2 x 4, 4 x 2 and 4 x 1 threads gave the same webhook
throughput within the noise of a shared machine; the request's CPU time, not the server shape, is the limit.
Every value can be overridden on the command line or with the GUNICORN_* variables below.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS", str(os.cpu_count() or 1)))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Longer than the proxy's idle timeout, so the proxy (not gunicorn) decides when a kept-alive connection ends.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "75"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
