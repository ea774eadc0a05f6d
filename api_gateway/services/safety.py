"""Warning signs of an emergency in a patient's message, found by fixed rules before anything else.

A front desk on WhatsApp is not an emergency service, and a patient may not know that. When a message describes a
warning sign (chest pain, shortness of breath, signs of a stroke, fainting, seizure, heavy bleeding, poisoning,
a severe allergic reaction) or thoughts of self-harm, the bot must say at once where to get help: SAMU 192 or the
nearest emergency room; CVV 188 for self-harm. The check is a rule, not the LLM: it costs no tokens, works in
economy mode and offline, and cannot be talked out of answering by a model that misread the message.

It errs on the side of warning: a false alarm costs one extra paragraph, a missed one can cost a life. Only a
clear past-tense history ("tive um infarto em 2019", "minha mãe teve AVC ano passado") with no sign that it is
happening now is left alone, so patients booking a follow-up are not warned on every message.
"""

from __future__ import annotations

import re

from api_gateway.services.nlu.dates import fold

MEDICAL = "medical"
SELF_HARM = "self_harm"


def _words(pattern: str) -> re.Pattern:
    return re.compile(rf"(?<![a-z0-9])(?:{pattern})(?![a-z0-9])")


_MEDICAL = _words(
    # chest pain and the heart
    r"dor(?:es)? (?:forte |muito forte |intensa |no meio )?(?:no|do) peito|dor no coracao|aperto no peito"
    r"|pressao no peito|peito (?:apertado|doendo)|infart\w*|enfart\w*|ataque cardiaco|parada cardiaca"
    # breathing
    r"|falta de ar|sem ar(?! condicionado)|nao (?:estou |to )?consigo respirar|nao (?:esta|ta) conseguindo respirar"
    r"|dificuldade (?:para|pra|de) respirar|sufocad\w*|sufocando|engasgad\w*|engasgando|garganta fechando"
    r"|lingua inchada|anafila\w*|reacao alergica (?:grave|forte)|choque anafilatico"
    # stroke
    r"|avc|derrame|boca torta|rosto torto|face torta|perd\w* (?:a )?forca (?:do|no|de um|em um) (?:braco|lado|perna)"
    r"|lado do corpo (?:dormente|paralisado)|nao consegue falar|fala enrolada"
    # consciousness and seizures
    r"|desmai\w*|perdeu (?:a )?consciencia|inconsciente|nao (?:acorda|responde mais)|convuls\w*|ataque epileptico"
    r"|crise convulsiva"
    # bleeding, poisoning, injuries
    r"|hemorragia|sangramento (?:forte|intenso|muito forte|que nao para)|sangrando muito|sangue que nao para"
    r"|vomit\w* sangue|tossindo sangue|tosse com sangue|overdose|envenenad\w*|envenenamento|intoxicad\w*"
    r"|intoxicacao|tomei veneno"
    r"|bebeu (?:agua sanitaria|veneno|produto de limpeza)|picad\w* de (?:cobra|escorpiao|aranha)"
    r"|mordid\w* de cobra|fratura exposta|queimadura grave|atropelad\w*|baleado|esfaquead\w*"
    r"|bateu a cabeca e (?:desmaiou|esta vomitando)|febre (?:muito alta|de 40|de 41)|emergencia medica"
)
_SELF_HARM = _words(
    r"(?:quero|penso em|pensando em|vontade de) (?:morrer|sumir pra sempre)|me matar|suicid\w*"
    r"|tirar (?:a )?minha (?:propria )?vida|acabar com (?:a )?minha vida|nao quero mais viver"
    r"|nao aguento mais viver|me machucar de proposito|(?:vou|quero|vontade de) me cortar|automutila\w*"
)
# A history, not an emergency: "tive um infarto em 2019", "meu pai teve AVC ano passado".
_PAST = _words(
    r"ano passado|anos atras|meses atras|semanas atras|mes passado|ha \d+ (?:anos?|meses|semanas)|em (?:19|20)\d\d"
    r"|ja tive|ja teve|historico|sequela\w*|acompanhamento|pos (?:avc|infarto)|depois do (?:avc|infarto|derrame)"
)
_NOW = _words(r"agora|neste momento|nesse momento|urgente|socorro|ajuda|hoje|esta tendo|ta tendo|estou tendo")


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", fold(text or "")).split())


def emergency_kind(text: str) -> str | None:
    """`SELF_HARM`, `MEDICAL` or None for a patient's message."""
    plain = _plain(text)
    if not plain:
        return None
    if _SELF_HARM.search(plain):
        return SELF_HARM
    if _MEDICAL.search(plain) and not (_PAST.search(plain) and not _NOW.search(plain)):
        return MEDICAL
    return None
