from django.apps import AppConfig


class RagAgentConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "rag_agent"
    verbose_name = "Dados da clínica"

    def ready(self):
        from rag_agent import signals  # noqa: F401 - connects cache invalidation
