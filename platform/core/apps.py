from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from core import checks, login_throttle, logs, metrics  # noqa: F401 — importing `checks` registers them

        logs.configure_structlog()
        logs.connect_signals()
        metrics.connect_signals()
        login_throttle.connect_signals()
