#!/usr/bin/env python3
"""Replays review histories through py-fsrs 6.3.2 for the cross-check in
src/srs/tests/crosscheck.rs.

stdin:  {"cases": [{"config": {"parameters": [21 floats], "desired_retention": f,
                               "learning_steps_secs": [int], "relearning_steps_secs": [int],
                               "maximum_interval_days": int},
                    "reviews": [[rating 1-4, unix ms], ...]}, ...]}
stdout: {"version": "6.3.2", "results": [[{"state": 1-3, "step": int, "stability": f,
          "difficulty": f, "due_ms": int, "raw_interval": f | null}, ...], ...]}

Fuzz is always off (the Rust side draws its own, deterministic, fuzz). `raw_interval`
is the unrounded review interval in days when the card is in review after the answer.
"""

import json
import sys
from datetime import datetime, timedelta, timezone
from importlib.metadata import version

from fsrs import Card, Rating, Scheduler, State

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MS = timedelta(milliseconds=1)


def replay(case):
    config = case["config"]
    scheduler = Scheduler(
        parameters=config["parameters"],
        desired_retention=config["desired_retention"],
        learning_steps=[timedelta(seconds=s) for s in config["learning_steps_secs"]],
        relearning_steps=[timedelta(seconds=s) for s in config["relearning_steps_secs"]],
        maximum_interval=config["maximum_interval_days"],
        enable_fuzzing=False,
    )
    card = Card(card_id=1, due=EPOCH)
    out = []
    for rating, at_ms in case["reviews"]:
        at = EPOCH + timedelta(milliseconds=at_ms)
        card, _ = scheduler.review_card(card, Rating(rating), at)
        raw = None
        if card.state == State.Review:
            raw = (card.stability / scheduler._FACTOR) * (
                scheduler.desired_retention ** (1 / scheduler._DECAY) - 1
            )
        out.append(
            {
                "state": int(card.state.value),
                "step": card.step if card.step is not None else 0,
                "stability": card.stability,
                "difficulty": card.difficulty,
                "due_ms": (card.due - EPOCH) // MS,
                "raw_interval": raw,
            }
        )
    return out


def main():
    request = json.load(sys.stdin)
    results = [replay(case) for case in request["cases"]]
    json.dump({"version": version("fsrs"), "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
