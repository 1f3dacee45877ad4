"""Fair baselines for `bench_library.py`: the same 6-step form as our self-check, written the way
python-telegram-bot's and aiogram's documentation write a form, replying to every update.

`ptb_form.build_application(request)` and `aiogram_form.build_dispatcher(storage)` build the bots
without any harness, so a webhook benchmark can run the same bots behind each library's server.
"""
