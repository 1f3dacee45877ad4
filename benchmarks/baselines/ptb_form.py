"""The form as python-telegram-bot 22 writes one: `Application` + `ConversationHandler`.

As in PTB's `conversationbot.py` example: one handler per state, answers checked with
`filters.Regex`, a fallback handler in each question state for anything else (an error reply
and the same question again), `update.message.reply_text(...)` with a `ReplyKeyboardMarkup`,
the answers in `context.user_data`. `build_application(request)` takes any `BaseRequest`; with
`pickle_path`, `PicklePersistence(update_interval=1, on_flush=True)` flushed by a 1 s job.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

os.environ.setdefault("PTB_TIMEDELTA", "true")  # PTB 22's opt-in, as our adapter sets it

from telegram import ReplyKeyboardMarkup, ReplyKeyboardRemove, Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    PicklePersistence,
    filters,
)
from telegram.request import BaseRequest, RequestData

from benchmarks.baselines import form
from benchmarks.baselines.fake_api import TOKEN, FakeBotApi

CATEGORY = 0  # the state after the campaign; states 1..4 are the questions
YES_NO = ReplyKeyboardMarkup([["是", "否"]], one_time_keyboard=True, resize_keyboard=True)
CATEGORY_KEYBOARD = ReplyKeyboardMarkup([list(form.CATEGORIES)], one_time_keyboard=True)
FLUSH_EVERY = 1.0  # seconds


class InProcessRequest(BaseRequest):
    """PTB's request layer without the network: PTB builds the `RequestData` as for HTTP, this
    encodes it as `HTTPXRequest` has httpx send it (form fields of JSON values) and answers."""

    read_timeout = 5.0

    def __init__(self, api: FakeBotApi) -> None:
        self.api = api

    async def initialize(self) -> None:
        pass

    shutdown = initialize

    async def do_request(
        self, url: str, method: str, request_data: RequestData | None = None, *args: Any, **kw: Any
    ) -> tuple[int, bytes]:
        params = request_data.parameters if request_data else {}
        body = urlencode(request_data.json_parameters).encode() if request_data else b""
        answer = self.api.answer(url.rsplit("/", 1)[-1], params.get("chat_id"),
                                 params.get("text"), body, "reply_markup" in params)  # fmt: skip
        return 200, answer


async def campaign(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    context.user_data["campaign"] = update.message.text
    await update.message.reply_text(form.GREETING)
    await update.message.reply_text(form.ASK_CATEGORY, reply_markup=CATEGORY_KEYBOARD)
    return CATEGORY


async def category(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    context.user_data["category"] = update.message.text
    await update.message.reply_text(form.STARTING)
    await update.message.reply_text(form.QUESTIONS[0][1], reply_markup=YES_NO)
    return 1


def answer(number: int) -> Any:
    """The handler of question `number` (1-based): store the answer, ask the next or finish."""
    key = form.QUESTIONS[number - 1][0]

    async def handler(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        context.user_data[key] = update.message.text == "是"
        if number == len(form.QUESTIONS):
            await update.message.reply_text(form.DONE, reply_markup=ReplyKeyboardRemove())
            return ConversationHandler.END
        await update.message.reply_text(form.QUESTIONS[number][1], reply_markup=YES_NO)
        return number + 1

    return handler


def invalid(number: int) -> Any:
    """Anything but 是/否 for question `number`: say so and ask it again."""

    async def handler(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        # Returns None: the conversation stays in this state.
        await update.message.reply_text(form.NOT_YES_NO)
        await update.message.reply_text(form.QUESTIONS[number - 1][1], reply_markup=YES_NO)

    return handler


def form_handler(*, persistent: bool = False) -> ConversationHandler:
    text = filters.TEXT & ~filters.COMMAND
    states: dict[object, list[Any]] = {
        CATEGORY: [MessageHandler(filters.Regex(f"^({'|'.join(form.CATEGORIES)})$"), category)]
    }
    for number in range(1, len(form.QUESTIONS) + 1):
        states[number] = [
            MessageHandler(filters.Regex("^(是|否)$"), answer(number)),
            MessageHandler(text, invalid(number)),
        ]
    return ConversationHandler(
        entry_points=[MessageHandler(filters.Regex(f"^({'|'.join(form.CAMPAIGNS)})$"), campaign)],
        states=states,
        fallbacks=[],
        name="form",
        persistent=persistent,
    )


async def _flush(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Hand what changed to the persistence and write the file (the 1 s flush)."""
    await context.application.update_persistence()
    await context.application.persistence.flush()


def build_application(
    request: BaseRequest | None = None,
    *,
    pickle_path: Path | None = None,
    token: str = TOKEN,
    api_base: str = "https://api.telegram.org",
) -> Application:
    """The bot; without `request` PTB's own HTTPXRequest (to `api_base`: a fake Bot API)."""
    builder = ApplicationBuilder().token(token).updater(None).base_url(f"{api_base}/bot")
    if request is not None:
        builder = builder.request(request).get_updates_request(request)
    if pickle_path is not None:
        persistence = PicklePersistence(pickle_path, update_interval=FLUSH_EVERY, on_flush=True)
        builder = builder.persistence(persistence)
    else:
        builder = builder.job_queue(None)
    app = builder.build()
    app.add_handler(form_handler(persistent=pickle_path is not None))
    if pickle_path is not None:
        app.job_queue.run_repeating(_flush, interval=FLUSH_EVERY, first=FLUSH_EVERY)
    return app
