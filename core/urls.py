from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core import views

admin.site.site_header = "Recepção WhatsApp da clínica"
admin.site.site_title = "Recepção WhatsApp"
admin.site.index_title = "Administração"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health/", views.health, name="health"),
    path("metrics", views.metrics, name="metrics"),
    path("ping/", views.ping, name="ping"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("api_gateway.urls")),
]
