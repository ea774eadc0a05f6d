"""Staff views of the conversations, and the "Cache e orçamento" page at /admin/cache/.

Phones and names are shown here (the clinic's own staff), never logged. Everything is read-only: conversations
change through the bot, and the two actions go through session_manager so the cache follows the database.
"""

import logging

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods

from api_gateway.models import ConversationMessage, ConversationSession, ConversationState
from api_gateway.services import cache_inspect
from api_gateway.services.conversation import release_to_bot
from api_gateway.services.session_cache import SessionConflict, session_manager
from api_gateway.tasks import notify_cancellation
from core.exceptions import ApplicationError
from core.logging import mask_phone
from rag_agent import admin as rag_agent_admin  # registers the clinic's admin first; Agendamento's is extended below
from rag_agent.models import Agendamento

logger = logging.getLogger(__name__)

ACTION_LOCK_WAIT_SECONDS = 5
_MESSAGE_FIELDS = (
    "timestamp",
    "message_type",
    "channel_type",
    "content",
    "intent",
    "confidence",
    "entities",
    "nlu_source",
    "input_tokens",
    "output_tokens",
    "processing_status",
    "delivery_status",
    "attempts",
    "last_error",
)


class ConversationMessageInline(admin.TabularInline):
    model = ConversationMessage
    fields = _MESSAGE_FIELDS
    readonly_fields = _MESSAGE_FIELDS
    ordering = ("timestamp", "id")
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def _session_update(request: HttpRequest, queryset, change, done_message: str, action: str) -> None:
    """Apply `change` to each session under its turn lock, through session_manager (database, then cache)."""
    done = 0
    for selected in queryset:
        phone = selected.phone_number
        try:
            with session_manager.lock(phone, wait_seconds=ACTION_LOCK_WAIT_SECONDS):
                session = session_manager.get_from_database(phone=phone)
                if session is not None and change(session):
                    done += 1
                    # An audit line: who changed which conversation (masked, like every log line).
                    logger.info("admin %s: session %s by staff user %s", action, mask_phone(phone), request.user.pk)
        except (ApplicationError, SessionConflict) as exc:
            logger.warning("admin action on session %s failed: %s", mask_phone(phone), type(exc).__name__)
            messages.error(request, f"Sessão {selected.pk}: tente de novo, ela está sendo atualizada agora.")
    messages.success(request, done_message.format(count=done))


@admin.register(ConversationSession)
class ConversationSessionAdmin(admin.ModelAdmin):
    list_display = (
        "phone_number",
        "patient_name",
        "current_state",
        "flow",
        "failed_attempts",
        "message_count",
        "last_activity",
    )
    list_filter = ("current_state", "last_activity")
    search_fields = ("phone_number", "patient_name")
    date_hierarchy = "last_activity"
    inlines = (ConversationMessageInline,)
    actions = ("release_to_bot", "restart_session")
    list_per_page = 50

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_messages=Count("messages"))

    @admin.display(description="mensagens", ordering="_messages")
    def message_count(self, obj) -> int:
        return obj._messages

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.concrete_fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        # Erasure goes through `forget_patient`, which also clears the cache and anonymises appointments.
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "show_save": False, "show_save_and_continue": False}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.action(description="Devolver ao bot (encerrar atendimento humano)", permissions=["change"])
    def release_to_bot(self, request, queryset):
        def change(session: ConversationSession) -> bool:
            if session.current_state != ConversationState.HUMAN_HANDOFF:
                return False
            release_to_bot(session)  # also drops the booking left half-way before the handoff
            session_manager.save(session=session)
            return True

        _session_update(request, queryset, change, "{count} sessão(ões) devolvida(s) ao bot.", "release_to_bot")

    @admin.action(description="Reiniciar sessão (volta ao início, mantém o nome)", permissions=["change"])
    def restart_session(self, request, queryset):
        def change(session: ConversationSession) -> bool:
            session_manager.reset(session=session)
            return True

        _session_update(request, queryset, change, "{count} sessão(ões) reiniciada(s).", "restart_session")


@admin.register(ConversationMessage)
class ConversationMessageAdmin(admin.ModelAdmin):
    list_display = (
        "timestamp",
        "phone",
        "message_type",
        "channel_type",
        "short_content",
        "intent",
        "confidence",
        "total_tokens",
        "processing_status",
        "delivery_status",
    )
    list_filter = ("message_type", "processing_status", "delivery_status", "nlu_source", "timestamp")
    search_fields = ("session__phone_number", "whatsapp_message_id")
    date_hierarchy = "timestamp"
    list_select_related = ("session",)
    list_per_page = 100

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.concrete_fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="telefone", ordering="session__phone_number")
    def phone(self, obj) -> str:
        return obj.session.phone_number

    @admin.display(description="conteúdo")
    def short_content(self, obj) -> str:
        return obj.content if len(obj.content) <= 80 else obj.content[:79] + "…"

    @admin.display(description="tokens")
    def total_tokens(self, obj) -> int:
        return obj.total_tokens


# --- "Cache e orçamento" -------------------------------------------------------------------------------------
@require_http_methods(["GET", "POST"])
def cache_dashboard_view(request: HttpRequest):
    if request.method == "POST":
        return _cache_dashboard_post(request)
    error = None
    try:
        stats = cache_inspect.cache_stats()
    except ApplicationError as exc:
        stats, error = None, exc.message
    context = {
        **admin.site.each_context(request),
        "title": "Cache e orçamento",
        "stats": stats,
        "error": error,
        "tokens": cache_inspect.token_usage_report(days=7),
        "families": cache_inspect.FAMILIES,
    }
    return TemplateResponse(request, "admin/cache_dashboard.html", context)


def _cache_dashboard_post(request: HttpRequest):
    action = request.POST.get("action")
    try:
        if action == "clear":
            phone = request.POST.get("phone", "").strip() or None
            family = request.POST.get("family") or None
            if not (phone or family):  # the service's message speaks of the command's options
                messages.error(request, "Escolha uma família de chaves ou informe um telefone.")
                return HttpResponseRedirect(reverse("admin:cache_dashboard"))
            result = cache_inspect.cache_clear(family=family, phone=phone)
            messages.success(request, f"{result.removed} chave(s) removida(s).")
        elif action == "warm":
            counts = cache_inspect.cache_warm()
            messages.success(
                request, f"Catálogo pré-carregado: {counts['clinic']} chave da clínica, {counts['doctors']} de médicos."
            )
        else:
            messages.error(request, "Ação desconhecida.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return HttpResponseRedirect(reverse("admin:cache_dashboard"))


_site_get_urls = admin.site.get_urls


def _get_urls():
    # admin_view: staff only (others get the login redirect), CSRF-protected POST, never cached.
    return [
        path("cache/", admin.site.admin_view(cache_dashboard_view), name="cache_dashboard"),
        *_site_get_urls(),
    ]


admin.site.get_urls = _get_urls


# --- Appointments: the clinic's admin (rag_agent), and the patient told when the staff cancel ------------------------
class AgendamentoAdmin(rag_agent_admin.AgendamentoAdmin):
    def cancelled_by_staff(self, ids: list[int]) -> None:
        """Once the cancellation is committed, the patient is told on WhatsApp (nothing is sent when
        WHATSAPP_CANCELLATION_TEMPLATE is blank, or for an appointment already past; see cancellation_notify)."""
        for pk in ids:
            transaction.on_commit(lambda pk=pk: notify_cancellation.delay(pk))


admin.site.unregister(Agendamento)
admin.site.register(Agendamento, AgendamentoAdmin)
