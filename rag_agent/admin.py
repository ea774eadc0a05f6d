"""Staff UI for the clinic's data. Saves invalidate the bot's caches through rag_agent.signals."""

from django import forms
from django.contrib import admin, messages
from django.db.models import Count

from core.phones import whatsapp_number
from rag_agent.matching import normalize
from rag_agent.models import Agendamento, ClinicaInfo, Convenio, Especialidade, Exame, HorarioTrabalho, Medico


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


class HorarioTrabalhoInline(admin.TabularInline):
    model = HorarioTrabalho
    extra = 1
    fields = ("dia_semana", "hora_inicio", "hora_fim")


@admin.register(Medico)
class MedicoAdmin(AccentInsensitiveSearchMixin, admin.ModelAdmin):
    list_display = ("nome", "crm", "lista_especialidades", "preco_consulta", "duracao_consulta_minutos", "ativo")
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
        return super().get_queryset(request).prefetch_related("especialidades")

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


class AgendamentoForm(forms.ModelForm):
    class Meta:
        model = Agendamento
        fields = ("medico", "especialidade", "convenio", "paciente_nome", "paciente_telefone", "data", "hora", "status")

    def clean_paciente_telefone(self):
        """Stored as WhatsApp writes it (5511987654321), so the patient finds the appointment in the chat and the
        reminder reaches them, whichever way the staff typed it."""
        number = whatsapp_number(self.cleaned_data["paciente_telefone"])
        if number is None:
            raise forms.ValidationError("Informe o telefone com DDD, por exemplo (11) 98765-4321.")
        return number


@admin.register(Agendamento)
class AgendamentoAdmin(AccentInsensitiveSearchMixin, admin.ModelAdmin):
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
    readonly_fields = ("criado_em", "atualizado_em", "lembrete_enviado_em")
    actions = ("confirmar_agendamentos", "cancelar_agendamentos")
    ordering = ("-data", "-hora")

    def save_model(self, request, obj, form, change):
        if change and {"data", "hora"} & set(form.changed_data):
            obj.lembrete_enviado_em = None  # moved by the staff: the new time gets its own reminder
        super().save_model(request, obj, form, change)

    @admin.display(description="convênio", ordering="convenio__nome")
    def convenio_ou_particular(self, obj):
        return obj.convenio.nome if obj.convenio else "Particular"

    @admin.action(description="Confirmar agendamentos selecionados")
    def confirmar_agendamentos(self, request, queryset):
        changed = queryset.filter(status=Agendamento.Status.AGENDADO).update(status=Agendamento.Status.CONFIRMADO)
        self.message_user(request, f"{changed} agendamento(s) confirmado(s).", messages.SUCCESS)

    @admin.action(description="Cancelar agendamentos selecionados")
    def cancelar_agendamentos(self, request, queryset):
        changed = queryset.filter(status__in=(Agendamento.Status.AGENDADO, Agendamento.Status.CONFIRMADO)).update(
            status=Agendamento.Status.CANCELADO
        )
        self.message_user(request, f"{changed} agendamento(s) cancelado(s).", messages.SUCCESS)
