"""The renderers' shared lines: what to draw, the preparations of a plan, the systemic estimate."""

from __future__ import annotations

from dataclasses import dataclass

from ketadose.models import Preparation
from ketadose.render import draw_text, preparation_line, preparation_lines, ranges, route_lines


def prep(draw: float, vial: float = 10.0, final: float = 100.0) -> Preparation:
    mg = draw * vial
    return Preparation(
        vial_mg_per_ml=vial,
        draw_ml=draw,
        draw_ml_rounded=draw,
        final_volume_ml=final,
        final_mg_per_ml=mg / final,
        diluent_ml=final - draw,
        diluent="0.9% sodium chloride",
        delivered_mg=mg,
        delivered_mg_per_ml=mg / final,
    )


@dataclass
class Planned:
    number: int
    preparation: Preparation | None


def test_draw_text_names_vial_volume_diluent_and_concentration() -> None:
    # 35 mg = 3.5 mL of 10 mg/mL, made up to 100 mL: 96.5 mL diluent, 0.35 mg/mL.
    assert draw_text(prep(3.5)) == (
        "draw 3.5 mL of 10 mg/mL (35 mg), add 96.5 mL 0.9% sodium chloride to make 100 mL "
        "of 0.35 mg/mL"
    )


def test_the_draw_step_shows_the_graduation_and_markup_wraps_only_its_parts() -> None:
    # A 0.05 mL syringe: 3.5 mL and 96.5 mL shown in its steps; the diluent escaped, the two
    # numbers acted on wrapped, a no-break space between each number and its unit.
    text = draw_text(
        prep(3.5).model_copy(update={"diluent": "<NaCl>"}),
        step=0.05,
        escape=lambda s: s.replace("<", "&lt;").replace(">", "&gt;"),
        strong=lambda s: f"*{s}*",
        space="~",
    )
    assert text == (
        "draw *3.5~mL* of 10~mg/mL (35~mg), add 96.5~mL &lt;NaCl&gt; to make 100~mL of *0.35~mg/mL*"
    )


def test_one_session_line_is_prefixed() -> None:
    assert preparation_line(prep(4.0)) == (
        "Preparation: draw 4 mL of 10 mg/mL (40 mg), add 96 mL 0.9% sodium chloride to make "
        "100 mL of 0.4 mg/mL"
    )


def test_an_undiluted_draw() -> None:
    undiluted = prep(0.4, vial=100.0, final=0.4).model_copy(update={"diluent_ml": 0.0})
    assert draw_text(undiluted) == "draw 0.4 mL of 100 mg/mL (40 mg), undiluted"


def test_a_plans_preparations_once_each_with_their_sessions() -> None:
    sessions = [Planned(1, prep(3.5)), Planned(2, prep(3.5)), Planned(3, prep(5.25))]
    sessions += [Planned(4, None), Planned(5, prep(5.25))]
    assert preparation_lines(sessions) == [
        "Sessions 1-2: draw 3.5 mL of 10 mg/mL (35 mg), add 96.5 mL 0.9% sodium chloride to "
        "make 100 mL of 0.35 mg/mL",
        "Sessions 3, 5: draw 5.25 mL of 10 mg/mL (52.5 mg), add 94.75 mL 0.9% sodium chloride "
        "to make 100 mL of 0.525 mg/mL",
    ]


def test_ranges() -> None:
    assert ranges([1, 2, 3, 5, 7, 8]) == "1-3, 5, 7-8"
    assert ranges([4]) == "4"
    assert ranges([1, 2], dash="–") == "1–2"


def test_route_lines() -> None:
    assert route_lines("iv", None) == []
    assert route_lines("sc", None) == [
        "Systemic: not estimated (no sc bioavailability in the sources)"
    ]
    assert route_lines("oral", None, refused=True) == ["Systemic: not shown, the dose is refused"]
