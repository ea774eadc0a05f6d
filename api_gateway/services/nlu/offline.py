"""The offline Portuguese NLU: keyword rules, the clinic's names (rag_agent.selectors.mentions_find) and dates.

It carries the whole booking flow when Gemini is not used (no key, economy mode, budget spent, outage), and the
router calls it first on every turn, so it must be fast (a few milliseconds) and honest about its confidence:

    0.95  a short message fully explained by one pattern: "sim", "não", "oi", "obrigado", "o primeiro", a bare
          time when a time was asked, a bare name when the name was asked, "falar com atendente".
    0.85  a clear keyword intent that also carries entities ("quero marcar cardiologia amanhã"), or a question
          with a recognised topic and a question mark.
    0.80  a clear keyword intent without entities, or data alone (INFORMAR) that matched the clinic's tables.
    0.80  also a weak yes ("ok", "pode ser") outside a confirmation: it usually accepts what was just proposed.
    0.60  a recognised topic without a question signal; any message longer than 40 words.
    0.50  a question without a recognised topic; conflicting signals.
    0.20  nothing recognised (DESCONHECIDO).

The router skips Gemini at >= 0.95, and in economy mode at >= 0.6.
"""

from __future__ import annotations

import logging
import re
import time as _time
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TYPE_CHECKING

from django.utils import timezone
from rapidfuzz import fuzz, process

from api_gateway.services.nlu.dates import CLINIC_TZ, MAX_TEXT_LENGTH, dates_extract, fold
from api_gateway.services.nlu.types import Intent, NLUResult
from rag_agent.matching import TITLES

if TYPE_CHECKING:
    from api_gateway.models import ConversationSession

logger = logging.getLogger(__name__)

SOURCE = "offline"
CERTAIN, CLEAR_WITH_ENTITIES, CLEAR, WEAK_CLEAR, WEAK, UNKNOWN = 0.95, 0.85, 0.8, 0.6, 0.5, 0.2
# A message longer than this many words is never "certain": Gemini (when allowed) reads it better.
SHORT_MESSAGE_WORDS = 6
LONG_MESSAGE_WORDS = 40

_SELECTING_STATES = {"selecting_specialty", "selecting_doctor", "choosing_date", "managing_appointment"}
_OPTION_KINDS_EXCLUDED = {"name", "ask_name"}
# A greeting that may open a message before what it says ("oi, minha filha...", "Boa tarde! Rita Jones")
_GREETINGS = r"oi|ol[aá]|bom dia|boa tarde|boa noite"

# --- text normalisation -------------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")
# Chat shorthand, expanded on whole words before anything else reads the text.
_ABBREVIATIONS = {
    "hj": "hoje",
    "amnh": "amanhã",
    "amanha": "amanhã",
    "vc": "você",
    "vcs": "vocês",
    "voce": "você",
    "obg": "obrigado",
    "qro": "quero",
    "c": "com",  # "marcar c ele"
    # weekday and "amanhã" typos seen in patients' messages
    "sesta": "sexta",
    "secta": "sexta",
    "sexat": "sexta",
    "qinta": "quinta",
    "qunta": "quinta",
    "quinat": "quinta",
    "tersa": "terça",
    "tersa-feira": "terça-feira",
    "sabdo": "sábado",
    "sabad": "sábado",
    "segnda": "segunda",
    "sgunda": "segunda",
    "quata": "quarta",
    "qurta": "quarta",
    "amanah": "amanhã",
    "amanhan": "amanhã",
    "amnha": "amanhã",
    "obgd": "obrigado",
    "obgda": "obrigada",
    "brigado": "obrigado",
    "brigada": "obrigada",
    "vlw": "valeu",
    "blz": "beleza",
    "msm": "mesmo",
    "tb": "também",
    "tbm": "também",
    "pfv": "por favor",
    "pf": "por favor",
    "dps": "depois",
    "qto": "quanto",
    "qnto": "quanto",
    "qdo": "quando",
    "qnd": "quando",
    "q": "que",
    "pq": "porque",
    "td": "tudo",
    "tds": "todos",
    "mt": "muito",
    "mto": "muito",
    "tmb": "também",
    "sab": "sábado",
    "flw": "falou",
    "okay": "ok",
    "okk": "ok",
    "oks": "ok",
    "hrs": "h",
    "hr": "h",
}
_WORD = re.compile(r"[^\W_]+", re.UNICODE)

# Keywords whose typos are worth correcting ("agnedar", "cancelr"): compared with rapidfuzz on words of 6+ letters.
_FUZZY_VOCABULARY = (
    "agendar",
    "agendamento",
    "agendamentos",
    "marcar",
    "marcacao",
    "consulta",
    "consultas",
    "cancelar",
    "cancelamento",
    "desmarcar",
    "remarcar",
    "reagendar",
    "atendente",
    "atendimento",
    "recepcao",
    "obrigado",
    "obrigada",
    "endereco",
    "horario",
    "horarios",
    "funcionamento",
    "especialidade",
    "especialidades",
    "convenio",
    "convenios",
    "particular",
    "reiniciar",
    "recomecar",
    "telefone",
    "preparo",
    "quinta",
    "amanha",
    "gostaria",
    "perfeito",
    "fechado",
    "confirmo",
    "confirmar",
    "disponivel",
)
_FUZZY_MIN_LENGTH = 6
_FUZZY_CUTOFF = 84


@dataclass
class _Text:
    original: str  # capped, control characters removed, shorthand expanded (what dates and names read)
    folded: str  # same length as original: lower case, no accents
    norm: str  # folded, punctuation as spaces, typos of keywords corrected (what intent rules read)
    words: list[str]
    has_question_mark: bool
    has_alnum: bool


# "cheguei", "oi, já tô chegando": the whole message says the patient is arriving (what to do: the desk, the
# documents). "cheguei e não tem ninguém na recepção" is more than that. Read by the conversation too.
ARRIVING = re.compile(
    r"^\W*(?:(?:oi|ola|bom dia|boa tarde|boa noite)\W+)?(?:ja\s+)?"
    r"(?:cheguei|(?:estou|to|tou)\s+(?:chegando|aqui na (?:clinica|porta|frente))|acabei de chegar)"
    r"(?:\W+(?:aqui|agora|ja|na clinica|ai|viu|ta|ok))*\W*$"
)
# The patient says they are not booking: the words are read as no booking request ("não quero marcar, só quero
# saber o horário dele" is a question); the conversation also drops a booking under way.
NOT_BOOKING = re.compile(
    r"(?<![a-z])(?:nao|n) (?:quero|queria|vou|preciso|to querendo|estou querendo) (?:marcar|agendar)"
    r"(?: (?:nada|agora|ainda|consulta|nao))?(?![a-z])|(?<![a-z])nao (?:e|eh) (?:pra|para) (?:marcar|agendar)(?![a-z])"
)
_GREETING_QUESTION = re.compile(
    r"(?<![a-z])(?:tudo bem|td bem|tudo bom|td bom|tudo certo|tudo joia|como vai(?: voce)?|como voce esta|blz|beleza)"
    r"\s*\?+"
)


_KEYCAP = re.compile(r"(\d)\ufe0f?\u20e3|🔟")


def _prepare(text: str) -> _Text:
    text = _CONTROL.sub(" ", (text or "")[:MAX_TEXT_LENGTH])
    text = re.sub(r"\s+", " ", text).strip()

    def expand(match: re.Match) -> str:
        word = match.group(0)
        replacement = _ABBREVIATIONS.get(word.lower())
        return replacement if replacement is not None else word

    text = _WORD.sub(expand, text)
    text = _KEYCAP.sub(lambda m: "10" if m.group(0) == "🔟" else m.group(1), text)  # "2️⃣" is a typed "2"
    folded = fold(text)
    plain = re.sub(r"[^a-z0-9/:?]+", " ", folded)
    plain = re.sub(r"\s+", " ", plain).strip()
    words = plain.replace("?", " ").split()
    corrected = [_correct(w) for w in words]
    norm = NOT_BOOKING.sub(" ", " ".join(corrected))  # "não quero marcar, só saber o horário": no booking word
    return _Text(
        original=text,
        folded=folded,
        norm=f" {norm} ",
        words=corrected,
        has_question_mark="?" in _GREETING_QUESTION.sub(" ", folded),  # "oi, tudo bem? quero marcar" asks nothing
        has_alnum=any(c.isalnum() for c in text),
    )


# Real words one or two letters away from a keyword: "começar o pré-natal" is not "recomeçar" (a restart).
_NOT_TYPOS = frozenset({"comecar", "comeca", "comecou", "comecei", "comecam"})
_KNOWN_WORDS = frozenset(_FUZZY_VOCABULARY) | _NOT_TYPOS


def _correct(word: str) -> str:
    if len(word) < _FUZZY_MIN_LENGTH or word in _KNOWN_WORDS or not word.isalpha():
        return word
    found = process.extractOne(word, _FUZZY_VOCABULARY, scorer=fuzz.ratio, score_cutoff=_FUZZY_CUTOFF)
    return found[0] if found else word


def _has(norm: str, pattern: re.Pattern) -> bool:
    return pattern.search(norm) is not None


def _re(words: str) -> re.Pattern:
    """A pattern matched against the normalised text, on whole words.

    Top-level alternatives are tried longest first, so "pode ser" wins over "pode" and `_only` sees no leftovers.
    """
    depth, start, parts = 0, 0, []
    for i, char in enumerate(words):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(words[start:i])
            start = i + 1
    parts.append(words[start:])
    ordered = "|".join(sorted(parts, key=len, reverse=True))
    return re.compile(rf"(?<![a-z0-9])(?:{ordered})(?![a-z0-9])")


# --- intent keywords (on normalised text: lower case, no accents) ---------------------------------------------------

_GREETING = _re(
    r"oi+e?|ola|alo|opa|hey|hello|hi|salve|bom dia|boa tarde|boa noite|boa madrugada|e ai|eai|tudo bem|tudo bom"
    r"|tudo certo|como vai|como voce esta|como vai voce|bem vindo"
    # asking what the bot can do gets the greeting, which says it, with the menu
    r"|^ ?(?:ajuda|help|opcoes|o que voce faz|o que voce pode fazer|como funciona)[ ?!.]*$"
)
_THANKS = _re(r"obrigad[oa]s?|muito obrigad[oa]|valeu|agradeco|agradecid[oa]|grat[oa]|thanks|thank you|gratidao")
_BYE = _re(
    r"tchau|tchauzinho|ate logo|ate mais|ate breve|ate a proxima|ate amanha|adeus|falou|bom fim de semana"
    r"|bom final de semana|xau|(?:ja |bom |entao )?fui ?$"  # "fui" alone, never "fui picado por uma cobra"
)
_YES_STRONG = _re(
    r"sim|s|confirmo|confirmado|confirmar|confirma|pode confirmar|pode marcar|pode agendar|com certeza|claro"
    r"|isso mesmo|exatamente|exato|correto|positivo|afirmativo|certamente|quero sim|sim senhor|sim senhora|yes"
    r"|ss|sim+|essa mesmo|esse mesmo|essa mesma|esse ai|essa ai|pode ser esse|pode ser essa"
    r"|sou eu mesmo|sou eu mesma|sou eu|eu mesmo|eu mesma"  # "Posso registrar no nome de X?" "sou eu mesmo"
)
# A "não" that means yes: "não precisa mudar nada, pode confirmar", "não não, tá certo, pode marcar".
_NO_BUT_YES = _re(
    r"pode confirmar|pode marcar|pode agendar|ta certo|esta certo|ta tudo certo|esta tudo certo|tudo certo"
    r"|nao precisa (?:mudar|alterar|trocar) nada|ta otimo|esta otimo|ta perfeito|pode seguir"
)
# "vou ver com meu marido e te falo", "deixa eu ver minha agenda": an answer later, never a yes ("ok vou ver...")
_LATER = _re(
    r"vou ver|deixa eu ver|deixe eu ver|vou pensar|deixa eu pensar|vou confirmar com|vou falar com|vou conversar com"
    r"|vou checar|vou verificar|preciso ver|preciso confirmar com|preciso falar com|ver com (?:o |a )?(?:meu|minha)"
    r"|te (?:falo|aviso|retorno|confirmo|respondo|chamo)|(?:falo|aviso|retorno|confirmo|respondo|chamo) depois"
    r"|depois (?:eu )?(?:vejo|confirmo|falo|aviso|respondo|chamo|volto|retorno)|mais tarde eu"
    r"|antes de (?:eu )?confirmar|ainda nao sei|(?:vou |vamos )?confirmar depois|confirmo depois"
    r"|depois (?:a gente|eu) (?:ve|confirma)"
    r"|nao sei ainda|fico de ver|vou consultar"
)
# Answers to "particular ou convênio?" that mean private; "nenhum desses" means a plan not listed instead
_NO_PLAN_ANSWER = _re(
    r"^ ?(?:nao|n|nenhum|nenhuma|nao tenho|nao possuo|nao uso)(?: |$)|pix|cartao|dinheiro|a vista|debito|credito"
    r"|pago na hora|vou pagar|do bolso"
)
_PLAN_NOT_LISTED = _re(r"desses|dessas|deles|delas|lista|o meu|outro")
# "ok, mas antes queria saber o preço": the first word agrees, the rest does not
_YES_BUT = _re(
    r"mas|porem|so que|antes|primeiro|pera|espera|outro|outra|outros|outras|mais cedo|mais tarde|tem|quanto|qual"
)
_YES_WEAK = _re(
    r"ok|isso|pode|pode ser|certo|beleza|perfeito|fechado|combinado|show|otimo|joia|tranquilo|pode sim|bora|vamos"
    r"|esta bem|ta bem|ta bom|esta otimo|ta otimo|ta certo|esta certo|serve|fechou|top|legal|uhum|aham|isso ai"
)
_NO = _re(
    r"nao|n|nn|nop|nops|naum|negativo|nope|nem|de jeito nenhum|nenhum|nenhuma|prefiro outro|prefiro outra|outro|outra"
    r"|outro horario|outra data|outro dia|outro medico|errado|errada|esta errado|nao e isso|nao obrigad[oa]"
    r"|melhor nao"
)
_DONT_KNOW = _re(r"nao sei|sei la|nao entendi|como assim")
_ATTENDANT = _re(
    r"(?:falar|conversar|atendimento|ligar)\s+(?:com\s+)?(?:um|uma|o|a|alguma|algum)?\s*"
    r"(?:atendente|humano|humana|pessoa|recepcao|recepcionista|alguem|funcionari[oa]|secretaria"
    r"|gente de verdade|pessoa real)"
    r"|(?:quero|queria|preciso|prefiro|chama|chame|me passa|me passe|me transfere|me transfira|transfere"
    r"|transferir)\s+(?:pra\s+|para\s+)?(?:um|uma|o|a)?\s*(?:atendente|humano|humana|pessoa|recepcionista)"
    r"|atendimento humano|pessoa de verdade|pessoa real|ser humano"
    # at the clinic with a problem at the desk: "cheguei e não tem ninguém na recepção", "cheguei faz uma hora e
    # ainda não fui atendida"
    r"|^ ?(?:ja )?(?:cheguei|estou aqui|to aqui)\b.*\b(?:ninguem|fechad[oa]|nao fui atendid[oa]|ainda nao"
    r"|(?:estou|to|tou) esperando|esperando faz|demorando)"
)
# The bare word is a request only when it is (nearly) the whole message: "atendente", "humano por favor" — not
# "a atendente me disse ontem que vocês aceitam unimed".
_ATTENDANT_WORD = _re(r"atendente|humano|recepcionista|recepcao")
_RESTART = _re(
    r"recomecar|comecar de novo|comecar do zero|comecar novamente|reiniciar|reinicia|do zero|resetar|reset"
    r"|menu inicial|menu principal|comecar tudo de novo"
    r"|voltar (?:ao|pro|para o|pra o|pro o) (?:inicio|menu|comeco)|volta (?:ao|pro|pra o) (?:inicio|menu|comeco)"
    # the whole message is a command word ("menu", "sair", "parar", "stop", "início")
    r"|^ ?(?:menu|sair|parar|pare|para|stop|chega|encerrar|finalizar|inicio)[ !.]*$"
)
_BACK = re.compile(
    r"^ ?(?:quero |pode |podemos |vamos |preciso |da pra )?(?:voltar|volta|retornar)"
    r"(?: um passo| atras| pra tras| para tras| ao passo anterior| a etapa anterior)?(?: por favor)? ?$"
    r"|^ ?(?:passo|etapa|pergunta) anterior ?$"
)
_CANCEL = _re(r"cancel(?:ar|a|e|o|em|ei|amento)|desmarc(?:ar|a|o|ou|ei|em|que)|desisti|desisto|desistir")
_CANCEL_NEGATED = _re(
    r"(?:nao|nem)\s+(?:quero|precisa|vou|preciso|e pra|e para|pode|quis|queria|desejo)\s+(?:mais\s+)?"
    r"(?:cancel\w*|desmarc\w*|desist\w*)"
)
_DONT_WANT_ANYMORE = _re(
    r"(?:nao|n) quero mais|(?:nao|n) vou mais|(?:nao|n) preciso mais"
    # "n vou mais poder ir na consulta", "não dá pra eu ir na consulta", "não vou poder comparecer"
    r"|(?:(?:nao|n) (?:vou|vai|irei|vamos) (?:mais )?(?:poder|conseguir|dar (?:pra|para))"
    r"|(?:nao|n) (?:da|dara|vai dar) (?:mais )?(?:pra|para)(?: eu| mim| a gente)?|(?:nao|n) (?:posso|consigo) mais)"
    r" (?:ir|comparecer)(?! (?:de|a|as|na|no|pela|pelo|nesse|nessa|em) (?:manha|tarde|noite|periodo|sabado|domingo"
    r"|segunda|terca|quarta|quinta|sexta|semana|dia \d))"  # "não posso ir de manhã" is a wish for the booking
    r"|deixa (?:pra|para) depois|deixa quieto|depois eu marco|outra hora"
    # giving up the booking under way: "esquece", "deixa pra lá", "mudei de ideia", "nada não"
    r"|^ ?(?:ah )?(?:entao )?(?:esquece|esqueca|deixa (?:pra|para) la|mudei de ideia|desencana|nada nao|deixa"
    r"|nao quero|nao precisa|nao precisa mais)(?: (?:entao|isso|tudo))?"
    r"(?: (?:por favor|obrigad[oa]|valeu))? ?$"
)
_RESCHEDULE_STRONG = _re(r"remarc\w*|reagend\w*|adiar|adia|antecipar|transferir (?:a|minha) consulta")
_MOVE_TARGET_DAY = r"(?:sexta|segunda|terca|quarta|quinta|sabado|domingo|amanha|hoje|semana que vem|\d+)"
_RESCHEDULE_WEAK = _re(
    r"(?:mudar|muda|trocar|troca|alterar|altera)\s+(?:o|a|de|minha|meu)?\s*(?:horario|hora|data|dia|consulta|agendamento)"
    # "dá pra mudar pra sexta?", "passar minha consulta pra outra semana", "mudar a de amanhã"
    # "trocar pra outra semana", "consegue mudar pra de tarde?"
    r"|(?:mudar|muda|passar|passa|jogar|joga|trocar|troca|alterar|altera)\s+(?:(?:a|minha) consulta\s+|ela\s+)?"
    r"(?:pra|para)\s+(?:o dia|dia|a semana|semana|outr[oa] (?:dia|semana|data|horario|hora|mes|periodo|turno)"
    r"|depois|mais tarde|mais cedo|(?:de |a |(?:a |o )?(?:parte|periodo|turno) da )?(?:manha|tarde|noite)(?![a-z])"
    rf"|{_MOVE_TARGET_DAY})|(?:mudar|muda|trocar|troca|alterar|altera)\s+a\s+(?:de|do|da)\s+{_MOVE_TARGET_DAY}"
    # "joga a consulta de quarta pra sexta", "passa a de quarta pra quinta", "transfere a do dr igor pra terça"
    r"|(?:mudar|muda|passar|passa|jogar|joga|transferir|transfere|transfira|empurrar|empurra)\s+(?:a|minha)\s+"
    r"(?:consulta\s+)?(?:de|do|da|das)\s+[a-z0-9]+(?:\s+[a-z0-9]+)?\s+(?:pra|para|pro)"
    # "troca o médico pro dr carlos", "queria mudar de médico": the same appointment with another doctor
    r"|(?:mudar|muda|trocar|troca)\s+(?:de|o|a)\s+(?:medic[oa]|doutor[a]?)"
)
_MY_APPOINTMENTS = _re(
    r"minhas consultas|meus agendamentos|minha consulta|meu agendamento|minhas marcacoes|minha marcacao"
    r"|tenho (?:alguma |uma )?consulta|consultas marcadas|consulta marcada|consulta agendada|consultas agendadas"
    r"|quando e (?:a )?minha consulta|ver (?:meus|minhas)|o que eu marquei|que eu marquei|estou marcad[oa]"
    r"|consultas (?:que )?eu tenho|consultas tenho|que consultas tenho|tenho (?:alguma )?consulta marcada"
    r"|(?:que horas|quando) (?:e|eh|sera|vai ser) (?:a )?consulta|consultas? d[oa] (?:meu|minha) [a-z]+"
    r"|(?:meu|minha) (?:filh[oa]|mae|pai|espos[oa]|marido|avo|irma[o]?) tem consulta|tem consulta quando"
    r"|(?:quais|que) consultas (?:\w+ ){0,2}(?:marcadas|agendadas)"  # "quais consultas temos marcadas?"
    r"|^ ?(?:e )?a consulta (?:e|eh|vai ser|sera|ficou) com quem|com quem (?:e|eh|vai ser|sera|ficou) a consulta"
)
_BOOK_STRONG = _re(
    r"marcar|marca|agendar|agenda|agendamento|marcacao|reservar|quero (?:uma )?consulta|gostaria de (?:uma )?consulta"
    r"|preciso de (?:uma )?consulta|quero me consultar|quero ser atendid[oa]|nova consulta|outra consulta"
    r"|quero passar com|passar com|consultar com|me consultar"
)
_BOOK_WEAK = _re(
    r"consulta com|tem horario|tem vaga|tem vagas|horario disponivel|horarios disponiveis|horarios livres"
    r"|disponibilidade|tem agenda|proximo horario|primeiro horario|horario vago|consulta|consultas|vaga"
    # "quais horários tem na sexta com a dra juliana?", "que horários ela tem amanhã?": free times, not her hours
    r"|(?!.*(?:atendimento|funcionamento))(?:quais|que) (?:os )?horarios (?:\w+ ){0,4}(?:tem|ha|teria|tera|sobraram"
    r"|sobrou)(?! que)"  # not "quais os horários de atendimento que vocês tem?": the opening hours
)
_QUESTION_WORD = _re(
    r"qual|quais|quanto|quantos|quanta|onde|como|quando|que horas|por que|porque|sera que|aceita|aceitam"
    r"|atende|atendem|tem|tenho que|precisa|preciso|posso|pode|e necessario|e preciso|voces|sabe|saberia|existe"
)
_PLAN_SET_ASIDE = _re(
    r"nao (?:vou )?(?:uso|usar|quero usar) (?:o |meu |o meu )?\w+|mas (?:quero|prefiro|vou) (?:pagar )?particular"
    r"|prefiro (?:pagar )?particular|quero (?:pagar )?particular|vai ser particular|sem usar|nao pelo"
)
_PRIVATE = _re(
    r"particular|sem convenio|sem plano|nao tenho (?:convenio|plano)|nao possuo (?:convenio|plano)"
    r"|nao uso (?:convenio|plano)|vou pagar|pagar do bolso|pago do bolso|pagamento particular|nenhum convenio"
    r"|nenhum plano"
)

# Topics of questions, in priority order (the first that matches wins).
_TOPICS: tuple[tuple[str, re.Pattern], ...] = (
    (
        "duracao",
        _re(
            r"quanto tempo (?:dura|demora|leva)|dura quanto(?: tempo)?|demora quanto tempo|duracao da consulta"
            r"|tempo (?:da|de) consulta|quantos minutos"
        ),
    ),
    ("preparo", _re(r"jejum|preparo|preparacao|preparar|como me preparo|precisa de algum preparo|cuidados antes")),
    (
        "politicas",
        _re(
            r"politica|politicas|cancelamento|regras|documento|documentos|atraso|atras\w+|tolerancia"
            r"|o que (?:eu )?(?:preciso )?levar|levar o que|carteirinha|antecedencia|multa|remarcacao"
            r"|(?:preciso|precisa|tenho que|devo) levar|levar (?:alguma coisa|algo|algum documento)"
            # "se eu cancelar perco o dinheiro?": the cancellation rule asked about, not a cancellation
            r"|se (?:eu )?(?:cancelar|desmarcar|faltar|nao for|nao puder ir)|perco o dinheiro|perco o valor"
            r"|(?:cobra|cobram|paga|pago|custa) (?:\w+ )?(?:pra|para|se) (?:eu )?(?:cancelar|desmarcar|remarcar)"
            r"|levar (?:\w+ )?exames?"
        ),
    ),
    ("politicas", ARRIVING),
    (
        "preco",
        _re(
            r"quanto custa|quanto e|quanto fica|quanto sai|quanto cobra|quanto cobram|quanto ta|quanto esta|valor"
            r"|valores|preco|precos|custa|custo|tabela de precos|quanto"
        ),
    ),
    (
        "urgencia",
        _re(r"urgencia|urgencias|emergencia|emergencias|pronto socorro|pronto atendimento|plantao"),
    ),
    (
        "convenio",
        _re(
            r"aceita|aceitam|aceito|atende|atendem|cobre|pega|pelo plano|pelo convenio"
            r"|convenio|convenios|plano de saude|planos|quais planos|trabalha com|trabalham com"
        ),
    ),
    (
        "endereco",
        _re(
            r"onde fica|onde ficam|onde e|onde voces|endereco|como chegar|como chego|localizacao|localizados|localizada"
            r"|qual a rua|que rua|mapa|onde esta|cep|qual o bairro|que bairro|em que bairro"
        ),
    ),
    (
        "horario",
        _re(
            r"que horas (?:abre|abrem|fecha|fecham|funciona|voces)|horario de funcionamento|horarios? de atendimento"
            r"|horarios? (?:\w+ ){1,2}de atendimento"  # "quais horários vocês têm de atendimento?"
            r"|horarios de funcionamento|funcionamento|abre|abrem|fecha|fecham|ate que horas|a partir de que horas"
            r"|funciona (?:no|na|nos|aos|de|em|sabado|domingo|feriado|dia|hoje|amanha)|funcionam|funcionar"
            r"|(?:vao|vai) abrir"
            r"|abrir (?:no|na|nos|em|dia|hoje|amanha|sabado|domingo|feriado)|estao abertos"
            r"|esta aberta|aberto|abertos|aberta|tao abertos|ta aberto|ta aberta|^ ?o horario ?$"
            r"|horario de voces|horario da clinica|horarios da clinica|horarios de voces|^ ?qual (?:e )?o horario ?$"
            r"|atende (?:no |aos |de |em )?(?:sabado|sabados|domingo|domingos|feriado|feriados)"
            r"|(?:atende|atendem|abre|abrem|funciona|funcionam) (?:no |de |em |nos |aos )?"
            r"(?:fim|final|fins|finais) de semana"
            r"|horarios? (?:de |do |no |aos |nos )?(?:sabado|sabados|domingo|domingos|feriado|feriados)"
            r"|atendem (?:no |aos |de |em )?(?:sabado|sabados|domingo|domingos|feriado|feriados)"
        ),
    ),
    ("telefone", _re(r"telefone|fone|numero de contato|numero para contato|contato|ligar|whatsapp da clinica|celular")),
    ("email", _re(r"e mail|email|correio eletronico")),
    (
        "medicos",
        _re(
            r"quais (?:os )?medicos|que medicos|quais (?:os )?doutor\w*|quem atende|lista de medicos"
            r"|medicos disponiveis|quais profissionais|corpo clinico|quem sao os medicos|medicos|^ ?quem e (?:o|a)"
        ),
    ),
    ("especialidades", _re(r"quais (?:as )?especialidades|que especialidades|especialidades|areas")),
    (
        "exames",
        _re(
            r"quais (?:os )?exames|que exames|exames|fazem exame|fazem o exame|faz exame|faz o exame|tem exame"
            r"|exame de sangue|laboratorio|coleta"
        ),
    ),
)

# --- options and references ------------------------------------------------------------------------------------------

_ORDINALS = {
    "primeir": 1,
    "segund": 2,
    "terceir": 3,
    "quart": 4,
    "quint": 5,
    "sext": 6,
    "setim": 7,
    "oitav": 8,
    "non": 9,
    "decim": 10,
}
_CARDINALS = {
    "um": 1,
    "uma": 1,
    "dois": 2,
    "duas": 2,
    "tres": 3,
    "quatro": 4,
    "cinco": 5,
    "seis": 6,
    "sete": 7,
    "oito": 8,
    "nove": 9,
    "dez": 10,
}
_OPTION_NOUN = r"(?:opcao|opcoes|alternativa|item|numero|n|no|num|horario|data|dia|medic[oa]|doutor[a]?|especialidade)"
_ORDINAL_RE = re.compile(
    r"(?<![a-z0-9])(?:(o|a|os|as|pel[oa]|n[oa]|com\s+[oa]|quero\s+[oa]|escolho\s+[oa]|fico\s+com\s+[oa])\s+)?"
    r"(primeir|segund|terceir|quart|quint|sext|setim|oitav|non|decim|ultim|penultim)([oa])(?![a-z0-9])"
    # "n"/"no"/"num" are "nº" only before a number: "segunda no período da tarde" is a weekday, not "second nº"
    rf"(\s+{_OPTION_NOUN.replace('|n|no|num|', '|')}(?![a-z0-9]))?"
)
# "dia 2" is the 2nd of the month, never the second row: the numbered form leaves "dia" out.
_NUMBERED_NOUN = _OPTION_NOUN.replace("|dia|", "|")
_NUMBERED_OPTION = re.compile(
    rf"(?<![a-z0-9])(?:{_NUMBERED_NOUN}|o|a|escolho|escolho a|escolho o|quero a|quero o|fico com a|fico com o"
    r"|pode ser a|pode ser o)\s*(\d{1,2}|um|uma|dois|duas|tres|quatro|cinco|seis|sete)(?![a-z0-9:/h])"
    # "daqui a 2 semanas", "a 3 dias": an amount of time, not row 2
    r"(?!\s*(?:dias?|semanas?|mes|meses|anos?|horas?|minutos?|min|vezes|meses))"
)
_BARE_NUMBER = re.compile(r"^\s*(?:n|no|numero|opcao)?\s*(\d{1,2})\s*[.)!]?\s*$")
# A number written as a word, alone: "dois", "a três".
_BARE_CARDINAL = re.compile(
    r"^\s*(?:(?:o|a|opcao|numero)\s+)?(um|uma|dois|duas|tres|quatro|cinco|seis|sete|oito|nove|dez)\s*[.!]?\s*$"
)
# A pronoun pointing at what was just offered. The bare pronouns ("esse", "ele") count only when options are on
# the table; "essa semana" is not a reference.
_REFERENCE_STRONG = _re(
    r"com ele|com ela|ele mesmo|ela mesma|esse mesmo|essa mesma|este mesmo|esta mesma|esse ai|essa ai|nele|nela"
    r"|pode ser ele|pode ser ela|com esse|com essa|com este|com esta|esse ai mesmo|essa ai mesmo|esse horario"
    r"|essa data|esse dia|esse medico|essa medica|esse doutor|essa doutora|este horario|esta data|essa opcao|esta opcao"
)
_REFERENCE_WEAK = _re(r"esse|essa|este|desse|dessa|o mesmo|a mesma|ele|ela")
_SLOT_TIME = re.compile(r"(?<!\d)(\d{1,2})(?::|h)(\d{2})?")

# --- names ------------------------------------------------------------------------------------------------------------

_NAME_INTRO = re.compile(
    r"(?<![a-z])(?:meu nome(?: completo)?(?: e| eh|:| e:)|me chamo|pode me chamar de|chamo-me|nome:"
    r"|nome d[oa] paciente(?: e| eh|:)|(?:eu )?sou (?:o|a)|eu sou|aqui (?:e|eh)(?: (?:o|a))?"
    r"|quem fala (?:e|eh)(?: (?:o|a))?|(?:o|a) paciente (?:e|eh|se chama)|(?:o )?nome d(?:ele|ela)(?: e| eh|:)"
    r"|(?:o )?nome d[oa] (?:meu|minha) [a-z]+(?: e| eh|:)|(?:meu|minha) [a-z]+ se chama"
    # a correction at the summary: "o nome certo é Ana Lima", "o nome tá errado, é Sandra Mello"
    r"|(?:o )?nome (?:certo|correto|completo)(?: e| eh|:)|(?<![a-z] )o nome (?:e|eh)"
    r"|nome (?:ta|esta) errado,? (?:o certo )?(?:e|eh)|errei (?:o|no) nome,? (?:o certo |o correto )?(?:e|eh)"
    r"|(?:e )?(?:pro|pra|para o|para a|para) (?:meu|minha) (?:filh[oa]|pai|mae|espos[oa]|marido|av[oa]|irma|irmao"
    r"|sobrinh[oa]|net[oa]|enteado|enteada),?"
    r"|(?:a consulta|o agendamento|a marcacao|o horario) (?:e|eh|vai ser|sera) (?:pra|para)(?: o| a)?)\s+"
)
# "Clara aqui", "oi, Clara Mendes aqui": a capitalised name at the start (after a greeting), then "aqui"
_NAME_HERE = re.compile(
    rf"^\W*(?:(?i:{_GREETINGS})\W+)?"
    r"([A-ZÀ-Ý][^\W\d_]+(?:\s+(?:d[aeo]s?\s+)?[A-ZÀ-Ý][^\W\d_]+){0,5})\s+(?i:aqui)\b"
    r"(?=\s*(?:[,.!;]|$|(?i:quero|queria|gostaria|preciso|falando|tudo bem|td bem)\b))"
)
# "sou Luana Ribeiro": without an article "sou" is a name only as two or more words, the first capitalised
# ("sou casada", "sou nova aqui" are not names).
_NAME_INTRO_BARE = re.compile(r"(?<![a-zA-Z])(?i:(?:eu )?sou)\s+(?=[A-ZÀ-Ý])")
# A letter, then letters, or an apostrophe/hyphen between letters: "D'Ávila", "Ana-Maria".
_NAME_TOKEN = re.compile(r"[^\W\d_](?:[^\W\d_]|['’-](?=[^\W\d_]))*", re.UNICODE)
_NAME_PARTICLES = frozenset({"da", "de", "do", "dos", "das", "e", "di", "du", "van", "von"})
# Words that are never part of a person's name in this conversation.
_NOT_NAME_WORDS = frozenset(
    """
    oi ola alo opa bom boa dia tarde noite tudo bem sim nao ok isso pode claro obrigado obrigada valeu tchau
    quero queria gostaria preciso marcar agendar cancelar remarcar consulta consultas exame exames medico medica
    doutor doutora dr dra clinica convenio plano particular unimed amil bradesco sulamerica porto seguro saude
    hemograma cardiologia dermatologia pediatria ortopedia ginecologia oftalmologia geral especialidade
    hoje amanha ontem segunda terca quarta quinta sexta sabado domingo semana mes horario hora manha
    atendente humano pessoa recepcao paciente eu voce voces ele ela esse essa este esta aqui ali la
    primeiro primeira segundo segunda terceiro terceira ultimo ultima opcao numero com para pra por que
    qual quais quanto onde como quando endereco telefone email preco valor jejum preparo duvida pergunta
    ajuda help teste novo nova mais menos muito pouco ainda ja agora depois antes tambem so apenas mesmo
    voltar reiniciar menu inicio fim certo beleza perfeito fechado show legal nada nenhum nenhuma alguem
    filho filha mae pai esposa esposo marido crianca bebe meu minha seu sua nosso nossa um uma o a os as
    de do da dos das em no na nos nas ao aos se me te lhe ta to tou estou sou tenho tem ter fazer
    diabetico diabetica hipertenso hipertensa gravida alergico alergica novo paciente cliente
    sair parar pare stop ignore ignorar previous instructions instrucoes anteriores menu bot robo help
    pediatra cardiologista dermatologista ortopedista ginecologista oftalmologista oculista clinico cardio
    dermato gineco orto oftalmo neuro neurologista psicologo psicologa psiquiatra dentista urologista endocrino
    endocrinologista otorrino nutricionista fisioterapeuta especialista raio ultrassom checkup
    longe perto caro cara barato barata facil dificil bom ruim aberto aberta fechado fechada
    """.split()
)
_NAME_STOP = frozenset(
    """
    e quero queria gostaria preciso para pra com tenho moro sou estou e, amanha hoje agora marcar agendar
    que porque mas pois por favor obrigado obrigada tel telefone cpf nasci idade anos
    """.split()
)
_MAX_NAME_WORDS = 8  # "Ana Maria de Souza Pereira Lima" is six


def _title_case(words: list[str]) -> str:
    """ "ana-maria D'ÁVILA da silva" -> "Ana-Maria D'Ávila da Silva"."""

    def cap(part: str) -> str:
        return part[:1].upper() + part[1:].lower()

    return " ".join(
        w.lower() if w.lower() in _NAME_PARTICLES else re.sub(r"[^'’-]+", lambda m: cap(m.group(0)), w) for w in words
    )


def _name_words(text: str, *, start: int, stop_at_lowercase_after: bool = False) -> tuple[list[str], int]:
    """Name-like words from `start`, up to a punctuation mark or a word that cannot belong to a name."""
    words: list[str] = []
    end = start
    position = start
    while len(words) < _MAX_NAME_WORDS:
        match = _NAME_TOKEN.match(text, position)
        if match is None:
            break
        word = match.group(0)
        folded_word = fold(word)
        if folded_word in _NAME_STOP and not (folded_word in _NAME_PARTICLES and words):
            break
        if folded_word in _NOT_NAME_WORDS and folded_word not in _NAME_PARTICLES:
            break
        if folded_word in _NAME_PARTICLES and not words:
            break
        if stop_at_lowercase_after and words and word[:1].islower() and folded_word not in _NAME_PARTICLES:
            break
        words.append(word)
        end = match.end()
        gap = re.match(r"[ \t]+", text[end:])
        if gap is None:
            break
        position = end + gap.end()
    while words and fold(words[-1]) in _NAME_PARTICLES:
        words.pop()
    return words, end


def _plausible_name(words: list[str]) -> bool:
    if not words or len(words) > _MAX_NAME_WORDS:
        return False
    core = [w for w in words if fold(w) not in _NAME_PARTICLES]
    if not core or any(len(w) < 2 for w in core):
        return False
    if any(fold(w) in _NOT_NAME_WORDS for w in core):
        return False
    # Keyboard mashing ("asdkjhasd") has no vowels in long runs or too few vowels overall.
    for word in core:
        folded_word = fold(word)
        vowels = sum(c in "aeiouy" for c in folded_word)
        if vowels == 0 or (len(folded_word) >= 6 and vowels / len(folded_word) < 0.25):
            return False
        if re.search(r"[^aeiouy]{5,}", folded_word) or _NOT_A_NAME_WORD.fullmatch(folded_word):
            return False
    return True


# Interjections, laughter and keyboard mashing a patient types while thinking ("espera", "hahaha", "hum",
# "asdf", "aaaa"): never a name, however it is capitalised.
_NOT_A_NAME_WORD = re.compile(
    r"espera|pera|perai|calma|hum+|hm+|hein|ue|uai|eita|affs?|ah+|eh+|oh+|oxe|oxi|vixe|vish|putz|poxa|caramba"
    r"|nossa|tipo|sei|blz|vlw|okay|ops|opa|uhum|aham|ahn|ne|rs+|k+|(?:h?[aeiu]h?){2,}|(?:ha|he|hi|hu|ka|ah)+"
    r"|\w*(?:asdf|qwer|zxcv|hjkl|sdfg|dfgh|jkl)\w*|\w*(\w)\1\1\w*"
)


_RELATIVE_WORDS = (
    r"(filhos|filhas|netos|netas|filho|filha|pai|mae|esposa|esposo|marido|irma|irmao|sobrinho|sobrinha|neto|neta"
    r"|enteado|enteada|bebe|bb|nenem|nene"
    r"|vo|vovo|avo|sogra|sogro|tia|tio|prima|primo|namorada|namorado|companheira|companheiro)"
)
_RELATIVE_SPELLED = {"bb": "bebe", "nenem": "bebe", "nene": "bebe"}  # "pro meu bb": the baby
_FOR_RELATIVE = re.compile(
    r"(?<![a-z])(?:pro|pra|pros|pras|para o|para a|para os|para as|para|p|p/|e do|e da|consulta do|consulta da"
    # "a paciente é minha filha", "é o meu filho" (the answer to "qual é o seu nome?")
    r"|paciente (?:e|eh|vai ser|sera)(?: [ao])?|^\W*(?:e|eh)(?: [ao])?)"
    rf" (?:meu|minha|meus|minhas|nosso|nossa|mo) (?:\d |dois |duas )?{_RELATIVE_WORDS}(?![a-z])"
    # "minha filha de 5 anos está com febre": the relative opens the message and is the one who needs care
    rf"|^\W*(?:(?:{_GREETINGS})\W+)?(?:[ao] )?(?:meu|minha) {_RELATIVE_WORDS}"
    r"(?= (?:de \d+ (?:anos?|mes|meses)|ta|esta|tem|precisa|vai precisar|anda|acordou|amanheceu|caiu|com)(?![a-z]))"
)
# How the sender names themself ("meu nome é Ana Lima, quero marcar pra minha filha"): not the patient's name
# when the booking is for a relative.
_SELF_INTRO = re.compile(r"(?:meu nome|me chamo|pode me chamar|chamo-me|eu sou|sou|aqui e|aqui eh|quem fala)\b")


_FOR_SELF = re.compile(r"(?<![a-z])(?:pra|para|p) (?:mim|eu mesm[oa])(?![a-z])")

# Two patients in one request ("pra mim e pro meu filho", "eu e minha filha", "pro meu pai e pra minha mãe"):
# the relative is booked first, then the other one is offered. Groups: the relative, then the other relative, if any.
_ONE_OF_TWO = r"(?:(?:pro|pra|para o|para a|para|p|o|a) )?(?:meu|minha) "
_SELF_ONE = r"(?:(?:pra|para|p) mim|eu)"
_TWO_PATIENTS = re.compile(
    rf"(?<![a-z]){_SELF_ONE} e {_ONE_OF_TWO}{_RELATIVE_WORDS}(?![a-z])"
    rf"|(?<![a-z]){_ONE_OF_TWO}{_RELATIVE_WORDS} e (?:{_SELF_ONE}|{_ONE_OF_TWO}{_RELATIVE_WORDS})(?![a-z])"
)


def _name_introduced(text: _Text) -> tuple[str | None, tuple[int, int] | None]:
    for intro in _NAME_INTRO.finditer(text.folded):
        # "sou o ..." may also be "sou o primeiro"; the word check below rejects that.
        words, end = _name_words(text.original, start=intro.end())
        if words and _plausible_name(words):
            return _title_case(words), (intro.start(), end)
    for intro in _NAME_INTRO_BARE.finditer(text.original):
        if re.search(r"[a-z]", text.folded[max(0, intro.start() - 1) : intro.start()]):
            continue  # inside a word ("vou", "estou")
        words, end = _name_words(text.original, start=intro.end())
        if len(words) >= 2 and _plausible_name(words):
            return _title_case(words), (intro.start(), end)
    here = _NAME_HERE.search(text.original)
    if here:  # "oi, Clara aqui, quero marcar"
        words = here.group(1).split()
        if _plausible_name(words):
            return _title_case(words), here.span()
    return None, None


def _bare_name(text: _Text) -> str | None:
    """The whole message is a name (the bot just asked for it)."""
    candidate = re.sub(r"^[\s,.!:;-]+|[\s,.!:;-]+$", "", text.original)
    # "sou Pedro Lima", "é a Joana", "meu nome? Pedro Alves", "Maria aqui"
    candidate = re.sub(
        rf"^(?:(?:{_GREETINGS})\W+)?(?:(?:e|é|sou|eu sou|aqui é|aqui e|meu nome\??:?)\s+"
        r"(?:[ao]\s+)?)?",
        "",
        candidate,
        flags=re.IGNORECASE,
    )  # "Boa tarde! Rita Jones"
    candidate = re.sub(r"\s+aqui$", "", candidate, flags=re.IGNORECASE)
    if not candidate or re.search(r"[\d@#$%&*=+<>/\\|?]", candidate):
        return None
    words, end = _name_words(candidate, start=0)
    if end < len(candidate.rstrip(" .!")) or len(words) > _MAX_NAME_WORDS:
        return None
    return _title_case(words) if _plausible_name(words) else None


# --- clinic names -----------------------------------------------------------------------------------------------------


def _mentions(text: str) -> dict[str, list]:
    if not text.strip():
        return {}
    try:
        from rag_agent.selectors import mentions_find

        return mentions_find(text) or {}
    except Exception:  # noqa: BLE001 - without the catalogue the rules still read intents, dates and names
        logger.exception("mentions_find failed; continuing without clinic names")
        return {}


def _specialty_from_need(text: str) -> dict:
    """When no specialty or doctor was named: a specialty the clinic lacks ("neurologista": especialidade without
    an id), or the one that sees a complaint ("dor nas costas": especialidade, especialidade_id and sintoma)."""
    if not text.strip():
        return {}
    try:
        from rag_agent.selectors import complaint_specialty_find, specialty_missing_find

        missing = specialty_missing_find(text)
        if missing:
            return {"especialidade": missing}
        complaint = complaint_specialty_find(text)
    except Exception:  # noqa: BLE001 - as for the names: the rest of the reading still counts
        logger.exception("complaint lookup failed; continuing without it")
        return {}
    if complaint is None:
        return {}
    found = {"sintoma": complaint.text, "especialidade": complaint.specialty}
    if complaint.specialty_id is not None:
        found["especialidade_id"] = complaint.specialty_id
    return found


def _plan_not_taken(text: str) -> dict:
    """A health plan named that the clinic does not take ("aceita hapvida?"): convenio without an id."""
    try:
        from rag_agent.selectors import plan_missing_find

        missing = plan_missing_find(text)
    except Exception:  # noqa: BLE001 - as for the names: the rest of the reading still counts
        logger.exception("plan lookup failed; continuing without it")
        return {}
    return {"convenio": missing} if missing else {}


_TITLED_NAME = re.compile(r"(?<![a-z])(dra|dr|doutora|doutor)\.?\s+([a-z][a-z'-]{2,})")
# "a doutora atende criança?": a verb after the title names no doctor (kept apart from the patients' names:
# Cobra is a surname)
_VERB_AFTER_TITLE = frozenset(
    "atende atendem trabalha trabalham aceita aceitam cobra cobram faz fazem vem vai pode estava era sabe".split()
)


# Exams patients ask for by name; one the clinic's table does not list is answered "não fazemos".
_UNOFFERED_EXAM = re.compile(
    r"(?<![a-z])(?:ressonancia(?: magnetica)?|tomografia(?: computadorizada)?|mamografia|endoscopia|colonoscopia"
    r"|eletrocardiograma|ecocardiograma|ecocardiografia|holter|densitometria|eletroencefalograma|espirometria"
    r"|teste ergometrico|cintilografia|ultrassom \w+|ultrassonografia \w+|raio x d[eoa]s? \w+|papanicolau"
    r"|exame de urina|urina tipo 1|exame de fezes|parasitologico|audiometria|biopsia|pet scan)(?![a-z])"
)


def _doctor_not_found(text: str) -> dict:
    """ "com o dr roberto" when no doctor of the clinic matched: medico without an id, so the bot can say so."""
    for match in _TITLED_NAME.finditer(fold(text)):
        title, name = match.groups()
        if name not in _NOT_NAME_WORDS and name not in _NAME_STOP and name not in _VERB_AFTER_TITLE:
            return {"medico": f"{'Dra.' if title in {'dra', 'doutora'} else 'Dr.'} {name.capitalize()}"}
    return {}


# A doctor's first name without a title where only a doctor fits: a follow-up ("e a fernanda?"), a question
# about them ("helena atende sábado?") or "consulta com a beatriz". Elsewhere a lone first name is the patient's
# or a relative's ("quero marcar pro meu filho, o lucas").
_DOCTOR_FIRST_NAME = re.compile(
    r"^\W*e (?:com )?(?:[ao] )?(\w+)(?![a-z])"
    r"|^\W*(?:[ao] )?(\w+) (?:atende|atendem|trabalha|aceita|cobra|faz)(?![a-z])"
    r"|(?:consulta|marcar|agendar|horario|vaga) com (?:[ao] )?(\w+)(?![a-z])"
    # the whole message: "não, a beatriz", "com a beatriz", "quero com o daniel" (a correction of the doctor)
    r"|^\W*(?:nao\W+)?(?:(?:quero |prefiro )?com )?[ao] (\w+)\W*$"
)


def _doctor_by_first_name(text: str, specialty_id: int | None = None) -> dict:
    said = _DOCTOR_FIRST_NAME.search(fold(text))
    if not said:
        return {}
    try:
        from rag_agent.selectors import doctor_by_first_name, doctor_detail

        match = doctor_by_first_name(next(g for g in said.groups() if g))
        if match and said.group(4) and specialty_id:  # "não, a helena" at a paediatrics booking: not a doctor
            if specialty_id not in (doctor_detail(match.id) or {}).get("especialidade_ids", []):
                return {}
    except Exception:  # noqa: BLE001 - as _mentions: without the catalogue, no doctor
        logger.exception("doctor_by_first_name failed")
        return {}
    return {"medico": match.name, "medico_id": match.id} if match else {}


# An imaging exam of a body part ("raio x do joelho", "ultrassom de mama"): the clinic's exam of that kind may be of
# another part. Matched on the start of the part's word ("abdome" / "abdominal").
_EXAM_PART = re.compile(
    r"(?<![a-z])(raio\s*-?\s*x|rx|ultrassom|ultrassonografia|ultra\s*som|usg|tomografia|ressonancia)"
    r"\s+(?:de|do|da|dos|das)\s+([a-z]+)"
)
_PART_SYNONYMS = {"barriga": "abdom", "peito": "torax", "pulmao": "torax", "pulmoes": "torax", "abdomen": "abdom"}


def _same_part(part: str, exam_name: str) -> bool:
    stem = _PART_SYNONYMS.get(part, part)[:5]
    return any(word.startswith(stem) for word in fold(exam_name).split())


def _blank_spans(text: str, spans: list[tuple[int, int]]) -> str:
    for start, end in spans:
        text = text[:start] + " " * (end - start) + text[end:]
    return text


# --- options --------------------------------------------------------------------------------------------------------


def _offered(session) -> tuple[str, list[dict]]:
    options = getattr(session, "last_options", None) or {}
    if not isinstance(options, dict):
        return "", []
    kind = str(options.get("kind") or "")
    items = options.get("items") or []
    if kind in _OPTION_KINDS_EXCLUDED or not isinstance(items, list):
        return kind, []
    return kind, [i for i in items if isinstance(i, dict)]


def _item_moment(item: dict) -> tuple[date | None, str | None]:
    """The date and "HH:MM" of an offered slot or appointment, from its id ("slot:<iso>"), its "when" (an
    appointment's moment) or, failing those, its title."""
    ident = str(item.get("id", ""))
    _, _, value = ident.partition(":")
    value = str(item.get("when") or value)
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is not None:
            moment = moment.astimezone(CLINIC_TZ)
        return moment.date(), moment.strftime("%H:%M")
    except ValueError:
        pass
    match = _SLOT_TIME.search(str(item.get("title", "")))
    if match:
        return None, f"{int(match.group(1)):02d}:{int(match.group(2) or 0):02d}"
    return None, None


def _option_by_values(items: list[dict], entities: dict, text: _Text) -> int | None:
    """Which offered item the patient described ("o das 10h", "a dra. Beatriz", "cardiologia"), if exactly one."""
    hits: list[int] = []
    if entities.get("hora") or entities.get("data"):
        for index, item in enumerate(items, 1):
            item_date, item_time = _item_moment(item)
            if item_time is None:
                continue
            if entities.get("hora") and item_time != entities["hora"]:
                continue
            if entities.get("data") and item_date is not None and item_date.isoformat() != entities["data"]:
                continue
            hits.append(index)
        if len(hits) == 1:
            return hits[0]
        if hits:
            return None
    for key, prefix in (("medico_id", "doctor"), ("especialidade_id", "specialty")):
        if entities.get(key) is not None:
            for index, item in enumerate(items, 1):
                if str(item.get("id", "")) == f"{prefix}:{entities[key]}":
                    return index
    # "a do dr. Igor", "a da ortopedia" among appointments: only if exactly one is his (or of that specialty)
    for key, field in (("medico_id", "doctor_id"), ("especialidade_id", "specialty_id")):
        if entities.get(key) is not None:
            rows = [i for i, item in enumerate(items, 1) if str(item.get(field)) == str(entities[key])]
            if len(rows) == 1:
                return rows[0]
    # A distinctive word of one title ("a Beatriz", "pediatria") when the names matcher found nothing.
    message_words = set(text.words)
    # "confirma pra quinta dia 10", "confirma, mas com a dra ana": something else to confirm, not the summary's button
    change_said = any(entities.get(k) for k in _CHANGES_AT_SUMMARY)
    for index, item in enumerate(items, 1):
        if change_said and str(item.get("id", "")).startswith(("confirm:", "name:")):
            continue
        # the title, and an appointment's description ("Dra. Ana Souza · Pedro": "a do pedro", "a da dra ana")
        title = re.sub(r"[^a-z0-9 ]", " ", fold(f"{item.get('title', '')} {item.get('description', '')}"))
        shortest = 3 if str(item.get("id", "")).startswith("doctor:") else 4  # "a Ana"
        title_words = {w for w in title.split() if len(w) >= shortest and w not in _GENERIC_TITLE_WORDS}
        if title_words & message_words:
            hits.append(index)
    return hits[0] if len(set(hits)) == 1 else None


_CHANGES_AT_SUMMARY = (
    "hora",
    "data",
    "medico_id",
    "medico",
    "especialidade_id",
    "periodo",
    "depois_de",
    "antes_de",
    "nome",
    "para_quem",
    "convenio_id",
    "convenio",
    "particular",
)
# Words of offered titles that say nothing about which row ("quanto custa a consulta?" is not "Marcar consulta").
# "dra", "doutor"...; and neither "tem outro dia?" nor "quero o mesmo médico" names an "Outro médico" button.
_GENERIC_TITLE_WORDS = (
    frozenset({"consulta", "consultas", "horario", "horarios", "outro", "outra", "medico", "medica"}) | TITLES
)
_NOT_PRIVATE = _re(r"nao (?:e |eh |vai ser |sera |quero |seria )?(?:pelo |no )?particular|sem ser particular")
_ACCEPTS_SOMETHING = _re(r"aceita|aceitam|atende|atendem|trabalha com|trabalham com|pega|pegam")
_NOT_ABOUT_A_PLAN = _re(
    r"qual|quais|quanto|quantos|onde|como|quando|quem|que|medic\w*|doutor\w*|dr|dra|especialista\w*"
)
_PLAN_QUESTION_FILLER = _re(r"voces|voce|vcs|vc|a clinica|clinica|o|a|os|as|pelo|pela|com|de|do|da|e|tambem|ai")
_NOT_A_PLAN = _re(
    r"cartao|cartoes|credito|debito|pix|dinheiro|boleto|cheque|transferencia|parcel\w*|a vista|particular"
    r"|crianca|criancas|bebe|bebes|recem nascido|idoso|idosos|adolescente|adolescentes|gestante|gestantes|adulto"
    r"|adultos|homem|homens|mulher|mulheres|encaixe|urgencia|emergencia|retorno|domicilio|online|teleconsulta"
    r"|sabado|sabados|domingo|domingos|feriado|feriados|semana|hoje|amanha|agora|manha|tarde|noite|sus"
)
_SCHEDULING_ENTITIES = (
    "data",
    "hora",
    "periodo",
    "depois_de",
    "antes_de",
    "medico_id",
    "especialidade_id",
    "nome",
    "opcao",
)
_ANY_ONE = _re(
    r"qualquer um|qualquer uma|tanto faz|qualquer medic[oa]|pode ser qualquer|quem tiver|o que tiver|a que tiver"
)
_NOT_A_PRICE = _re(r"quanto tempo|quantos dias|o quanto antes|quanto antes")
_EARLIEST = _re(
    r"(?:o )?mais cedo possivel|o quanto antes|quanto antes|o mais rapido possivel|o mais breve possivel"
    r"|o mais proximo|(?:o )?primeiro (?:horario )?(?:disponivel|livre|que tiver)|o que tiver primeiro"
    r"|(?:o )?mais cedo|qualquer (?:um|horario)|tanto faz"
)
_HOUR_MENTION = re.compile(r"(?<![a-z0-9])(?:\d{1,2}\s*(?:h|hs|hrs?|horas?)(?![a-z])|\d{1,2}:\d{2}|as \d{1,2})")


def _option_from_text(
    text: _Text, *, state: str, items: list[dict], numbered: bool = True
) -> tuple[int | None, tuple[int, int] | None, bool]:
    """(opcao, span in folded text, explicit) for "o primeiro", "opção 2", "a última", "2"."""
    count = len(items)
    for match in _ORDINAL_RE.finditer(text.folded):
        article, stem, _gender, noun = match.groups()
        before = text.folded[max(0, match.start() - 4) : match.start()]
        if stem == "primeir" and before.endswith("dia "):
            continue  # "dia primeiro" is a date
        if re.match(r"\s+vez(?![a-z])", text.folded[match.end() :]):
            continue  # "não gostei dela da última vez", "a primeira vez que venho": no row
        if re.match(r"\s+(?:semana|quinzena|dia\s+(?:util|do|da)|mes|ano)(?![a-z])", text.folded[match.end(3) :]):
            continue  # "primeira semana de janeiro", "último dia do ano": a date, not a row (it booked row 1)
        if stem == "primeir" and re.match(r"\s+(?:que tiver|disponivel|livre|vag[oa])", text.folded[match.end() :]):
            continue  # "o primeiro (horário) que tiver": the earliest slot, not row 1
        option_noun = noun and noun.split()[0] in {"opcao", "opcoes", "alternativa", "item", "numero"}
        if state == "confirming" and (text.has_question_mark or (noun and not option_noun)):
            continue  # "tem o primeiro horário de segunda?" at the summary asks; it does not press "Confirmar"
        is_weekday = stem in {"segund", "quart", "quint", "sext"} and _gender == "a"
        # "a segunda/quinta" is a weekday unless the patient is choosing from a list that is not of dates; and it
        # is a weekday anyway when "feira" or an hour goes with it ("segunda às 10h"), at the confirmation, whose
        # buttons nobody calls "a segunda", or over a list of times or appointments, whose rows are read by their
        # dates ("a de segunda" is Monday's appointment, not row 2).
        if is_weekday and noun and noun.strip() == "dia" and re.match(r"\s*\d", text.folded[match.end() :]):
            continue  # "segunda dia 30": a weekday and its date, not "the second day" of a list
        if is_weekday and not noun:
            said_as_day = (
                text.folded[match.end() :].lstrip(" -").startswith("feira")
                or _HOUR_MENTION.search(text.folded) is not None
                or state == "confirming"
                or any(str(item.get("id", "")).startswith(("slot:", "appointment:")) for item in items)
                # "segunda", "sexta de manhã" without "a"/"o": a day, whatever list is on screen ("a segunda"
                # on a list of doctors is still row 2)
                or not article
            )
            if said_as_day or not (items and state != "choosing_date"):
                continue
        if not items and not noun and not article:
            continue
        if stem == "ultim":
            value = count or None
        elif stem == "penultim":
            value = count - 1 if count >= 2 else None
        else:
            value = _ORDINALS[stem]
        if value is not None and (not count or value <= count):
            return value, match.span(), bool(noun or article)
    if not numbered:
        return None, None, False
    for match in _NUMBERED_OPTION.finditer(text.folded):
        raw = match.group(1)
        value = _CARDINALS.get(raw) or (int(raw) if raw.isdigit() else None)
        named = re.match(r"(?:opcao|alternativa|item|numero|n|no|num)\b", match.group(0)) is not None
        # "opção 3" of 2 is still passed on, so the state machine can say which numbers exist.
        if value and (named or 1 <= value <= count) and (items or named):
            return value, match.span(), True
    match = _BARE_NUMBER.match(text.folded)
    cardinal = _BARE_CARDINAL.match(text.folded)
    if cardinal and items:
        value = _CARDINALS.get(cardinal.group(1))
        if value and value <= len(items):
            return value, cardinal.span(), True
    if match and (items or state.startswith("selecting")):
        value = int(match.group(1))
        # In choosing_time a bare number is an hour ("10"), unless it can only be a row number ("2" of 5 rows).
        if 1 <= value and (not count or value <= count) and (state != "choosing_time" or value < 7):
            return value, match.span(), True
    return None, None, False


# --- the interpreter ------------------------------------------------------------------------------------------------


def offline_interpret(
    *, text: str, session: ConversationSession | None = None, now: datetime | None = None
) -> NLUResult:
    """Read one patient message without an LLM; never raises.

    `session` (a ConversationSession) gives context: its `current_state` and the `last_options` offered.
    """
    started = _time.perf_counter()
    try:
        result = _interpret(text=text, session=session, now=now or timezone.now())
    except Exception:  # noqa: BLE001 - a turn must always get an answer; the state machine asks again
        logger.exception("offline NLU failed on a message of %d chars", len(text or ""))
        result = NLUResult(intent=Intent.DESCONHECIDO, confidence=UNKNOWN, source=SOURCE)
    elapsed_ms = (_time.perf_counter() - started) * 1000
    logger.debug("offline NLU: %s %.2f in %.1f ms", result.intent, result.confidence, elapsed_ms)
    return result


def _result(intent: Intent, confidence: float, entities: dict) -> NLUResult:
    return NLUResult(intent=intent, confidence=confidence, entities=entities, source=SOURCE)


_LEADING_GREETING = re.compile(rf"^ ?(?:{_GREETINGS}) ")
_CHANGED_MIND = re.compile(r"(?<![a-z])(?:ou melhor|quer dizer|alias|digo)(?![a-z])\W*")


def _interpret(*, text: str, session: ConversationSession | None, now: datetime) -> NLUResult:
    t = _prepare(text)
    state = str(getattr(session, "current_state", "") or "idle")
    flow = str(getattr(session, "flow", "") or "")
    offered_kind, items = _offered(session)
    entities: dict = {}

    if not t.has_alnum:
        if re.search("[\U0001f44d\U0001f44c\u2705\u2714\U0001f197\U0001f64c]", t.original):  # 👍 👌 ✅ ✔ 🆗 🙌
            return _result(Intent.CONFIRMAR, CERTAIN, {})
        if re.search("[\U0001f44e\u274c\u2716]", t.original):  # 👎 ❌ ✖
            return _result(Intent.NEGAR, CERTAIN, {})
        return _result(Intent.DESCONHECIDO, UNKNOWN, {})

    norm = t.norm
    word_count = len(t.words)
    short = word_count <= SHORT_MESSAGE_WORDS
    changed_mind = list(_CHANGED_MIND.finditer(t.folded))
    if changed_mind and word_count <= 8:
        # "sim, ou melhor, não": the answer is what follows the correction (dates keep their own correction rule)
        tail = t.original[changed_mind[-1].end() :]
        if 0 < len(tail.split()) <= 3:
            return _interpret(text=tail, session=session, now=now)

    # 1. The patient's own name first, so "meu nome é Carlos" never becomes Dr. Carlos.
    name, name_span = _name_introduced(t)
    if name is None and state == "collecting_patient_info":
        bare = _bare_name(t)
        if bare is not None and not _looks_like_intent(_LEADING_GREETING.sub(" ", norm)):  # "Boa tarde! Rita Jones"
            name, name_span = bare, (0, len(t.original))
        elif "," in t.original:  # "Maria Silva, pela unimed": the name, then something else
            raw = t.original.split(",", 1)[0]
            head = _prepare(raw)
            bare = _bare_name(head)
            if bare is not None and not _looks_like_intent(head.norm):
                name, name_span = bare, (0, len(raw))
    if name:
        entities["nome"] = name

    relative = _FOR_RELATIVE.search(t.folded)
    if relative:  # "pro meu filho": the name to ask for is the child's, not the sender's
        said = relative.group(1) or relative.group(2)
        entities["para_quem"] = _RELATIVE_SPELLED.get(said, said)
        if name and name_span and _SELF_INTRO.match(t.folded, name_span[0]):
            del entities["nome"]  # "meu nome é Ana, é pra minha filha": Ana is the mother
    elif _FOR_SELF.search(t.folded):  # "pra mim": the sender, whoever the last booking was for
        entities["para_quem"] = "eu"
    two = _TWO_PATIENTS.search(t.folded)
    if two:
        first, second = two.group(1) or two.group(2), two.group(3) or "eu"
        entities["para_quem"] = _RELATIVE_SPELLED.get(first, first)
        entities["tambem_para"] = _RELATIVE_SPELLED.get(second, second)
        if name and name_span and _SELF_INTRO.match(t.folded, name_span[0]):
            entities.pop("nome", None)  # "sou a Ana, quero marcar pra mim e pra minha filha": hers comes second

    # 2. Option references ("o primeiro", "opção 2", "2"), kept out of the date parser ("a segunda opção").
    # Doctors named in a sentence ("Nossos médicos de Cardiologia: Dr. Carlos e Dra. Ana") can be "o primeiro" or
    # "ele", but they had no numbers: a bare "3" then is not the third of them (it was most likely a menu row).
    last_options = getattr(session, "last_options", None)
    numbered = not (isinstance(last_options, dict) and last_options.get("prose"))
    option, option_span, _explicit = _option_from_text(t, state=state, items=items, numbered=numbered)
    blanked = [s for s in (name_span, option_span) if s]
    analysed = _blank_spans(t.original, blanked)

    # 3. Dates and times.
    hint = dates_extract(analysed, now=now, expect_time=state == "choosing_time" and option is None)
    today = now.astimezone(CLINIC_TZ).date()
    if hint.date and offered_kind == "slot" and (hint.date - today).days == 7:
        # "segunda 11:30" said on a Monday over a list showing today's 11:30: that slot, not next week's
        shown_today = {_item_moment(item)[1] for item in items if _item_moment(item)[0] == today}
        if hint.time and hint.time.strftime("%H:%M") in shown_today:
            hint = replace(hint, date=today)
    if option is not None and option_span and hint.date and hint.grain == "day" and offered_kind == "slot":
        # "o segundo de quarta", "o último de sexta": counted among that day's rows, not the whole list
        on_day = [i for i, item in enumerate(items, 1) if _item_moment(item)[0] == hint.date]
        said = t.folded[option_span[0] : option_span[1]]
        nth = len(on_day) if "ultim" in said else option
        option = on_day[nth - 1] if on_day and 1 <= nth <= len(on_day) else None
    if hint.date and hint.grain in ("week", "from"):
        # "semana que vem", "depois do natal", "em janeiro": from that day on, not that day
        entities["a_partir_de"] = hint.date.isoformat()
    elif hint.date:
        entities["data"] = hint.date.isoformat()
    if hint.time:
        entities["hora"] = hint.time.strftime("%H:%M")
    if hint.invalid:
        entities["data_invalida"] = hint.invalid
    if hint.ruled_out:
        entities["exceto_dias"] = sorted(hint.ruled_out)
    if hint.weekday_said is not None and hint.date:
        entities["dia_semana"] = hint.weekday_said
    if hint.periodo:
        entities["periodo"] = hint.periodo
    if hint.after:
        entities["depois_de"] = hint.after.strftime("%H:%M")
    if hint.before:
        entities["antes_de"] = hint.before.strftime("%H:%M")

    # 4. Clinic names (specialties, doctors, plans, exams), never inside the name or date spans.
    mention_text = _blank_spans(analysed, list(hint.spans))
    if not (name_span and name_span == (0, len(t.original))):
        for kind, matches in _mentions(mention_text).items():
            if matches:
                best = matches[0]
                entities[kind] = best.name
                entities[f"{kind}_id"] = best.id
    if not (entities.get("especialidade_id") or entities.get("medico_id")):
        entities.update(_specialty_from_need(mention_text))
    if not entities.get("convenio_id"):
        entities.update(_plan_not_taken(mention_text))
    if not entities.get("medico_id") and state != "collecting_patient_info":
        entities.update(_doctor_by_first_name(mention_text, getattr(session, "selected_specialty_id", None)))
    if not entities.get("medico_id"):
        entities.update(_doctor_not_found(mention_text))
    other_part = _EXAM_PART.search(fold(mention_text)) if entities.get("exame_id") else None
    if other_part and not _same_part(other_part.group(2), entities.get("exame", "")):
        # "raio x do joelho" when the clinic's X-ray is of the chest: that exam is not done here
        entities.pop("exame_id")
        entities["exame"] = mention_text[other_part.start() : other_part.end()].lower()
    if not entities.get("exame_id") and not entities.get("exame"):
        unknown_exam = _UNOFFERED_EXAM.search(fold(mention_text))
        if unknown_exam:  # "faz ressonância?": an exam this clinic does not list, said so rather than "não entendi"
            entities["exame"] = mention_text[unknown_exam.start() : unknown_exam.end()].lower()  # as written
    plan_word = fold(entities.get("convenio") or "").split()[:1]
    if plan_word and re.search(rf"\bsem (?:usar |passar pel[oa] )?(?:(?:o|a|meu|minha) )?{plan_word[0]}\b", norm):
        entities["particular"] = True  # "quanto custa sem usar a unimed?": the private price
        entities.pop("convenio", None)
        entities.pop("convenio_id", None)
    if _has(norm, _PRIVATE) and not _has(norm, _NOT_PRIVATE):  # "não é particular, é unimed"
        entities["particular"] = True
        entities.pop("convenio", None)
        if _has(norm, _PLAN_SET_ASIDE):  # "tenho amil mas quero particular", "particular, não uso meu unimed"
            entities.pop("convenio_id", None)
    plan_asked = state == "choosing_plan" and not (entities.get("convenio_id") or entities.get("convenio"))
    if plan_asked and _has(norm, _NO_PLAN_ANSWER) and not _has(norm, _PLAN_NOT_LISTED):
        entities["particular"] = True  # "particular ou convênio?" "não tenho", "n", "no pix"
        entities.pop("convenio_id", None)

    # 5. References to what was offered. Slots are offered earliest first: "o mais cedo possível" is the first.
    if option is None and offered_kind == "slot" and items and _has(norm, _EARLIEST) and not (hint.date or hint.time):
        option = 1
    if option is None and offered_kind == "doctor" and items and (_has(norm, _ANY_ONE) or _has(norm, _EARLIEST)):
        entities["qualquer_medico"] = True  # "tanto faz", "o mais rápido possível": whoever is free first
    if option is None and items and not _has(norm, _LATER):  # "ok obrigado, depois confirmo" presses nothing
        described = _option_by_values(items, entities, t) if _describes_option(entities, t) else None
        if described is not None:
            option = described
    if option is None and offered_kind == "name":  # a typed "1"/"2" for "Sim"/"Não" under "no nome de X?"
        typed = _BARE_NUMBER.match(t.folded)
        option = int(typed.group(1)) if typed and typed.group(1) in {"1", "2"} else None
    if entities.get("sintoma"):
        option = None  # "ver a dor nas costas primeiro" names a complaint, not the first row on screen
    if option is not None:
        entities["opcao"] = option
    referenced = _has(norm, _REFERENCE_STRONG) or (items and _has(norm, _REFERENCE_WEAK) and len(t.words) <= 5)
    if referenced and not entities.get("medico_id"):
        entities["referencia"] = True
        if len(items) == 1 and "opcao" not in entities:
            entities["opcao"] = 1

    intent, confidence = _classify(t, state=state, flow=flow, entities=entities, items=items, short=short)
    asked_before = (getattr(session, "last_options", None) or {}).get("topic")
    follow_up = t.words[:1] == ["e"] and len(t.words) <= 5 and not _has(norm, _BOOK_STRONG)
    # "quanto é a consulta?" then "com o ortopedista": the same question about someone, not a booking with him
    narrows = asked_before in {"preco", "convenio", "agenda", "duracao"} and t.words[:1] in (["com"], ["pra"], ["para"])
    subject = any(entities.get(k) for k in ("especialidade_id", "medico_id", "convenio_id"))
    follow_up = follow_up or (narrows and subject and len(t.words) <= 5 and not _has(norm, _BOOK_STRONG))
    remembered = getattr(session, "last_options", None) or {}
    if (
        follow_up
        and not entities.get("topico")
        and _has(norm, _AGENDA)
        and (remembered.get("doctor") or remembered.get("specialty"))
    ):
        entities["topico"] = "agenda"  # "e quais dias?" after questions about one doctor: her days
        intent, confidence = Intent.PERGUNTA, CLEAR
    if asked_before and follow_up and not entities.get("topico") and intent != Intent.PERGUNTA:
        entities["topico"] = asked_before  # "quanto custa cardiologia?" then "e de pediatria"
        intent, confidence = Intent.PERGUNTA, CLEAR
    # "e do oftalmo?" after a price: the price again, not "do you have it?" (which a bare "e X?" reads as when
    # nothing else was asked)
    generic = entities.get("topico") in {"especialidades", "medicos"} and not _has(norm, _re(r"tem|atende|atendem"))
    if asked_before and follow_up and generic and asked_before not in {"especialidades", "medicos"}:
        entities["topico"] = asked_before
    if entities.get("topico") is None:
        entities.pop("topico", None)
    if word_count > LONG_MESSAGE_WORDS:
        confidence = min(confidence, WEAK_CLEAR)
    return _result(intent, confidence, entities)


def _describes_option(entities: dict, text: _Text) -> bool:
    return any(k in entities for k in ("hora", "data", "medico_id", "especialidade_id")) or len(text.words) <= 4


def _looks_like_intent(norm: str) -> bool:
    return any(
        _has(norm, pattern)
        for pattern in (_GREETING, _THANKS, _BYE, _YES_STRONG, _YES_WEAK, _NO, _ATTENDANT, _RESTART, _BACK, _CANCEL)
    )


_SLOT_KEYS = (
    "nome",
    "exceto_dias",
    "qualquer_medico",
    "especialidade_id",
    "medico_id",
    "convenio_id",
    "particular",
    "exame_id",
    "data",
    "hora",
    "periodo",
    "depois_de",
    "antes_de",
    "opcao",
    "referencia",
)


def _only(norm: str, pattern: re.Pattern, *extra: re.Pattern) -> bool:
    """The message is nothing but matches of these patterns (and filler)."""
    rest = pattern.sub(" ", norm)
    for other in extra:
        rest = other.sub(" ", rest)
    rest = re.sub(
        r"(?<![a-z0-9])(?:por favor|entao|ai|ah|eh|hmm+|kk+|rs+|haha+|ne|tudo|bem|e|mesmo|muito|tambem|ta)(?![a-z0-9])",
        " ",
        rest,
    )
    return not rest.replace("?", " ").strip()


def _classify(t: _Text, *, state: str, flow: str, entities: dict, items: list, short: bool) -> tuple[Intent, float]:
    norm = t.norm
    has_slots = any(k in entities for k in _SLOT_KEYS)
    confirming = state == "confirming"

    # Requests that change the conversation itself come first: they are unambiguous and must never be missed.
    asks_person = _has(norm, _ATTENDANT) or (_has(norm, _ATTENDANT_WORD) and len(t.words) <= 3)
    if asks_person and not _has(norm, _re(r"(?:nao|nem) (?:quero|precisa|preciso) (?:falar|de)")):
        return Intent.ATENDENTE, CERTAIN if short else CLEAR
    if _has(norm, _RESTART):
        return Intent.REINICIAR, CERTAIN if short else CLEAR
    if _has(norm, _BACK):
        return Intent.VOLTAR, CERTAIN

    negated_cancel = _has(norm, _CANCEL_NEGATED)
    wants_cancel = _has(norm, _CANCEL) and not negated_cancel
    topic = _topic(t, entities)
    asks = t.has_question_mark or _has(norm, _re(r"^ ?(?:qual|quais|quanto|quantos|onde|como|quando|que horas|sera)"))

    if wants_cancel and not (topic == "politicas" and asks and not _has(norm, _re(r"quero|queria|gostaria|preciso"))):
        return Intent.CANCELAR, CERTAIN if short and not has_slots else CLEAR
    if _has(norm, _DONT_WANT_ANYMORE) and (flow or _has(norm, _re(r"consulta|agendamento|horario|marcar"))):
        return Intent.CANCELAR, CLEAR
    if _has(norm, _RESCHEDULE_STRONG) and not (topic == "politicas" and asks):
        return Intent.REMARCAR, CLEAR_WITH_ENTITIES if has_slots else CLEAR
    if _has(norm, _RESCHEDULE_WEAK):
        booked_one = _has(norm, _re(r"minha consulta|meu agendamento|consulta marcada|(?:a|o) que (?:eu )?marquei"))
        if flow == "agendar" and (has_slots or not booked_one):
            return Intent.INFORMAR, CLEAR  # a correction of the booking under way ("dá pra trocar pra outra semana?")
        return Intent.REMARCAR, CLEAR_WITH_ENTITIES if has_slots else CLEAR
    if _has(norm, _MY_APPOINTMENTS) and not _has(norm, _BOOK_STRONG):
        return Intent.MEUS_AGENDAMENTOS, CLEAR
    if state == "choosing_plan" and not asks and ({"convenio_id", "particular"} & set(entities)):
        return Intent.INFORMAR, CLEAR  # "sem convênio", "pelo plano da amil": the answer, not a question on plans

    if _has(norm, _LATER) and not has_slots and not (topic and asks):
        return Intent.AGUARDAR, CLEAR
    # Yes / no, most often the answer to "Confirma?" or to a proposed option.
    if negated_cancel:
        return Intent.NEGAR, CLEAR
    yes_no = _yes_no(t, confirming=confirming, has_slots=has_slots, short=short, entities=entities)
    if yes_no is not None and not (topic and t.has_question_mark and yes_no[0] == Intent.INFORMAR):
        return yes_no  # "não, pera: quanto é se for particular?" asks; it does not switch to particular

    # Questions about the clinic. "quero marcar, aceita Unimed?" is a question (the flow resumes after the
    # answer); "quero marcar pelo convênio" without a question mark is a booking.
    if topic and (t.has_question_mark or not _has(norm, _BOOK_STRONG)):
        entities["topico"] = topic
        return Intent.PERGUNTA, CLEAR_WITH_ENTITIES if asks else WEAK_CLEAR
    # "e Bradesco?" / "e o hemograma?": the same question as before about another plan or exam (the answer reads
    # the plan or exam named), not the start of a booking nor a slot of one.
    names_plan_or_exam = bool({"convenio_id", "exame_id"} & set(entities))
    scheduling = any(k in entities for k in _SCHEDULING_ENTITIES)
    if names_plan_or_exam and not scheduling and t.has_question_mark and not _has(norm, _BOOK_STRONG):
        return Intent.PERGUNTA, CLEAR
    if _has(norm, _BOOK_STRONG) or (_has(norm, _BOOK_WEAK) and not (asks and not has_slots and topic)):
        return Intent.AGENDAR, CLEAR_WITH_ENTITIES if has_slots else CLEAR
    wants_someone = entities.get("especialidade_id") or entities.get("medico_id")
    if entities.get("sintoma") and asks and not entities.get("medico_id"):
        wants_someone = None  # "meu filho está com febre, qual médico procuro?" asks who, not for a booking
    if wants_someone and _has(norm, _re(r"preciso|quero|queria|gostaria|procuro|estou procurando|necessito")):
        return Intent.AGENDAR, CLEAR_WITH_ENTITIES  # "preciso de um cardiologista"

    # Politeness.
    if _only(norm, _THANKS, _BYE, _GREETING, _YES_WEAK):
        if _has(norm, _BYE):
            return Intent.DESPEDIDA, CERTAIN
        if _has(norm, _THANKS):
            return Intent.AGRADECIMENTO, CERTAIN
        if _has(norm, _GREETING):
            return Intent.SAUDACAO, CERTAIN

    if has_slots:
        certain = short and (
            "opcao" in entities
            or "qualquer_medico" in entities
            or (state == "choosing_time" and "hora" in entities)
            or (state == "collecting_patient_info" and set(entities) == {"nome"})
        )
        return Intent.INFORMAR, CERTAIN if certain else CLEAR
    if any(k in entities for k in ("especialidade", "medico", "convenio", "exame")):
        return Intent.INFORMAR, CLEAR
    if _has(norm, _GREETING):
        return Intent.SAUDACAO, WEAK_CLEAR
    if _has(norm, _THANKS):
        return Intent.AGRADECIMENTO, WEAK_CLEAR
    if _has(norm, _BYE):
        return Intent.DESPEDIDA, WEAK_CLEAR
    if asks and _has(norm, _QUESTION_WORD):
        return Intent.PERGUNTA, WEAK
    return Intent.DESCONHECIDO, UNKNOWN


def _asks_for_an_unknown_plan(t: _Text) -> bool:
    """ "aceita Hapvida?": a short question whose object is no plan we know, nor a payment or a kind of patient
    (the answer then lists the plans accepted). Called only when no known plan was found in the message."""
    if not t.has_question_mark or len(t.words) > 5 or not _has(t.norm, _ACCEPTS_SOMETHING):
        return False
    if _has(t.norm, _NOT_ABOUT_A_PLAN):
        return False  # "quais médicos atendem?", "quem atende?"
    rest = _ACCEPTS_SOMETHING.sub(" ", t.norm)
    rest = _PLAN_QUESTION_FILLER.sub(" ", rest)
    return bool(rest.strip()) and not _has(t.norm, _NOT_A_PLAN)


# When a named doctor (or a specialty's doctors) works: "o dr gustavo atende sábado?", "que dias a dra ana atende".
_AGENDA = _re(
    r"que dias?|quais (?:os )?dias|qual (?:o )?dia|dias de atendimento|dias que|que horas|qual (?:e )?(?:o )?horario"
    r"|quais (?:sao )?(?:os )?horarios|horarios? (?:d[oa]|dele|dela)|atende quando|trabalha quando"
    r"|quando (?:ele|ela) atende"
    r"|(?:atende|atendem|trabalha|trabalham) (?:de |aos |nos |na |no |as |a |pela |em |durante a )?"
    r"(?:segunda|terca|quarta|quinta|sexta|sabado|domingo|manha|tarde|noite|fim de semana|fins de semana)s?"
    r"|(?:atende|atendem|trabalha|trabalham) (?:hoje|amanha|dia \d+|depois das|depois de|antes das|antes de"
    r"|ate as|a partir das|a partir de)"
)


_ABOUT_DOCTOR = _re(
    r"quem e|quem eh|especialidade d[oa]|qual (?:a )?(?:especialidade|area)|fala (?:mais )?(?:sobre|d[oa])"
    r"|sobre (?:o|a) (?:dr|dra|doutor|doutora)|o que (?:ele|ela) faz|(?:ele|ela) e bom|(?:ele|ela) e boa|formacao|crm"
    # "o dr gustavo é bom?" (not "com a dra ana pra mim é bom", which chooses her)
    r"|^ ?(?:[ao] )?(?:dr|dra|doutor|doutora) \w+(?: \w+)? e (?:um |uma )?(?:bom|boa)(?: (?:medic[oa]|profissional))?"
    r"(?: mesmo)? ?$"
)


def _topic(t: _Text, entities: dict) -> str | None:
    norm = t.norm
    # "quais dias ele atende?" after an answer about one doctor: him (the answer reads who was talked about)
    names_who = entities.get("medico_id") or entities.get("especialidade_id") or _has(norm, _re(r"ele|ela|dele|dela"))
    if names_who and _has(norm, _AGENDA) and not (_has(norm, _BOOK_STRONG) or _has(norm, _BOOK_WEAK)):
        return "agenda"
    if entities.get("medico_id") and _has(norm, _ABOUT_DOCTOR) and not _has(norm, _BOOK_STRONG):
        return "medicos"  # "quem é a dra ana?", "qual a especialidade do dr igor?"
    is_of_specialty = _has(norm, _re(r"e|eh")) and not (_has(norm, _BOOK_STRONG) or _has(norm, _BOOK_WEAK))
    if entities.get("medico_id") and entities.get("especialidade_id") and t.has_question_mark and is_of_specialty:
        return "medicos"  # "o dr igor é pediatra?": yes or no, not a booking with him
    for name, pattern in _TOPICS:
        if not _has(norm, pattern):
            continue
        if name == "horario" and _has(norm, _BOOK_WEAK) and not _has(norm, _re(r"funcion\w*|abr\w*|fecha|fecham")):
            continue  # "tem horário amanhã?" asks for a slot, not the opening hours
        if name == "convenio" and not (
            entities.get("convenio")  # a plan we take, or one we know we do not
            or entities.get("particular")
            or _has(norm, _re(r"convenio|convenios|plano|planos"))
            or _asks_for_an_unknown_plan(t)
        ):
            continue  # "aceita cartão?" / "atende criança?" are not about plans
        if name == "politicas" and _has(norm, _CANCEL) and not (t.has_question_mark or _has(norm, _QUESTION_WORD)):
            continue
        if name == "preco" and entities.get("exame_id") is None and _has(norm, _re(r"exame|exames")):
            return "exames"  # "quanto custa o exame de sangue?": the exams and their prices, not a consultation
        if name == "preco" and entities.get("exame_id") is None and _has(norm, _NOT_A_PRICE):
            continue  # "quanto tempo demora", "o quanto antes"
        return name
    asks = t.has_question_mark or _has(norm, _re(r"voces tem|existe|fazem|oferecem"))
    offers = _re(r"tem|tem algum|tem alguma|voces tem|existe|fazem|faz|oferecem|atende|atendem|trabalham com")
    follow_up = t.has_question_mark and t.words[:1] == ["e"] and len(t.words) <= 4  # "e oculista?" after "tem X?"
    booking = _has(norm, _BOOK_WEAK) or _has(norm, _BOOK_STRONG)  # "queria marcar ..., ela tem bradesco"
    if asks and not booking and entities.get("exame") and not entities.get("exame_id"):
        return "exames"  # "faz ressonância?": one the clinic does not list
    if asks and not booking and entities.get("medico") and not entities.get("medico_id"):
        return "medicos"  # "tem o dr paulo?": no such doctor here
    if asks and (_has(norm, offers) or follow_up) and not booking:
        if entities.get("exame_id") and _has(norm, offers):  # "e o hemograma?" asks its price (no topic)
            return "exames"
        if entities.get("especialidade_id") and not entities.get("medico_id"):
            return "especialidades"
        if entities.get("medico_id") and _has(norm, offers):  # "e o dr. Lucas?" stays what it was
            return "medicos"
    if entities.get("exame_id") and _has(norm, _re(r"precisa|preciso|como|pode|posso")):
        return "preparo"
    return None


def _yes_no(t: _Text, *, confirming: bool, has_slots: bool, short: bool, entities: dict) -> tuple[Intent, float] | None:
    norm = t.norm
    first = t.words[0] if t.words else ""
    starts_no = first in {"nao", "n", "negativo", "nope"}
    slot_values = any(k in entities for k in _SCHEDULING_ENTITIES if k != "nome")

    if confirming and starts_no and _has(norm, _NO_BUT_YES):  # "não precisa mudar nada, pode confirmar"
        return Intent.CONFIRMAR, CLEAR
    if starts_no or (_has(norm, _NO) and _only(norm, _NO, _THANKS)):
        if slot_values or entities.get("particular"):
            return Intent.INFORMAR, CLEAR  # "não, prefiro quinta" (a correction), "não tenho convênio"
        if _has(norm, _DONT_KNOW):
            return Intent.DESCONHECIDO, WEAK
        if _only(norm, _NO, _THANKS):
            return Intent.NEGAR, CERTAIN if short else CLEAR
        if short:
            return Intent.NEGAR, CLEAR
        return None
    if has_slots:
        if confirming and _YES_STRONG.match(norm.strip()) and not slot_values:
            return Intent.CONFIRMAR, CLEAR
        return None
    if _has(norm, _YES_STRONG) and _only(norm, _YES_STRONG, _YES_WEAK, _THANKS):
        return Intent.CONFIRMAR, CERTAIN
    if _has(norm, _YES_WEAK) and _only(norm, _YES_WEAK, _THANKS):
        if confirming:
            return Intent.CONFIRMAR, CERTAIN
        if _has(norm, _THANKS):
            return Intent.AGRADECIMENTO, CERTAIN if short else CLEAR
        # "ok", "pode ser" outside a confirmation usually accept what the bot just proposed.
        return Intent.CONFIRMAR, CLEAR
    starts_yes = _YES_STRONG.match(norm.strip()) or first in {"ok", "isso", "pode", "certo"}
    if confirming and starts_yes and not _has(norm, _YES_BUT) and not t.has_question_mark:
        return Intent.CONFIRMAR, CLEAR
    return None
