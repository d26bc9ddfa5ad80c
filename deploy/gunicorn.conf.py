"""gunicorn settings for one gmina's instance: `gunicorn -c deploy/gunicorn.conf.py "platforma.wsgi:app"`."""
import multiprocessing
import os

bind = os.environ.get("PLATFORMA_BIND", "127.0.0.1:8000")
# Threaded workers (gthread): a request spends most of its time in Python (one CPU per process, the
# GIL) and the rest waiting for PostgreSQL, so two processes per core keep the cores busy while some
# requests wait, and 4 threads each keep keep-alive connections open with requests in progress
# (sync workers close the connection after every response). On the 2-core benchmark VM, 4 workers
# x 4 threads served the account page best (bench/README.md, "bench.account_page"); more processes
# only add memory and context switches on 2 cores.
workers = int(os.environ.get("PLATFORMA_WORKERS", multiprocessing.cpu_count() * 2))
worker_class = "gthread"
threads = int(os.environ.get("PLATFORMA_THREADS", 4))
# Each worker listens on its own socket (SO_REUSEPORT) and the kernel spreads new connections over them.
# With one shared socket, whichever worker wins the accept keeps the keep-alive connection: nginx's or a
# load generator's few long-lived connections piled up on one or two workers (one CPU each, the GIL)
# while the others idled; spread evenly, the same server answered a third more requests.
reuse_port = True
timeout = 60
graceful_timeout = 30
max_requests = 5000
max_requests_jitter = 500
accesslog = "-"
errorlog = "-"
forwarded_allow_ips = "127.0.0.1"
