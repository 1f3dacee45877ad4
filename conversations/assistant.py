"""The front door of every conversation: commands about who you are and what you follow,
then the self-check flow (conversations.engine) for everything else.

Pure like the engine: reads and writes go through `Ports`, bound by the runtime to the step's
own transaction; time comes from the engine's clock.
"""

from __future__ import annotations

from typing import Any

from conversations.campaign import Catalog
from conversations.engine import Engine, Inbound, Reply, Step
from conversations.filing import Filing, Upload
from conversations.identity import Actor, Role
from conversations.ports import PortRefusal, Ports
from conversations.review import ContinueDraft, Leave, Review
from conversations.texts import render

LEVEL_NAMES = {"county": "县", "city": "市", "province": "省"}


class Assistant:
    """Routes one inbound message: identity and tracking commands here, the rest to the flow."""

    def __init__(self, catalog: Catalog, engine: Engine) -> None:
        self.catalog = catalog
        self.engine = engine
        self.filing = Filing(engine)
        self.review = Review(catalog, lambda: engine.clock().date())

    def start(self, saved: dict[str, Any] | None, ports: Ports) -> Step:
        saved = _outside_review(saved)
        if _in_filing(saved):
            step = self.filing.ask(saved or {})
            return Step(step.state, [Reply(render("resume")), *step.replies])
        return self.engine.start(saved)

    def resume(
        self,
        saved: dict[str, Any] | None,
        inbound: Inbound,
        ports: Ports,
        upload: Upload | None = None,
    ) -> Step:
        try:
            return self._route(saved, inbound, ports, upload)
        except PortRefusal as exc:
            # The outside world said no (an unknown calendar year, a nomination of another
            # unit): say why and ask again; the port has audited what needed auditing.
            return self._then_ask(saved, [Reply(str(exc))])

    def _route(
        self,
        saved: dict[str, Any] | None,
        inbound: Inbound,
        ports: Ports,
        upload: Upload | None,
    ) -> Step:
        words = inbound.text.strip().split()
        command = words[0].lower() if words and words[0].startswith("/") else None
        argument = " ".join(words[1:])
        if command == "/new":
            step = self.filing.start(ports)
            return step if step.state else self._then_ask(saved, step.replies)
        if _in_filing(saved) and (
            command == "/restart"
            or (command == "/cancel" and (saved or {}).get("stage") != "wait_file")
        ):
            fresh = self.engine.ask(None)
            return Step(fresh.state, [Reply(render("filing_left")), *fresh.replies])
        if command == "/bind":
            return self._then_ask(saved, self._bind(argument, ports))
        if command == "/track":
            return self._then_ask(saved, self._track(argument, ports))
        if command == "/mine":
            return self._listing(saved, self.review.mine(_outside_review(saved), ports))
        if command == "/queue":
            return self._listing(saved, self.review.queue(_outside_review(saved), ports))
        if command == "/whoami":
            text = render("whoami", who=self._who(ports.actor(), ports))
            return self._then_ask(saved, [Reply(text)])
        if command == "/help":
            actor = ports.actor()
            role = actor.role.value if actor else Role.APPLICANT.value
            return self._then_ask(saved, [Reply(render("help", role=role))])
        if _in_review(saved):
            outcome = self.review.resume(saved or {}, inbound.text, ports)
            if isinstance(outcome, Leave):
                return self._then_ask(outcome.previous, outcome.replies)
            if isinstance(outcome, ContinueDraft):
                intro = Reply(render("draft_resumed", line=self.review.line(outcome.detail.view)))
                return self.filing.continue_draft(outcome.detail, ports, intro)
            return outcome
        if _in_filing(saved):
            return self.filing.resume(saved or {}, inbound, ports, upload)
        if upload is not None:
            return self._then_ask(saved, [Reply(render("filing_file_unexpected"))])
        return self.engine.resume(saved, inbound)

    # ----- commands -----------------------------------------------------------------------

    def _bind(self, code: str, ports: Ports) -> list[Reply]:
        if not code:
            return [Reply(render("bind_usage"))]
        try:
            actor = ports.bind(code)
        except PortRefusal as exc:
            return [Reply(str(exc))]
        return [Reply(render("bound", who=self._who(actor, ports)))]

    def _track(self, code: str, ports: Ports) -> list[Reply]:
        if not code:
            views = ports.tracked()
            if not views:
                return [Reply(render("tracked_none"))]
            return [Reply(render("tracked_list", lines=[self.review.line(v) for v in views]))]
        view = ports.track(code)
        if view is None:
            shown = code if len(code) <= 20 else code[:20] + "…"
            return [Reply(render("track_unknown", code=shown))]
        return [Reply(render("tracking", line=self.review.line(view)))]

    def _listing(self, saved: dict[str, Any] | None, outcome: Step | list[Reply]) -> Step:
        """A review list to choose from, or (nothing to list / refused) replies, then re-ask."""
        if isinstance(outcome, Step):
            return outcome
        return self._then_ask(_outside_review(saved), outcome)

    # ----- texts --------------------------------------------------------------------------

    def _who(self, actor: Actor | None, ports: Ports) -> str:
        if actor is None or actor.role is Role.APPLICANT:
            return render("who_applicant")
        region = ports.region_name(actor.region) if actor.region else ""
        if actor.role is Role.CLERK:
            return render("who_clerk", region=region, unit_id=actor.unit_id)
        level = LEVEL_NAMES.get(actor.level.value if actor.level else "", "")
        return render("who_official", region=region, level=level)

    def _then_ask(self, saved: dict[str, Any] | None, replies: list[Reply]) -> Step:
        """The command's replies, then the question the conversation is waiting for."""
        saved = _outside_review(saved)
        step = self.filing.ask(saved or {}) if _in_filing(saved) else self.engine.ask(saved)
        return Step(step.state, [*replies, *step.replies], step.events)


def _in_review(saved: dict[str, Any] | None) -> bool:
    return saved is not None and saved.get("flow") == "review"


def _outside_review(saved: dict[str, Any] | None) -> dict[str, Any] | None:
    """The conversation under a review listing (a new listing replaces the old one)."""
    while _in_review(saved):
        saved = (saved or {}).get("previous")
    return saved


def _in_filing(saved: dict[str, Any] | None) -> bool:
    return saved is not None and saved.get("flow") == "filing"
