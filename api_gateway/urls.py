from django.urls import path

from api_gateway.views import MessageCreateApi, MessageCreateApiNoSlash, WhatsAppWebhookView

urlpatterns = [
    path("webhook/whatsapp/", WhatsAppWebhookView.as_view(), name="whatsapp-webhook"),
    path("api/v1/messages/", MessageCreateApi.as_view(), name="api-messages"),
    # Without the slash too: APPEND_SLASH would answer a POST with a 301 that Meta does not follow (the delivery
    # is lost once its retries run out).
    path("webhook/whatsapp", WhatsAppWebhookView.as_view()),
    path("api/v1/messages", MessageCreateApiNoSlash.as_view()),
]
