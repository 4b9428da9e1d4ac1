from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from core import checks, logs, metrics  # noqa: F401 — importing `checks` registers the production checks

        logs.configure_structlog()
        logs.connect_signals()
        metrics.connect_signals()
