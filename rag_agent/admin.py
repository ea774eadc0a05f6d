"""Staff UI for the clinic's data. Saves invalidate the bot's caches through rag_agent.signals."""

import datetime as dt
from collections.abc import Iterable

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q
from django.forms.models import BaseInlineFormSet
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from core.exceptions import ApplicationError
from core.phones import whatsapp_number
from rag_agent import services as clinic_services
from rag_agent.closures import block_period
from rag_agent.matching import normalize
from rag_agent.models import (
    Agendamento,
    BloqueioAgenda,
    ClinicaInfo,
    Convenio,
    Especialidade,
    Exame,
    HorarioTrabalho,
    ListaEspera,
    Medico,
)
from rag_agent.selectors import OPEN_STATUSES, appointments_in_block


class AccentInsensitiveSearchMixin:
    """Adds rows whose `accent_search_fields` match the search words ignoring accents and case.

    Django's icontains is accent-sensitive on both SQLite and PostgreSQL (without unaccent), so "Jose" would miss
    "José" and "sulamerica" would miss "SulAmérica". The extra scan reads only the searched columns, which is
    cheap at a clinic's scale.
    """

    accent_search_fields: tuple[str, ...] = ()

    def get_search_results(self, request, queryset, search_term):
        base = queryset
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        words = normalize(search_term).split()
        if not words or not self.accent_search_fields:
            return queryset, may_have_duplicates
        ids = []
        for pk, *values in (
            base.prefetch_related(None).values_list("pk", *self.accent_search_fields).iterator(chunk_size=2000)
        ):
            haystack = normalize(" ".join(str(v or "") for v in values))
            compact = haystack.replace(" ", "")
            if all(word in haystack or word in compact for word in words):
                ids.append(pk)
        if ids:
            queryset = queryset | base.filter(pk__in=ids)
        return queryset, True


class AgendaOpenedHook:
    def times_freed_by_staff(self, given_up: Iterable[tuple[str, int]] = ()) -> None:
        """Hook: the staff changed the agenda so that times may have opened (an appointment cancelled, moved or
        deleted; a block lifted or edited; a doctor's hours or length changed); `given_up`: (phone, doctor id) of the
        appointments whose times they were. api_gateway/admin.py extends these admins to tell the doctors'
        waitlists at once (rag_agent knows nothing of transport)."""


@admin.register(ClinicaInfo)
class ClinicaInfoAdmin(admin.ModelAdmin):
    list_display = ("nome", "telefone", "email", "endereco")

    def has_add_permission(self, request):
        # One clinic per installation: the bot reads the first row.
        return not ClinicaInfo.objects.exists() and super().has_add_permission(request)


@admin.register(Especialidade)
class EspecialidadeAdmin(AccentInsensitiveSearchMixin, admin.ModelAdmin):
    list_display = ("nome", "ativa", "total_medicos")
    list_filter = ("ativa",)
    list_editable = ("ativa",)
    search_fields = ("nome", "descricao")
    accent_search_fields = ("nome",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_total_medicos=Count("medicos", distinct=True))

    @admin.display(description="médicos", ordering="_total_medicos")
    def total_medicos(self, obj):
        return obj._total_medicos


@admin.register(Convenio)
class ConvenioAdmin(AccentInsensitiveSearchMixin, admin.ModelAdmin):
    list_display = ("nome", "ativo", "total_medicos")
    list_filter = ("ativo",)
    list_editable = ("ativo",)
    search_fields = ("nome",)
    accent_search_fields = ("nome",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_total_medicos=Count("medicos", distinct=True))

    @admin.display(description="médicos que aceitam", ordering="_total_medicos")
    def total_medicos(self, obj):
        return obj._total_medicos


class HorarioTrabalhoFormSet(BaseInlineFormSet):
    def clean(self):
        """A doctor's shifts on one weekday may not overlap (the bot would offer slots on both, 15 minutes apart),
        and each must hold at least one consultation (or the bot lists a shift with no slot in it)."""
        super().clean()
        duration = dt.timedelta(minutes=self.instance.duracao_consulta_minutos or 0)
        shifts = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if not data or data.get("DELETE") or None in (data.get("hora_inicio"), data.get("hora_fim")):
                continue
            start = dt.datetime.combine(dt.date.min, data["hora_inicio"])
            end = dt.datetime.combine(dt.date.min, data["hora_fim"])
            day = HorarioTrabalho.DiaSemana(data["dia_semana"]).label
            if start < end < start + duration:
                raise forms.ValidationError(
                    f"O horário de {day} ({start:%H:%M}–{end:%H:%M}) é mais curto que uma consulta "
                    f"({self.instance.duracao_consulta_minutos} minutos)."
                )
            shifts.append((data["dia_semana"], start, end, day))
        for i, (weekday, start, end, day) in enumerate(shifts):
            for other_day, other_start, other_end, _ in shifts[i + 1 :]:
                if weekday == other_day and start < other_end and other_start < end:
                    raise forms.ValidationError(
                        f"Dois horários de {day} se sobrepõem ({start:%H:%M}–{end:%H:%M} e "
                        f"{other_start:%H:%M}–{other_end:%H:%M}). Junte-os em um só ou ajuste um deles."
                    )


class HorarioTrabalhoInline(admin.TabularInline):
    model = HorarioTrabalho
    formset = HorarioTrabalhoFormSet
    extra = 1
    fields = ("dia_semana", "hora_inicio", "hora_fim")


@admin.register(Medico)
class MedicoAdmin(AgendaOpenedHook, AccentInsensitiveSearchMixin, admin.ModelAdmin):
    list_display = (
        "nome",
        "crm",
        "lista_especialidades",
        "preco_consulta",
        "duracao_consulta_minutos",
        "na_lista_de_espera",
        "ativo",
    )
    list_filter = ("ativo", "especialidades", "convenios")
    list_editable = ("ativo",)
    search_fields = ("nome", "crm", "especialidades__nome")
    accent_search_fields = ("nome", "crm")
    filter_horizontal = ("especialidades", "convenios")
    inlines = (HorarioTrabalhoInline,)
    fieldsets = (
        (None, {"fields": ("nome", "crm", "ativo", "bio")}),
        ("Atendimento", {"fields": ("especialidades", "convenios", "preco_consulta", "duracao_consulta_minutos")}),
    )

    def get_queryset(self, request):
        waiting = Count("lista_espera", filter=Q(lista_espera__situacao__in=ListaEspera.OPEN))
        return super().get_queryset(request).prefetch_related("especialidades").annotate(espera=waiting)

    @admin.display(description="lista de espera", ordering="espera")
    def na_lista_de_espera(self, obj):
        """How many patients wait for a time with the doctor: a reason to open more hours."""
        if not obj.espera:
            return "—"
        url = reverse("admin:rag_agent_listaespera_changelist") + f"?medico__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, obj.espera)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "ativo" in form.changed_data and not obj.ativo:
            waiting = ListaEspera.objects.filter(medico=obj, situacao__in=ListaEspera.OPEN).count()
            if waiting:
                url = reverse("admin:rag_agent_listaespera_changelist") + f"?medico__id__exact={obj.pk}"
                self.message_user(
                    request,
                    format_html(
                        '{} paciente(s) na <a href="{}">lista de espera</a> de {} não serão avisados de horários: '
                        "ofereça outro médico a eles.",
                        waiting,
                        url,
                        obj.nome,
                    ),
                    messages.WARNING,
                )
            # The bot stops offering the doctor at once; the appointments already booked are the staff's to move.
            upcoming = Agendamento.objects.filter(
                medico=obj, status__in=OPEN_STATUSES, data__gte=timezone.localdate()
            ).count()
            if upcoming:
                url = reverse("admin:rag_agent_agendamento_changelist") + f"?medico__id__exact={obj.pk}"
                self.message_user(
                    request,
                    format_html(
                        "{} tem {} consulta(s) marcada(s) a partir de hoje, que continuam marcadas: "
                        '<a href="{}">remarque ou cancele cada uma</a> e avise os pacientes. '
                        "O bot não envia lembretes delas.",
                        obj.nome,
                        upcoming,
                        url,
                    ),
                    messages.WARNING,
                )

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        reopened = bool({"duracao_consulta_minutos", "ativo"} & set(form.changed_data)) and form.instance.ativo
        if change and (reopened or any(formset.has_changed() for formset in formsets)):
            self.times_freed_by_staff()  # new or longer hours, a shorter consultation, back at work

    @admin.display(description="especialidades")
    def lista_especialidades(self, obj):
        return ", ".join(e.nome for e in obj.especialidades.all())


@admin.register(Exame)
class ExameAdmin(AccentInsensitiveSearchMixin, admin.ModelAdmin):
    list_display = ("nome", "preco", "preparo", "ativo")
    list_filter = ("ativo",)
    list_editable = ("ativo",)
    search_fields = ("nome", "descricao", "preparo")
    accent_search_fields = ("nome",)


@admin.register(BloqueioAgenda)
class BloqueioAgendaAdmin(AgendaOpenedHook, admin.ModelAdmin):
    list_display = ("quem", "periodo", "motivo")
    list_filter = (("medico", admin.EmptyFieldListFilter), "medico")
    list_select_related = ("medico",)
    search_fields = ("medico__nome", "motivo")
    date_hierarchy = "data_inicio"
    fields = ("medico", ("data_inicio", "data_fim"), ("hora_inicio", "hora_fim"), "motivo")

    @admin.display(description="médico", ordering="medico__nome")
    def quem(self, obj):
        return obj.medico.nome if obj.medico_id else "Clínica inteira"

    @admin.display(description="período", ordering="data_inicio")
    def periodo(self, obj):
        return block_period(obj.as_dict())

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change:
            self.times_freed_by_staff()  # shortened, or moved to other days or another doctor
        # The bot stops offering those times at once; appointments already booked there stay booked until the
        # patient or the staff move or cancel them (cancelling in the list tells the patient on WhatsApp).
        caught = appointments_in_block(obj)
        if not caught:
            return
        url = reverse("admin:rag_agent_agendamento_changelist") + "?id__in=" + ",".join(str(a.pk) for a in caught)
        told = self.block_saved_tell_patients(caught)
        if told:
            text = (
                "Há {} consulta(s) marcada(s) nesse bloqueio, que continuam marcadas: {} "
                '(<a href="{}">ver as consultas</a>). O bot não envia lembretes delas.'
            )
            self.message_user(request, format_html(text, len(caught), told, url), messages.WARNING)
            return
        text = (
            "Há {} consulta(s) marcada(s) nesse bloqueio, que continuam marcadas: "
            '<a href="{}">remarque ou cancele cada uma</a> (cancelar avisa o paciente pelo WhatsApp). '
            "O bot não envia lembretes delas."
        )
        self.message_user(request, format_html(text, len(caught), url), messages.WARNING)

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        self.times_freed_by_staff()

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        self.times_freed_by_staff()

    def block_saved_tell_patients(self, caught: list[Agendamento]) -> str:
        """Hook: a saved block took these booked appointments; returns what their patients will be told (a sentence
        for the staff), or "" when nobody is told. api_gateway/admin.py extends this admin to tell them on WhatsApp
        (rag_agent knows nothing of transport)."""
        return ""


class AgendamentoForm(forms.ModelForm):
    class Meta:
        model = Agendamento
        fields = ("medico", "especialidade", "convenio", "paciente_nome", "paciente_telefone", "data", "hora", "status")

    def clean_paciente_telefone(self):
        """Stored as WhatsApp writes it (5511987654321), so the patient finds the appointment in the chat and the
        reminder reaches them, whichever way the staff typed it. A phone left as it was is kept: the bot stored
        it as WhatsApp sent it (a foreign number has no "+" there)."""
        if self.instance.pk and "paciente_telefone" not in self.changed_data:
            return self.cleaned_data["paciente_telefone"]
        number = whatsapp_number(self.cleaned_data["paciente_telefone"])
        if number is None:
            raise forms.ValidationError("Informe o telefone com DDD, por exemplo (11) 98765-4321.")
        return number

    def clean(self):
        """An open appointment entered or moved here passes the bot's own checks (doctor, specialty, plan, the
        doctor's grid, free), so the bot never offers a slot that overlaps it nor lists one it would refuse."""
        cleaned = super().clean()
        moved = {"medico", "especialidade", "convenio", "data", "hora"} & set(self.changed_data)
        reopened = self.instance.pk and self.initial.get("status") not in OPEN_STATUSES
        if cleaned.get("status") not in OPEN_STATUSES or (self.instance.pk and not moved and not reopened):
            return cleaned  # confirming, cancelling or renaming an appointment checks nothing about its slot
        if any(cleaned.get(name) is None for name in ("medico", "especialidade", "data", "hora")):
            return cleaned  # the field errors say what is missing
        try:
            clinic_services.appointment_check_for_staff(
                medico_id=cleaned["medico"].pk,
                especialidade_id=cleaned["especialidade"].pk,
                convenio_id=cleaned["convenio"].pk if cleaned.get("convenio") else None,
                data=cleaned["data"],
                hora=cleaned["hora"],
                exclude_id=self.instance.pk,
            )
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from exc
        return cleaned


@admin.register(Agendamento)
class AgendamentoAdmin(AgendaOpenedHook, AccentInsensitiveSearchMixin, admin.ModelAdmin):
    form = AgendamentoForm
    list_display = (
        "data",
        "hora",
        "paciente_nome",
        "paciente_telefone",
        "medico",
        "especialidade",
        "convenio_ou_particular",
        "status",
    )
    list_filter = ("status", "medico", "especialidade", "convenio", "data")
    date_hierarchy = "data"
    search_fields = ("paciente_nome", "paciente_telefone", "medico__nome")
    accent_search_fields = ("paciente_nome", "medico__nome")
    list_select_related = ("medico", "especialidade", "convenio")
    readonly_fields = ("duracao_minutos", "criado_em", "atualizado_em", "lembrete_enviado_em", "aviso_bloqueio_em")
    actions = ("confirmar_agendamentos", "cancelar_agendamentos")
    ordering = ("-data", "-hora")

    def save_model(self, request, obj, form, change):
        cancelled = change and "status" in form.changed_data and obj.status == Agendamento.Status.CANCELADO
        moved = change and bool({"medico", "data", "hora"} & set(form.changed_data))
        if cancelled:
            self.cancelled_by_staff([obj.pk])
        if moved:
            # Moved by the staff: the new time gets its own reminder, and its own notice should a block take it.
            obj.lembrete_enviado_em = obj.aviso_bloqueio_em = None
            obj.duracao_minutos = obj.medico.duracao_consulta_minutos
        if (cancelled or moved) and form.initial.get("status") in OPEN_STATUSES:
            doctor = form.initial.get("medico") or obj.medico_id  # the doctor whose time it was
            self.times_freed_by_staff([(form.initial.get("paciente_telefone") or obj.paciente_telefone, doctor)])
        super().save_model(request, obj, form, change)
        reopened = "status" in form.changed_data and form.initial.get("status") not in OPEN_STATUSES
        booked = not change or "medico" in form.changed_data or reopened  # new, moved to them, or reopened
        if booked and obj.status in OPEN_STATUSES:  # booked by the reception: off that doctor's waitlist
            clinic_services.waitlist_fulfilled(medico_id=obj.medico_id, paciente_telefone=obj.paciente_telefone)

    @admin.display(description="convênio", ordering="convenio__nome")
    def convenio_ou_particular(self, obj):
        return obj.convenio.nome if obj.convenio else "Particular"

    @admin.action(description="Confirmar agendamentos selecionados")
    def confirmar_agendamentos(self, request, queryset):
        changed = queryset.filter(status=Agendamento.Status.AGENDADO).update(status=Agendamento.Status.CONFIRMADO)
        self.message_user(request, f"{changed} agendamento(s) confirmado(s).", messages.SUCCESS)

    @admin.action(description="Cancelar agendamentos selecionados")
    def cancelar_agendamentos(self, request, queryset):
        open_ones = queryset.filter(status__in=(Agendamento.Status.AGENDADO, Agendamento.Status.CONFIRMADO))
        rows = list(open_ones.values_list("pk", "paciente_telefone", "medico_id"))
        ids = [pk for pk, _, _ in rows]
        changed = Agendamento.objects.filter(pk__in=ids).update(status=Agendamento.Status.CANCELADO)
        self.cancelled_by_staff(ids)
        if changed:
            self.times_freed_by_staff([(phone, doctor) for _, phone, doctor in rows])
        self.message_user(request, f"{changed} agendamento(s) cancelado(s).", messages.SUCCESS)

    def cancelled_by_staff(self, ids: list[int]) -> None:
        """Hook: the staff cancelled these appointments. api_gateway/admin.py extends this admin to tell the
        patients on WhatsApp (rag_agent knows nothing of transport)."""

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        if obj.status in OPEN_STATUSES:
            self.times_freed_by_staff([(obj.paciente_telefone, obj.medico_id)])

    def delete_queryset(self, request, queryset):
        given_up = list(queryset.filter(status__in=OPEN_STATUSES).values_list("paciente_telefone", "medico_id"))
        super().delete_queryset(request, queryset)
        if given_up:
            self.times_freed_by_staff(given_up)


@admin.register(ListaEspera)
class ListaEsperaAdmin(AccentInsensitiveSearchMixin, admin.ModelAdmin):
    """Who waits for which doctor, first in line first. Patients join through the bot (when a doctor's agenda is
    full) and are told on WhatsApp when a time opens; the staff see the line and can take someone off it."""

    list_display = ("criado_em", "medico", "paciente_nome", "paciente_telefone", "situacao", "avisado_em")
    list_filter = ("situacao", "medico")
    list_select_related = ("medico",)
    search_fields = ("paciente_nome", "paciente_telefone", "medico__nome")
    accent_search_fields = ("paciente_nome", "medico__nome")
    readonly_fields = (
        "medico",
        "especialidade",
        "paciente_nome",
        "paciente_telefone",
        "situacao",
        "criado_em",
        "avisado_em",
        "encerrado_em",
    )
    actions = ("retirar_da_lista",)

    def has_add_permission(self, request):
        return False  # the bot adds patients (with the WhatsApp number it will write to)

    @admin.action(description="Retirar da lista de espera")
    def retirar_da_lista(self, request, queryset):
        changed = queryset.filter(situacao__in=ListaEspera.OPEN).update(
            situacao=ListaEspera.Situacao.SAIU, encerrado_em=timezone.now()
        )
        self.message_user(request, f"{changed} paciente(s) retirado(s) da lista de espera.", messages.SUCCESS)
