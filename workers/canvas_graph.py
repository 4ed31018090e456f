"""Nested Celery canvases as one batch of dependent yardmaster tasks.

A chain's step, a chord's body or a ``link`` may itself be a chain, a group or a
chord, nested to any depth. :func:`compile_node` turns such a node, waiting on
``parents``, into batch items with server-side dependencies (``depends_on`` and
``pass_results``), and says what the node's output is, as Celery defines it:

- a task: its result (the node's output is the task's id);
- a chain: its last step's output (each step gets the one before's output);
- a group: the list of its members' outputs, in order (a list of outputs);
- a chord: its body's output (the body gets the header's list).

A node after a task gets that task's result itself (``pass_results="single"``);
one after a group gets the list of the members' results (``pass_results`` true).
A group inside a group passes its members' results flat, in its place, as Celery
unrolls nested groups, so every output is one id or a flat list of ids and no
collecting task is needed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from celery import signature

from workers.publishing import UnsupportedOptionError

if TYPE_CHECKING:
    from workers.publishing import YardmasterCelery

Output = str | list["Output"]
"""A node's output: the id of the task whose result it is, or a group's list."""


def compile_node(
    app: YardmasterCelery, step: Any, parents: str | list[str], within: str
) -> tuple[list[dict[str, Any]], Output]:
    """The batch items of ``step`` (a task or a canvas) waiting on ``parents`` (one
    id: its result is passed; a list: their results as a list), and its output.

    Raises:
        UnsupportedOptionError: Naming ``within``: an empty chain; naming the option: a
            task's option that cannot be honoured inside a canvas (countdown, eta,
            expires), or ``link`` / ``link_error`` on a nested chain, group or chord.
    """
    sig: Any = signature(step, app=app)  # celery's canvas classes are untyped
    kind = sig.subtask_type
    items: list[dict[str, Any]]
    if kind is None:
        items = app._canvas_item(sig, parents, within)
        return items, str(items[0]["id"])
    for option in ("link", "link_error"):
        if sig.options.get(option):
            raise UnsupportedOptionError(
                option,
                repr(sig),
                f"a {option} on a {kind} nested in a canvas is not built on yardmaster yet "
                "(set it on the tasks)",
            )
    if kind == "chain":
        items = []
        out: Output = parents if isinstance(parents, str) else list(parents)
        feed: str | list[str] = parents
        tasks = list(sig.tasks)
        if not tasks:
            raise UnsupportedOptionError(within, repr(sig), "a chain with at least one step")
        for one in tasks:
            more, out = compile_node(app, one, feed, within)
            items += more
            feed = _feed(out)
        return items, out
    if kind == "group":
        return _members(app, sig.tasks, parents, within)
    if kind == "chord":
        header = sig.tasks
        if getattr(header, "subtask_type", None) is not None or isinstance(header, dict):
            items, out = compile_node(app, header, parents, within)
        else:
            items, out = _members(app, header, parents, within)
        more, result = compile_node(app, sig.body, _feed(out, force_list=True), within)
        return items + more, result
    raise UnsupportedOptionError(within, repr(sig), f"a task, chain, group or chord, not {kind}")


def _members(
    app: YardmasterCelery, members: Iterable[Any], parents: str | list[str], within: str
) -> tuple[list[dict[str, Any]], Output]:
    """A group's members, each waiting on ``parents``; its output is their list."""
    items: list[dict[str, Any]] = []
    outs: list[Output] = []
    for member in members:
        more, out = compile_node(app, member, parents, within)
        items += more
        outs.append(out)
    return items, outs


def chain_rest(app: YardmasterCelery, steps: Any, parent: str, within: str) -> list[dict[str, Any]]:
    """The items of the steps Celery left to run after task ``parent`` (its ``chain``
    option, last step first, as Celery keeps it: set on a chord's body when the chord
    leads a chain), each waiting on the output of the one before."""
    items: list[dict[str, Any]] = []
    feed: str | list[str] = parent
    for step in reversed(list(steps or ())):
        more, out = compile_node(app, step, feed, within)
        items += more
        feed = _feed(out)
    return items


def _feed(out: Output, *, force_list: bool = False) -> str | list[str]:
    """What the node after one whose output is ``out`` waits on: one id (its result is
    passed itself) or a list of ids (their results, a list). A group inside a group
    gives its members' results in the outer list's place, flat, as Celery unrolls
    nested groups."""
    if isinstance(out, str):
        return [out] if force_list else out
    flat: list[str] = []
    for one in out:
        inner = _feed(one, force_list=True)
        flat += [inner] if isinstance(inner, str) else inner
    return flat
