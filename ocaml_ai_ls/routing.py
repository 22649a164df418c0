"""A/B routing: which model arm serves this user.

A user is placed by a stable hash of their id (setting `routing.user_id`, by
default the OS user and the machine), so the same person sees the same arm across
restarts, and a split reads the same in every metrics row. Arms and weights come
from the settings and may change at runtime: the next request is routed by them.
"""

from __future__ import annotations

import getpass
import hashlib
import socket
from dataclasses import dataclass

from .config import Arm, ModelSettings, Settings


@dataclass(frozen=True)
class Route:
    """The arm serving a request ("" without a split) and the model settings it uses."""

    arm: str
    model: ModelSettings


def default_user_id() -> str:
    """`user@machine`: stable across restarts, different for two people on one machine."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (containers)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def position(user_id: str) -> float:
    """Where the user falls in [0, 1): uniform over users, the same on every run."""
    digest = hashlib.blake2b(user_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def choose_arm(arms: tuple[Arm, ...], user_id: str) -> Arm | None:
    """The arm whose share of the total weight holds the user's position (arms in the
    order given; weight 0 takes nobody). None without arms."""
    total = sum(arm.weight for arm in arms if arm.weight > 0)
    if total <= 0:
        return None
    mark = position(user_id) * total
    seen = 0.0
    chosen = None
    for arm in arms:
        if arm.weight <= 0:
            continue
        chosen = arm
        seen += arm.weight
        if mark < seen:
            break
    return chosen


def route(settings: Settings, user_id: str | None = None) -> Route:
    """The arm for this user under the current settings."""
    who = user_id or settings.routing.user_id or default_user_id()
    arm = choose_arm(settings.routing.arms, who)
    if arm is None:
        return Route("", settings.model)
    return Route(arm.name, arm.model_settings(settings.model))
