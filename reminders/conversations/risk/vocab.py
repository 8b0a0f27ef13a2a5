"""Building blocks of the risk screen's patterns: word lists as regular expressions, and the
pattern record (:mod:`reminders.conversations.risk.rules` reads them in context)."""

from __future__ import annotations

import re
from dataclasses import dataclass

SELF = r"(?:my ?self|me|myslf|mi ?self)"
ANYSELF = r"(?:my ?self|him ?self|her ?self|them ?selves|them ?self|myslf)"
ANYONE_POSS = (
    r"(?:my|his|her|their|the|all|all my|all his|all her|all of my|all of his|all of her|al my|"
    r"al of my)"
)
PILLS = (
    r"(?:pills?|pils|tablets?|tabs|capsules?|meds|medications?|medicines?|sleeping pills|"
    r"sleep aids?|bottle|pastillas?|pastiyas|pildoras|tabletas|medicinas?|medicamentos?|"
    r"frasco|pomo|tarro|bote)"
)
DRUGS = (
    r"(?:tylenol|acetaminophen|paracetamol|ibuprofen|ibuprofeno|advil|motrin|aleve|aspirin|"
    r"aspirina|benadryl|xanax|alprazolam|klonopin|clonazepam|rivotril|tafil|valium|diazepam|"
    r"ativan|lorazepam|seroquel|quetiapine|quetiapina|ambien|zolpidem|trazodone|trazodona|"
    r"lithium|litio|insulin|insulina|oxy|oxys|oxycodone|oxycontin|percocet|vicodin|"
    r"hydrocodone|fentanyl|fentanilo|fent|morphine|morfina|methadone|heroin|heroina|tramadol|"
    r"gabapentin|gabapentina|sertraline|sertralina|zoloft|prozac|fluoxetine|fluoxetina|lexapro|"
    r"wellbutrin|bupropion|lamictal|lamotrigine|adderall|norco|nyquil|melatonin|melatonina|"
    r"bleach|cloro|lejia|antifreeze|rat poison|veneno|benzos?|opioids?|opiates?|xannies|"
    r"bars|perc[s]?|narcan)"
)
QUANTITY = (
    r"(?:\d+|all|whole|entire|bunch|lot|lots|handful|fistful|half|double|triple|extra|"
    r"too many|to many|way too many|every|everything|todas|todo|un monton|muchas|varias|"
    r"un punado|un frasco|el frasco|la caja|una caja|el bote|\d+ mg|\d+mg)"
)
TAKE = (
    r"(?:took|taken|take|taking|swallowed|swallow|swallowing|downed|ate|popped|pop|chugged|"
    r"drank|drink|drinking|me tome|tome|se tomo|tomo|tomar|tomarme|trague|se trago|me trague|"
    r"tragar|me meti|me acabe|se acabo)"
)
THIRD = (
    r"(?:wife|husband|mom|mother|dad|father|son|daughter|sister|brother|partner|roommate|"
    r"room mate|friend|boyfriend|girlfriend|fiance|fiancee|spouse|caregiver|aunt|uncle|niece|"
    r"nephew|grandson|granddaughter|neighbor|esposa|esposo|mama|madre|papa|padre|hija|hijo|"
    r"hermana|hermano|pareja|novia|novio|amiga|amigo|tia|tio|sobrina|sobrino|nieta|nieto|"
    r"vecina|vecino|companera|companero|suegra|suegro|marido|mujer)"
)


@dataclass(frozen=True)
class Pattern:
    category: str  # suicide_risk, self_harm, overdose, medical_emergency, third_party, distress
    regex: re.Pattern[str]
    language: str


def _p(category: str, language: str, *patterns: str) -> list[Pattern]:
    return [Pattern(category, re.compile(rf"\b(?:{p})\b"), language) for p in patterns]
