"""Warning signs of an emergency in a patient's message, found by fixed rules before anything else.

A front desk on WhatsApp is not an emergency service, and a patient may not know that. When a message describes a
warning sign (chest pain, shortness of breath, signs of a stroke, fainting, seizure, heavy bleeding, poisoning,
a severe allergic reaction) or thoughts of self-harm, the bot must say at once where to get help: SAMU 192 or the
nearest emergency room; CVV 188 for self-harm. The check is a rule, not the LLM: it costs no tokens, works in
economy mode and offline, and cannot be talked out of answering by a model that misread the message.

It errs on the side of warning: a false alarm costs one extra paragraph, a missed one can cost a life. Only a
past-tense history ("tive um infarto em 2019", "minha mãe teve AVC em março") or a figure of speech ("quase tive
um infarto com o preço kkk", "sem ar de tanto rir") with no sign that it is happening now ("agora", "socorro")
is left alone, so patients booking a follow-up are not warned on every message.
"""

from __future__ import annotations

import re

from api_gateway.services.nlu.dates import fold

MEDICAL = "medical"
SELF_HARM = "self_harm"


def _words(pattern: str) -> re.Pattern:
    return re.compile(rf"(?<![a-z0-9])(?:{pattern})(?![a-z0-9])")


_A_LOT = r"(?:muito|mt|mto|demais|bastante|sem parar)"
_MEDICAL = _words(
    # chest pain and the heart
    r"dor(?:es)? (?:\w+ ){0,3}(?:no|do|nos) peito|dor no coracao|aperto no peito|pressao no peito"
    r"|pontada (?:\w+ ){0,5}peito"
    r"|peito (?:\w+ ){0,2}(?:apertado|apertando|doendo|doi|queimando)|dor (?:\w+ ){0,4}braco esquerdo"
    r"|infart\w*|enfart\w*|ataque cardiaco|parada cardiaca"
    # breathing
    r"|falta de ar|faltando ar|falta o ar|sem ar(?! condicionado)"
    r"|nao (?:estou |to |ta |esta )?(?:consigo|conseguindo) respirar"
    r"|nao consegue respirar|dificuldade (?:para|pra|de) respirar|sufocad\w*|sufocando|engasgad\w*|engasgando"
    r"|garganta fechando|lingua inchada|anafila\w*|reacao alergica (?:grave|forte)|choque anafilatico"
    # stroke
    r"|avc|derrame(?! (?:no|nos|de) olhos?)|boca torta|rosto torto|face torta"
    r"|perd\w* (?:a )?forca (?:do|no|de um|em um|dos|nos) (?:bracos?|lado|pernas?)"
    r"|nao (?:consigo|consegue|conseguindo) (?:mexer|levantar|sentir) (?:o|a|os|as|um|uma) (?:bracos?|pernas?|lado)"
    r"|lado do corpo (?:dormente|paralisado)|nao consegue falar|fala enrolada|falando enrolado|falando embolado"
    # consciousness and seizures
    r"|desmai\w*|perdeu (?:a )?consciencia|inconsciente|nao (?:acorda|responde mais)|convuls\w*|ataque epileptico"
    r"|crise convulsiva|(?:se )?tremendo tod[oa] e babando|babando e (?:se )?tremendo"
    # bleeding, poisoning, injuries
    rf"|hemorragia|sangramento (?:forte|intenso|{_A_LOT}|que nao para)|sangrando {_A_LOT}|sangue que nao para"
    r"|nao para de sangrar|vomit\w* sangue|tossindo sangue|tosse com sangue|overdose|envenenad\w*|envenenamento"
    r"|intoxicad\w*|intoxicacao|tomei veneno|(?:tomou|bebeu|engoliu|tomei|bebi|engoli) (?:um pouco de )?"
    r"(?:agua sanitaria|veneno|chumbinho|soda caustica|produto de limpeza|desinfetante)"
    r"|(?:tomou|tomei|engoliu|engoli) (?:um monte|muitos|varios|todos os|uma cartela|a cartela) (?:de )?"
    r"(?:remedios?|comprimidos?|pilulas?)"
    r"|picad\w* de (?:cobra|escorpiao|aranha)|mordid\w* de cobra|fratura exposta|queimadura grave|atropelad\w*"
    r"|baleado|esfaquead\w*|(?:bati|bateu) a cabeca e (?:desmai\w*|apag\w*|vomit\w*)"
    r"|febre (?:muito alta|de 40|de 41)|emergencia medica|socorro"
)
_SELF_HARM = _words(
    r"(?:quero|queria|penso em|pensando em|vontade de|so quero|so queria) (?:morrer|sumir)"
    r"(?! de (?:vergonha|rir|fome|sono|calor|frio|saudade|tedio|medo|raiva|cansaco|inveja|amor|curiosidade))"
    r"|me matar|suicid\w*|tirar (?:a )?minha (?:propria )?vida|acabar com (?:a )?minha vida|nao quero mais viver"
    r"|nao aguento mais viver|ninguem (?:ia|vai|iria) sentir (?:a )?minha falta|ninguem (?:ia|vai|iria) sentir falta"
    r"|me machucar de proposito|(?:vou|quero|vontade de) me cortar(?! (?:o|a|os|as|meu|minha|um|uma) )"
    r"|automutila\w*"
)
# A history, not an emergency: "tive um infarto em 2019", "meu pai teve AVC em março", "desde o infarto".
_MONTHS = r"janeiro|fevereiro|marco|abril|maio|junho|julho|agosto|setembro|outubro|novembro|dezembro"
_PAST = _words(
    r"ano passado|anos atras|meses atras|semanas atras|mes passado|semana passada|ha \d+ (?:anos?|meses|semanas)"
    rf"|em (?:19|20)\d\d|em (?:{_MONTHS})|ja tive|ja teve|tive|teve|historico|sequela\w*|acompanhamento|retorno"
    r"|pos (?:avc|infarto)|depois do (?:avc|infarto|derrame)|desde o (?:avc|infarto|derrame)"
)
# Words of a joke or a figure of speech: "quase tive um infarto com o preço kkk", "sem ar de tanto rir".
_FIGURATIVE = _words(
    r"kkk+|rsrs\w*|ha(?:ha)+|quase (?:tive|me deu|infartei|morri|desmaiei)|de tanto|de sono|de rir|de vergonha"
    r"|prevenir|prevencao|risco de|todo mes|todos os meses|menstrua\w*"
)
_NOW = _words(r"agora|neste momento|nesse momento|urgente|socorro|esta tendo|ta tendo|estou tendo|to tendo")


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", fold(text or "")).split())


def emergency_kind(text: str) -> str | None:
    """`SELF_HARM`, `MEDICAL` or None for a patient's message."""
    plain = _plain(text)
    if not plain:
        return None
    if _SELF_HARM.search(plain):
        return SELF_HARM
    if not _MEDICAL.search(plain):
        return None
    if (_PAST.search(plain) or _FIGURATIVE.search(plain)) and not _NOW.search(plain):
        return None
    return MEDICAL
    return None
