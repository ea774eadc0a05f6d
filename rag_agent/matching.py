"""Fuzzy matching of patient text against the clinic's names (pure functions over the cached catalogue).

Two entry points with different strictness:

* `MatchIndex.find(kind, query)` is for text already known to name one thing (the answer to "qual médico?"):
  partial names, prefixes ("cardio") and typos ("cardiolgia") are accepted.
* `MatchIndex.mentions(text)` looks for names INSIDE a free sentence, so it must not see a doctor in every first
  name or a specialty in every word. Its rules:
    - specialties, plans and exams match on word n-grams against their full names, a small alias table
      ("cardiologista", "oculista", "ultrassom") and a name's head word when that word is distinctive
      ("hemograma", "bradesco": at least 5 letters, unique among the names of that kind, not a generic word);
      a single word of 5+ letters may also be the prefix of a one-word name ("cardio", "dermato").
      Words of 4 letters or fewer only match exactly ("amil", "tsh"), so "mil" never becomes "Amil".
    - a doctor is mentioned only (a) right after a title (dr, dra, doutor, doutora), where a first name or
      surname is enough ("dra. Ana"), or (b) as a full name of two or more words ("Ana Souza"). A patient's own
      first name ("meu nome é Carlos Eduardo") is therefore never taken for Dr. Carlos Mendes.
"""

import re
import unicodedata
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process

KINDS = ("especialidade", "medico", "convenio", "exame")
TITLES = frozenset({"dr", "dra", "doutor", "doutora", "doctor", "doc"})
# Words that carry no identity: dropped from names and queries before comparing.
STOPWORDS = frozenset(
    {"a", "o", "as", "os", "de", "da", "do", "das", "dos", "e", "em", "com", "para", "pra", "um", "uma"}
)
# Head words too common to identify an item on their own.
GENERIC_WORDS = frozenset(
    {"clinica", "consulta", "exame", "exames", "teste", "medico", "medica", "especialidade", "saude", "raio", "tipo"}
)

FIND_THRESHOLD = 80.0
MENTION_THRESHOLD = 88.0
SHORT_WORD = 4  # words this short only match exactly

# Normalized official name -> normalized aliases. Applied only when that name exists in the catalogue.
ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "especialidade": {
        # with the lay names patients use ("médico do coração", "médico de olho")
        "cardiologia": ("cardiologista", "cardio", "cardiologico", "medico do coracao", "medico de coracao"),
        "dermatologia": ("dermatologista", "dermato", "dermatologico", "medico de pele", "medico da pele"),
        "pediatria": ("pediatra", "pediatrico", "crianca", "criancas", "infantil", "medico de crianca"),
        "ortopedia": ("ortopedista", "ortopedico", "orto", "medico de osso", "medico dos ossos", "medico do osso"),
        "ginecologia": ("ginecologista", "gineco", "ginecologico", "medico de mulher", "medico da mulher"),
        "clinica geral": ("clinico geral", "clinica medica", "clinico"),
        "oftalmologia": (
            "oftalmologista",
            "oftalmo",
            "oculista",
            "oftalmologico",
            "medico de olho",
            "medico dos olhos",
            "medico do olho",
            "medico de vista",
            "medico da vista",
        ),
    },
    "convenio": {
        "sulamerica": ("sul america",),
        "bradesco saude": ("bradesco",),
        "porto seguro saude": ("porto seguro",),
    },
    "exame": {
        "ultrassonografia abdominal": ("ultrassom", "ultrassonografia", "ultrassom abdominal", "usg"),
        "eletrocardiograma": ("eletro", "ecg"),
        "ecocardiograma": ("eco", "ecocardio"),
        "raio x de torax": ("raio x", "rx", "raio x do torax", "raiox", "radiografia", "chapa do pulmao"),
        "tsh": ("exame de tireoide", "exame da tireoide", "tireoide tsh", "hormonio da tireoide"),
        "urina tipo 1": ("exame de urina", "urina", "eas"),
        "teste ergometrico": ("ergometrico", "teste de esforco", "teste da esteira"),
        "colesterol total e fracoes": ("colesterol",),
        "glicemia em jejum": ("glicemia", "glicose"),
        "hemograma completo": ("hemograma",),
    },
}

_NON_WORD = re.compile(r"[^a-z0-9]+")


def normalize(text: str) -> str:
    """Lower case, no accents, punctuation as spaces: 'Dra. Ana Souza' -> 'dra ana souza'."""
    decomposed = unicodedata.normalize("NFKD", str(text or "").lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NON_WORD.sub(" ", plain).strip()


def _words(text: str) -> list[str]:
    return [w for w in normalize(text).split() if w not in STOPWORDS]


def doctor_name_words(name: str) -> list[str]:
    """ "Dra. Beatriz Lima" -> ["beatriz", "lima"]: the words patients name a doctor by (the first is the first
    name, as in "a da beatriz")."""
    return [w for w in _words(name) if w not in TITLES]


@dataclass(frozen=True)
class Match:
    kind: str
    id: int
    name: str
    score: float


@dataclass
class _Candidate:
    text: str  # normalized, stopwords removed
    id: int
    name: str  # display name


@dataclass
class _KindIndex:
    kind: str
    candidates: list[_Candidate] = field(default_factory=list)
    # For mentions: exact phrases (aliases, distinctive head words) -> (id, name).
    phrases: dict[str, tuple[int, str]] = field(default_factory=dict)
    # For doctors: single name parts ("ana", "souza") -> [(id, name)].
    name_parts: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    part_list: list[str] = field(default_factory=list)


def _word_similarity(a: str, b: str) -> float:
    if a == b:
        return 100.0
    if len(a) <= SHORT_WORD or len(b) <= SHORT_WORD:
        return 0.0
    return fuzz.ratio(a, b)


def _find_score(query: str, candidate: str) -> float:
    """Lenient score for a query known to name one item: whole-string, per-word and prefix similarity."""
    if not query or not candidate:
        return 0.0
    if query == candidate:
        return 100.0
    compact = query.replace(" ", "")
    whole = 0.0
    if len(compact) > SHORT_WORD:  # "mil" is not a typo of "amil"
        whole = max(fuzz.ratio(query, candidate), fuzz.ratio(compact, candidate.replace(" ", "")))
    q_words, c_words = query.split(), candidate.split()
    per_word = []
    for q in q_words:
        best = 0.0
        for c in c_words:
            if c.startswith(q) and len(q) >= 3:
                # A prefix ("cardio", "ana") is a strong hint; longer prefixes a little stronger.
                best = max(best, 90.0 + 10.0 * len(q) / len(c))
            else:
                best = max(best, _word_similarity(q, c))
        per_word.append(best)
    words_score = sum(per_word) / len(per_word)
    # Covering more of the candidate breaks ties ("ana souza" over "ana" alone).
    coverage = min(1.0, len(q_words) / len(c_words))
    return max(whole, words_score) - 10.0 * (1.0 - coverage)


class MatchIndex:
    """Normalized candidates precomputed once per catalogue version."""

    def __init__(self, catalog: dict):
        self.kinds: dict[str, _KindIndex] = {kind: _KindIndex(kind) for kind in KINDS}
        self.max_phrase_words = 1
        self.first_names: dict[str, list[tuple[int, str]]] = {}
        self._add_items("especialidade", catalog.get("especialidades", []))
        self._add_items("convenio", catalog.get("convenios", []))
        self._add_items("exame", catalog.get("exames", []))
        self._add_doctors(catalog.get("medicos", []))
        # One flat list of every phrase, so each word n-gram costs one rapidfuzz call whatever the number of kinds.
        self._phrase_texts: list[str] = []
        self._phrase_meta: list[tuple[str, int, str, int]] = []  # kind, id, name, words
        self._exact: dict[str, list[tuple[str, int, str]]] = {}
        self._prefix_targets: list[tuple[str, str, int, str]] = []  # one-word names of non-doctors
        for kind, index in self.kinds.items():
            index.part_list = list(index.name_parts)
            for phrase, (ident, name) in index.phrases.items():
                self._phrase_texts.append(phrase)
                self._phrase_meta.append((kind, ident, name, len(phrase.split())))
                self._exact.setdefault(phrase, []).append((kind, ident, name))
                if kind != "medico" and " " not in phrase:
                    self._prefix_targets.append((phrase, kind, ident, name))

    def _add_items(self, kind: str, items: list[dict]) -> None:
        index = self.kinds[kind]
        heads: dict[str, list[tuple[int, str]]] = {}
        for item in items:
            norm = " ".join(_words(item["nome"]))
            index.candidates.append(_Candidate(norm, item["id"], item["nome"]))
            index.phrases[norm] = (item["id"], item["nome"])
            # Keyed by the full normalized name: "raio x de torax", whose "de" _words drops.
            for alias in ALIASES.get(kind, {}).get(normalize(item["nome"]), ()):
                if alias.split()[0] not in GENERIC_WORDS:  # "médico de olho" only as a whole phrase: "médico"
                    index.candidates.append(_Candidate(" ".join(_words(alias)), item["id"], item["nome"]))
                index.phrases[" ".join(_words(alias))] = (item["id"], item["nome"])
            head = norm.split()[0] if norm else ""
            if len(norm.split()) > 1:
                heads.setdefault(head, []).append((item["id"], item["nome"]))
        for head, owners in heads.items():
            if len(owners) == 1 and len(head) >= 5 and head not in GENERIC_WORDS and head not in index.phrases:
                index.phrases[head] = owners[0]
        self.max_phrase_words = max([self.max_phrase_words, *(len(p.split()) for p in index.phrases)])

    def _add_doctors(self, doctors: list[dict]) -> None:
        index = self.kinds["medico"]
        for doctor in doctors:
            words = doctor_name_words(doctor["nome"])
            if words:
                self.first_names.setdefault(words[0], []).append((doctor["id"], doctor["nome"]))
            index.candidates.append(_Candidate(" ".join(words), doctor["id"], doctor["nome"]))
            for part in words:
                if not part.isdigit():
                    index.name_parts.setdefault(part, []).append((doctor["id"], doctor["nome"]))
            if len(words) > 2:  # "ana souza" for "Dra. Ana Maria Souza"
                index.phrases[f"{words[0]} {words[-1]}"] = (doctor["id"], doctor["nome"])
            index.phrases[" ".join(words)] = (doctor["id"], doctor["nome"])
        self.max_phrase_words = max([self.max_phrase_words, *(len(p.split()) for p in index.phrases)])

    # -- lenient lookup -------------------------------------------------------------------------------------------

    def find(self, kind: str, query: str, *, limit: int = 3, allowed_ids: set[int] | None = None) -> list[Match]:
        words = _words(query)
        if kind == "medico":
            words = [w for w in words if w not in TITLES]
        text = " ".join(words)
        if not text:
            return []
        best: dict[int, Match] = {}
        for candidate in self.kinds[kind].candidates:
            if allowed_ids is not None and candidate.id not in allowed_ids:
                continue
            score = _find_score(text, candidate.text)
            if score >= FIND_THRESHOLD and (candidate.id not in best or score > best[candidate.id].score):
                best[candidate.id] = Match(kind, candidate.id, candidate.name, round(min(score, 100.0), 1))
        return sorted(best.values(), key=lambda m: (-m.score, m.name))[:limit]

    def doctor_by_first_name(self, word: str) -> Match | None:
        """The one doctor whose first name this word is ("fernanda", or "fernada" for 6+ letters); None when no
        doctor or several have it. For the few places where only a doctor fits ("e a fernanda?")."""
        word = normalize(word)
        found = self.first_names.get(word)
        score = 100.0
        if found is None and len(word) >= 6:
            close = process.extractOne(word, list(self.first_names), scorer=fuzz.ratio, score_cutoff=88)
            if close:
                found, score = self.first_names[close[0]], close[1]
        if not found or len(found) > 1:
            return None
        return Match("medico", found[0][0], found[0][1], round(score, 1))

    # -- mentions inside a sentence -------------------------------------------------------------------------------

    def mentions(self, text: str) -> dict[str, list[Match]]:
        raw = normalize(text).split()
        found: dict[str, dict[int, Match]] = {kind: {} for kind in KINDS}

        def add(kind: str, ident: int, name: str, score: float) -> None:
            current = found[kind].get(ident)
            if current is None or score > current.score:
                found[kind][ident] = Match(kind, ident, name, round(score, 1))

        self._doctors_after_titles(raw, add)
        words = [w for w in raw if w not in STOPWORDS and w not in TITLES]
        # Multi-word names are compared with stopwords removed from both sides ("raio x de torax" -> "raio x torax").
        for size in range(min(self.max_phrase_words, len(words)), 0, -1):
            for start in range(len(words) - size + 1):
                gram = " ".join(words[start : start + size])
                self._match_gram(gram, size, add)
        return {kind: sorted(found[kind].values(), key=lambda m: (-m.score, m.name)) for kind in KINDS}

    def _match_gram(self, gram: str, size: int, add) -> None:
        exact = self._exact.get(gram)
        if exact is not None:
            for kind, ident, name in exact:
                if kind != "medico" or size >= 2:  # a lone first name is not a doctor mention
                    add(kind, ident, name, 100.0)
            return
        if len(gram.replace(" ", "")) <= SHORT_WORD:
            return
        best: dict[str, tuple[float, int]] = {}
        for _, score, position in process.extract(
            gram, self._phrase_texts, scorer=fuzz.ratio, score_cutoff=MENTION_THRESHOLD, limit=None
        ):
            kind = self._phrase_meta[position][0]
            if (kind != "medico" or size >= 2) and score > best.get(kind, (0.0, -1))[0]:
                best[kind] = (score, position)
        for score, position in best.values():
            kind, ident, name, words = self._phrase_meta[position]
            # A phrase of another length only counts when it is nearly identical ("sul america" / "sulamerica").
            if words == size or (abs(words - size) <= 1 and score >= 92):
                add(kind, ident, name, score)
        if size == 1 and len(gram) >= 5:
            for phrase, kind, ident, name in self._prefix_targets:
                if phrase.startswith(gram):
                    add(kind, ident, name, 90.0 + 10.0 * len(gram) / len(phrase))

    def _doctors_after_titles(self, raw: list[str], add) -> None:
        parts = self.kinds["medico"].name_parts
        if not parts:
            return
        part_names = self.kinds["medico"].part_list
        for i, word in enumerate(raw):
            if word not in TITLES:
                continue
            following = [w for w in raw[i + 1 : i + 3] if w not in STOPWORDS]
            scores: dict[int, tuple[float, str]] = {}
            for position, candidate in enumerate(following):
                if len(candidate) <= SHORT_WORD:
                    matches = [(candidate, 100.0)] if candidate in parts else []
                else:
                    matches = [
                        (name, score)
                        for name, score, _ in process.extract(
                            candidate, part_names, scorer=fuzz.ratio, score_cutoff=85, limit=5
                        )
                    ]
                for part, score in matches:
                    for ident, name in parts[part]:
                        # The word right after the title names the doctor; a matching second word only confirms.
                        if position == 0:
                            scores[ident] = (max(score, scores.get(ident, (0.0, name))[0]), name)
                        elif ident in scores:
                            scores[ident] = (scores[ident][0] + score / 10, name)
                if position == 0 and not matches:
                    break
            for ident, (score, name) in scores.items():
                add("medico", ident, name, min(100.0, score * 0.9 + 10))
