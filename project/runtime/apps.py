from django.apps import AppConfig


class RuntimeConfig(AppConfig):
    """The processes behind ``make run``: ``runkiln`` and its supervisor, the embedded broker, the demo team."""

    name = "project.runtime"
    label = "runtime"
    verbose_name = "Runtime"
