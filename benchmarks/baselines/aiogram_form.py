"""The form as aiogram 3 writes one: `Dispatcher` + FSM (`StatesGroup`), a `Router`.

As in aiogram's FSM guide (`examples/finite_state_machine.py`): a `StatesGroup`, one handler per
state (`StateFilter`: the async filter), the valid answers picked with `F.text.in_(...)` and a
fallback handler per question for anything else (an error reply and the same question again),
`message.answer(...)` with a `ReplyKeyboardMarkup`, the answers in the FSM data
(`state.update_data`). `build_dispatcher(storage)` takes any FSM storage (MemoryStorage,
RedisStorage, `sqlite_storage.SQLiteStorage`); `make_bot(session)` any session (aiogram's
`AiohttpSession` for a webhook run against a fake, `InProcessSession` here).
"""

from __future__ import annotations

from typing import Any, cast

from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.base import BaseSession
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import BaseStorage
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import KeyboardButton, Message, ReplyKeyboardMarkup, ReplyKeyboardRemove

from benchmarks.baselines.fake_api import TOKEN, FakeBotApi
from benchmarks.baselines.form import (
    ASK_CATEGORY,
    CAMPAIGNS,
    CATEGORIES,
    DONE,
    GREETING,
    NOT_YES_NO,
    QUESTIONS,
    STARTING,
)


class Form(StatesGroup):
    category = State()
    q1 = State()
    q2 = State()
    q3 = State()
    q4 = State()


ASKS = (Form.q1, Form.q2, Form.q3, Form.q4)
YES_NO = ReplyKeyboardMarkup(
    keyboard=[[KeyboardButton(text="是"), KeyboardButton(text="否")]],
    resize_keyboard=True,
    one_time_keyboard=True,
)
CATEGORY_KEYBOARD = ReplyKeyboardMarkup(
    keyboard=[[KeyboardButton(text=c) for c in CATEGORIES]], one_time_keyboard=True
)


class InProcessSession(AiohttpSession):
    """aiogram's aiohttp session up to the wire: the URL, `build_form_data` (the method's
    `model_dump`, each value through `prepare_value`) and the urlencoded body aiohttp would
    send, then aiogram's own `check_response` on the answer. No HTTP session is ever opened."""

    def __init__(self, api: FakeBotApi) -> None:
        super().__init__()
        self.fake = api

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109 - aiogram's signature
    ) -> TelegramType:
        self.api.api_url(token=bot.token, method=method.__api_method__)
        body = cast(Any, self.build_form_data(bot=bot, method=method)())._value
        raw = self.fake.answer(
            method.__api_method__,
            getattr(method, "chat_id", None),
            getattr(method, "text", None),
            body,
            getattr(method, "reply_markup", None) is not None,
        )
        response = self.check_response(
            bot=bot, method=method, status_code=200, content=raw.decode()
        )
        return cast(TelegramType, response.result)


async def campaign(message: Message, state: FSMContext) -> None:
    await state.update_data(campaign=message.text)
    await state.set_state(Form.category)
    await message.answer(GREETING)
    await message.answer(ASK_CATEGORY, reply_markup=CATEGORY_KEYBOARD)


async def category(message: Message, state: FSMContext) -> None:
    await state.update_data(category=message.text)
    await state.set_state(Form.q1)
    await message.answer(STARTING)
    await message.answer(QUESTIONS[0][1], reply_markup=YES_NO)


def _question(router: Router, number: int) -> None:
    """Question `number`'s (0-based) two handlers: a yes/no answer, anything else."""
    key, text = QUESTIONS[number]

    @router.message(StateFilter(ASKS[number]), F.text.in_({"是", "否"}))
    async def answer(message: Message, state: FSMContext) -> None:
        await state.update_data({key: message.text == "是"})
        if number + 1 == len(QUESTIONS):
            await state.set_state(None)  # done; the data stays
            await message.answer(DONE, reply_markup=ReplyKeyboardRemove())
            return
        await state.set_state(ASKS[number + 1])
        await message.answer(QUESTIONS[number + 1][1], reply_markup=YES_NO)

    @router.message(StateFilter(ASKS[number]))
    async def invalid(message: Message) -> None:
        await message.answer(NOT_YES_NO)
        await message.answer(text, reply_markup=YES_NO)


def build_router() -> Router:
    router = Router(name="form")
    router.message.register(campaign, StateFilter(None), F.text.in_(CAMPAIGNS))
    router.message.register(category, StateFilter(Form.category), F.text.in_(CATEGORIES))
    for number in range(len(QUESTIONS)):
        _question(router, number)
    return router


def build_dispatcher(storage: BaseStorage | None = None) -> Dispatcher:
    dispatcher = Dispatcher(storage=storage or MemoryStorage())
    dispatcher.include_router(build_router())
    return dispatcher


def make_bot(session: BaseSession | None = None, token: str = TOKEN) -> Bot:
    return Bot(token, session=session)
