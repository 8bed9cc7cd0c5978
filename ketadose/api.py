"""The library's entry point for a dose: a checked result, as ``ketadose dose`` gives it.

A script that doses through the library gets what the command line shows, never less: the
session is computed, prepared and checked by the one safety gate against a limit library
(the shipped example, or the clinic's), and the result says whether it may start
(``ready``), how severe its findings are (``status``), and withholds the preparation of a
dose past a hard limit. ``ketadose.dosing.session_dose`` is the arithmetic alone, unchecked,
for simulations and tests.

    from ketadose.api import checked_dose
    result = checked_dose("depression", weight_kg=400)
    result.status, result.ready, result.preparation   # "hard", False, None
"""

from __future__ import annotations

from pathlib import Path

from ketadose.dosing import DoseRequest
from ketadose.gate import session
from ketadose.limits import load_library as load_limits
from ketadose.models import CheckContext, Patient, SessionDose
from ketadose.protocols import load_library as load_protocols


def checked_dose(
    protocol_id: str,
    *,
    weight_kg: float | None = None,
    request: DoseRequest | None = None,
    context: CheckContext | None = None,
    protocols: Path | None = None,
    limits: Path | None = None,
    override_reason: str | None = None,
) -> SessionDose:
    """One session's dose, checked by the gate, as ``ketadose dose --json`` reports it.

    Args:
        protocol_id: The protocol, e.g. ``"depression"``.
        weight_kg: The patient's weight (a shortcut for a request on actual weight).
        request: The whole request (patient, policy, overrides, preparation), instead.
        context: When, vitals, medications, previous sessions, for the context checks.
        protocols: A clinic's protocol file (None: the shipped protocols).
        limits: A clinic's limit library (None: the shipped, unapproved example).
        override_reason: Acknowledges the soft findings (never a hard one).

    Returns:
        The checked session: ``status``, ``ready``, findings; no preparation past a hard limit.

    Raises:
        InputError: For an unknown protocol or bad input (both ``weight_kg`` and ``request``).
        ConfigError: For a library that does not load or does not fit the protocols.
    """
    from ketadose.errors import InputError

    if request is not None and weight_kg is not None:
        raise InputError("give weight_kg or a request, not both")
    library = load_protocols(protocols)
    limit_library = load_limits(limits)
    limit_library.check_protocols({pid: e.protocol.route for pid, e in library.items()})
    entry = library.get_protocol(protocol_id)
    asked = request or DoseRequest(patient=Patient(weight_kg=weight_kg))
    return session(entry, asked, limit_library, context, override_reason)
