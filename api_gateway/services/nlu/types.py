"""The one NLU interface shared by the Gemini and the offline implementations."""

from dataclasses import dataclass, field
from enum import StrEnum


class Intent(StrEnum):
    SAUDACAO = "saudacao"  # greeting only
    AGENDAR = "agendar"  # wants to book
    PERGUNTA = "pergunta"  # a question about the clinic (see entities["topico"])
    INFORMAR = "informar"  # gives data (name, date, time, doctor...) without another intent
    CONFIRMAR = "confirmar"  # yes
    NEGAR = "negar"  # no
    CANCELAR = "cancelar"  # cancel an appointment
    REMARCAR = "remarcar"  # reschedule an appointment
    MEUS_AGENDAMENTOS = "meus_agendamentos"  # list my appointments
    ATENDENTE = "atendente"  # wants a human
    REINICIAR = "reiniciar"  # start over
    VOLTAR = "voltar"  # go back one step
    AGRADECIMENTO = "agradecimento"
    DESPEDIDA = "despedida"
    AGUARDAR = "aguardar"  # will decide or answer later ("vou ver com meu marido e te falo")
    DESCONHECIDO = "desconhecido"


# Entity keys (all optional). Ids are set only when the name matched a row of the clinic's tables.
#   nome: str                     patient's name ("meu nome é João Silva")
#   especialidade: str, especialidade_id: int   (a name without an id: a specialty the clinic does not have)
#   para_quem: str                a relative the consultation is for ("filha" in "pra minha filha"), or "eu" for
#                                 "pra mim" (offline NLU only)
#   tambem_para: str              a second patient in the same request ("eu" in "pro meu filho e pra mim"; offline)
#   sintoma: str                  a complaint the specialty was chosen for ("dor nas costas"; offline NLU only)
#   medico: str, medico_id: int
#   convenio: str, convenio_id: int, particular: bool (no plan / private)
#   exame: str, exame_id: int
#   data: "YYYY-MM-DD"            clinic-local date
#   a_partir_de: "YYYY-MM-DD"     the Monday of a week asked for ("semana que vem"; offline NLU only)
#   data_invalida: "DD/MM"        a date that does not exist ("30/02"; offline NLU only)
#   dia_semana: int               a weekday named beside a date that falls on another (0 = Monday; offline only)
#   exceto_dias: [int]            weekdays ruled out ("qualquer dia menos segunda"; offline NLU only)
#   qualquer_medico: bool         any of the doctors offered, whoever is free first ("tanto faz"; offline NLU only)
#   hora: "HH:MM"                 clinic-local time
#   periodo: "manha" | "tarde" | "noite"
#   depois_de, antes_de: "HH:MM"  bounds on the time of day ("depois das 17h", "entre 9 e 11"; offline NLU only)
#   opcao: int                    1-based reference to the last offered options ("o primeiro", "segunda opção")
#   referencia: bool              a pronoun reference to the single last offered item ("com ele", "essa")
#   topico: "endereco" | "horario" | "telefone" | "email" | "preco" | "convenio" | "preparo" | "politicas" | "duracao"
#           | "urgencia" (does the clinic take emergencies) | "agenda" (days and hours a doctor works)
#           | "medicos" | "especialidades" | "exames"
ENTITY_KEYS = (
    "nome",
    "especialidade",
    "especialidade_id",
    "sintoma",
    "para_quem",
    "tambem_para",
    "medico",
    "medico_id",
    "convenio",
    "convenio_id",
    "particular",
    "exame",
    "exame_id",
    "data",
    "a_partir_de",
    "data_invalida",
    "dia_semana",
    "exceto_dias",
    "qualquer_medico",
    "hora",
    "periodo",
    "depois_de",
    "antes_de",
    "opcao",
    "referencia",
    "topico",
)


@dataclass
class NLUResult:
    intent: Intent
    confidence: float
    entities: dict = field(default_factory=dict)
    # For questions: a short answer grounded only in the clinic facts given to the model (Gemini only).
    answer: str | None = None
    source: str = "offline"  # "offline" | "gemini"
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    # Why Gemini was not used or failed ("no_key", "economy", "budget_exhausted", "timeout", "blocked", ...).
    fallback_reason: str = ""
