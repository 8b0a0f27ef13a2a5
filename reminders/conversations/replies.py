"""The texts of automatic replies, in English and Spanish.

Replies are short, name no treatment or diagnosis (minimum necessary over SMS) and always
give the clinic's number. The crisis wording is fixed by docs/design.md section 9.

Crisis replies are honest: they say the care team was alerted only when an alert was queued
(``*_unalerted`` otherwise), and a medical emergency, overdose or a report about someone else
(``emergency*``) puts "call 911 now" first. Outside clinic hours a message staff must read gets
``after_hours``: when the clinic reads messages, when it will read this one, and 988 / 911.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

from reminders.planning.policy import OpeningHours

CRISIS_EN = "call or text 988, or 911 if you are in immediate danger"
CRISIS_ES = "llame o envíe un mensaje de texto al 988, o al 911 si está en peligro inmediato"

_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "crisis": (
            "{clinic}: We received your message and our care team has been alerted. "
            "If you need help right now, " + CRISIS_EN + ". You can also call us at {phone}."
        ),
        "crisis_unalerted": (
            "{clinic}: We received your message. If you need help right now, " + CRISIS_EN + ". "
            "Please also call us at {phone}."
        ),
        "emergency": (
            "{clinic}: Please call 911 now. We received your message and our care team has been "
            "alerted. You can also call us at {phone}. For a mental health crisis, call or text 988."
        ),
        "emergency_unalerted": (
            "{clinic}: Please call 911 now. Then call us at {phone}. "
            "For a mental health crisis, call or text 988."
        ),
        "after_hours": (
            "{clinic}: Thank you for your message. We read messages {hours}; we will read yours "
            "by {when}. In an emergency call 911, or call or text 988. Clinic: {phone}."
        ),
        "low_score": (
            "{clinic}: Thank you for your answer. A member of our care team will reach out. "
            "If you need help right now, " + CRISIS_EN + ". Clinic: {phone}."
        ),
        "opt_out": (
            "{clinic}: You are unsubscribed and will get no more text reminders. "
            "Reply START to resubscribe. Questions or appointments: {phone}."
        ),
        "opt_in": (
            "{clinic}: You are subscribed to appointment texts again, up to 4 messages per visit. "
            "Reply C to confirm a visit, HELP for help, STOP to stop."
        ),
        "help": (
            "{clinic}: appointment reminders and check-ins, up to 4 messages per visit. "
            "Call {phone} for help. Reply STOP to stop, START to resume. Msg & data rates may apply."
        ),
        "confirmed": (
            "{clinic}: Thank you, your visit on {when} is confirmed. "
            "Please follow the preparation instructions and arrange a ride home."
        ),
        "already_confirmed": "{clinic}: Your visit on {when} is already confirmed. See you then!",
        "no_session": "{clinic}: We could not find an upcoming visit to confirm. Our team will contact you, or call {phone}.",
        "reschedule": "{clinic}: Thank you, our team will call you to find a new time. You can also call us at {phone}.",
        "checkin_thanks": "{clinic}: Thank you for your answer. Reach us anytime at {phone}.",
    },
    "es": {
        "crisis": (
            "{clinic}: Recibimos su mensaje y avisamos a nuestro equipo de atención. "
            "Si necesita ayuda ahora mismo, " + CRISIS_ES + ". También puede llamarnos al {phone}."
        ),
        "crisis_unalerted": (
            "{clinic}: Recibimos su mensaje. Si necesita ayuda ahora mismo, " + CRISIS_ES + ". "
            "Llámenos también al {phone}."
        ),
        "emergency": (
            "{clinic}: Llame al 911 ahora. Recibimos su mensaje y avisamos a nuestro equipo de "
            "atención. También puede llamarnos al {phone}. Para una crisis de salud mental, llame "
            "o envíe un mensaje de texto al 988."
        ),
        "emergency_unalerted": (
            "{clinic}: Llame al 911 ahora. Después llámenos al {phone}. Para una crisis de salud "
            "mental, llame o envíe un mensaje de texto al 988."
        ),
        "after_hours": (
            "{clinic}: Gracias por su mensaje. Leemos los mensajes {hours}; leeremos el suyo a más "
            "tardar el {when}. En una emergencia llame al 911, o llame o envíe un mensaje de texto "
            "al 988. Clínica: {phone}."
        ),
        "low_score": (
            "{clinic}: Gracias por su respuesta. Alguien de nuestro equipo se comunicará con usted. "
            "Si necesita ayuda ahora mismo, " + CRISIS_ES + ". Clínica: {phone}."
        ),
        "opt_out": (
            "{clinic}: Se ha dado de baja y no recibirá más recordatorios por texto. "
            "Responda START para volver a suscribirse. Preguntas o citas: {phone}."
        ),
        "opt_in": (
            "{clinic}: Está suscrito de nuevo a los mensajes de citas, hasta 4 mensajes por visita. "
            "Responda C para confirmar una visita, AYUDA para ayuda, STOP para no recibir más."
        ),
        "help": (
            "{clinic}: recordatorios de citas y seguimiento, hasta 4 mensajes por visita. "
            "Llame al {phone} para ayuda. Responda STOP para no recibir más, START para reanudar. "
            "Pueden aplicarse tarifas de mensajes y datos."
        ),
        "confirmed": (
            "{clinic}: Gracias, su visita del {when} está confirmada. "
            "Siga las instrucciones de preparación y organice quién le lleve a casa."
        ),
        "already_confirmed": "{clinic}: Su visita del {when} ya está confirmada. ¡Hasta pronto!",
        "no_session": "{clinic}: No encontramos una próxima visita para confirmar. Nuestro equipo se comunicará con usted, o llame al {phone}.",
        "reschedule": "{clinic}: Gracias, nuestro equipo le llamará para buscar otra hora. También puede llamarnos al {phone}.",
        "checkin_thanks": "{clinic}: Gracias por su respuesta. Puede llamarnos cuando quiera al {phone}.",
    },
}


def language_of(code: str | None) -> str:
    return "es" if (code or "").lower().startswith("es") else "en"


def reply_text(
    kind: str, language: str | None, *, clinic: str, phone: str, when: str = "", hours: str = ""
) -> str:
    texts = _TEXTS[language_of(language)]
    return texts[kind].format(clinic=clinic, phone=phone, when=when, hours=hours)


def crisis_reply(*, emergency: bool, alerted: bool) -> str:
    """The reply kind for a crisis: 911 first for an emergency; "alerted" only when it is true."""
    kind = "emergency" if emergency else "crisis"
    return kind if alerted else f"{kind}_unalerted"


_DAYS = {
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    "es": ("lun", "mar", "mié", "jue", "vie", "sáb", "dom"),
}


def _clock(minutes: int, language: str) -> str:
    hour, minute = divmod(minutes, 60)
    if language == "es":
        return f"{hour % 24}:{minute:02d}"
    suffix = "AM" if hour < 12 or hour == 24 else "PM"
    return f"{hour % 12 or 12}{f':{minute:02d}' if minute else ''} {suffix}"


def describe_hours(hours: OpeningHours, language: str | None) -> str:
    """'Mon-Fri 8 AM-6 PM, Sat 9 AM-12 PM' / 'lun-vie 8:00-18:00, sáb 9:00-12:00'."""
    lang = language_of(language)
    names = _DAYS[lang]
    groups: list[tuple[int, int, list[tuple[int, int]]]] = []
    for day in range(7):
        spans = hours.days.get(day) or []
        if not spans:
            continue
        if groups and groups[-1][1] == day - 1 and groups[-1][2] == spans:
            groups[-1] = (groups[-1][0], day, spans)
        else:
            groups.append((day, day, spans))
    joiner = " y " if lang == "es" else " and "
    parts = []
    for first, last, spans in groups:
        days = names[first] if first == last else f"{names[first]}-{names[last]}"
        times = joiner.join(f"{_clock(s, lang)}-{_clock(e, lang)}" for s, e in spans)
        parts.append(f"{days} {times}")
    return ", ".join(parts)


def format_opening(local: datetime, language: str | None) -> str:
    """'Tuesday 9 AM' / 'martes a las 9:00' (a local time)."""
    lang = language_of(language)
    day = format_datetime(local, "EEEE", locale="es" if lang == "es" else "en_US")
    clock = _clock(local.hour * 60 + local.minute, lang)
    return f"{day} a las {clock}" if lang == "es" else f"{day} {clock}"


def format_when(starts_at: datetime, zone: ZoneInfo, language: str | None) -> str:
    """'Tuesday, December 1 at 9:00 AM' / 'martes, 1 de diciembre a las 9:00' in local time."""
    local = starts_at.astimezone(zone)
    if language_of(language) == "es":
        return format_datetime(local, "EEEE d 'de' MMMM 'a las' H:mm", locale="es")
    return format_datetime(local, "EEEE, MMMM d 'at' h:mm a", locale="en_US")
