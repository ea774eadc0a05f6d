"""What a receptionist knows without being a doctor: which specialty sees a common complaint, and the names of
specialties a clinic may not have.

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
_COMPLAINTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        r"dor (?:nas|na|de|no) (?:costas|coluna|lombar)|dor (?:no|nos|na|nas) (?:joelhos?|ombros?|quadril|tornozelos?"
        r"|pes?|punhos?|cotovelos?|juntas|articulacoes)|torci o \w+|torcao|entorse|tendinite|hernia de disco"
        r"|bico de papagaio|lombalgia|bursite|artrose|osteoporose",
        ("ortopedia", "reumatologia", *GENERAL),
    ),
    (
        r"manchas? (?:na|no|de) (?:pele|rosto|corpo)|acne|espinhas?|coceira|alergia na pele|queda de cabelo"
        r"|cabelo caindo|unha encravada|micose|verrugas?|pintas?|dermatite|psoriase|caspa|urticaria|vitiligo"
        r"|rosacea|melasma",
        ("dermatologia", *GENERAL),
    ),
    (
        r"dor no peito|palpitac\w*|coracao (?:acelerado|disparado|disparando)|pressao alta|hipertens\w*|arritmia"
        r"|sopro no coracao|colesterol alto|check up do coracao|risco cirurgico",
        ("cardiologia", *GENERAL),
    ),
    (
        r"(?:vista|visao|olhos?) (?:(?:esta|ta|estao|tao|anda|fica|ficou|meio) )?(?:embacad[oa]s?|turv[oa]s?)"
        r"|enxergando mal|(?:nao|mal) enxergo|enxergar (?:mal|pouco)"
        r"|dor (?:no|nos) olhos?|olhos? vermelhos?|olhos? (?:ardendo|cocando)|conjuntivite|grau (?:dos|do) oculos"
        r"|trocar (?:os )?oculos|oculos novos?|catarata|glaucoma|vista cansada|tercol",
        ("oftalmologia", *GENERAL),
    ),
    (
        r"colicas? menstrua\w*|menstrua\w* atrasad\w*|atraso menstrual|corrimento|preventivo|papanicolau|pre natal"
        r"|gravidez|gravida|anticoncepcional|menopausa|mioma|ovario policistico",
        ("ginecologia", "obstetricia", *GENERAL),
    ),
    (r"puericultura|teste do pezinho|consulta do (?:bebe|nenem)", ("pediatria",)),
    (
        r"dor de cabeca|enxaqueca|tonturas?|labirintite|formigamentos?|tremores?|perda de memoria|esquecimento",
        ("neurologia", *GENERAL),
    ),
    (
        r"dor de garganta|dor de ouvido|ouvido (?:doendo|entupido)|sinusite|rinite|nariz entupido|zumbido"
        r"|amigdalite|ronco|roncar",
        ("otorrinolaringologia", *GENERAL),
    ),
    (
        r"ansiedade|ansios[oa]|depressao|deprimid[oa]|insonia|crises? de panico|sindrome do panico",
        ("psiquiatria", *GENERAL),
    ),
    (
        r"dor (?:de|na) barriga|dor no estomago|azia|gastrite|refluxo|prisao de ventre|intestino preso|diarreia"
        r"|hemorroidas?",
        ("gastroenterologia", *GENERAL),
    ),
    (r"diabetes|diabetic[oa]|tireoide|hipotireoidismo|hipertireoidismo|obesidade", ("endocrinologia", *GENERAL)),
    (
        r"dor (?:pra|para|ao) urinar|ardencia (?:pra|para|ao) urinar|infeccao urinaria|prostata|pedra nos? rins?"
        r"|calculo renal",
        ("urologia", *GENERAL),
    ),
    (
        r"febre|gripe|gripad[oa]|resfriad[oa]|resfriado|tosse|mal estar|cansaco|check up|exames de rotina"
        r"|consulta de rotina|dor no corpo",
        GENERAL,
    ),
    (
        r"dor de dente|dente (?:doendo|quebrado)|canal do dente|limpeza (?:dos|de) dentes|aparelho (?:nos|dos) dentes",
        ("odontologia",),
    ),
)
# A child's ordinary complaint goes to Pediatria when the clinic has it ("meu filho está com febre").
_CHILD = re.compile(
    r"(?<![a-z0-9])(?:meu filho|minha filha|meus filhos|minhas filhas|meu bebe|minha bebe|o bebe|a bebe|nenem"
    r"|crianca|criancas|meu menino|minha menina|filho de \d+ anos|filha de \d+ anos)(?![a-z0-9])"
)
_COMPILED = tuple(
    (re.compile(rf"(?<![a-z0-9])(?:{pattern})(?![a-z0-9])"), specialties) for pattern, specialties in _COMPLAINTS
)

# Specialties a clinic may not have: normalized name -> (display name, the words patients use for it).
KNOWN_SPECIALTIES: dict[str, tuple[str, tuple[str, ...]]] = {
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
        if _CHILD.search(plain) and "pediatria" in offered and first_offered in (None, *GENERAL):
            wanted = ("pediatria",)
        said = " ".join(str(text)[found.start() : found.end()].lower().split())
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
