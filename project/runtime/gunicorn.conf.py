"""Settings Kiln's web server needs whatever the command line says.

It lives with the rest of the runtime, so gunicorn does not find it on its own:
``runkiln``, the benchmarks and docs/deploy.md pass it with
``-c project/runtime/gunicorn.conf.py``.
"""

import os

# The gallery's live status poll carries every pending card's id and state in its
# query string (static/generations/gallery/gallery.js, at most 100 cards: ~6.6 KB). gunicorn's
# default request-line limit, 4094 bytes, answers "414 URI Too Long" past ~60
# pending cards; 8190 is the largest it allows (nginx's default buffer is 8 KB).
limit_request_line = 8190


# Seconds a kept-alive connection waits for its next request (gunicorn's default is 2). A
# script polling the API every 2 s (docs/api.md's example) sent its next request just as the
# server closed the idle connection: "connection reset by peer" on a loaded host. 5 s lets a
# client polling every few seconds keep its connection; an idle one holds no thread.
keepalive = 5


def post_worker_init(worker):
    """Said once a worker has loaded Kiln and can answer: what ``runkiln`` waits for before it
    says "Kiln is running" (gunicorn's own "Booting worker" comes before Django is loaded)."""
    worker.log.info("Kiln web worker ready (pid %s)", worker.pid)

# gunicorn 25+ opens a control socket for `gunicornc` at one path per user
# ($HOME/.gunicorn/gunicorn.ctl): every instance on the host (make run, a second Kiln,
# the tests) would take it from the one before and delete it on exit. Kiln does not use it.
control_socket_disable = True

# KILN_LOG_FORMAT=json: gunicorn's own lines (its error log; the access log, when one is asked for
# with --access-logfile) in the same JSON as Kiln's (project/logformat.py). A logger class that
# gives its handlers the formatter, rather than a logconfig_dict, which would also switch the access
# log on (a line per request, a load balancer's /healthz probes included).
if os.environ.get("KILN_LOG_FORMAT") == "json":
    from gunicorn.glogging import Logger

    class JsonLogger(Logger):
        def setup(self, cfg):
            super().setup(cfg)
            from project.logformat import JsonFormatter

            for logger in (self.error_log, self.access_log):
                for handler in logger.handlers:
                    handler.setFormatter(JsonFormatter())

    logger_class = JsonLogger
