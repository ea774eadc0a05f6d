from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Recepção WhatsApp da clínica"
admin.site.site_title = "Recepção WhatsApp"
admin.site.index_title = "Administração"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("api_gateway.urls")),
]
