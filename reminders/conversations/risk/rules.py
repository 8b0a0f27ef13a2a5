"""The rule layer of the risk screen: patterns by category, read in context.

Every pattern runs over one normalised clause (:mod:`reminders.conversations.risk.text`). A
crisis pattern found in a clause is then read in its context:

- a **negation** just before it ("not", "never", "no thoughts of", "no tengo ganas de") makes it
  an urgent-review item, not a page;
- a **past** marker in the clause ("a year ago", "used to", "in high school", "hace un año"),
  without a present one ("again", "last night", "tonight", "otra vez"), makes it a review item;
- **another person** as its subject ("my brother died by suicide") makes it a review item,
  unless the writer reports that person in danger now (a relative writing about the patient:
  "this is his wife, he passed out and won't wake up"), which is a third-party crisis.

A miss is far worse than a false alarm: context only ever moves a finding from crisis to
review, never to nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reminders.conversations.risk.patterns_en import PATTERNS_EN
from reminders.conversations.risk.patterns_es import PATTERNS_ES
from reminders.conversations.risk.vocab import Pattern

PATTERNS: list[Pattern] = [*PATTERNS_EN, *PATTERNS_ES]

# --- context ----------------------------------------------------------------------------------

_NEGATION = re.compile(
    r"\b(?:not|no|never|nor|none|nothing|without|zero|no more|free (?:of|from)|clean (?:of|from)|"
    r"havent had any|have not had any|hasnt been any|"
    r"do not|does not|did not|am not|is not|"
    r"are not|was not|will not|would not|could not|have not|has not|had not|nope|nah|"
    r"no longer having|denies|deny|nunca|jamas|ni|sin|tampoco|no tengo|no estoy|no pienso|"
    r"no quiero|no me|no he|no voy a|no es|no son)"
    r"(?: (?:having|any|thoughts?|of|about|abt|feeling|feel|really|thinking|think|going|to|"
    r"planning|plan|plans|gonna|want|wanting|urges?|intention|intent|ideation|a|the|i|am|would|"
    r"will|ever|even|been|have|had|actively|serious|seriously|real|tengo|tener|pensamientos?|de|"
    r"en|ganas|intencion|quiero|voy|a|pienso|nada|ningun|ninguna|me|he|hecho|lo|kms|sh|self|"
    r"harm|suicidal|suicide|pensado|ideas?|deseos?|intenciones|soy|estoy|siento|he sido)){0,4} $"
)
_NEGATED_ADJ = re.compile(
    r"\b(?:not|no|never|nunca|no estoy|no soy)(?: (?:really|at all|actively|feeling|being|"
    r"been|very|nada|para nada|i am|im|am|ever|even))* (?:suicidal|suicida|thinking|going to|"
    r"planning|want\w*|wish\w*|in danger|unsafe|en peligro|pensando|planeando)\b"
)
_PAST = re.compile(
    r"\b(?:attempts? (?:was|were|at|in)|(?:at|when i was) \d+|in (?:19|20)\d\d|(?:that|it) was "
    r"(?:19|20)\d\d|\d+ (?:years?|months?|yrs?) (?:clean|sober|free|since)|clean (?:from|of) |"
    r"last (?:winter|spring|summer|fall|autumn)|been gone|(?:that|it) passed|during covid|"
    r"a while back|(?:was|got|been) hospitali[sz]ed|nothing since|never went through|"
    r"went through a (?:period|phase|time)|a (?:period|phase) (?:where|when)|my last (?:episode|"
    r"crisis|depressive|depression|breakdown|relapse)|teenage me|as a teen|in my \d+ ?s\b|"
    r"in my (?:teens|twenties|thirties|forties)|en (?:19|20)\d\d|antes (?:tenia|pensaba|me|solia|"
    r"era|tomaba|queria)|cuando tomaba|llevo (?:\d+|un|una|dos|tres) (?:anos|meses|semanas) "
    r"(?:sobri[oa]|limpi[oa])|was in (?:january|february|march|april|may|june|july|august|"
    r"september|october|november|december)|years? ago|months ago|a while ago|long time ago|long ago|ago|back in|back when|used "
    r"to|in high school|in college|as a (?:kid|teen|teenager)|when i was|in my (?:teens|twenties|"
    r"20s|thirties|30s|past)|in the past|history of|last year|years back|before (?:i started|"
    r"treatment|ketamine|the infusions|starting)|anniversary|since (?:\d+|high school)|"
    r"hace (?:\d+|un|una|dos|tres|cuatro|cinco|varios|muchos|anos|tiempo|mucho)|el ano pasado|"
    r"de (?:joven|chic[oa]|adolescente|nin[oa])|cuando (?:era|tenia|estaba en)|en la (?:prepa|"
    r"secundaria|prepa)|solia|antes de (?:empezar|las infusiones|el tratamiento)|aniversario|"
    r"en el pasado|antes me|cicatrices|(?:anos|meses) limpi[oa]|limpi[oa] (?:desde|hace)|"
    r"cuando me (?:cortaba|quemaba|lastimaba)|(?:me|se) (?:cortaba|quemaba|lastimaba)|"
    r"el mes pasado|la semana pasada|(?:old|healed) scars)\b"
)
_PRESENT = re.compile(
    r"\b(?:again|now|right now|tonight|today|this morning|this afternoon|last night|yesterday|"
    r"still|currently|anymore|just now|earlier|this week|otra vez|de nuevo|ahora|ahorita|"
    r"esta noche|hoy|anoche|ayer|todavia|aun|esta manana|ahorita mismo|volvi a|volvio a)\b"
)
_OTHER_PERSON = re.compile(
    r"\b(?:my|mi|his|her|our|a|un|una) (?:\w+ )?(?:brother|sister|mom|mother|dad|father|son|"
    r"daughter|friend|cousin|uncle|aunt|grandma|grandpa|grandmother|grandfather|husband|wife|"
    r"partner|boyfriend|girlfriend|coworker|classmate|neighbor|roommate|patient|hermano|"
    r"hermana|mama|madre|papa|padre|hijo|hija|amigo|amiga|primo|prima|tio|tia|abuela|abuelo|"
    r"esposo|esposa|novio|novia|vecino|vecina|companero|companera)\b|\b(?:"
    r"a guy|a girl|celebrity|actor|singer|character|movie|show|book|podcast|news|"
    r"pelicula|serie|noticias|students?|clients?|kid|kids|child|teen|teens|someone i know|"
    r"coworkers?|classmates?|estudiantes?|prim[oa]s?)\b"
)
_DEATH_OF_OTHER = re.compile(
    r"\b(?:died|passed away|lost (?:him|her|them|my)|took (?:his|her|their) (?:own )?life|"
    r"killed (?:himself|herself|themselves)|committed suicide|death of|funeral|murio|fallecio|"
    r"se suicido|se mato|se quito la vida|perdi a|falleci\w*|velorio|funeral|found dead|"
    r"passed (?:last|this|on|away|recently)|lo encontraron muerto|la encontraron muerta)\b"
)
_FIRST_PERSON_RISK = re.compile(
    r"\b(?:i|me|my|myself|yo|mi)\b.{0,30}\b(?:want to die|kill myself|end it|end my life|"
    r"join (?:him|her|them)|be with (?:him|her|them)|same way|follow|quiero morir|matarme|"
    r"irme con (?:el|ella))\b"
)


_FIRST_PERSON = re.compile(
    r"\b(?:i|im|me|my|myself|yo|mi|mis|conmigo|tengo|estoy|toy|quiero|voy|hice|tome|corte|"
    r"compre|consegui|junte|guarde|puedo|siento|soy|pienso)\b"
)
_URGENT_NOW = re.compile(
    r"\b(?:right now|now|just|tonight|help|911|ambulance|wont wake|will not wake|not breathing|"
    r"please call|call (?:him|her|me)|ahora|ahorita|ayuda|auxilio|urgente)\b"
)
_SAFE = re.compile(
    r"\b(?:(?:he|she|they) (?:is|are|seems|seem) (?:safe|ok|okay|fine|asleep|sleeping)|"
    r"(?:hes|shes|theyre) (?:safe|ok|okay|fine)|(?:esta|estan) (?:bien|a salvo|segur[oa])|"
    r"seems fine|is safe|(?:shes|hes|she is|he is|theyre) (?:ok|okay|safe|fine) now|yo (?:toy|"
    r"estoy) bien|pero (?:yo )?(?:estoy|toy) bien)\b"
)


_IN_CARE = re.compile(
    r"\b(?:(?:is|are|was) (?:in|at) the (?:icu|hospital|er)|(?:at|in) the (?:icu|hospital)|is stable|"
    r"stable now|survived|in rehab|en el hospital|(?:ya )?esta estable|en rehabilitacion|"
    r"(?:doctor|dr|hospice|therapist|counselor) (?:today|tomorrow|knows|is aware))\b"
)
_SELF_SAFE = re.compile(
    r"\b(?:(?:i am|im) (?:safe|ok|okay|fine|doing (?:ok|okay|fine|better|well))|yo (?:estoy|toy) "
    r"bien|(?:estoy|toy) (?:bien|a salvo)|pero (?:estoy|toy) bien|staying on track|i have support)\b"
)
_PRONOUNS = re.compile(
    r"\b(?:i|im|me|my|myself|mine|yo|mi|mis|conmigo|he|she|they|him|her|his|them|their|el|ella|"
    r"ellos|ellas|su|sus|se)\b"
)
_FIRST = frozenset({"i", "im", "me", "my", "myself", "mine", "yo", "mi", "mis", "conmigo"})


def _third_person_subject(before: str) -> bool:
    """The nearest pronoun before the finding is a third person ("she has been cutting")."""
    pronouns = _PRONOUNS.findall(before[-40:])
    return bool(pronouns) and pronouns[-1] not in _FIRST


# Symptoms that have already passed ("almost fainted, fine now") or have an everyday cause
# ("can't breathe through my nose", "laughed so hard I couldn't breathe"): flagged for review,
# not paged.
_RESOLVED = re.compile(
    r"\b(?:fine now|ok now|okay now|better now|gone now|all good now|its passed|it passed|"
    r"ya estoy bien|ya paso|ya se me paso|ya estoy mejor|(?:thru|through|por) (?:my|his|her|la) "
    r"(?:nose|nariz)|laugh\w*|de la risa|risa|heat|humidity|calor|the flu|a cold|allergies|"
    r"gripa|gripe|resfriado|almost|nearly|casi|thought i was going to|pense que|reir\w*|yoga|"
    r"gym|workout|exercise|stairs|climbing|danced|dancing|pollen|head cold|shift|tired|"
    r"exhausted|sin desayuno|con la sangre|aguja|agujas|needles?|is that (?:normal|expected)|"
    r"es normal)\b"
)
_SEE_YOU = re.compile(
    r"\b(?:see you|see u|see yall|nos vemos|hasta (?:luego|pronto|la proxima|el|la|manana)|next "
    r"(?:week|month|time|session|appointment)|till next|until next|for now|el mes que viene|"
    r"la proxima (?:semana|vez)|will still|keep coming)\b"
)
_FAREWELL_WORDS = re.compile(r"\b(?:goodbye|bye|adios|despid\w*|despedida|last|ultim[oa])\b")


@dataclass(frozen=True)
class RuleFinding:
    tier: str  # "crisis" or "review"
    category: str
    language: str
    evidence: str = ""  # the words matched (kept in memory only, never logged)


def _context(clause: str, match: re.Match[str], category: str) -> str | None:
    """The review category when the context says this is not a crisis now, else None."""
    before = clause[: match.start()]
    if category == "medical_emergency" and _RESOLVED.search(clause):
        return "distress"
    if category in ("medical_emergency", "third_party"):
        # An emergency in the third person is a report, not a story, unless it is history.
        if _PAST.search(clause) and not _PRESENT.search(clause):
            return "past"
        if _DEATH_OF_OTHER.search(clause) and not _URGENT_NOW.search(clause):
            return "other_person"
        if _OTHER_PERSON.search(clause) and _IN_CARE.search(clause):
            return "other_person"
        if category == "third_party" and _SAFE.search(clause):
            return "other_person"
        return None
    if _NEGATION.search(before.rstrip() + " ") and not _NEGATION.search(match.group(0)):
        return "negated"
    if _NEGATED_ADJ.search(before) and not _PRESENT.search(clause[match.end() :]):
        return "negated"
    if _PAST.search(clause) and not _PRESENT.search(clause):
        return "past"
    subject = clause[max(0, match.start() - 25) : match.end()]
    if _OTHER_PERSON.search(clause) and (_SAFE.search(clause) or _IN_CARE.search(clause)):
        return "other_person"
    if (
        _OTHER_PERSON.search(clause)
        and _third_person_subject(before)
        and not _URGENT_NOW.search(clause)
    ):
        return "other_person"
    if match.group(0).startswith("se ") and not _URGENT_NOW.search(clause):
        return "other_person"  # Spanish "se corta": she or he does it
    if (
        _OTHER_PERSON.search(clause)
        and not _FIRST_PERSON.search(subject)
        and not _URGENT_NOW.search(clause)
    ) or (
        _OTHER_PERSON.search(clause)
        and _DEATH_OF_OTHER.search(clause)
        and not _FIRST_PERSON_RISK.search(clause)
    ):
        return "other_person"
    return None


def find(clauses: list[str]) -> list[RuleFinding]:
    """Every finding in the clauses of one message, crisis findings first."""
    out: list[RuleFinding] = []
    relative_writing = False
    for clause in clauses:
        for pattern in PATTERNS:
            match = pattern.regex.search(clause)
            if match is None:
                continue
            if pattern.category == "third_party_marker":
                relative_writing = True
                continue
            if pattern.category == "distress":
                out.append(RuleFinding("review", "distress", pattern.language))
                continue
            review = _context(clause, match, pattern.category)
            if review is None:
                out.append(
                    RuleFinding("crisis", pattern.category, pattern.language, match.group(0))
                )
            else:
                out.append(RuleFinding("review", review, pattern.language, match.group(0)))
    whole = " ".join(clauses)
    if _SEE_YOU.search(whole):
        # "goodbye till next week", "me despido, nos vemos el mes que viene": a farewell with a
        # next time is not one.
        out = [
            RuleFinding("review", "distress", f.language, f.evidence)
            if f.tier == "crisis" and _FAREWELL_WORDS.search(f.evidence)
            else f
            for f in out
        ]
    if _SELF_SAFE.search(whole) and (_OTHER_PERSON.search(whole) or _DEATH_OF_OTHER.search(whole)):
        # "my best friend passed last week. overdose. I'm sad but I'm safe"
        out = [
            RuleFinding("review", "other_person", f.language, f.evidence)
            if f.tier == "crisis"
            else f
            for f in out
        ]
    if relative_writing:
        # A relative writing about the patient: a crisis in the message is a third-party report,
        # and an "other person" reading of it is the patient after all.
        out = [
            RuleFinding("crisis", "third_party", f.language, f.evidence)
            if f.tier == "crisis" or f.category == "other_person"
            else f
            for f in out
        ]
    out.sort(key=lambda f: f.tier != "crisis")
    return out


# Everyday phrasings the classifier confuses with a crisis ("took my pills this morning as
# usual", "killing it", "me muero de hambre"). They never cancel a rule's finding: they only
# turn the classifier's own crisis vote into an urgent-review flag.
_ROUTINE = re.compile(
    r"\b(?:(?:took|take|taking|taken|tome|tomo|me tome|tomando) (?:my|mis|las|los|mi|the|a|an|"
    r"one|una|un) (?:\w+ ){0,3}(?:pills?|meds|medications?|medicine|vitamins?|pastillas?|"
    r"vitaminas|medicinas?|medicamentos?|tylenol|advil|ibuprofen|omeprazol|\w+ina)\b.{0,40}"
    r"\b(?:as usual|like usual|like always|this morning|this am|last night|como siempre|de siempre|"
    r"hoy temprano|en la manana|as prescribed|as normal|every day|daily|is that (?:ok|okay|fine)|"
    r"thats fine|that is fine|right|esta bien|all good|todo bien)|"
    r"end (?:this|the) (?:week|month|year|day|session|call|series) (?:on|with)|(?:killing|killed) it|(?:is|are|was) killing me|dying to|dead (?:tired|phone|battery|end)|"
    r"(?:phone|battery|car) (?:is |was )?dead|me muero (?:de|por)|muert[oa] de (?:sueno|"
    r"cansancio|hambre|risa|frio|calor|miedo))"
)


def routine(clauses: list[str]) -> bool:
    return any(_ROUTINE.search(clause) for clause in clauses)
