"""A/B routing: stable per user, proportional to the weights, changed by settings."""

from __future__ import annotations

from collections import Counter

from ocaml_ai_ls.config import Arm, RoutingSettings, Settings
from ocaml_ai_ls.routing import choose_arm, default_user_id, position, route


def test_no_arms_means_the_model_settings() -> None:
    r = route(Settings())
    assert r.arm == "" and r.model == Settings().model


def test_a_user_stays_on_one_arm_and_users_split_by_weight() -> None:
    arms = (Arm("a", 1.0, model="m-a"), Arm("b", 3.0, model="m-b", strategy="unified_diff"))
    assert {choose_arm(arms, "alice@laptop") for _ in range(5)} == {
        choose_arm(arms, "alice@laptop")
    }
    counts = Counter(getattr(choose_arm(arms, f"user{i}@host"), "name", None) for i in range(4000))
    assert 0.22 < counts["a"] / 4000 < 0.28 and counts["a"] + counts["b"] == 4000
    settings = Settings(routing=RoutingSettings(user_id="bob", arms=arms))
    chosen = route(settings)
    assert chosen.arm in ("a", "b")
    assert chosen.model.model == ("m-a" if chosen.arm == "a" else "m-b")


def test_weight_zero_takes_nobody_and_a_changed_split_moves_users() -> None:
    users = [f"u{i}" for i in range(200)]
    only_b = (Arm("a", 0.0), Arm("b", 1.0))
    assert {choose_arm(only_b, u).name for u in users} == {"b"}  # type: ignore[union-attr]
    half = (Arm("a", 1.0), Arm("b", 1.0))
    assert {choose_arm(half, u).name for u in users} == {"a", "b"}  # type: ignore[union-attr]


def test_positions_are_uniform_and_the_default_id_names_user_and_machine() -> None:
    marks = [position(f"user-{i}") for i in range(2000)]
    assert all(0 <= m < 1 for m in marks)
    assert 0.45 < sum(marks) / len(marks) < 0.55
    assert "@" in default_user_id()
