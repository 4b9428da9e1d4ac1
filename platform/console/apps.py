from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The consoles' landing pages: site-level figures that read every feature (so no feature app needs to)."""

    name = "console"
    verbose_name = "Consoles"

    def ready(self) -> None:
        from console.metrics import DatabaseCollector
        from core import metrics

        metrics.collect_at_scrape(DatabaseCollector())
