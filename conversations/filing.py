"""Filing a nomination by chat (a unit clerk): eligibility, the form, attachments, submit.

The flow reuses the self-check engine for the eligibility questions (its state lives under
`check`), then asks the form's fields one at a time, collects the attachments of the checklist,
shows a summary where any single field can be changed, and submits: the draft enters the
campaign's first lifecycle move (the unit publicity), with its end in working days.

Pure: the rules across nominations and the working-day calendar are read through `Env.reads`;
the draft, its answers and its files are written as effects (CreateDraft under a tracking code
from `Env.ctx`, SaveDraft, StoreAttachment), and submitting is a move planned by
conversations.moves — the same gate as every other way off the unit's desk.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from conversations.campaign import Campaign
from conversations.consistency import Disagreement, Filer, Severity, form_disagreements, involving
from conversations.crossrules import is_capped
from conversations.effects import CreateDraft, SaveDraft, SelfCheckCompleted, StoreAttachment
from conversations.engine import Engine, Inbound, Option, Reply, Step, consent_choice, pick
from conversations.form_display import display
from conversations.form_files import AttachmentError, check_attachment
from conversations.form_parse import Done, parse_field, parse_list_item
from conversations.forms import (
    FieldType,
    Form,
    FormField,
    derive_fields,
    form_for,
    missing_materials,
    pending_fields,
    prefill,
)
from conversations.identity import Level, Role
from conversations.lifecycle import Transition, actions_for
from conversations.material_stages import (
    filing_missing,
    in_unit_after_filing,
    later_missing,
    stage_note,
)
from conversations.moves import NotPlanned, is_entry, lifecycle_of, plan, ref_of
from conversations.reads import Env, NominationDetail
from conversations.texts import render

SUBMIT, ATTACH, FINISH_ATTACH, AGREE, DISAGREE = "submit", "attach", "done", "agree", "disagree"
SUBMIT_VIA = "submit:"
EDIT = "edit:"
UPLOAD = "upload:"


class FilingStage(StrEnum):
    CONSENT = "consent"
    CHECK = "check"  # the eligibility questions (the self-check engine)
    FIELD = "field"
    LIST = "list"  # collecting the items of a list field
    ATTACH = "attach"  # the checklist: choose what to upload
    WAIT_FILE = "wait_file"  # waiting for the file of `material`
    SUMMARY = "summary"
    SUBMITTED = "submitted"
    REFUSED = "refused"  # the eligibility verdict refuses this nominee


@dataclass(frozen=True, slots=True)
class Upload:
    """A file the user sent: its name and content, and its real size when the channel read
    only the first bytes of a file too big to take (the message then states that size)."""

    filename: str
    data: bytes
    size: int | None = None  # None: len(data)


class FilingState(BaseModel):
    flow: str = "filing"
    stage: FilingStage = FilingStage.CONSENT
    check: dict[str, Any] | None = None  # the self-check engine's state
    campaign: str | None = None
    category: str | None = None
    facts: dict[str, Any] = Field(default_factory=dict)  # eligibility answers
    values: dict[str, Any] = Field(default_factory=dict)  # form values
    field: str | None = None
    items: list[str] = Field(default_factory=list)
    material: str | None = None
    uploaded: list[str] = Field(default_factory=list)  # material keys with a file
    nomination_id: int | None = None  # None for a draft this conversation created: its code
    tracking_code: str | None = None
    returned: bool = False  # editing a returned nomination (submit = the resubmit moves)
    # Attaching a later stage's materials to a nomination already filed, still in the unit's
    # hands (conversations.material_stages): the checklist only, no form, no submit.
    late: bool = False
    verdict: str | None = None
    consented: bool = False
    editing: bool = False  # a field chosen from the summary: go back there after it


class Filing:
    """The clerk's filing conversation."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.catalog = engine.catalog

    # ----- entry points -------------------------------------------------------------------

    def start(self, env: Env) -> Step:
        actor = env.actor()
        if actor is None or actor.role is not Role.CLERK or actor.unit_id is None:
            return Step({}, [Reply(render("filing_not_clerk"))])
        state = FilingState()
        return self._step(state, env, [Reply(render("filing_intro"))])

    def continue_draft(self, detail: NominationDetail, env: Env, intro: Reply) -> Step:
        """Go on with a draft saved earlier: its answers, values and files are all kept."""
        fields = dict(detail.fields)
        campaign = self.catalog.get(detail.view.campaign)
        form = form_for(campaign, detail.view.category)
        derived = {f.key for f in form.fields if f.type is FieldType.DERIVED} if form else set()
        state = FilingState(
            stage=FilingStage.FIELD,
            campaign=detail.view.campaign,
            category=detail.view.category,
            facts=dict(detail.facts),
            values={k: v for k, v in fields.items() if k not in derived},
            uploaded=list(detail.uploaded),
            nomination_id=detail.view.id,
            tracking_code=detail.view.tracking_code,
            verdict=detail.verdict,
            consented=True,
            returned=detail.view.status != lifecycle_of(campaign).initial,
        )
        if in_unit_after_filing(lifecycle_of(campaign), detail.view.status):
            # Filed and in its publicity or 征求意见: only the later stages' materials are open.
            state.stage, state.returned, state.late = FilingStage.ATTACH, False, True
            return self._step(state, env, [intro])
        if state.returned:
            # A returned nomination: everything is filled in; the summary is where to change it.
            state.stage = FilingStage.SUMMARY
            return self._step(state, env, [intro])
        return self._advance(state, env, [intro])

    def ask(self, saved: dict[str, Any], env: Env | None = None) -> Step:
        """Re-ask what filing waits for, after a command handled outside it."""
        state = FilingState.model_validate(saved)
        if state.stage is FilingStage.CHECK:
            check = self.engine.ask(state.check)
            return Step(self._dump(state), check.replies)
        return self._step(state, env, [])

    def resume(self, saved: dict[str, Any], inbound: Inbound, env: Env,
               upload: Upload | None = None) -> Step:  # fmt: skip
        state = FilingState.model_validate(saved)
        text = inbound.text.strip()
        if upload is not None and state.stage is not FilingStage.WAIT_FILE:
            return self._step(state, env, [Reply(render("filing_file_unexpected"))])
        handler = {
            FilingStage.CONSENT: self._on_consent,
            FilingStage.CHECK: self._on_check,
            FilingStage.FIELD: self._on_field,
            FilingStage.LIST: self._on_list_item,
            FilingStage.ATTACH: self._on_attach,
            FilingStage.WAIT_FILE: self._on_file,
            FilingStage.SUMMARY: self._on_summary,
            FilingStage.SUBMITTED: self._on_done,
            FilingStage.REFUSED: self._on_done,
        }[state.stage]
        if text == "/back" and state.stage in (FilingStage.FIELD, FilingStage.LIST):
            return self._back(state, env)
        return handler(state, inbound, env, upload)

    # ----- stages -------------------------------------------------------------------------

    def _on_consent(self, state: FilingState, inbound: Inbound, env: Env,
                    upload: Upload | None) -> Step:  # fmt: skip
        choice = consent_choice(inbound.text, self._consent_options())
        if choice == DISAGREE:
            state.stage = FilingStage.REFUSED
            return self._step(state, env, [Reply(render("filing_no_consent"))], ask=False)
        if choice != AGREE:
            return self._step(state, env, [Reply(render("bad_choice", count=2))])
        state.stage, state.consented = FilingStage.CHECK, True
        check = self.engine.ask(None)
        # Consent was given for the whole filing: the eligibility questions do not ask again.
        state.check = {**check.state, "flow": "filing", "consented": True}
        return self._step(state, env, [], extra=check.replies)

    def _on_check(self, state: FilingState, inbound: Inbound, env: Env,
                  upload: Upload | None) -> Step:  # fmt: skip
        had_category = bool((state.check or {}).get("category"))
        step = self.engine.resume(state.check, inbound)
        state.check = step.state
        category = step.state.get("category")
        if not had_category and category and not step.state.get("answers"):
            earlier = env.reads.latest_selfcheck(step.state["campaign"], category)
            if earlier:
                # Answers of a self-check already done: reuse them, to be confirmed on the
                # summary (any one can be changed there), not asked again one by one.
                # Stage "question" without a question: the engine moves to the first question
                # the old answers leave open, or to the summary when there is none.
                state.check = {**step.state, "answers": earlier, "stage": "question",
                               "question": None}  # fmt: skip
                again = self.engine.ask(state.check)
                state.check = again.state
                note = Reply(render("filing_reused_selfcheck"))
                return Step(self._dump(state), [*step.replies[:-1], note, *again.replies])
        if not step.effects:
            return Step(self._dump(state), step.replies)
        done = step.effects[0]
        assert isinstance(done, SelfCheckCompleted)
        state.campaign, state.category, state.verdict = done.campaign, done.category, done.verdict
        state.facts = dict(step.state.get("answers", {}))
        verdict_replies = [r for r in step.replies if r.verdict]
        if done.verdict == "ineligible":
            state.stage = FilingStage.REFUSED
            return self._step(
                state, env, [*verdict_replies, Reply(render("filing_ineligible"))], ask=False
            )
        campaign = self.catalog.get(done.campaign)
        form = self._form(state)
        state.values = prefill(form, state.facts)
        kind = campaign.category(done.category).kind.value
        state.tracking_code = env.ctx.new_code()
        env.add(
            CreateDraft(state.tracking_code, done.campaign, done.category, kind,
                        self._payload(state)),
        )  # fmt: skip
        intro = Reply(render("filing_draft_made", code=state.tracking_code))
        return self._advance(state, env, [*verdict_replies, intro])

    def _on_field(self, state: FilingState, inbound: Inbound, env: Env,
                  upload: Upload | None) -> Step:  # fmt: skip
        field = self._form(state).field(_req(state.field))
        if field.type is FieldType.LIST:
            state.stage, state.items = FilingStage.LIST, []
            return self._on_list_item(state, inbound, env, upload)
        try:
            value = parse_field(
                field, inbound.text, today=self.engine.clock().date(), values=state.values
            )
        except ValueError as exc:
            return self._step(state, env, [Reply(str(exc))])
        said = self._agree(state, env, field, value)
        if isinstance(said, Reply):
            return self._step(state, env, [said])
        state.values[field.key] = value
        self._save(state, env)
        return self._advance(state, env, said)

    def _agree(self, state: FilingState, env: Env, field: FormField,
               value: Any) -> Reply | list[Reply]:  # fmt: skip
        """Check a typed value against the self-check answers, the rest of the form and the
        records (conversations.consistency): a refusal to re-ask with, or what to say on.

        A value that disagrees with a self-check answer, a field asked before it or a record is
        refused, naming both; one that disagrees with a field further on clears that field,
        which is asked again. Warnings are said and the value kept.
        """
        form = self._form(state)
        order = [f.key for f in form.fields]
        trial = {**state.values, field.key: value}
        found = involving(self._disagreements(state, env, trial), field=field.key)
        said: list[Reply] = []
        cleared: list[str] = []
        for d in found:
            if d.severity is Severity.WARN:
                said.append(Reply(d.message))
                continue
            others = [k for k in d.fields if k != field.key]
            later = [k for k in others if order.index(k) > order.index(field.key)]
            if d.facts or not others or len(later) < len(others):
                return Reply(_with_advice(d, form, field, [k for k in others if k not in later]))
            for key in later:
                if key not in cleared and key in state.values:
                    cleared.append(key)
                    label = form.field(key).label
                    said.append(Reply(render("filing_field_cleared", reason=d.message,
                                             label=label)))  # fmt: skip
        for key in cleared:
            state.values.pop(key, None)
        return said

    def _disagreements(
        self, state: FilingState, env: Env | None, values: dict[str, Any] | None = None
    ) -> list[Disagreement]:
        """What in the form disagrees, with the filing unit and the records when `env` is
        given (the unit's region and the codes other units hold)."""
        actor = env.actor() if env is not None else None
        filer = None
        if actor is not None and actor.unit_id is not None and actor.region is not None:
            filer = Filer(actor.unit_id, actor.region, state.tracking_code)
        today = env.ctx.today if env is not None else self.engine.clock().date()
        return form_disagreements(
            self._campaign(state),
            self._form(state),
            state.values if values is None else values,
            state.facts,
            today=today,
            filer=filer,
            reads=env.reads if env is not None else None,
        )

    def _on_list_item(self, state: FilingState, inbound: Inbound, env: Env,
                      upload: Upload | None) -> Step:  # fmt: skip
        field = self._form(state).field(_req(state.field))
        try:
            item = parse_list_item(field, inbound.text, count=len(state.items))
        except ValueError as exc:
            return self._step(state, env, [Reply(str(exc))])
        if isinstance(item, Done):
            state.values[field.key] = list(state.items)
            state.items = []
            self._save(state, env)
            return self._advance(state, env, [])
        state.items.append(item)
        return self._step(state, env, [Reply(render("filing_item_added", n=len(state.items)))])

    def _on_attach(self, state: FilingState, inbound: Inbound, env: Env,
                   upload: Upload | None) -> Step:  # fmt: skip
        choice = pick(inbound.text, self._attach_options(state, env))
        if choice == FINISH_ATTACH and state.late:
            state.stage = FilingStage.SUBMITTED
            done = render("filing_late_done", later=self._later(state, env))
            return self._step(state, env, [Reply(done)], ask=False)
        if choice == FINISH_ATTACH:
            state.stage = FilingStage.SUMMARY
            return self._step(state, env, [])
        if choice is not None and choice.startswith(UPLOAD):
            state.stage, state.material = FilingStage.WAIT_FILE, choice.removeprefix(UPLOAD)
            return self._step(state, env, [])
        count = len(self._attach_options(state, env))
        return self._step(state, env, [Reply(render("bad_choice", count=count))])

    def _on_file(self, state: FilingState, inbound: Inbound, env: Env,
                 upload: Upload | None) -> Step:  # fmt: skip
        form = self._form(state)
        material = next(m for m in form.materials if m.key == state.material)
        if upload is None:
            if inbound.text.strip() in ("/cancel", "取消"):
                state.stage, state.material = FilingStage.ATTACH, None
                return self._step(state, env, [])
            return self._step(state, env, [Reply(render("filing_send_a_file"))])
        try:
            kind = check_attachment(
                material, filename=upload.filename, data=upload.data, size=upload.size
            )
        except AttachmentError as exc:
            return self._step(state, env, [Reply(str(exc))])
        env.add(
            StoreAttachment(_key(state), material.key, upload.filename, kind.value, upload.data)
        )
        if material.key not in state.uploaded:
            state.uploaded.append(material.key)
        state.stage, state.material = FilingStage.ATTACH, None
        reply = Reply(render("filing_file_saved", material=material.name, kind=kind.value))
        return self._step(state, env, [reply])

    def _on_summary(self, state: FilingState, inbound: Inbound, env: Env,
                    upload: Upload | None) -> Step:  # fmt: skip
        choice = pick(inbound.text, self._summary_options(state, env))
        if choice is not None and (choice == SUBMIT or choice.startswith(SUBMIT_VIA)):
            return self._submit(state, env, choice.removeprefix(SUBMIT_VIA))
        if choice == ATTACH:
            state.stage = FilingStage.ATTACH
            return self._step(state, env, [])
        if choice is not None and choice.startswith(EDIT):
            state.stage, state.field, state.editing = (
                FilingStage.FIELD,
                choice.removeprefix(EDIT),
                True,
            )
            state.values.pop(state.field, None)
            return self._step(state, env, [])
        count = len(self._summary_options(state, env))
        return self._step(state, env, [Reply(render("bad_choice", count=count))])

    def _on_done(self, state: FilingState, inbound: Inbound, env: Env,
                 upload: Upload | None) -> Step:  # fmt: skip
        return self._step(state, env, [Reply(render("filing_finished"))], ask=False)

    # ----- submit -------------------------------------------------------------------------

    def _submit(self, state: FilingState, env: Env, via: str) -> Step:
        """Off the unit's desk along `via` (or the first entry move): the gate and the
        lifecycle decide, in conversations.moves, as for every other path."""
        # Materials, field rules and rules across nominations: the gate in plan() checks them
        # on the stored draft, as for every other way off the unit's desk.
        campaign = self._campaign(state)
        actor = env.actor()
        if actor is None or actor.role is not Role.CLERK or actor.unit_id is None:
            return self._step(state, env, [Reply(render("filing_not_clerk"))], ask=False)
        if campaign.lifecycle is None:
            return self._step(state, env, [Reply(render("filing_no_lifecycle"))], ask=False)
        detail = env.reads.nomination(_key(state))
        if detail is None:
            return self._step(state, env, [Reply(render("nomination_gone"))], ask=False)
        moves = self._entry_moves(detail, env)
        chosen = next((t for t in moves if t.id == via), moves[0] if moves else None)
        if chosen is None:
            status = campaign.lifecycle.status(detail.view.status).label
            return self._step(state, env, [Reply(render("filing_no_entry", status=status))])
        planned = plan(campaign, detail, actor, chosen, None, env.reads, env.ctx.today)
        if isinstance(planned, NotPlanned):
            return self._step(state, env, [Reply(planned.why)])
        env.add(*planned.effects)
        state.stage = FilingStage.SUBMITTED
        text = render(
            "filing_submitted",
            status=planned.to_label,
            code=state.tracking_code,
            start=planned.publicity[0].isoformat() if planned.publicity else None,
            end=planned.publicity[1].isoformat() if planned.publicity else None,
            days=planned.workdays,
            warnings=planned.warnings,
            later=self._later(state, env),
        )
        return self._step(state, env, [Reply(text)], ask=False)

    def _entry_moves(self, detail: NominationDetail, env: Env) -> list[Transition]:
        """The moves off the unit's desk the clerk may make on this nomination now."""
        lifecycle = lifecycle_of(self.catalog.get(detail.view.campaign))
        actor = env.actor()
        if actor is None:
            return []
        ref = ref_of(lifecycle, detail, env.reads)
        return [
            t
            for t in actions_for(lifecycle, ref, actor, today=env.ctx.today)
            if is_entry(lifecycle, t)
        ]

    # ----- moving on ----------------------------------------------------------------------

    def _advance(self, state: FilingState, env: Env, replies: list[Reply]) -> Step:
        pending = self._pending(state)
        if pending:
            state.stage, state.field = FilingStage.FIELD, pending[0].key
        elif state.editing:
            state.stage, state.field, state.editing = FilingStage.SUMMARY, None, False
        else:
            state.stage, state.field = FilingStage.ATTACH, None
        return self._step(state, env, replies)

    def _back(self, state: FilingState, env: Env) -> Step:
        form = self._form(state)
        asked = [f.key for f in form.fields if f.type is not FieldType.DERIVED]
        current = state.field if state.field in asked else None
        earlier = asked[: asked.index(current)] if current else asked
        answered = [k for k in earlier if k in state.values]
        if not answered:
            return self._step(state, env, [Reply(render("back_at_start"))])
        state.stage, state.field, state.items = FilingStage.FIELD, answered[-1], []
        state.values.pop(answered[-1], None)
        return self._step(state, env, [])

    def _pending(self, state: FilingState) -> list[FormField]:
        return pending_fields(
            self._form(state),
            state.values,
            state.facts,
            ordinal=self._campaign(state).ordinal,
            optional=True,
        )

    # ----- what to ask --------------------------------------------------------------------

    def _question(self, state: FilingState, env: Env | None) -> Reply | None:
        match state.stage:
            case FilingStage.CONSENT:
                return Reply(render("consent"), key="consent", options=self._consent_options())
            case FilingStage.FIELD:
                field = self._form(state).field(_req(state.field))
                return _field_question(field)
            case FilingStage.LIST:
                field = self._form(state).field(_req(state.field))
                return Reply(render("filing_list_more"), key=field.key)
            case FilingStage.ATTACH:
                return Reply(
                    render("filing_late_question" if state.late else "filing_attach_question"),
                    key="attach",
                    options=self._attach_options(state, env),
                )
            case FilingStage.WAIT_FILE:
                material = next(m for m in self._form(state).materials if m.key == state.material)
                accepted = "、".join(k.value for k in material.accept)
                text = render(
                    "filing_send_file",
                    material=material.name,
                    accepted=accepted,
                    mb=material.max_mb,
                )
                return Reply(text, key="file", hint=material.note)
            case FilingStage.SUMMARY:
                form, campaign = self._form(state), self._campaign(state)
                missing = filing_missing(
                    campaign, form, set(state.uploaded), state.values, state.facts
                )
                options = self._summary_options(state, env)
                text = render(
                    "filing_summary_question",
                    uploaded=[m.name for m in form.materials if m.key in state.uploaded],
                    missing=[m.name for m in missing],
                    later=self._later(state, env),
                    submits=sum(1 for o in options if o.value.startswith(SUBMIT)),
                )
                # Checked again on the whole form: a record may have changed since a field was
                # typed, and a draft continued may hold values typed before these checks.
                found = self._disagreements(state, env)
                if found:
                    note = render(
                        "filing_disagreements",
                        refuse=[d.message for d in found if d.severity is Severity.REFUSE],
                        warn=[d.message for d in found if d.severity is Severity.WARN],
                    )
                    text = f"{note}\n{text}"
                return Reply(text, key="summary", options=options)
            case _:
                return None

    @staticmethod
    def _consent_options() -> tuple[Option, ...]:
        return (Option("同意", AGREE), Option("不同意", DISAGREE))

    def _attach_options(self, state: FilingState, env: Env | None) -> tuple[Option, ...]:
        """The checklist: each material with ✓ once attached, else 必需 or 可选 — and a later
        stage's with when it is due (「单位公示结束后、报送县级前提交」) while filing; once
        filed (`late`), only the later stages' materials."""
        form, campaign = self._form(state), self._campaign(state)
        lifecycle = campaign.lifecycle
        missing = {
            m.key
            for m in missing_materials(form, set(), state.values, facts=state.facts,
                                       ordinal=campaign.ordinal)
        }  # fmt: skip
        level = self._entry_level(env)
        out = []
        for m in form.materials:
            if state.late and m.required_by is None:
                continue
            note = stage_note(lifecycle, m, level) if lifecycle and not state.late else None
            mark = "✓" if m.key in state.uploaded else ("必需" if m.key in missing else "可选")
            if note is not None and m.key not in state.uploaded:
                mark = note if m.key in missing else f"可选，{note}"
            out.append(Option(f"{m.name}（{mark}）", UPLOAD + m.key))
        done = "filing_late_attach_done" if state.late else "filing_attach_done"
        out.append(Option(render(done), FINISH_ATTACH))
        return tuple(out)

    def _later(self, state: FilingState, env: Env | None) -> list[str]:
        """The required materials of a later stage not attached yet, each with when it is due."""
        form, campaign = self._form(state), self._campaign(state)
        lifecycle, level = campaign.lifecycle, self._entry_level(env)
        out = []
        for m in later_missing(campaign, form, set(state.uploaded), state.values, state.facts):
            note = stage_note(lifecycle, m, level) if lifecycle else None
            out.append(f"{m.name}（{note}）" if note else m.name)
        return out

    @staticmethod
    def _entry_level(env: Env | None) -> Level | None:
        """The level of the office the clerk's unit reports to: its move is the one named."""
        actor = env.actor() if env is not None else None
        if actor is None or actor.region is None:
            return None
        return env.reads.entry_level(actor.region) if env is not None else None

    def _summary_options(self, state: FilingState, env: Env | None) -> tuple[Option, ...]:
        form = self._form(state)
        values = {**state.values, **derive_fields(form, state.values)}
        submit = [Option(render("filing_submit_choice"), SUBMIT)]
        if state.returned and env is not None:
            detail = env.reads.nomination(_key(state))
            moves = self._entry_moves(detail, env) if detail is not None else []
            submit = [Option(t.label, SUBMIT_VIA + t.id) for t in moves]
        out = [*submit, Option("上传或更换附件", ATTACH)]
        for field in form.fields:
            if field.key not in values or field.type is FieldType.DERIVED:
                continue
            shown = display(field, values[field.key]).replace("\n", "；")
            out.append(Option(f"{field.label}：{shown}", EDIT + field.key))
        return tuple(out)

    # ----- plumbing -----------------------------------------------------------------------

    def _campaign(self, state: FilingState) -> Campaign:
        return self.catalog.get(_req(state.campaign))

    def _form(self, state: FilingState) -> Form:
        form = form_for(self._campaign(state), _req(state.category))
        if form is None:
            raise RuntimeError(f"campaign {state.campaign} has no form for {state.category}")
        return form

    def _payload(self, state: FilingState) -> dict[str, Any]:
        form = self._form(state)
        return {
            "facts": state.facts,
            "fields": {**state.values, **derive_fields(form, state.values)},
            "verdict": state.verdict,
        }

    def _save(self, state: FilingState, env: Env) -> None:
        capped = is_capped(self._campaign(state), state.facts)  # cross_rules.cap
        env.add(SaveDraft(_key(state), self._payload(state), capped))

    def _dump(self, state: FilingState) -> dict[str, Any]:
        return state.model_dump(mode="json")

    def _step(
        self,
        state: FilingState,
        env: Env | None,
        replies: list[Reply],
        *,
        ask: bool = True,
        extra: list[Reply] | None = None,
    ) -> Step:
        out = [*replies, *(extra or [])]
        if ask and not extra:
            question = self._question(state, env)
            if question is not None:
                out.append(question)
        return Step(self._dump(state), out)


def _field_question(field: FormField) -> Reply:
    hints = [field.help] if field.help else []
    if not field.required:
        hints.append("（选填：不填请回复“无”）")
    if field.type is FieldType.BOOL:
        options: tuple[Option, ...] = (Option("是", "true"), Option("否", "false"))
    else:
        options = tuple(Option(c.label, c.value) for c in field.choices)
    if field.type is FieldType.LIST:
        hints.append(render("filing_list_hint"))
    return Reply(
        field.question or field.label,
        key=field.key,
        hint="\n".join(hints) or None,
        options=options,
    )


def _with_advice(found: Disagreement, form: Form, field: FormField, earlier: list[str]) -> str:
    """A refusal, and how to get past it when the typed value is the right one."""
    if found.facts:
        return render("filing_disagrees_selfcheck", reason=found.message, label=field.label)
    if earlier:
        labels = "、".join(f"“{form.field(k).label}”" for k in earlier)
        return render("filing_disagrees_earlier", reason=found.message, labels=labels)
    return found.message


def _req(value: str | None) -> str:
    if value is None:
        raise RuntimeError("filing state is missing a value its stage requires")
    return value


def _key(state: FilingState) -> int | str:
    """The draft: by id once known, else by the tracking code this conversation gave it."""
    if state.nomination_id is not None:
        return state.nomination_id
    if state.tracking_code is None:
        raise RuntimeError("filing state has no nomination yet")
    return state.tracking_code


__all__ = ["Filing", "FilingState", "Upload"]
