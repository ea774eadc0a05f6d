from django.urls import path

from api_gateway.views import MessageCreateApi, WhatsAppWebhookView

urlpatterns = [
    path("webhook/whatsapp/", WhatsAppWebhookView.as_view(), name="whatsapp-webhook"),
    path("api/v1/messages/", MessageCreateApi.as_view(), name="api-messages"),
]
