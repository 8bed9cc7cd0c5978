"""Properties over generated limit libraries: a value exactly on a limit is classified as the
limit's wording says (exclusive by default: "not more than 25 mg/h"; ``inclusive`` for
"65 and over"), and a ``step`` refuses exactly the values that are not whole steps."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ketadose.limits import SIDES, Bounds, LimitLibrary, check_patient, classify, load_file
from ketadose.models import Patient, Severity
from tests.factories import complete

SEVERITY = {side: Severity.HARD if side.endswith("hard") else Severity.SOFT for side in SIDES}


@st.composite
def age_limits(draw: st.DrawFn) -> tuple[dict[str, int], frozenset[str]]:
    """Distinct increasing sides (18-110 y) on some of the four sides, some of them inclusive."""
    sides = draw(st.lists(st.sampled_from(SIDES), min_size=1, max_size=4, unique=True))
    values = sorted(
        draw(st.lists(st.integers(18, 110), min_size=len(sides), max_size=len(sides), unique=True))
    )
    ordered = [side for side in SIDES if side in sides]
    inclusive = draw(st.sets(st.sampled_from(ordered)))
    return dict(zip(ordered, values, strict=True)), frozenset(inclusive)


def expected(
    side: str, sides: dict[str, int], inclusive: frozenset[str]
) -> tuple[Severity, str] | None:
    """A value exactly on ``side``: past it if inclusive; else only past the soft side of the
    same end, when the side is a hard one (a hard maximum is beyond the soft maximum)."""
    if side in inclusive:
        return SEVERITY[side], side
    soft = side.split("_")[0] + "_soft"
    if side.endswith("hard") and soft in sides:
        return Severity.SOFT, soft
    return None


def library(sides: dict[str, int], inclusive: frozenset[str]) -> LimitLibrary:
    lines = "".join(f'{side} = "{value} y"\n' for side, value in sides.items())
    chosen = ", ".join(f'"{side}"' for side in SIDES if side in inclusive)
    text = (
        '[library]\nname = "wording"\nversion = "1"\n\n'
        f"[profiles.default.patient.age]\n{lines}inclusive = [{chosen}]\n"
        'source = "test"\nevidence = "SITE-POLICY"\n'
    )
    return load_file(complete(text).encode(), "wording.toml")


def age_bounds(limits: LimitLibrary) -> Bounds:
    limit = limits.limit("t", "patient", "age", "iv")
    assert limit is not None
    return limit.bounds


class TestOnTheLimit:
    """Exactly on a side: past it iff the side is inclusive; just inside never, beyond always."""

    @given(age_limits())
    def test_classify_on_each_side(self, drawn: tuple[dict[str, int], frozenset[str]]) -> None:
        sides, inclusive = drawn
        limits = library(sides, inclusive)
        limit = limits.limit("t", "patient", "age", "iv")
        assert limit is not None
        for side, value in sides.items():
            wanted = expected(side, sides, inclusive)
            assert classify(value, limit.bounds) == wanted
            outward = 1.0 if side.startswith("upper") else -1.0
            assert classify(value + outward * 0.5, limit.bounds) == (SEVERITY[side], side)
            # Float noise on the limit is on it, whatever the side's wording.
            assert classify(value * (1 + 1e-12), limit.bounds) == wanted

    @given(age_limits())
    def test_the_checker_reports_what_classify_says(
        self, drawn: tuple[dict[str, int], frozenset[str]]
    ) -> None:
        sides, inclusive = drawn
        limits = library(sides, inclusive)
        for side, value in sides.items():
            findings = check_patient(Patient(weight_kg=70, age_years=value), limits, "t", "iv")
            ages = [(f.severity, f.side) for f in findings if f.parameter == "patient.age"]
            wanted = expected(side, sides, inclusive)
            assert ages == ([] if wanted is None else [wanted])
            words = [f.message for f in findings if f.parameter == "patient.age"]
            assert all(
                (" is at or " in m) == (side in inclusive)
                for m in words
                if wanted and wanted[1] == side
            )

    @given(age_limits(), st.floats(18, 110), st.floats(0, 20))
    def test_monotone(
        self, drawn: tuple[dict[str, int], frozenset[str]], value: float, further: float
    ) -> None:
        """Moving further beyond a side never makes the finding less severe."""
        limits = library(*drawn)
        bounds = age_bounds(limits)
        rank = {None: 0, Severity.SOFT: 1, Severity.HARD: 2}
        for outward in (1.0, -1.0):
            here = classify(value, bounds)
            there = classify(value + outward * further, bounds)
            if here is not None and (here[1].startswith("upper") == (outward > 0)):
                assert there is not None and rank[there[0]] >= rank[here[0]]


class TestStep:
    """A limit with a step refuses exactly the values that are not a whole number of steps."""

    @given(st.integers(1, 40), st.sampled_from([7, 14, 28]), st.integers(1, 99))
    def test_whole_steps_pass_others_are_refused(self, n: int, step: int, part: int) -> None:
        text = (
            '[library]\nname = "step"\nversion = "1"\n\n'
            f'[profiles.default.session.total_dose]\nupper_hard = "10000 mg"\nstep = "{step} mg"\n'
            'source = "test"\nevidence = "SITE-POLICY"\n'
        )
        limit = load_file(complete(text).encode(), "s.toml").limit(
            "t", "session", "total_dose", "iv"
        )
        assert limit is not None
        bounds = limit.bounds
        assert not bounds.off_step(n * step)
        assert not bounds.off_step(n * step * (1 + 1e-13))  # float noise is a whole step
        assert bounds.off_step(n * step + step * part / 100)
