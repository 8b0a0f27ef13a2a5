"""The texts of automatic replies, in English and Spanish.

Replies are short, name no treatment or diagnosis (minimum necessary over SMS) and always
give the clinic's number. The crisis wording is fixed by docs/design.md section 9.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

CRISIS_EN = "call or text 988, or 911 if you are in immediate danger"
CRISIS_ES = "llame o envíe un mensaje de texto al 988, o al 911 si está en peligro inmediato"

_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "crisis": (
            "{clinic}: We received your message and our care team has been alerted. "
            "If you need help right now, " + CRISIS_EN + ". You can also call us at {phone}."
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


def reply_text(kind: str, language: str | None, *, clinic: str, phone: str, when: str = "") -> str:
    texts = _TEXTS[language_of(language)]
    return texts[kind].format(clinic=clinic, phone=phone, when=when)


def format_when(starts_at: datetime, zone: ZoneInfo, language: str | None) -> str:
    """'Tuesday, December 1 at 9:00 AM' / 'martes, 1 de diciembre a las 9:00' in local time."""
    local = starts_at.astimezone(zone)
    if language_of(language) == "es":
        return format_datetime(local, "EEEE d 'de' MMMM 'a las' H:mm", locale="es")
    return format_datetime(local, "EEEE, MMMM d 'at' h:mm a", locale="en_US")
