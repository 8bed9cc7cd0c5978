"""Adverse events: a controlled vocabulary and a severity grade, read by one function.

``nausea:mild``, ``dissociation:severe``, ``respiratory depression:life-threatening``: a term
from :data:`TERMS` (or one of its aliases) and a grade from :class:`Grade`, always both. The
command line, history files and the store all read an event with :func:`parse`; anything it
cannot read is refused with a message saying how to write it, never guessed (``severe
dissociation`` and ``dissociation (severe)`` are refused, not read as mild).

Grades are those of the NCI Common Terminology Criteria for Adverse Events (CTCAE) v5.0,
2017: grade 1 mild, 2 moderate, 3 severe, 4 life-threatening (grade 5, death, is not a
session outcome recorded here). The terms are the adverse reactions the ketamine and
esketamine labels name (Ketalar PI rev. 10/2024; Spravato PI), so a clinic's records can be
counted by term.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ketadose.errors import InputError, InputField, Part

#: Where the grades and terms come from (shown by ``session show`` and the docs).
SOURCE = (
    "Grades: NCI Common Terminology Criteria for Adverse Events (CTCAE) v5.0, 2017 [HIGH]. "
    "Terms: adverse reactions named in the Ketalar PI rev. 10/2024 and the Spravato PI [HIGH]."
)


class Grade(enum.IntEnum):
    """A CTCAE v5.0 severity grade; higher is worse."""

    MILD = 1
    MODERATE = 2
    SEVERE = 3
    LIFE_THREATENING = 4

    @property
    def word(self) -> str:
        """How the grade is written: ``mild`` ... ``life-threatening``."""
        return self.name.lower().replace("_", "-")


#: Each term and the other ways it is commonly written (all compared casefolded).
TERMS: dict[str, tuple[str, ...]] = {
    "dissociation": ("dissociative symptoms", "depersonalization", "derealization"),
    "sedation": ("somnolence", "drowsiness"),
    "respiratory depression": ("apnea", "apnoea", "hypoventilation"),
    "desaturation": ("hypoxia", "hypoxaemia", "hypoxemia", "low spo2"),
    "loss of consciousness": ("unresponsive", "unresponsiveness"),
    "hypertension": ("blood pressure increased", "high blood pressure", "bp increased"),
    "hypotension": ("blood pressure decreased", "low blood pressure"),
    "tachycardia": ("heart rate increased",),
    "bradycardia": ("heart rate decreased",),
    "arrhythmia": (),
    "chest pain": (),
    "nausea": (),
    "vomiting": ("emesis",),
    "dizziness": ("vertigo", "lightheadedness"),
    "headache": (),
    "anxiety": (),
    "agitation": ("restlessness",),
    "emergence reaction": ("emergence delirium", "delirium"),
    "hallucinations": ("hallucination",),
    "confusion": (),
    "diplopia": ("double vision", "blurred vision", "vision blurred"),
    "nystagmus": (),
    "hypoesthesia": ("numbness", "paraesthesia", "paresthesia"),
    "dysarthria": (),
    "euphoria": ("feeling drunk",),
    "laryngospasm": (),
    "hypersalivation": ("salivation",),
    "genitourinary pain": ("bladder pain", "dysuria", "cystitis"),
    "injection site reaction": ("injection site pain",),
    "nasal discomfort": ("nasal irritation", "throat irritation"),
    "dysgeusia": ("taste disturbance",),
    "hypersensitivity": ("allergic reaction", "anaphylaxis"),
    "seizure": ("convulsion",),
}

_LOOKUP: dict[str, str] = {
    name.casefold(): term for term, aliases in TERMS.items() for name in (term, *aliases)
}
_GRADES: dict[str, Grade] = {grade.word: grade for grade in Grade} | {
    "life threatening": Grade.LIFE_THREATENING
}
#: How an event kept without a grade is written (``history --json``), so it reads back as such.
UNGRADED = "ungraded"
_HOW = "write TERM:GRADE, e.g. nausea:mild (grades: mild, moderate, severe, life-threatening)"


@dataclass(frozen=True, slots=True, order=True)
class AdverseEvent:
    """An adverse event: a term of the vocabulary and its grade.

    Attributes:
        term: The vocabulary's term (never an alias).
        grade: The CTCAE grade, or None only for an event kept from a store written before
            events were graded (``next`` then asks for the grade before deciding).
    """

    term: str
    grade: Grade | None

    def __str__(self) -> str:
        return f"{self.term}:{UNGRADED if self.grade is None else self.grade.word}"

    @property
    def ungraded(self) -> bool:
        """Whether the event was recorded without a grade (before schema version 3)."""
        return self.grade is None


def parse(
    text: object, *, field: Part = InputField.ADVERSE_EVENT, ungraded: bool = False
) -> AdverseEvent:
    """Read one adverse event, ``TERM:GRADE``.

    Args:
        text: As written (a non-string is refused, naming its type).
        field: How to name the input in a message (``InputField.ADVERSE_EVENT``,
            ``sessions[2].adverse_events``).
        ungraded: Also read ``TERM:ungraded``, an event an older store kept without a grade,
            as ``history --json`` writes it (never for a new event).

    Returns:
        The event, with the vocabulary's term for any alias.

    Raises:
        InputError: Not text, no grade, an unknown term or grade; the message says how to
            write it.
    """
    if not isinstance(text, str):
        raise InputError(field, f": an adverse event is text ({_HOW}), not {type(text).__name__}")
    name, sep, word = text.partition(":")
    words = " ".join(name.split()).casefold()
    if not sep:
        graded = [g for g in _GRADES if g in words.replace("(", " ").replace(")", " ")]
        hint = f" (the grade goes after a colon: {_HOW})" if graded else f": {_HOW}"
        raise InputError(field, f" {text!r} has no grade{hint}")
    said = " ".join(word.split()).casefold()
    if ungraded and said == UNGRADED:
        return AdverseEvent(name.strip(), None)
    grade = _GRADES.get(said)
    if grade is None:
        raise InputError(field, f" {text!r}: unknown grade {word.strip()!r}; {_HOW}")
    term = _LOOKUP.get(words)
    if term is None:
        raise InputError(
            field,
            f" {text!r}: {name.strip()!r} is not in the adverse-event vocabulary; "
            f"terms: {', '.join(sorted(TERMS))}",
        )
    return AdverseEvent(term, grade)


def parse_list(value: object, *, field: str) -> tuple[AdverseEvent, ...]:
    """Read a list of events (a history file's ``adverse_events``); a bare string is refused."""
    if not isinstance(value, list):
        raise InputError(
            f'{field} must be a list of events such as ["nausea:mild"], not {type(value).__name__}'
        )
    return tuple(
        parse(item, field=f"{field}[{index}]", ungraded=True) for index, item in enumerate(value)
    )


def legacy(text: str) -> AdverseEvent:
    """An event as a store before schema version 3 kept it: graded if it reads, else ungraded.

    Used only by the migration to schema version 3, so that no recorded event is lost or
    guessed: ``dissociation:severe`` becomes that event; ``nausea`` (no grade was asked then)
    or a term outside the vocabulary is kept as written, ungraded.
    """
    try:
        return parse(text)
    except InputError:
        return AdverseEvent(text.strip(), None)
