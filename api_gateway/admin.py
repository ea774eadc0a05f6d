"""Staff views of the conversations, the staff's replies to patients, and the "Cache e orçamento" page.

Phones and names are shown here (the clinic's own staff), never logged. The conversation rows are read-only: they
change through the bot, the two actions and "Responder ao paciente" (api_gateway.services.staff), all of which go
through session_manager under the patient's lock so the cache follows the database.
"""

import logging
from collections.abc import Iterable
from functools import partial

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, transaction
from django.db.models import Count
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_http_methods
from redis.exceptions import RedisError

from api_gateway.models import ConversationMessage, ConversationSession, ConversationState
from api_gateway.services import cache_inspect, staff
from api_gateway.services.conversation import release_to_bot
from api_gateway.services.reminders import block_notices_plan
from api_gateway.services.session_cache import SessionConflict, session_manager
from api_gateway.services.waitlist import waitlist_enabled
from api_gateway.tasks import notify_blocked, notify_cancellation, notify_waitlist
from core import broker
from core.exceptions import ApplicationError
from core.logging import mask_phone
from rag_agent import admin as rag_agent_admin  # registers the clinic's admin first; Agendamento's is extended below
from rag_agent.models import Agendamento, BloqueioAgenda, Medico

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


class StaffReplyForm(forms.Form):
    text = forms.CharField(
        label="Mensagem",
        max_length=staff.TEXT_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 5, "cols": 80}),
    )
    release = forms.BooleanField(
        label="Devolver ao bot depois de enviar (a próxima mensagem do paciente é respondida pelo bot)",
        required=False,
    )
    # The newest message on the page when it was shown (rendered by the template, not bound, so a page shown again
    # after a refusal carries the newest one).
    seen = forms.IntegerField(required=False, widget=forms.HiddenInput)


_STAFF_REPLY_OUTCOME = {
    ConversationMessage.Delivery.SENT: (messages.SUCCESS, "Mensagem enviada ao paciente."),
    ConversationMessage.Delivery.PENDING: (
        messages.SUCCESS,
        "Mensagem registrada; o envio está em andamento (a entrega aparece abaixo).",
    ),
    ConversationMessage.Delivery.NOT_SENT: (
        messages.WARNING,
        "Mensagem registrada, mas não enviada: o envio pelo WhatsApp não está configurado (WHATSAPP_ACCESS_TOKEN).",
    ),
    ConversationMessage.Delivery.FAILED: (
        messages.ERROR,
        "O WhatsApp recusou a mensagem (código {code}): veja o último erro abaixo.",
    ),
}


class WaitingForStaffFilter(admin.SimpleListFilter):
    title = "aguardando a equipe"
    parameter_name = "aguardando"

    def lookups(self, request, model_admin):
        return [("sim", "Paciente aguardando resposta")]

    def queryset(self, request, queryset):
        if self.value() == "sim":
            return queryset.filter(pk__in=staff.handoff_waiting_sessions().values("pk"))
        return queryset


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
        "reply_link",
    )
    list_filter = (WaitingForStaffFilter, "current_state", "last_activity")
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

    @admin.display(description="")
    def reply_link(self, obj) -> str:
        return format_html(
            '<a href="{}">Responder</a>', reverse("admin:api_gateway_conversationsession_reply", args=[obj.pk])
        )

    def get_list_display(self, request):
        if self.has_change_permission(request):
            return self.list_display
        return tuple(name for name in self.list_display if name != "reply_link")

    def get_urls(self):
        reply = path(
            "<path:object_id>/reply/",
            self.admin_site.admin_view(self.reply_view),
            name="api_gateway_conversationsession_reply",
        )
        return [reply, *super().get_urls()]

    def reply_view(self, request: HttpRequest, object_id: str):
        """The "Responder ao paciente" page: the conversation so far, whether WhatsApp's 24-hour window is open, and
        a text box. Sending takes the conversation over from the bot (see api_gateway.services.staff)."""
        session = self.get_object(request, unquote(object_id))
        if session is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, session):
            raise PermissionDenied
        followup = request.method == "POST" and "followup" in request.POST  # the template after the window
        form = StaffReplyForm(request.POST if request.method == "POST" and not followup else None)
        send = None
        if followup:
            seen = request.POST.get("seen", "")
            send = partial(
                staff.staff_followup_send,
                session_id=session.pk,
                staff_user=request.user,
                seen_message_id=int(seen) if seen.isascii() and seen.isdigit() else None,  # "²" is a digit
            )
        elif request.method == "POST" and form.is_valid():
            send = partial(
                staff.staff_reply_send,
                session_id=session.pk,
                text=form.cleaned_data["text"],
                staff_user=request.user,
                release=form.cleaned_data["release"],
                seen_message_id=form.cleaned_data["seen"],
            )
        page_errors: list[str] = []  # the template's (the reply form shows its own)
        if send is not None:
            refuse = page_errors.append if followup else partial(form.add_error, None)
            try:
                bot_id = send()
            except ApplicationError as exc:
                refuse(exc.message)
            except (SessionConflict, DatabaseError, RedisError, OSError):
                logger.exception("staff reply to session %s not stored", session.pk)
                refuse("Não foi possível gravar a mensagem agora: nada foi enviado. Tente de novo.")
            else:
                status, code = ConversationMessage.objects.values_list("delivery_status", "error_code").get(pk=bot_id)
                level, text = _STAFF_REPLY_OUTCOME.get(status, _STAFF_REPLY_OUTCOME[ConversationMessage.Delivery.SENT])
                messages.add_message(request, level, text.format(code=code))
                return HttpResponseRedirect(request.path)
        window = staff.reply_window(session_id=session.pk)
        recent = list(session.messages.order_by("-timestamp", "-pk")[:30])[::-1]
        context = {
            **self.admin_site.each_context(request),
            "title": f"Responder a {session.patient_name or session.phone_number}",
            "opts": self.opts,
            "original": session,
            "form": form,
            "window": window,
            "window_open": window.is_open(timezone.now()),
            "recent": recent,
            "newest_message_id": staff.newest_message_id(session_id=session.pk) or "",
            "in_handoff": session.current_state == ConversationState.HUMAN_HANDOFF,
            "followup_template": settings.WHATSAPP_FOLLOWUP_TEMPLATE,
            "followup_text": staff.followup_text() if settings.WHATSAPP_FOLLOWUP_TEMPLATE else "",
            "page_errors": page_errors,
        }
        return TemplateResponse(request, "admin/api_gateway/conversationsession/reply.html", context)

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
_site_index = admin.site.index


def _index(request: HttpRequest, extra_context=None):
    # The first thing a receptionist should see: patients the bot handed over who wait for a person's answer.
    waiting = None
    if request.user.has_perm("api_gateway.view_conversationsession"):
        waiting = staff.handoff_waiting_sessions().count()
    return _site_index(request, {**(extra_context or {}), "handoff_waiting": waiting})


admin.site.index = _index


# --- The clinic's agenda (rag_agent's admins): patients told on WhatsApp of what the staff change -------------------
class TellsWaitlists:
    def times_freed_by_staff(self, given_up: Iterable[tuple[str, int]] = ()) -> None:
        """Once committed, the first in line on the waitlists are told of the times that opened (when
        WHATSAPP_WAITLIST_TEMPLATE is set; see waitlist_notify), but not the patients who gave them up."""
        if waitlist_enabled():
            _after_commit(notify_waitlist, *[[phone, medico_id] for phone, medico_id in sorted(set(given_up))])


class MedicoAdmin(TellsWaitlists, rag_agent_admin.MedicoAdmin):
    pass


admin.site.unregister(Medico)
admin.site.register(Medico, MedicoAdmin)


class AgendamentoAdmin(TellsWaitlists, rag_agent_admin.AgendamentoAdmin):
    def cancelled_by_staff(self, ids: list[int]) -> None:
        """Once the cancellation is committed, the patient is told on WhatsApp (nothing is sent when
        WHATSAPP_CANCELLATION_TEMPLATE is blank, or for an appointment already past; see cancellation_notify)."""
        for pk in ids:
            _after_commit(notify_cancellation, pk)


admin.site.unregister(Agendamento)
admin.site.register(Agendamento, AgendamentoAdmin)


def _after_commit(task, *args) -> None:
    """Hands `task(*args)` to the broker once the admin's change is committed. With the broker unreachable the change
    stays saved and the staff get their page, not an error: the task runs in the request instead (one patient's
    message, or a block's notices), and should that fail too it is logged."""

    def publish() -> None:
        try:
            broker.task_publish(task, *args)
        except Exception:  # noqa: BLE001 - see the docstring
            logger.warning("could not enqueue %s; running it in the request", task.name, exc_info=True)
            try:
                task.apply(args=args, throw=True)
            except Exception:  # noqa: BLE001
                logger.exception("%s failed in the request", task.name)

    transaction.on_commit(publish)


class BloqueioAgendaAdmin(TellsWaitlists, rag_agent_admin.BloqueioAgendaAdmin):
    def block_saved_tell_patients(self, caught: list[Agendamento]) -> str:
        """Once the block is committed, the patients whose appointments it took are told on WhatsApp (when
        WHATSAPP_RESCHEDULE_TEMPLATE is set, from 08:00 to 20:00; see block_notices_send). Says who will be told, who
        was told by an earlier block, and whom to call."""
        plan = block_notices_plan(caught)
        if plan is None:
            return ""
        if plan.to_tell:
            _after_commit(notify_blocked)
        parts = []
        if plan.to_tell:
            when = " a partir das 08:00" if plan.at_eight else ""
            parts.append(
                f"{len(plan.to_tell)} paciente(s) recebem pelo WhatsApp{when} um pedido para remarcar ou cancelar"
            )
        if plan.told:
            parts.append(f"{len(plan.told)} já receberam esse pedido antes")
        if plan.unreachable:
            calls = ", ".join(f"{a.paciente_nome} ({a.paciente_telefone})" for a in plan.unreachable)
            parts.append(f"sem número de WhatsApp, ligue para {calls}")
        return "; ".join(parts)


admin.site.unregister(BloqueioAgenda)
admin.site.register(BloqueioAgenda, BloqueioAgendaAdmin)
