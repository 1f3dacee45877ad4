"""The front door of every conversation: commands about who you are and what you follow,
then the self-check flow (conversations.engine) for everything else.

Pure like the engine: reads and writes go through `Ports`, bound by the runtime to the step's
own transaction; time comes from the engine's clock.
"""

from __future__ import annotations

from typing import Any

from conversations.campaign import Catalog
from conversations.engine import Engine, Inbound, Reply, Step
from conversations.identity import Actor, Role
from conversations.ports import NominationView, PortRefusal, Ports
from conversations.texts import render

LEVEL_NAMES = {"county": "县", "city": "市", "province": "省"}


class Assistant:
    """Routes one inbound message: identity and tracking commands here, the rest to the flow."""

    def __init__(self, catalog: Catalog, engine: Engine) -> None:
        self.catalog = catalog
        self.engine = engine

    def start(self, saved: dict[str, Any] | None, ports: Ports) -> Step:
        return self.engine.start(saved)

    def resume(self, saved: dict[str, Any] | None, inbound: Inbound, ports: Ports) -> Step:
        words = inbound.text.strip().split()
        command = words[0].lower() if words and words[0].startswith("/") else None
        argument = " ".join(words[1:])
        if command == "/bind":
            return self._then_ask(saved, self._bind(argument, ports))
        if command == "/track":
            return self._then_ask(saved, self._track(argument, ports))
        if command == "/mine":
            return self._then_ask(saved, self._mine(ports))
        if command == "/whoami":
            text = render("whoami", who=self._who(ports.actor(), ports))
            return self._then_ask(saved, [Reply(text)])
        if command == "/help":
            actor = ports.actor()
            role = actor.role.value if actor else Role.APPLICANT.value
            return self._then_ask(saved, [Reply(render("help", role=role))])
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
            return [Reply(render("tracked_list", lines=[self._line(v) for v in views]))]
        view = ports.track(code)
        if view is None:
            shown = code if len(code) <= 20 else code[:20] + "…"
            return [Reply(render("track_unknown", code=shown))]
        return [Reply(render("tracking", line=self._line(view)))]

    def _mine(self, ports: Ports) -> list[Reply]:
        actor = ports.actor()
        if actor is None or actor.role is not Role.CLERK or actor.unit_id is None:
            ports.refused("mine", "not a clerk of a unit")
            return [Reply(render("mine_refused"))]
        views = ports.unit_nominations(actor.unit_id)
        if not views:
            return [Reply(render("mine_none"))]
        return [Reply(render("mine_list", lines=[self._line(v) for v in views]))]

    # ----- texts --------------------------------------------------------------------------

    def _who(self, actor: Actor | None, ports: Ports) -> str:
        if actor is None or actor.role is Role.APPLICANT:
            return render("who_applicant")
        region = ports.region_name(actor.region) if actor.region else ""
        if actor.role is Role.CLERK:
            return render("who_clerk", region=region, unit_id=actor.unit_id)
        level = LEVEL_NAMES.get(actor.level.value if actor.level else "", "")
        return render("who_official", region=region, level=level)

    def _line(self, view: NominationView) -> str:
        category, status = view.category, view.status
        if view.campaign in self.catalog:
            campaign = self.catalog.get(view.campaign)
            if any(c.id == view.category for c in campaign.categories):
                category = campaign.category(view.category).name
            if campaign.lifecycle is not None and campaign.lifecycle.has_status(view.status):
                status = campaign.lifecycle.status(view.status).label
        return render(
            "nomination_line",
            nominee=view.nominee,
            category=category,
            status=status,
            code=view.tracking_code,
        )

    def _then_ask(self, saved: dict[str, Any] | None, replies: list[Reply]) -> Step:
        """The command's replies, then the question the conversation is waiting for."""
        step = self.engine.ask(saved)
        return Step(step.state, [*replies, *step.replies], step.events)
