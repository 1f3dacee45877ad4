"""Policy, in one place: who may see a nomination, who is told of a move, how a nominee is
shown, how often a code may be guessed, which region holds a quota.

Pure functions over what `Reads` gives; the flows ask here, and so does the writer when it
re-checks an effect, so a rule is written once and applied on both sides.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from conversations.crossrules import NominationFacts
from conversations.effects import Audience, Audit
from conversations.forms import Form, FormKind, form_for
from conversations.identity import Actor, Role, region_prefix
from conversations.reads import NominationDetail, NominationView, Reads

if TYPE_CHECKING:
    from conversations.campaign import Catalog

GUESS_ATTEMPTS = 5  # wrong invitation or tracking codes a chat identity may send ...
GUESS_WINDOW = dt.timedelta(hours=1)  # ... within this window, for each of the two commands


def mask_name(name: str) -> str:
    """张* / 欧*娜: enough to recognise in a list, not enough to identify."""
    name = name.strip()
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def nominee_label(form: Form | None, fields: Mapping[str, Any]) -> str:
    """How a list shows the nominee: a unit by its name, a person by a masked name; the name is
    the form's `names` field (a nomination whose form is gone shows no name)."""
    unit = form is not None and form.kind is FormKind.UNIT
    field = form.name_field() if form is not None else None
    name = fields.get(field.key) if field is not None else None
    if not name:
        return "（未填单位名称）" if unit else "（未填姓名）"
    return str(name) if unit else mask_name(str(name))


def nominee_key(form: Form | None, fields: Mapping[str, Any]) -> str | None:
    """What tells this nominee from another for the rules across nominations: the value of the
    form's `identifies` field (ID number, USCC), None while it is unanswered."""
    field = form.identity_field() if form is not None else None
    value = fields.get(field.key) if field is not None else None
    return str(value) if value else None


def nomination_form(catalog: Catalog, campaign: str, category: str) -> Form | None:
    """The form a stored nomination was filed on, if its campaign still serves the category."""
    return form_for(catalog.get(campaign), category) if campaign in catalog else None


def may_see(actor: Actor | None, view: NominationView, reads: Reads) -> bool:
    """Clerks see their unit's nominations, officials their region's, anyone what they follow."""
    if actor is not None and actor.role is Role.CLERK:
        return view.unit_id == actor.unit_id
    if actor is not None and actor.role is Role.OFFICIAL and actor.region is not None:
        return reads.contains(actor.region, view.region)
    return reads.follows(view.id)


def may_edit(actor: Actor | None, view: NominationView) -> bool:
    """Only a clerk of the nomination's unit changes its answers, files and opinions."""
    return actor is not None and actor.role is Role.CLERK and actor.unit_id == view.unit_id


def shows_personal_data(actor: Actor | None) -> bool:
    """Officials see ID numbers and phones in full (each such read audited once)."""
    return actor is not None and actor.role is Role.OFFICIAL


def read_audit(detail: NominationDetail) -> Audit:
    """The audit row of an official's read of full personal data."""
    return Audit("read_personal_data", True, nomination=detail.view.id)


def move_audience(nomination: int | str, next_level: str | None) -> Audience:
    """Who is told of a move: the unit's clerks, the followers, and the officials of the level
    that must act next over the nomination's region."""
    return Audience(nomination, unit=True, followers=True, officials_at=next_level)


def filed_audience(nomination: int | str) -> Audience:
    """Who is told that a draft left the unit's desk: those who follow it."""
    return Audience(nomination, followers=True)


def guessing_refused(reads: Reads, action: str, now: dt.datetime) -> bool:
    """Whether this chat identity got `action`'s code wrong GUESS_ATTEMPTS times lately.

    Guessing codes by chat (an invitation binds a role; a tracking code shows a nomination's
    status): a handful of wrong ones per hour is plenty for typos. The refusal itself is
    audited, so an operator sees the guessing go on.
    """
    return reads.recent_refusals(action, now - GUESS_WINDOW) >= GUESS_ATTEMPTS


def quota_holder(region: str, holders: list[str], reads: Reads) -> str:
    """The region whose quota a unit's nominations count against: the most specific region
    with a quota that contains the unit's region (else the unit's region)."""
    inside = [h for h in holders if reads.contains(h, region)]
    return max(inside, key=lambda c: len(region_prefix(c)), default=region)


@dataclass(frozen=True, slots=True)
class RulesInputs:
    """The campaign's nominations and the quota that applies, for conversations.crossrules.

    Regions are those of the quota holders, so nominations counted against one quota compare
    equal.
    """

    others: list[NominationFacts]
    quota: int | None
    region: str  # the quota holder of the nomination being checked


def rules_inputs(reads: Reads, campaign: str, category: str, region: str) -> RulesInputs:
    quotas = reads.quotas(campaign, category)
    holders = [q.region for q in quotas]
    others = []
    for facts in reads.campaign_facts(campaign):
        own = [q.region for q in reads.quotas(facts.campaign, facts.category)]
        others.append(replace(facts, region=quota_holder(facts.region, own, reads)))
    holder = quota_holder(region, holders, reads)
    places = next((q.places for q in quotas if q.region == holder), None)
    return RulesInputs(others=others, quota=places, region=holder)
