"""How Celery's publishing options map onto a yardmaster submission (pure; no Redis).

The live behaviour of each honoured option is in tests/test_celery_dropin.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from broker_config.results import failure_of
from scheduler.errors import InvalidInputError
from workers.publishing import IGNORED, REFUSED, UnsupportedOptionError, submission

NOW = 1_800_000_000.0


def test_countdown_and_eta_become_a_start_time():
    assert submission("t", (), {}, {"countdown": 5}, now=NOW).not_before == NOW + 5
    eta = datetime.fromtimestamp(NOW + 30, UTC)
    assert submission("t", (), {}, {"eta": eta}, now=NOW).not_before == NOW + 30
    assert submission("t", (), {}, {"eta": eta.isoformat()}, now=NOW).not_before == NOW + 30
    naive = eta.replace(tzinfo=None)  # read as UTC, Celery's default
    assert submission("t", (), {}, {"eta": naive}, now=NOW).not_before == NOW + 30
    plus_two = eta.astimezone(timezone(timedelta(hours=2)))
    assert submission("t", (), {}, {"eta": plus_two}, now=NOW).not_before == NOW + 30
    assert submission("t", (), {}, {}, now=NOW).not_before is None


def test_priority_expires_headers_and_limits_are_carried_to_the_message():
    sub = submission(
        "t",
        (1, 2),
        {"k": 3},
        {
            "priority": 9,
            "expires": 60,
            "headers": {"h": 1},
            "time_limit": 10,
            "soft_time_limit": 5,
            "task_id": "abc",
        },
        now=NOW,
    )
    assert sub.task_id == "abc"
    assert sub.expires == NOW + 60
    assert sub.fields["args"] == [1, 2]
    assert sub.fields["kwargs"] == {"k": 3}
    assert sub.fields["priority"] == 9
    assert sub.fields["time_limit"] == 10
    assert sub.fields["soft_time_limit"] == 5
    message = sub.fields["message"]
    assert message["priority"] == 9
    assert message["headers"] == {"h": 1}
    assert datetime.fromisoformat(message["expires"]).timestamp() == NOW + 60


def test_the_default_priority_is_five_and_a_new_id_is_made():
    first = submission("t", None, None, {"priority": None}, now=NOW)
    second = submission("t", None, None, {}, now=NOW)
    assert first.fields["priority"] == 5
    assert first.fields["message"]["priority"] == 5
    assert first.task_id != second.task_id


@pytest.mark.parametrize("option", sorted(REFUSED))
def test_every_refused_option_raises_naming_itself_and_why(option):
    with pytest.raises(UnsupportedOptionError) as raised:
        submission("t", (), {}, {option: "something"}, now=NOW)
    assert raised.value.field == option
    assert REFUSED[option] in str(raised.value)


def test_celery_plumbing_and_defaults_are_accepted():
    options = {name: object() for name in IGNORED}
    options.update(serializer="json", retries=0, delivery_mode=2, retry=True)
    assert submission("t", (), {}, options, now=NOW).fields["name"] == "t"


def test_an_unknown_option_raises_naming_it():
    with pytest.raises(UnsupportedOptionError) as raised:
        submission("t", (), {}, {"colour": "blue"}, now=NOW)
    assert raised.value.field == "colour"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"countdown": "5"}, "countdown"),
        ({"countdown": True}, "countdown"),
        ({"countdown": float("inf")}, "countdown"),
        ({"eta": "tomorrow"}, "eta"),
        ({"eta": 1234.0}, "eta"),
        ({"expires": "later"}, "expires"),
        ({"expires": float("nan")}, "expires"),
        ({"priority": 10}, "priority"),
        ({"priority": -1}, "priority"),
        ({"priority": "9"}, "priority"),
        ({"headers": "x"}, "headers"),
        ({"countdown": 1, "eta": datetime.now(UTC)}, "countdown"),
        ({"retries": 3}, "retries"),
    ],
)
def test_a_malformed_value_raises_naming_the_option(options, field):
    with pytest.raises(InvalidInputError) as raised:
        submission("t", (), {}, options, now=NOW)
    assert raised.value.field == field


def test_a_failure_is_described_by_the_workers_note_of_the_same_failure_only():
    note = '{"exc_type": "DropinError", "exc_module": "tests.dropin_tasks", "exc_message": [1]}'
    same = failure_of({"error": "DropinError: 1", "exc": note})
    assert same["exc_module"] == "tests.dropin_tasks"
    # a later attempt killed by its hard time limit: the note is an earlier attempt's
    later = failure_of({"error": "TimeLimitExceeded: hard time limit (5s) exceeded", "exc": note})
    assert later == {
        "exc_type": "TimeLimitExceeded",
        "exc_module": None,
        "exc_message": ["hard time limit (5s) exceeded"],
    }
    assert failure_of({"error": "the run was interrupted"})["exc_type"] == "TaskFailedError"


def test_minus_a_finds_an_app_by_celerys_rules_and_refuses_a_plain_one(monkeypatch):
    from workers.loading import load_app

    # reading an app's configuration resolves its broker URL (nothing connects to it)
    monkeypatch.setenv("YM_REDIS_URL", "redis://127.0.0.1:1/0")

    app = load_app("tests.dropin_pkg")  # a package with celery.py
    assert "dropin_pkg.double" in app.tasks
    assert load_app("tests.dropin_pkg.celery:app") is app
    tuned = load_app("tests.dropin_tasks", {"slots": 7})
    assert "dropin.add" in tuned.tasks
    assert tuned.conf["yardmaster_settings"].slots == 7
    with pytest.raises(InvalidInputError) as raised:
        load_app("tests.dropin_tasks:plain")
    assert raised.value.field == "-A"
    assert "not a yardmaster app" in str(raised.value)
    with pytest.raises(InvalidInputError, match="cannot load it"):
        load_app("tests.no_such_module")
