"""The document worker: turns a `/documents` (or `/quota`) job into files in the user's chat.

A step records the job (storage.exports.request) and answers at once; this worker, run by the
scheduler in `serve` and after each step in the console, claims it, re-reads who asked (a
binding changed meanwhile decides, not the one the step saw), reads every row it needs in one
snapshot, renders outside any write transaction, then in ONE transaction stores the files
(sealed names, bytes in the FileStore), audits the export (who, what, for which audience),
hands the chat its reply with the files (`FileOut` with negative ids: generated files) to the
outbox and marks the job done. A crash before that commit leaves the job to be claimed again
when its lease ends; after it, the outbox delivers once.

`produce` is shared with `awardbot export`, which writes the same files to a folder.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from conversations.campaign import Catalog
from conversations.documents import (
    DOC_TITLES,
    Audience,
    DocKind,
    Entry,
    FileLine,
    Header,
    documents_for,
    quota_figures,
    quota_text,
)
from conversations.engine import FileOut, Reply
from conversations.identity import Role
from handlers.base import dump_replies
from storage import exports, outbox
from storage import nominations as noms
from storage.crypto import Sealer
from storage.exports import ExportScope, Job
from storage.files import FileStore
from storage.invites import actor_of
from storage.regions import Regions
from storage.store import Store
from storage.tables import attachments, generated_files

log = logging.getLogger(__name__)

BUNDLE_OVER = 10  # more files of one kind than this go out as one ZIP
LEASE = dt.timedelta(minutes=10)
KINDS = {"individual": "person", "collective": "unit"}  # nominations.kind -> the form's kind
KIND_LABELS = {"individual": "个人", "collective": "集体"}
WorkdayEnd = Callable[[dt.date, int], dt.date]


@dataclass(frozen=True, slots=True)
class Produced:
    """One file of a set, on disk until it is stored."""

    path: Path
    doc: DocKind
    media_type: str  # xlsx | docx | pdf | png | zip
    filename: str  # as the user receives it


@dataclass(frozen=True, slots=True)
class SetResult:
    files: list[Produced]
    nominations: int
    text: str = ""  # what the reply says besides the list (the quota's figures)


def _safe(text: str) -> str:
    kept = "".join(ch for ch in text if ch.isprintable() and ch not in '\\/:*?"<>|')
    return kept.strip()[:60] or "文件"


def publicity_period(
    entries: Sequence[Entry], today: dt.date, workdays: int, workday_end: WorkdayEnd
) -> tuple[dt.date, dt.date]:
    """The period a 公示名单 names: the publicity most of its nominations are in (recorded
    when the office started it), else the next `workdays` working days from tomorrow."""
    recorded = Counter(e.publicity for e in entries if e.publicity and e.publicity[1] >= today)
    if recorded:
        period = recorded.most_common(1)[0][0]
        assert period is not None
        return period
    start = workday_end(today + dt.timedelta(days=1), 1)
    return start, workday_end(start, workdays)


def _publicity_workdays(catalog: Catalog, campaign: str) -> int:
    lifecycle = catalog.get(campaign).lifecycle
    days = [s.publicity_workdays for s in (lifecycle.statuses if lifecycle else ())]
    return max((d for d in days if d), default=5)


def produce(
    conn: Connection,
    sealer: Sealer,
    catalog: Catalog,
    regions: Regions,
    scope: ExportScope,
    kinds: Iterable[DocKind],
    out_dir: Path,
    *,
    now: dt.datetime,
    workday_end: WorkdayEnd,
    read_file: Callable[[FileLine], bytes | None],
    progress: Callable[[int], None] | None = None,
    bundle_over: int | None = BUNDLE_OVER,
    summary_pdf: bool = True,
) -> SetResult:
    """Render documents `kinds` of `scope` into `out_dir`, reading through `conn` (one
    snapshot). `progress` is called with the number of nominations rendered since its last
    call; `bundle_over` None never bundles (the command line writes a folder); `summary_pdf`
    False leaves out the summary's PDF twin (the benchmark times the XLSX alone)."""
    from documents import pdf, sheet

    # The other renderers load fonts and matplotlib: imported only for what is asked.
    kinds = list(kinds)
    if any(k is not DocKind.SUMMARY for k in kinds):
        from documents import word
    if DocKind.QUOTA in kinds:
        from documents import chart

    campaign = catalog.get(scope.campaign)
    header = Header(campaign.id, campaign.title, scope.name, scope.audience, now)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[Produced] = []
    counted: set[int] = set()
    text = ""
    tick = progress or (lambda n: None)

    def of(doc: DocKind, *, kind: str | None = None) -> Iterator[Entry]:
        for entry in exports.entries(conn, sealer, catalog, regions, scope, doc, kind=kind):
            counted.add(entry.id)
            yield entry

    def add(doc: DocKind, name: str, media: str) -> Path:
        path = out_dir / _safe(name)
        files.append(Produced(path, doc, media, path.name))
        return path

    def listed(doc: DocKind) -> list[Entry]:
        found = list(of(doc))
        tick(len(found))
        return found

    base = f"{_safe(scope.name)}-{campaign.short_title or campaign.id}"
    if not exports.ordered(conn, campaign, scope):
        kinds = [k for k in kinds if k is DocKind.QUOTA]  # no empty forms, lists or reports
    for doc in kinds:
        title = DOC_TITLES[doc]
        if doc is DocKind.SUMMARY:
            present = exports.kinds_in(conn, campaign, scope) or ["individual"]
            for stored_kind in present:
                label = "" if len(present) == 1 else f"-{KIND_LABELS[stored_kind]}"
                sheet.summary_xlsx(
                    header,
                    KINDS[stored_kind],
                    _ticking(of(doc, kind=stored_kind), tick),
                    add(doc, f"{base}-{title}{label}.xlsx", "xlsx"),
                )
                if summary_pdf:
                    pdf.summary_pdf(  # the printable twin: a second streamed pass
                        header,
                        KINDS[stored_kind],
                        of(doc, kind=stored_kind),
                        add(doc, f"{base}-{title}{label}.pdf", "pdf"),
                    )
        elif doc is DocKind.FORM:
            before = len(files)
            for entry in of(doc):
                stem = f"{title}-{entry.rank or '未排序'}-{_safe(entry.name)}-{entry.code}"
                word.form_docx(header, entry, add(doc, f"{stem}.docx", "docx"))
                pdf.form_pdf(header, entry, add(doc, f"{stem}.pdf", "pdf"))
                tick(1)
            _bundle(files, before, out_dir, f"{base}-{title}", bundle_over)
        elif doc is DocKind.BOOK:
            before = len(files)
            for entry in of(doc):
                stem = f"{title}-{entry.rank or '未排序'}-{_safe(entry.name)}-{entry.code}"
                pdf.book_pdf(header, entry, read_file, add(doc, f"{stem}.pdf", "pdf"))
                tick(1)
            _bundle(files, before, out_dir, f"{base}-{title}", bundle_over)
        elif doc is DocKind.COVER:
            found = listed(doc)
            word.cover_docx(header, found, add(doc, f"{base}-{title}.docx", "docx"))
            pdf.cover_pdf(header, found, add(doc, f"{base}-{title}.pdf", "pdf"))
        elif doc is DocKind.OPINIONS:
            found = listed(doc)
            word.opinions_docx(header, found, add(doc, f"{base}-{title}.docx", "docx"))
            pdf.opinions_pdf(header, found, add(doc, f"{base}-{title}.pdf", "pdf"))
        elif doc is DocKind.REPORT:
            found = listed(doc)
            period = next((e.publicity for e in found if e.publicity), None)
            word.report_docx(
                header, found, add(doc, f"{base}-{title}.docx", "docx"), publicity=period
            )
            pdf.report_pdf(header, found, add(doc, f"{base}-{title}.pdf", "pdf"), publicity=period)
        elif doc is DocKind.PUBLICITY:
            found = listed(doc)
            days = _publicity_workdays(catalog, campaign.id)
            period = publicity_period(found, now.date(), days, workday_end)
            word.publicity_docx(
                header, found, add(doc, f"{base}-{title}.docx", "docx"), period=period,
                workdays=days,
            )  # fmt: skip
            pdf.publicity_pdf(
                header, found, add(doc, f"{base}-{title}.pdf", "pdf"), period=period,
                workdays=days,
            )  # fmt: skip
        elif doc is DocKind.QUOTA:
            region = scope.region
            if region is None:
                continue  # a unit has no quota of its own
            figures = quota_figures(
                campaign,
                scope.name,
                exports.campaign_facts(conn, sealer, catalog, campaign.id),
                exports.region_quotas(conn, regions, campaign, region),
                region_name=regions.full_name,
                contains=regions.contains,
            )
            chart.quota_png(figures, add(doc, f"{base}-{title}.png", "png"))
            text = quota_text(figures)
    return SetResult(files, len(counted), text)


def _ticking(entries: Iterator[Entry], tick: Callable[[int], None]) -> Iterator[Entry]:
    for entry in entries:
        tick(1)
        yield entry


def _bundle(files: list[Produced], start: int, out_dir: Path, stem: str, over: int | None) -> None:
    """Files `files[start:]` as one ZIP when there are more than `over` of them."""
    mine = files[start:]
    if over is None or len(mine) <= over:
        return
    target = out_dir / f"{_safe(stem)}（共{len(mine)}个文件）.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as bundle:
        for f in mine:
            bundle.write(f.path, f.filename)
            f.path.unlink()
    del files[start:]
    files.append(Produced(target, mine[0].doc, "zip", target.name))


def stored_file_reader(conn: Connection, files: FileStore) -> Callable[[FileLine], bytes | None]:
    """Read an attachment's bytes for the material book; None when it cannot be read."""

    def read(line: FileLine) -> bytes | None:
        ref = conn.execute(
            sa.select(attachments.c.file_ref).where(attachments.c.id == line.attachment_id)
        ).scalar_one_or_none()
        if ref is None:
            return None
        try:
            return files.get(ref)
        except Exception:  # noqa: BLE001 - a missing or unreadable file is listed, not fatal
            log.warning("attachment %s could not be read for a material book", line.attachment_id)
            return None

    return read


def done_text(kinds: Sequence[DocKind], result: SetResult, scope: ExportScope) -> str:
    titles = "、".join(dict.fromkeys(DOC_TITLES[f.doc] for f in result.files))
    if not result.files:
        if DocKind.QUOTA in kinds:
            return f"{scope.name}：本地区尚未分配名额，没有可生成的名额对照图。"
        return f"{scope.name}：暂无已报送的推荐（草稿不计入），没有可生成的文件。"
    counted = f"（{result.nominations} 件推荐）" if result.nominations else ""
    lines = [f"已生成 {scope.name} 的{titles}，共 {len(result.files)} 个文件{counted}。"]
    if scope.audience is not Audience.PUBLIC and any(
        f.doc is not DocKind.QUOTA for f in result.files
    ):
        lines.append("文件含个人信息，请妥善保管，勿转发。")
    if result.text:
        lines.append(result.text)
    return "\n".join(lines)


FAILED_TEXT = "文件生成失败（{error}），请稍后重新发送 /documents。"
NOT_ALLOWED_TEXT = "您的身份已变更，不能再生成这些文件。"


class DocumentWorker:
    """Runs document jobs: `run_due()` takes what waits, one job at a time."""

    def __init__(
        self,
        store: Store,
        files: FileStore,
        catalog: Catalog,
        regions: Regions,
        *,
        workday_end: WorkdayEnd,
        clock: Callable[[], dt.datetime],
        worker_id: str,
        lease: dt.timedelta = LEASE,
    ) -> None:
        self._store = store
        self._files = files
        self._catalog = catalog
        self._regions = regions
        self._workday_end = workday_end
        self._clock = clock
        self._worker = worker_id
        self._lease = lease

    def run_due(self, limit: int = 5) -> int:
        """Run up to `limit` waiting jobs; how many were run."""
        ran = 0
        while ran < limit:
            job = exports.claim(self._store, self._worker, now=self._clock(), lease=self._lease)
            if job is None:
                break
            self.run(job)
            ran += 1
        return ran

    def run(self, job: Job) -> None:
        try:
            with tempfile.TemporaryDirectory(prefix="awardbot-docs-") as tmp:
                self._run(job, Path(tmp))
        except Exception as exc:  # noqa: BLE001 - the job is retried, the user told at the end
            log.exception("document job %s failed", job.id)
            error = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            with self._store.transaction() as conn:
                if exports.failed(conn, job, self._worker, error=error, now=self._clock()):
                    self._reply(conn, job, FAILED_TEXT.format(error=error), ())

    def _run(self, job: Job, tmp: Path) -> None:
        now = self._clock()
        sealer = self._store.sealer
        with exports.snapshot(self._store) as conn:
            actor = actor_of(conn, job.user_id)
            kinds = [DocKind(k) for k in job.kinds if k in DocKind.__members__.values()]
            allowed = set(documents_for(actor))
            if actor is not None and actor.role is Role.OFFICIAL:
                allowed.add(DocKind.QUOTA)
            if actor is None or not kinds or not set(kinds) <= allowed:
                result, scope = None, None
            else:
                scope = exports.scope_for(conn, self._regions, job.campaign, actor)
                result = produce(
                    conn, sealer, self._catalog, self._regions, scope, kinds, tmp, now=now,
                    workday_end=self._workday_end,
                    read_file=stored_file_reader(conn, self._files),
                )  # fmt: skip
        stored: list[tuple[Produced, str]] = []
        if result is not None:
            stored = [(p, self._files.put(p.path.read_bytes())) for p in result.files]
        with self._store.transaction() as conn:
            if not exports.finish(conn, job, self._worker, now=now):
                # Another worker took it over (this one outlived its lease): it answers.
                log.warning("document job %s was taken over; this worker's files dropped", job.id)
                return
            if result is None or scope is None or actor is None:
                self._reply(conn, job, NOT_ALLOWED_TEXT, ())
                return
            outs = []
            for produced, ref in stored:
                file_id = conn.execute(
                    generated_files.insert()
                    .values(
                        job_id=job.id, user_id=job.user_id, doc_kind=produced.doc.value,
                        audience=scope.audience.value, file_ref=ref,
                        media_type=produced.media_type, size=produced.path.stat().st_size,
                        filename=sealer.seal(produced.filename), created_at=now,
                    )
                    .returning(generated_files.c.id)
                ).scalar_one()  # fmt: skip
                outs.append(FileOut(-int(file_id), produced.filename, produced.media_type))
            noms.audit(
                conn, sealer, user_id=job.user_id, role=actor.role.value, action="export",
                allowed=True, now=now,
                detail={
                    "campaign": job.campaign, "kinds": list(job.kinds),
                    "audience": scope.audience.value, "scope": scope.name,
                    "files": len(outs), "nominations": result.nominations, "job": job.id,
                },
            )  # fmt: skip
            self._reply(conn, job, done_text(kinds, result, scope), tuple(outs))

    def _reply(self, conn: Connection, job: Job, text: str, files: tuple[FileOut, ...]) -> None:
        outbox.enqueue(
            conn,
            self._store.sealer,
            [
                outbox.OutboxMessage(
                    idempotency_key=f"documents:{job.id}",
                    channel=job.channel,
                    recipient_id=job.recipient_id,
                    text=dump_replies([Reply(text, files=files)]),
                    kind="reply",
                )
            ],
            now=self._clock(),
        )


def document_worker(runtime: Any, worker_id: str) -> DocumentWorker:
    """The worker over a `bot.runtime.Runtime`'s store, files, campaigns, regions and clock."""
    return DocumentWorker(
        runtime.store,
        runtime.files,
        runtime.assistant.catalog,
        runtime.regions,
        workday_end=runtime.workday_end,
        clock=runtime.assistant.engine.clock,
        worker_id=worker_id,
    )


__all__ = [
    "BUNDLE_OVER",
    "DocumentWorker",
    "Produced",
    "SetResult",
    "document_worker",
    "done_text",
    "produce",
    "publicity_period",
    "stored_file_reader",
]
