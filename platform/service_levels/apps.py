from django.apps import AppConfig


class ServiceLevelsConfig(AppConfig):
    name = "service_levels"
    verbose_name = "Service levels"
