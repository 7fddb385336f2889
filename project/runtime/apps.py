from django.apps import AppConfig


class RuntimeConfig(AppConfig):
    """The processes behind ``make run``: ``runkiln`` and its supervisor, the embedded broker, the demo team."""

    name = "project.runtime"
    label = "runtime"
    verbose_name = "Runtime"

    def ready(self):
        from project.logformat import connect_request_id, use_json_for_warnings

        connect_request_id()  # the proxy's X-Request-ID on every log line of its request
        use_json_for_warnings()
