from django.apps import AppConfig


class ApiGatewayConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "api_gateway"
    verbose_name = "Conversas"

    def ready(self):
        from core.logging import install_record_factory

        install_record_factory()
