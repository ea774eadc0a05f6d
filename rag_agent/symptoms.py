"""What a receptionist knows without being a doctor: which specialty sees a common complaint, and the names of
specialties and health plans a clinic may not have.

"Estou com dor nas costas" is a request for Ortopedia; "quero marcar com neurologista" in a clinic without
Neurologia deserves "não temos Neurologia", not a silent list of other specialties. Both are pure functions of the
text and the clinic's specialty list (the cached catalogue), so they cost no query and no token.

The complaints are ordinary words for ordinary problems, never a diagnosis: each maps to the specialties that
usually see it, most specific first, ending with Clínica Geral where a general practitioner is the usual first
stop. Only a specialty the clinic has is ever suggested. Warning signs of an emergency are not handled here but in
`api_gateway.services.safety`, which answers before any of this.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from rag_agent.matching import normalize

GENERAL = ("clinica geral", "clinica medica")

# Complaint pattern (on normalized text) -> specialties that see it, most specific first (normalized names).
_BODY_PART = (
    r"(?:joelhos?|ombros?|quadril|tornozelos?|pes?|punhos?|cotovelos?|costas?|coluna|lombar|juntas|pescoco|maos?"
    r"|bracos?|pernas?|calcanhar|sola do pe|coccix|nuca|dedos?(?: do pe| da mao)?)"
)
_SKIN = r"(?:pele|rosto|corpo|bracos?|pernas?|costas|barriga|maos?|couro cabeludo)"
_COMPLAINTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        r"corrimento|coceira (?:la embaixo|intima|na vagina|vaginal)|colicas? menstrua\w*"
        r"|menstrua\w* (?:\w+ ){0,2}atrasad\w*|diu|dor na relacao|caroco (?:no|na) (?:seio|mama)|nodulo na mama"
        r"|atraso menstrual|preventivo|papanicolau|pre natal|gravidez|gravida|anticoncepcional|menopausa|mioma"
        r"|ovario policistico",
        ("ginecologia", "obstetricia", *GENERAL),
    ),
    (
        r"(?:vista|visao|olhos?) (?:(?:esta|ta|estao|tao|anda|fica|ficou|meio) )?(?:embacad[oa]s?|turv[oa]s?)"
        r"|enxergando mal|(?:nao|mal) enxergo|enxergar (?:mal|pouco)|dor (?:no|nos) olhos?|coceira nos olhos?"
        r"|exame de vista|olhos? (?:\w+ ){0,2}ardem"
        r"|olhos? (?:\w+ ){0,3}(?:vermelhos?|ardendo|cocando|lacrimejando|inchados?)|conjuntivite"
        r"|grau (?:dos|do) oculos|trocar (?:os )?oculos|oculos novos?|catarata|glaucoma|vista cansada|tercol",
        ("oftalmologia", *GENERAL),
    ),
    (
        rf"dor(?:es)? (?:\w+ )?(?:nas|na|de|no|nos) {_BODY_PART}|{_BODY_PART} (?:\w+ ){{0,2}}doendo"
        r"|torci o \w+|torcao|entorse|tendinite|hernia de disco|bico de papagaio|lombalgia|bursite|artrose"
        r"|osteoporose",
        ("ortopedia", "reumatologia", *GENERAL),
    ),
    (
        rf"manchas? (?:\w+ )?(?:na|no|nas|nos|pelo) {_SKIN}|coceira (?:na|no|nas|nos|pelo) {_SKIN}|acne"
        r"|espinhas?(?! de peixe)|alergia na pele|queda de cabelo|cabelo (?:\w+ ){0,2}caindo|unha encravada|micose"
        r"|verrugas?|pintas? (?:na|no|nova) \w*|dermatite|psoriase|caspa|urticaria|vitiligo|rosacea|melasma"
        r"|coceira no corpo",
        ("dermatologia", *GENERAL),
    ),
    (
        r"dor no peito|palpitac\w*|coracao (?:\w+ )?(?:acelerado|disparado|disparando)|pressao alta|hipertens\w*"
        r"|arritmia|sopro no coracao|colesterol alto|check up do coracao|risco cirurgico",
        ("cardiologia", *GENERAL),
    ),
    (r"puericultura|teste do pezinho|consulta do (?:bebe|nenem)", ("pediatria",)),
    (
        r"dor de cabeca|enxaqueca|tonturas?|tont[oa]|labirintite|formigamentos?|tremores?|perda de memoria"
        r"|esquecimento",
        ("neurologia", *GENERAL),
    ),
    (
        r"dor de garganta|dor de ouvido|ouvido (?:doendo|entupido)|sinusite|rinite|nariz entupido|zumbido"
        r"|amigdalite|ronco|roncar|espinha de peixe|garganta inflamada",
        ("otorrinolaringologia", *GENERAL),
    ),
    (
        r"ansiedade|ansios[oa]|depressao|deprimid[oa]|insonia|crises? de panico|sindrome do panico",
        ("psiquiatria", *GENERAL),
    ),
    (
        r"dor (?:de|na|no) (?:barriga|estomago)|estomago (?:\w+ )?doendo|azia|gastrite|refluxo|prisao de ventre"
        r"|intestino preso|diarreia|vomit\w*|enjoo|nausea",
        ("gastroenterologia", *GENERAL),
    ),
    (r"hemorroidas?|fissura anal", ("coloproctologia", "gastroenterologia", *GENERAL)),
    (r"diabetes|diabetic[oa]|tireoide|hipotireoidismo|hipertireoidismo|obesidade", ("endocrinologia", *GENERAL)),
    (
        r"dor (?:pra|para|ao) urinar|ardencia (?:pra|para|ao) urinar|infeccao urinaria|prostata|pedra nos? rins?"
        r"|calculo renal|sangue na urina|dor (?:pra|para|ao) fazer xixi|ardendo (?:pra|para|ao) fazer xixi",
        ("urologia", *GENERAL),
    ),
    (
        r"febre|gripe|gripad[oa]|resfriad[oa]|tosse|mal estar|cansaco|check up|exames de rotina|consulta de rotina"
        r"|dor no corpo|inchaco nas pernas|pernas inchadas|varizes",
        GENERAL,
    ),
    (
        r"dor de dente|dente (?:\w+ )?(?:doendo|quebrado)|canal do dente|limpeza (?:dos|de) dentes"
        r"|aparelho (?:nos|dos) dentes",
        ("odontologia",),
    ),
)
# How a matched word is said back ("Para gravidez, ..." rather than "Para gravida, ...").
_SAID = {"gravida": "gravidez", "gripado": "gripe", "gripada": "gripe", "tonto": "tontura", "tonta": "tontura"}
# A child's ordinary complaint goes to Pediatria when the clinic has it ("meu filho está com febre"); an adult
# son ("meu filho de 30 anos") is no child.
_CHILD = re.compile(
    r"(?<![a-z0-9])(?:meu filho|minha filha|meus filhos|minhas filhas|meu bebe|minha bebe|o bebe|a bebe|nenem"
    r"|crianca|criancas|meu menino|minha menina)(?![a-z0-9])"
)
_ADULT_AGE = re.compile(r"(?<![a-z0-9])(?:1[89]|[2-9]\d|1\d\d) anos(?![a-z0-9])")
# Written with single spaces; matched across any run of them ("meu joelho, tá doendo" leaves two).
_COMPILED = tuple(
    (re.compile(rf"(?<![a-z0-9])(?:{pattern.replace(' ', r' +')})(?![a-z0-9])"), specialties)
    for pattern, specialties in _COMPLAINTS
)

# Specialties a clinic may not have: normalized name -> (display name, the words patients use for it).
KNOWN_SPECIALTIES: dict[str, tuple[str, tuple[str, ...]]] = {
    # The usual ones too: a clinic without one of them (or that stopped offering it) says so plainly.
    "cardiologia": ("Cardiologia", ("cardiologista", "cardiologia")),
    "dermatologia": ("Dermatologia", ("dermatologista", "dermatologia", "dermato")),
    "ortopedia": ("Ortopedia", ("ortopedista", "ortopedia")),
    "pediatria": ("Pediatria", ("pediatra", "pediatria")),
    "ginecologia": ("Ginecologia", ("ginecologista", "ginecologia", "gineco")),
    "oftalmologia": ("Oftalmologia", ("oftalmologista", "oftalmologia", "oftalmo", "oculista")),
    "clinica geral": ("Clínica Geral", ("clinico geral", "clinica geral")),
    "neurologia": ("Neurologia", ("neurologista", "neurologia", "neuro")),
    "psiquiatria": ("Psiquiatria", ("psiquiatra", "psiquiatria")),
    "psicologia": ("Psicologia", ("psicologo", "psicologa", "psicologia", "terapia", "terapeuta")),
    "odontologia": ("Odontologia", ("dentista", "odontologia", "odontologista", "odonto", "ortodontista")),
    "urologia": ("Urologia", ("urologista", "urologia")),
    "endocrinologia": ("Endocrinologia", ("endocrinologista", "endocrinologia", "endocrino")),
    "gastroenterologia": ("Gastroenterologia", ("gastroenterologista", "gastroenterologia", "gastro")),
    "otorrinolaringologia": ("Otorrinolaringologia", ("otorrino", "otorrinolaringologista", "otorrinolaringologia")),
    "reumatologia": ("Reumatologia", ("reumatologista", "reumatologia")),
    "pneumologia": ("Pneumologia", ("pneumologista", "pneumologia", "pneumo")),
    "nefrologia": ("Nefrologia", ("nefrologista", "nefrologia")),
    "geriatria": ("Geriatria", ("geriatra", "geriatria")),
    "oncologia": ("Oncologia", ("oncologista", "oncologia")),
    "infectologia": ("Infectologia", ("infectologista", "infectologia")),
    "mastologia": ("Mastologia", ("mastologista", "mastologia")),
    "angiologia": ("Angiologia", ("angiologista", "angiologia", "cirurgiao vascular")),
    "alergologia": ("Alergologia", ("alergista", "alergologista", "alergologia")),
    "obstetricia": ("Obstetrícia", ("obstetra", "obstetricia")),
    "nutricao": ("Nutrição", ("nutricionista", "nutricao")),
    "nutrologia": ("Nutrologia", ("nutrologo", "nutrologa", "nutrologia")),
    "fisioterapia": ("Fisioterapia", ("fisioterapeuta", "fisioterapia", "fisio")),
    "fonoaudiologia": ("Fonoaudiologia", ("fonoaudiologo", "fonoaudiologa", "fonoaudiologia", "fono")),
    "homeopatia": ("Homeopatia", ("homeopata", "homeopatia")),
    "acupuntura": ("Acupuntura", ("acupunturista", "acupuntura")),
    "hematologia": ("Hematologia", ("hematologista", "hematologia")),
    "cirurgia plastica": ("Cirurgia Plástica", ("cirurgiao plastico", "cirurgia plastica")),
    "coloproctologia": ("Coloproctologia", ("proctologista", "proctologia", "coloproctologista", "coloproctologia")),
    "cirurgia geral": ("Cirurgia Geral", ("cirurgiao geral", "cirurgia geral")),
    "medicina do trabalho": ("Medicina do Trabalho", ("medico do trabalho", "medicina do trabalho")),
}
_SPECIALTY_WORDS = {word: key for key, (_, words) in KNOWN_SPECIALTIES.items() for word in words}
_SPECIALTY_PATTERN = re.compile(
    r"(?<![a-z0-9])(" + "|".join(sorted(map(re.escape, _SPECIALTY_WORDS), key=len, reverse=True)) + r")(?![a-z0-9])"
)


def _plain(text: str) -> str:
    """`normalize` character by character, so a match's offsets are the same in the original text."""
    out = []
    for char in str(text or ""):
        base = unicodedata.normalize("NFD", char.lower())[:1] or " "
        out.append(base if base.isascii() and base.isalnum() else " ")
    return "".join(out)


@dataclass(frozen=True)
class Complaint:
    text: str  # the complaint as the patient wrote it, lower case ("dor de cabeça")
    specialty_id: int | None  # None: no specialty of the clinic sees it
    specialty: str  # the clinic's name for it, or the display name of the one it lacks


def _by_normalized_name(specialties: list[dict]) -> dict[str, dict]:
    return {normalize(sp["nome"]): sp for sp in specialties}


def complaint_find(text: str, specialties: list[dict]) -> Complaint | None:
    """The first complaint in `text` and the clinic's specialty for it (see the module docstring)."""
    plain = _plain(text)
    offered = _by_normalized_name(specialties)
    for pattern, wanted in _COMPILED:
        found = pattern.search(plain)
        if found is None:
            continue
        first_offered = next((name for name in wanted if name in offered), None)
        child = _CHILD.search(plain) and not _ADULT_AGE.search(plain)
        if child and "pediatria" in offered and first_offered in GENERAL:
            wanted = ("pediatria",)
        said = " ".join(str(text)[found.start() : found.end()].lower().split())
        said = _SAID.get(found.group(0), said)
        for name in wanted:
            if name in offered:
                return Complaint(said, offered[name]["id"], offered[name]["nome"])
        display = KNOWN_SPECIALTIES.get(wanted[0], (wanted[0].title(), ()))[0]
        return Complaint(said, None, display)
    return None


def missing_specialty_find(text: str, specialties: list[dict]) -> str | None:
    """The display name of a specialty named in `text` that the clinic does not have ("Neurologia"), or None."""
    offered = _by_normalized_name(specialties)
    for found in _SPECIALTY_PATTERN.finditer(_plain(text)):
        key = _SPECIALTY_WORDS[found.group(1)]
        if key not in offered:
            return KNOWN_SPECIALTIES[key][0]
    return None


# Health plans a patient may name that a clinic may not take: normalized words -> display name. A plan the clinic
# takes is matched by its own name first (rag_agent.matching); this list only lets the bot say "não atendemos".
KNOWN_PLANS: dict[str, str] = {
    "hapvida": "Hapvida",
    "notredame": "NotreDame Intermédica",
    "notre dame": "NotreDame Intermédica",
    "intermedica": "NotreDame Intermédica",
    "golden cross": "Golden Cross",
    "cassi": "Cassi",
    "geap": "Geap",
    "prevent senior": "Prevent Senior",
    "care plus": "Care Plus",
    "omint": "Omint",
    "allianz": "Allianz Saúde",
    "mediservice": "Mediservice",
    "assim saude": "Assim Saúde",
    "sao francisco saude": "São Francisco Saúde",
    "medsenior": "MedSênior",
    "unimed": "Unimed",
    "amil": "Amil",
    "bradesco": "Bradesco Saúde",
    "sulamerica": "SulAmérica",
    "sul america": "SulAmérica",
    "porto seguro": "Porto Seguro Saúde",
    "iamspe": "Iamspe",
    "sus": "SUS",
}
_PLAN_PATTERN = re.compile(
    r"(?<![a-z0-9])(" + "|".join(sorted(map(re.escape, KNOWN_PLANS), key=len, reverse=True)) + r")(?![a-z0-9])"
)


def missing_plan_find(text: str, plans: list[dict]) -> str | None:
    """The display name of a health plan named in `text` that the clinic does not take ("Hapvida"), or None."""
    taken = {normalize(plan["nome"]) for plan in plans}
    for found in _PLAN_PATTERN.finditer(" ".join(_plain(text).split())):
        display = KNOWN_PLANS[found.group(1)]
        if normalize(display) not in taken and not any(normalize(display) in name for name in taken):
            return display
    return None
