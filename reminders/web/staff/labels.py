"""Plain words for the codes the system stores: message statuses, the reasons a message was not
sent, inbox item kinds, channels, policy rules. English and Spanish; staff never see a raw code
("superseded", "no_sms_consent", "infusion-day-before-sms") where a word will do.

``label(group, code, language)``: a code with details after a colon ("no_phone: not a
number") gives the code's words and keeps the details; an unknown code is shown made readable
("some_new_reason" -> "Some new reason"), never hidden.
"""

from __future__ import annotations

import re

Words = dict[str, tuple[str, str]]  # code -> (English, Spanish)

STATUS: Words = {
    "planned": ("Scheduled to send", "Programado"),
    "sending": ("Sending", "Enviando"),
    "sent": ("Sent", "Enviado"),
    "delivered": ("Delivered", "Entregado"),
    "failed": ("Not delivered", "No entregado"),
    "cancelled": ("Cancelled", "Cancelado"),
    "skipped": ("Not sent", "No enviado"),
}

REASON: Words = {
    "superseded": (
        "Not needed: a later reminder for the same visit went out instead",
        "No hacía falta: se envió un recordatorio posterior de la misma cita",
    ),
    "session_started": (
        "Too late: the visit had already started",
        "Demasiado tarde: la cita ya había empezado",
    ),
    "expired": ("Too late to be useful, so not sent", "Demasiado tarde para ser útil; no se envió"),
    "quiet_hours": (
        "Held back: it would have arrived at night",
        "Retenido: habría llegado de noche",
    ),
    "rescheduled": ("The visit was moved to another time", "La cita se cambió de hora"),
    "session_cancelled": ("The visit was cancelled", "La cita se canceló"),
    "session_deleted": ("The visit was removed", "La cita se eliminó"),
    "session_completed": ("The visit already took place", "La cita ya tuvo lugar"),
    "session_no_show": ("The patient did not come", "El paciente no vino"),
    "session_booked": ("The patient booked a visit", "El paciente reservó una cita"),
    "nudge_cycle_changed": (
        "No longer due: the patient's visits changed",
        "Ya no corresponde: cambiaron las citas del paciente",
    ),
    "policy_changed": ("The clinic's message rules changed", "Cambiaron las reglas de mensajes"),
    "patient_deleted": ("The patient was removed", "El paciente se eliminó"),
    "no_recipient": ("Nobody to send it to", "No había a quién enviarlo"),
    "no_phone": ("No mobile number on file", "No hay número de móvil"),
    "phone_unusable": ("The phone number cannot receive texts", "El número no puede recibir SMS"),
    "no_sms_consent": (
        "The patient has not agreed to texts",
        "El paciente no aceptó recibir SMS",
    ),
    "sms_opted_out": ("The patient stopped texts (STOP)", "El paciente pidió no recibir SMS"),
    "no_email": ("No email address on file", "No hay correo electrónico"),
    "email_unusable": ("The email address does not work", "El correo no funciona"),
    "no_email_consent": (
        "The patient has not agreed to emails",
        "El paciente no aceptó recibir correos",
    ),
    "email_opted_out": (
        "The patient unsubscribed from emails",
        "El paciente se dio de baja de los correos",
    ),
    "template_error": (
        "The message text has an error: fix the template",
        "El texto del mensaje tiene un error: corrija la plantilla",
    ),
    "provider_error": (
        "The text/email service refused it",
        "El servicio de SMS/correo lo rechazó",
    ),
    "in doubt": (
        "Unclear whether it arrived: being checked",
        "No se sabe si llegó: se está comprobando",
    ),
    "in doubt, unresolved": (
        "May or may not have reached the patient: please check with them",
        "Puede que no haya llegado: confírmelo con el paciente",
    ),
}

TASK_KIND: Words = {
    "crisis": ("Possible crisis", "Posible crisis"),
    "review": ("Needs a clinician's review", "Requiere revisión clínica"),
    "low_score": ("Low check-in score", "Puntuación baja en el seguimiento"),
    "reschedule": ("Wants to reschedule", "Quiere cambiar la cita"),
    "unconfirmed": ("Visit not confirmed", "Cita sin confirmar"),
    "free_text": ("Message from a patient", "Mensaje de un paciente"),
    "unknown_sender": ("Message from an unknown number", "Mensaje de un número desconocido"),
    "delivery_failed": ("A message did not arrive", "Un mensaje no llegó"),
    "prep_late": ("Preparation cut-off missed", "Preparación fuera de plazo"),
}

CHANNEL: Words = {
    "sms": ("Text", "SMS"),
    "email": ("Email", "Correo"),
}

MESSAGE_KIND: Words = {
    "reminder": ("Reminder", "Recordatorio"),
    "checkin": ("Check-in", "Seguimiento"),
    "nudge": ("Time to book", "Hora de reservar"),
    "alert": ("Alert to staff", "Alerta al personal"),
    "reply": ("Reply", "Respuesta"),
    "staff": ("Text from staff", "SMS del personal"),
}

# The shipped policy's rules; a clinic's own rule names are made readable.
RULE: Words = {
    "infusion-prep-email": ("Preparation email", "Correo de preparación"),
    "infusion-day-before-sms": ("Day-before text", "SMS del día anterior"),
    "infusion-ride-sms": ("Ride-home text", "SMS del transporte a casa"),
    "infusion-checkin": ("Next-day check-in", "Seguimiento del día siguiente"),
    "consultation-day-before": ("Consultation reminder", "Recordatorio de consulta"),
    "maintenance-nudge": ("Time to book maintenance", "Hora de reservar mantenimiento"),
    "staff": ("Text from staff", "SMS del personal"),
}

SESSION_STATUS: Words = {
    "scheduled": ("Scheduled", "Programada"),
    "confirmed": ("Confirmed", "Confirmada"),
    "cancelled": ("Cancelled", "Cancelada"),
    "completed": ("Completed", "Realizada"),
    "no_show": ("Did not come", "No se presentó"),
}

SESSION_KIND: Words = {
    "infusion": ("Infusion", "Infusión"),
    "consultation": ("Consultation", "Consulta"),
}

GROUPS: dict[str, Words] = {
    "status": STATUS,
    "reason": REASON,
    "task": TASK_KIND,
    "channel": CHANNEL,
    "kind": MESSAGE_KIND,
    "rule": RULE,
    "session_status": SESSION_STATUS,
    "session_kind": SESSION_KIND,
}


def readable(code: str) -> str:
    """ "some_new-reason" -> "Some new reason" (a code with no words yet)."""
    text = re.sub(r"[_-]+", " ", code).strip()
    return text[:1].upper() + text[1:]


def label(group: str, code: str | None, language: str = "en") -> str:
    """The words for ``code`` in ``group`` ("status", "reason", "task", ...), in ``language``."""
    if not code:
        return ""
    words = GROUPS[group]
    index = 1 if language == "es" else 0
    if code in words:
        return words[code][index]
    if group == "reason":
        # The longest known code the reason starts with, then its details: "no_phone: not a
        # number", "provider_error 21211: ...", "in doubt, unresolved after 2 h: ...".
        for known in sorted(words, key=len, reverse=True):
            if code.startswith(known):
                rest = code[len(known) :].lstrip(":;, ")
                return f"{words[known][index]} ({rest})" if rest else words[known][index]
    return readable(code)
