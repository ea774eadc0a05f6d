"""Conversations: one session per patient phone, and every message in and out (the durable record)."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from api_gateway.whatsapp import SILENT_TYPES


class ConversationState(models.TextChoices):
    IDLE = "idle", "ocioso"
    COLLECTING_PATIENT_INFO = "collecting_patient_info", "coletando dados do paciente"
    SELECTING_SPECIALTY = "selecting_specialty", "escolhendo especialidade"
    CHOOSING_PLAN = "choosing_plan", "escolhendo convênio ou particular"
    SELECTING_DOCTOR = "selecting_doctor", "escolhendo médico"
    CHOOSING_DATE = "choosing_date", "escolhendo data"
    CHOOSING_TIME = "choosing_time", "escolhendo horário"
    CONFIRMING = "confirming", "confirmando"
    ANSWERING_QUESTION = "answering_question", "respondendo pergunta"
    MANAGING_APPOINTMENT = "managing_appointment", "gerenciando agendamento"
    HUMAN_HANDOFF = "human_handoff", "atendimento humano"


class ConversationSession(models.Model):
    phone_number = models.CharField("telefone", max_length=64, unique=True)
    patient_name = models.CharField("nome do paciente", max_length=200, blank=True)
    name_confirmed = models.BooleanField("nome confirmado", default=False)
    has_greeted = models.BooleanField("já cumprimentado", default=False)
    current_state = models.CharField(
        "estado", max_length=32, choices=ConversationState.choices, default=ConversationState.IDLE
    )
    previous_state = models.CharField("estado anterior", max_length=32, choices=ConversationState.choices, blank=True)
    # What the patient is doing: "agendar", "cancelar", "remarcar" (blank when nothing is under way).
    flow = models.CharField("fluxo", max_length=16, blank=True)
    selected_specialty = models.ForeignKey(
        "rag_agent.Especialidade",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="especialidade escolhida",
    )
    selected_doctor = models.ForeignKey(
        "rag_agent.Medico",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="médico escolhido",
    )
    selected_convenio = models.ForeignKey(
        "rag_agent.Convenio",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="convênio escolhido",
    )
    insurance_type = models.CharField(
        "convênio informado", max_length=120, blank=True, help_text="Nome do convênio ou 'particular'."
    )
    preferred_date = models.DateField("data preferida", null=True, blank=True)
    preferred_time = models.TimeField("horário preferido", null=True, blank=True)
    preferred_period = models.CharField("período preferido", max_length=8, blank=True, help_text="manha, tarde, noite")
    preferred_after = models.TimeField(
        "a partir das", null=True, blank=True, help_text="Só horários a partir deste (“depois das 17h”)."
    )
    preferred_before = models.TimeField(
        "antes das", null=True, blank=True, help_text="Só horários antes deste (“antes das 10h”)."
    )
    preferred_from = models.DateField(
        "a partir de",
        null=True,
        blank=True,
        help_text="Primeiro dia desejado quando o paciente pediu uma semana (“semana que vem”).",
    )
    # "menos segunda", "terça ou quinta": weekdays (0 = Monday) left out of the times offered in this flow.
    excluded_weekdays = models.JSONField(
        "dias da semana excluídos",
        default=list,
        blank=True,
        help_text="0 = segunda ... 6 = domingo; dias que o paciente descartou (“menos segunda”, “terça ou quinta”).",
    )
    # "pra mim e pro meu filho": the patient to offer a booking for once this one is done ("eu" or a relative).
    next_patient = models.CharField("próximo paciente", max_length=16, blank=True)
    target_appointment = models.ForeignKey(
        "rag_agent.Agendamento",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="agendamento em alteração",
    )
    # The options the bot offered last ({"kind": "doctor"|"slot"|"specialty"|..., "items": [...]}),
    # so "o primeiro" / "com ele" resolve against them.
    last_options = models.JSONField("últimas opções oferecidas", default=dict, blank=True)
    # The last few messages (role + truncated text), so a prompt needs no database read for its history.
    recent_messages = models.JSONField("mensagens recentes", default=list, blank=True)
    failed_attempts = models.PositiveSmallIntegerField("tentativas sem entender", default=0)
    version = models.PositiveIntegerField("versão", default=0)
    created_at = models.DateTimeField("criada em", auto_now_add=True)
    updated_at = models.DateTimeField("atualizada em", auto_now=True)
    last_activity = models.DateTimeField("última atividade", default=timezone.now, db_index=True)

    class Meta:
        verbose_name = "sessão de conversa"
        verbose_name_plural = "sessões de conversa"
        ordering = ["-last_activity"]
        constraints = [
            models.CheckConstraint(
                condition=Q(current_state__in=ConversationState.values), name="session_current_state_valid"
            ),
            models.CheckConstraint(
                condition=Q(previous_state__in=[*ConversationState.values, ""]), name="session_previous_state_valid"
            ),
        ]

    def __str__(self) -> str:
        from core.logging import mask_phone

        return mask_phone(self.phone_number)


class ConversationMessage(models.Model):
    class MessageType(models.TextChoices):
        USER = "user", "paciente"
        BOT = "bot", "bot"
        SYSTEM = "system", "sistema"

    class Processing(models.TextChoices):
        RECEIVED = "received", "recebida"
        PROCESSING = "processing", "em processamento"
        PROCESSED = "processed", "processada"
        IGNORED = "ignored", "ignorada"
        FAILED = "failed", "falhou"

    class Delivery(models.TextChoices):
        PENDING = "pending", "pendente"
        NOT_SENT = "not_sent", "não enviada (sem credenciais)"
        SENT = "sent", "enviada"
        DELIVERED = "delivered", "entregue"
        READ = "read", "lida"
        FAILED = "failed", "falhou"

    # No index of its own: message_session_newest (session, -timestamp) serves every lookup by session.
    session = models.ForeignKey(
        ConversationSession, on_delete=models.CASCADE, related_name="messages", verbose_name="sessão", db_index=False
    )
    message_type = models.CharField("tipo", max_length=8, choices=MessageType.choices)
    # WhatsApp message type ("text", "interactive", "image", ...) or "api" for REST turns.
    channel_type = models.CharField("tipo no canal", max_length=24, blank=True)
    content = models.TextField("conteúdo", blank=True)
    intent = models.CharField("intenção", max_length=40, blank=True)
    confidence = models.FloatField("confiança", null=True, blank=True)
    entities = models.JSONField("entidades", default=dict, blank=True)
    nlu_source = models.CharField("NLU", max_length=16, blank=True, help_text="gemini, offline ou vazio")
    timestamp = models.DateTimeField("horário", default=timezone.now)
    # Unique through Meta.constraints (a field-level unique=True would add a second, LIKE-pattern index on PostgreSQL).
    whatsapp_message_id = models.CharField("id WhatsApp", max_length=128, null=True, blank=True)
    media_id = models.CharField("id da mídia", max_length=128, blank=True)
    input_tokens = models.PositiveIntegerField("tokens de entrada", default=0)
    output_tokens = models.PositiveIntegerField("tokens de saída", default=0)
    # Inbound processing (user messages).
    processing_status = models.CharField("processamento", max_length=12, choices=Processing.choices, blank=True)
    attempts = models.PositiveSmallIntegerField("tentativas", default=0)
    last_error = models.TextField("último erro", blank=True)
    processed_at = models.DateTimeField("processada em", null=True, blank=True)
    replied_at = models.DateTimeField("respondida em", null=True, blank=True)
    # Outbound delivery (bot messages).
    reply_to = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replies", verbose_name="resposta a"
    )
    delivery_status = models.CharField("entrega", max_length=12, choices=Delivery.choices, blank=True)
    error_code = models.IntegerField("código de erro", null=True, blank=True)
    created_at = models.DateTimeField("criada em", auto_now_add=True)

    class Meta:
        verbose_name = "mensagem"
        verbose_name_plural = "mensagens"
        ordering = ["timestamp", "id"]
        # Every index is paid on each webhook INSERT: keep only those a query needs (docs/storage.md).
        indexes = [
            models.Index(fields=["session", "-timestamp"], name="message_session_newest"),
            models.Index(fields=["processing_status", "created_at"], name="message_processing_age"),
            models.Index(fields=["timestamp"], name="message_timestamp"),
        ]
        constraints = [
            # The dedupe of WhatsApp deliveries (ON CONFLICT on this column); NULL for REST turns and replies not sent.
            models.UniqueConstraint(fields=["whatsapp_message_id"], name="message_whatsapp_id_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.get_message_type_display()} · {self.timestamp:%d/%m %H:%M}"

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def patient_wrote(prefix: str = "") -> Q:
    """A message the patient wrote on WhatsApp: a REST or terminal turn opens no window on their phone, and a
    reaction (a 👍 on the staff's reply) or a system notice is no message waiting for an answer. `prefix` reaches
    the messages through a relation ("messages__")."""
    return Q(
        **{f"{prefix}message_type": ConversationMessage.MessageType.USER, f"{prefix}whatsapp_message_id__isnull": False}
    ) & ~Q(**{f"{prefix}channel_type__in": SILENT_TYPES})


def followup_counts() -> Q:
    """The staff's follow-up template (api_gateway.services.staff.staff_followup_send), unless Meta refused it or
    it was never sent: only one that may reach the patient waits for their answer."""
    return Q(channel_type="staff", entities__followup=True) & ~Q(
        delivery_status__in=[ConversationMessage.Delivery.FAILED, ConversationMessage.Delivery.NOT_SENT]
    )
