"""gunicorn settings for one gmina's instance: `gunicorn -c deploy/gunicorn.conf.py "platforma.wsgi:app"`."""
import multiprocessing
import os

bind = os.environ.get("PLATFORMA_BIND", "127.0.0.1:8000")
# sync workers: requests are short and database-bound; 2 per core plus one
workers = int(os.environ.get("PLATFORMA_WORKERS", multiprocessing.cpu_count() * 2 + 1))
worker_class = "gthread"
threads = int(os.environ.get("PLATFORMA_THREADS", 4))
timeout = 60
graceful_timeout = 30
max_requests = 5000
max_requests_jitter = 500
accesslog = "-"
errorlog = "-"
forwarded_allow_ips = "127.0.0.1"
