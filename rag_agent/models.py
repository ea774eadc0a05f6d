"""The clinic's own data: what the bot may say and where it may book. Names follow the seed's domain."""

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from rag_agent.closures import block_period


class ClinicaInfo(models.Model):
    nome = models.CharField("nome", max_length=200)
    endereco = models.CharField("endereço", max_length=300)
    telefone = models.CharField("telefone", max_length=40, blank=True)
    email = models.EmailField("e-mail", blank=True)
    horario_funcionamento = models.TextField("horário de funcionamento", blank=True)
    politicas = models.TextField("políticas", blank=True, help_text="Cancelamento, documentos a trazer, atrasos, etc.")
    cancelamento_horas = models.PositiveSmallIntegerField(
        "cancelamento sem custo até (horas antes)",
        default=24,
        help_text="O bot avisa quem cancela ou remarca com menos antecedência que isso. 0 = sem prazo.",
    )

    class Meta:
        verbose_name = "informações da clínica"
        verbose_name_plural = "informações da clínica"

    def __str__(self) -> str:
        return self.nome


class Especialidade(models.Model):
    nome = models.CharField("nome", max_length=120, unique=True)
    descricao = models.TextField("descrição", blank=True)
    ativa = models.BooleanField("ativa", default=True)

    class Meta:
        verbose_name = "especialidade"
        verbose_name_plural = "especialidades"
        ordering = ["nome"]

    def __str__(self) -> str:
        return self.nome


class Convenio(models.Model):
    nome = models.CharField("nome", max_length=120, unique=True)
    ativo = models.BooleanField("ativo", default=True)

    class Meta:
        verbose_name = "convênio"
        verbose_name_plural = "convênios"
        ordering = ["nome"]

    def __str__(self) -> str:
        return self.nome


class Medico(models.Model):
    nome = models.CharField("nome", max_length=200)
    crm = models.CharField("CRM", max_length=30, unique=True)
    especialidades = models.ManyToManyField(Especialidade, related_name="medicos", verbose_name="especialidades")
    convenios = models.ManyToManyField(Convenio, related_name="medicos", blank=True, verbose_name="convênios aceitos")
    preco_consulta = models.DecimalField(
        "preço da consulta particular",
        max_digits=8,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0"))],
    )
    duracao_consulta_minutos = models.PositiveSmallIntegerField(
        "duração da consulta (minutos)",
        default=30,
        validators=[MinValueValidator(5), MaxValueValidator(240)],  # longer leaves a shift with no slot at all
    )
    ativo = models.BooleanField("ativo", default=True)
    bio = models.TextField("apresentação", blank=True)

    class Meta:
        verbose_name = "médico"
        verbose_name_plural = "médicos"
        ordering = ["nome"]
        constraints = [
            models.CheckConstraint(condition=Q(duracao_consulta_minutos__gte=5), name="medico_duracao_minima"),
            models.CheckConstraint(condition=Q(preco_consulta__gte=0), name="medico_preco_nao_negativo"),
        ]

    def __str__(self) -> str:
        return self.nome


class Exame(models.Model):
    nome = models.CharField("nome", max_length=160, unique=True)
    descricao = models.TextField("descrição", blank=True)
    preco = models.DecimalField("preço", max_digits=8, decimal_places=2, validators=[MinValueValidator(Decimal("0"))])
    preparo = models.TextField("preparo", blank=True, help_text="Instruções de preparo (jejum, etc.).")
    ativo = models.BooleanField("ativo", default=True)

    class Meta:
        verbose_name = "exame"
        verbose_name_plural = "exames"
        ordering = ["nome"]

    def __str__(self) -> str:
        return self.nome


class HorarioTrabalho(models.Model):
    class DiaSemana(models.IntegerChoices):
        SEGUNDA = 0, "segunda-feira"
        TERCA = 1, "terça-feira"
        QUARTA = 2, "quarta-feira"
        QUINTA = 3, "quinta-feira"
        SEXTA = 4, "sexta-feira"
        SABADO = 5, "sábado"
        DOMINGO = 6, "domingo"

    medico = models.ForeignKey(Medico, on_delete=models.CASCADE, related_name="horarios", verbose_name="médico")
    dia_semana = models.PositiveSmallIntegerField("dia da semana", choices=DiaSemana.choices)
    hora_inicio = models.TimeField("início")
    hora_fim = models.TimeField("fim")

    class Meta:
        verbose_name = "horário de trabalho"
        verbose_name_plural = "horários de trabalho"
        ordering = ["medico", "dia_semana", "hora_inicio"]
        constraints = [
            models.CheckConstraint(
                condition=Q(hora_inicio__lt=F("hora_fim")),
                name="horario_inicio_antes_do_fim",
                violation_error_message="O fim do horário deve ser depois do início (no mesmo dia).",
            ),
            models.CheckConstraint(
                condition=Q(dia_semana__gte=0, dia_semana__lte=6),
                name="horario_dia_semana_valido",
                violation_error_message="Dia da semana inválido.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.medico} · {self.get_dia_semana_display()} {self.hora_inicio:%H:%M}–{self.hora_fim:%H:%M}"


class BloqueioAgenda(models.Model):
    """Days (or hours of days) a doctor does not see patients, or the whole clinic is closed, although the weekly
    hours say otherwise: holidays, a congress, a municipal holiday, the year-end recess. No slot in it is offered
    or booked."""

    medico = models.ForeignKey(
        Medico,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="bloqueios",
        verbose_name="médico",
        help_text="Vazio = a clínica inteira fechada (recesso, reforma, feriado municipal).",
    )
    data_inicio = models.DateField("de")
    data_fim = models.DateField("até (inclusive)")
    hora_inicio = models.TimeField(
        "das", null=True, blank=True, help_text="Vazio = o dia inteiro. Com horas, bloqueia só esse trecho de cada dia."
    )
    hora_fim = models.TimeField("às", null=True, blank=True)
    motivo = models.CharField(
        "motivo (interno)", max_length=200, blank=True, help_text="Para a equipe; o bot não diz o motivo ao paciente."
    )
    criado_em = models.DateTimeField("criado em", auto_now_add=True)

    class Meta:
        verbose_name = "bloqueio de agenda"
        verbose_name_plural = "bloqueios de agenda (férias, folgas, recesso)"
        ordering = ["-data_inicio"]
        constraints = [
            models.CheckConstraint(
                condition=Q(data_inicio__lte=F("data_fim")),
                name="bloqueio_inicio_antes_do_fim",
                violation_error_message="A data final deve ser igual ou posterior à inicial.",
            ),
            models.CheckConstraint(
                condition=Q(hora_inicio__isnull=True, hora_fim__isnull=True)
                | Q(hora_inicio__isnull=False, hora_fim__isnull=False, hora_inicio__lt=F("hora_fim")),
                name="bloqueio_horas_completas",
                violation_error_message=(
                    "Preencha as duas horas (a final depois da inicial) ou deixe as duas vazias para o dia inteiro."
                ),
            ),
        ]
        indexes = [models.Index(fields=["data_fim"], name="bloqueio_data_fim")]

    def __str__(self) -> str:
        who = self.medico.nome if self.medico_id else "Clínica inteira"
        return f"{who} · {block_period(self.as_dict())}"

    def as_dict(self) -> dict:
        """The block as the selectors cache it (JSON-able, like the doctor's weekly hours)."""
        return {
            "clinica": self.medico_id is None,
            "de": self.data_inicio.isoformat(),
            "ate": self.data_fim.isoformat(),
            "das": f"{self.hora_inicio:%H:%M}" if self.hora_inicio else None,
            "as": f"{self.hora_fim:%H:%M}" if self.hora_fim else None,
        }


class Agendamento(models.Model):
    class Status(models.TextChoices):
        AGENDADO = "agendado", "agendado"
        CONFIRMADO = "confirmado", "confirmado"
        CANCELADO = "cancelado", "cancelado"
        REALIZADO = "realizado", "realizado"

    medico = models.ForeignKey(Medico, on_delete=models.PROTECT, related_name="agendamentos", verbose_name="médico")
    especialidade = models.ForeignKey(
        Especialidade, on_delete=models.PROTECT, related_name="agendamentos", verbose_name="especialidade"
    )
    convenio = models.ForeignKey(
        Convenio,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="agendamentos",
        verbose_name="convênio",
        help_text="Vazio = particular.",
    )
    paciente_nome = models.CharField("nome do paciente", max_length=200)
    paciente_telefone = models.CharField("telefone do paciente", max_length=64, db_index=True)
    data = models.DateField("data")
    hora = models.TimeField("hora")
    status = models.CharField("situação", max_length=12, choices=Status.choices, default=Status.AGENDADO)
    criado_em = models.DateTimeField("criado em", auto_now_add=True)
    atualizado_em = models.DateTimeField("atualizado em", auto_now=True)
    # The consultation's length when it was booked: a doctor's later change of length does not move where it ends.
    # Empty on rows from before it was kept (then the doctor's current length counts).
    duracao_minutos = models.PositiveSmallIntegerField("duração (minutos)", null=True, blank=True, editable=False)
    # Set when the day-before reminder was claimed for sending (api_gateway/services/reminders.py): once only.
    lembrete_enviado_em = models.DateTimeField("lembrete enviado em", null=True, blank=True, editable=False)
    # Set when the patient was told that an agenda block took this appointment's time (the doctor's holidays, the
    # clinic's recess) and asked to pick another (api_gateway/services/reminders.py): once per time booked.
    aviso_bloqueio_em = models.DateTimeField("aviso de bloqueio enviado em", null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "agendamento"
        verbose_name_plural = "agendamentos"
        ordering = ["data", "hora"]
        constraints = [
            # The last line of defence against double booking: two patients racing for one slot, one wins.
            models.UniqueConstraint(
                fields=["medico", "data", "hora"],
                condition=~Q(status="cancelado"),
                name="agendamento_unico_por_medico_e_horario",
                violation_error_message="Esse médico já tem uma consulta marcada nesse dia e horário.",
            ),
        ]
        indexes = [models.Index(fields=["medico", "data"], name="agendamento_medico_data")]

    def __str__(self) -> str:
        return f"{self.data:%d/%m/%Y} {self.hora:%H:%M} · {self.medico}"

    def save(self, *args, **kwargs):
        if self.duracao_minutos is None and self.medico_id:
            self.duracao_minutos = self.medico.duracao_consulta_minutos
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "duracao_minutos"}
        super().save(*args, **kwargs)

    @property
    def minutes(self) -> int:
        """How long the consultation lasts (its own length, or the doctor's for rows from before it was kept)."""
        return self.duracao_minutos or self.medico.duracao_consulta_minutos


class ListaEspera(models.Model):
    """A patient waiting for a free time with a doctor whose agenda was full when they asked (the bot offers the
    list then). When a time opens, the first in line are told on WhatsApp (api_gateway/services/waitlist.py); an
    entry closes when the patient books with that doctor, leaves, or after WAITLIST_DAYS."""

    class Situacao(models.TextChoices):
        AGUARDANDO = "aguardando", "aguardando"
        AVISADO = "avisado", "avisado de horário livre"
        AGENDOU = "agendou", "agendou"
        EXPIROU = "expirou", "expirou"
        SAIU = "saiu", "saiu da lista"

    OPEN = (Situacao.AGUARDANDO, Situacao.AVISADO)

    medico = models.ForeignKey(Medico, on_delete=models.CASCADE, related_name="lista_espera", verbose_name="médico")
    especialidade = models.ForeignKey(
        Especialidade, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="especialidade"
    )
    paciente_nome = models.CharField("nome do paciente", max_length=200, blank=True)
    paciente_telefone = models.CharField("telefone do paciente", max_length=64, db_index=True)
    situacao = models.CharField("situação", max_length=12, choices=Situacao.choices, default=Situacao.AGUARDANDO)
    # The place in line: kept when a patient told of a time someone else took asks again.
    criado_em = models.DateTimeField("na lista desde", db_index=True)
    # WAITLIST_DAYS from the patient's latest request (the bot says "a lista vale por N dias" each time).
    expira_em = models.DateTimeField("vale até", db_index=True)
    avisado_em = models.DateTimeField("último aviso em", null=True, blank=True, editable=False)
    avisos = models.PositiveSmallIntegerField("avisos enviados", default=0, editable=False)
    encerrado_em = models.DateTimeField("encerrado em", null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "lista de espera"
        verbose_name_plural = "lista de espera"
        ordering = ["criado_em"]
        constraints = [
            models.UniqueConstraint(
                fields=["medico", "paciente_telefone"],
                condition=Q(situacao__in=["aguardando", "avisado"]),
                name="lista_espera_uma_por_medico_e_telefone",
                violation_error_message="Esse paciente já está na lista de espera desse médico.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.medico} · desde {self.criado_em:%d/%m/%Y}"
