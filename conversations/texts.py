"""Message texts (Chinese first), rendered with jinja2 from templates held in this module.

Templates live here rather than in files so the engine does no I/O; they are plain text (no HTML
escaping) and every channel renders the same words.
"""

from __future__ import annotations

from typing import Any

from jinja2 import DictLoader, StrictUndefined, meta
from jinja2.sandbox import SandboxedEnvironment

VERDICT_LABELS = {
    "eligible": "符合条件",
    "ineligible": "不符合条件",
    "needs_review": "基本符合，个别条件需评审认定",
    "incomplete": "信息不完整，暂无法判断",
}

TEMPLATES = {
    "welcome": "您好！这里是吉林省评选表彰申报助手。我会一次问一个问题，帮您判断是否符合评选条件，"
    "并告诉您依据哪一条款、需要准备哪些材料。随时发送 /help 查看可用命令。",
    "resume": "欢迎回来，我们接着上次的地方继续。",
    "campaign_question": "请选择要自检的评选表彰活动：",
    "category_question": "请选择申报类别（{{ campaign }}）：",
    "category_chosen": "好的：{{ campaign }} · {{ category }}。下面开始逐项提问，共约 {{ total }} 题。",
    "current_answer": "（当前回答：{{ answer }}，重新回答即可修改）",
    "stopped": """根据您刚才的回答，已不符合以下条件：
{% for r in reasons %}• 「{{ r.clause }}」{{ r.message }}（您的回答：{{ r.answer }}）
{% endfor %}您可以继续回答其余问题以了解全部情况，也可以重新开始。""",
    "stopped_question": "接下来怎么做？",
    "summary_question": "请核对您的回答。回复 1 确认并查看结论；回复其他序号可修改该项：",
    "confirm_choice": "确认无误，查看结论",
    "summary_item": "{{ label }}：{{ answer }}",
    "verdict": """自检结论：{{ verdict_label }}
活动：{{ campaign }} · 类别：{{ category }}
{% if verdict == 'eligible' %}您满足以下全部条件：
{% elif verdict == 'ineligible' %}不符合的条件：
{% elif verdict == 'needs_review' %}需评审认定的条件（原则上的要求，由评审决定）：
{% else %}以下条件尚无法判断：
{% endif %}{% for r in reasons %}• 「{{ r.clause }}」{{ r.message }}{% if r.answer %}（您的回答：{{ r.answer }}）{% endif %}
{% endfor %}{% if age_as_of %}年龄按 {{ age_as_of }} 计算（周岁）。
{% endif %}{% if missing and verdict == 'incomplete' %}尚未回答：{{ missing | join('；') }}
{% endif %}{% if declined %}您选择不回答涉及敏感个人信息的问题，以下各项未回答，须由所在单位核实：{{ declined | join('；') }}
{% endif %}{% if declared %}
以下条件为自我声明，机器人无法核实，请准备证明材料：
{% for r in declared %}• 「{{ r.clause }}」{{ r.message }}
  请准备：{{ r.evidence }}
{% endfor %}{% endif %}{% if verdict != 'ineligible' %}{% if materials %}
需要准备的材料：
{% for m in materials %}{{ loop.index }}. {{ m }}
{% endfor %}{% endif %}{% for w in windows %}
{{ w.label }}：{{ w.start }} 至 {{ w.end }}{% if w.place %}，地点：{{ w.place }}{% endif %}{% if w.note %}（{{ w.note }}）{% endif %}
{% endfor %}{% endif %}{% if contact %}联系人：{{ contact }}
{% endif %}本结论仅供自检参考，以评选表彰工作领导小组办公室的审核为准。""",
    "after_verdict": "发送 /restart 可以重新自检，或选择其他类别。",
    "done_again": "这次自检已经完成（结论：{{ verdict_label }}）。发送 /restart 重新开始。",
    "help": """可用命令：
{% for line in lines %}{{ line }}
{% endfor %}回答选择题时，回复序号或选项文字都可以。""",
    "reminders_none": "目前没有待发送的提醒。",
    "reminders_list": """您将收到的提醒（北京时间）：
{% for r in items %}{{ r.when }}  {{ r.title }}（{{ r.kind }}）
{% endfor %}{% if more %}……另有 {{ more }} 条
{% endif %}""",
    "reminders_settings": """提醒设置：
{% for c in campaigns %}{{ loop.index }}. {{ c.title }}：{% for k in c.kinds %}{{ k.label }}{{ '开' if k.on else '关' }}{% if not loop.last %} · {% endif %}{% endfor %}
{% endfor %}发送 /subscribe 或 /unsubscribe 加类型（报送、截止、汇总、全部）和活动序号修改，例如：/unsubscribe 报送 1""",
    "reminders_set": "已{{ '开启' if on else '关闭' }}：{{ what }}。发送 /reminders 查看将收到的提醒。",
    "reminders_bad_kind": "没有“{{ word }}”这类提醒。可选：报送（报送时间提醒）、截止（截止与待办提醒）、汇总（每日汇总）、全部。",
    "reminders_bad_campaign": "没有第 {{ word }} 项评选活动。发送 /reminders 查看活动序号。",
    "reminders_digest_officials": "每日汇总只发给评审办公室的工作人员；如您是评审办公室工作人员，请先发送 /bind 邀请码。",
    "reminders_offer": "发送 /subscribe 订阅本次评选的报送时间提醒：开始前 {{ days }} 天和报送期间每天 {{ at }} 提醒您{% if strict %}（提前或逾期报送均不予受理）{% endif %}。",
    "reminders_tracking": "已同时为您订阅该评选的报送时间提醒（发送 /unsubscribe 报送 取消）。",
    "reminders_subscribed": "您已订阅本次评选的报送时间提醒（发送 /unsubscribe 报送 取消）。",
    "campaign_closed": "请注意：本次评选的{{ label }}已于 {{ end }} 截止{% if strict %}（提前或逾期报送均不予受理）{% endif %}。如有疑问请联系{{ contact or '主办单位' }}。",
    "window_refused": "「{{ clause }}」{{ label }}时间为 {{ start }} 至 {{ end }}{% if note %}，{{ note }}{% endif %}。今天（{{ today }}）不在报送时间内，不能办理“{{ move }}”。",
    "bind_usage": "请在 /bind 后面加上邀请码，例如：/bind ABCD-EFGH",
    "bound": "绑定成功：您现在是{{ who }}。",
    # A used code is answered as an unknown one (bind_invalid): nothing says a code exists.
    "bind_invalid": "邀请码无效，请核对 8 位邀请码（形如 ABCD-EFGH）后重新输入。",
    "bind_expired": "邀请码已过期，请向管理员重新申请。",
    "bind_revoked": "邀请码已作废，请向管理员重新申请。",
    "guessed_bind": "邀请码错误次数过多，请 1 小时后再试（每小时最多 {{ n }} 次）。",
    "guessed_track": "跟踪码错误次数过多，请 1 小时后再试（每小时最多 {{ n }} 次）。",
    "not_your_unit": "这项推荐不属于您的单位。",
    "filing_no_entry": "这项推荐处于“{{ status }}”，现在没有可以办理的报送操作。",
    "whoami": "您当前的身份：{{ who }}。",
    "who_applicant": "申报人（未绑定单位或评审办公室）",
    "who_clerk": "单位经办人 · {{ region }} · {{ unit }}",
    "who_official": "{{ region }}评选表彰工作领导小组办公室（{{ level }}级）",
    "track_unknown": "没有找到跟踪码“{{ code }}”，请核对后再发一次。",
    "tracking": "已关注：{{ line }}\n推荐状态有变化时会通知您。",
    "tracked_none": "您还没有关注任何推荐。请发送 /track 跟踪码。",
    "tracked_list": "您关注的推荐：\n{% for line in lines %}{{ loop.index }}. {{ line }}\n{% endfor %}",
    "mine_refused": "只有绑定了单位的经办人可以查看本单位的推荐。如您是经办人，请先发送 /bind 邀请码。",
    "mine_none": "本单位还没有推荐。",
    "consent_selfcheck": """接下来的问题涉及是否有违法违纪、受处分等情况，属于敏感个人信息。
您的回答只用于本次资格自检，加密保存，不会提供给他人。您是否同意回答？""",
    "consent_declined": "好的，涉及敏感个人信息的问题不再询问，其余问题继续。结论会列出未回答的问题，须由所在单位核实。",
    "kept_answers": """您修改了“{{ label }}”。后面已回答的问题保留原来的回答：
{% for item in items %}• {{ item }}
{% endfor %}如需修改，请在最后核对时选择该项，或发送 /back。""",
    "answer_cleared": "{{ reason }}\n“{{ label }}”原来的回答（{{ answer }}）已清除，稍后请重新回答。",
    "consent": """申报需要收集被推荐人的个人信息，包括身份证号码、手机号码和是否受过处分等问题的回答。
这些信息仅用于本次评选表彰的资格审核和推荐材料，加密保存，对单位经办人和申报人只显示部分号码，评审办公室查看完整号码会留下记录。
您是否同意？""",
    "filing_not_clerk": "只有绑定了单位的经办人可以填报推荐。如您是经办人，请先发送 /bind 邀请码。",
    "filing_intro": "开始填报一项推荐：先回答资格问题，再逐项填写推荐审批表、上传附件，最后提交。随时可发送 /cancel 暂停（草稿会保留，可在 /mine 中看到）。",
    "filing_no_consent": "未获同意，不能继续填报。需要时请重新发送 /new。",
    "filing_ineligible": "根据以上结论，该推荐对象不符合评选条件，不能推荐。发送 /new 可以填报另一位。",
    "filing_draft_made": "已建立推荐草稿，跟踪码：{{ code }}\n请把跟踪码告诉被推荐人，他（她）发送 /track {{ code }} 即可查看进展。下面填写推荐审批表。",
    "filing_item_added": "已记下第 {{ n }} 项。继续发送下一项，全部发完后回复“完成”。",
    "filing_list_hint": "每条消息填一项；全部发完后回复“完成”。",
    "filing_list_more": "请发送下一项，或回复“完成”。",
    "filing_attach_question": "请上传附件：选择要上传的材料（✓ 已上传）；全部传完后选最后一项。",
    "filing_attach_done": "附件已传完，查看汇总",
    "filing_send_file": "请发送“{{ material }}”的文件（{{ accepted }}，每个不超过 {{ mb }} MB）。发送 /cancel 返回材料清单。",
    "filing_send_a_file": "这里需要一个文件，请以文件或图片形式发送；发送 /cancel 返回材料清单。",
    "filing_file_unexpected": "现在不需要文件。如要上传附件，请先在材料清单中选择对应的材料。",
    "filing_file_saved": "已收到“{{ material }}”（{{ kind }}）。",
    "filing_summary_question": """请核对推荐审批表和附件。
已上传附件：{{ uploaded | join('；') if uploaded else '无' }}
{% if missing %}尚缺必需附件：{{ missing | join('；') }}
{% endif %}{% if later %}以后阶段提交，不影响现在提交：{{ later | join('；') }}
{% endif %}{% if submits > 1 %}回复 1–{{ submits }} 选择报送方式；回复 {{ submits + 1 }} 上传或更换附件{% else %}回复 1 提交；回复 2 上传或更换附件{% endif %}；回复其他序号修改该项：""",
    "filing_disagreements": """{% if refuse %}以下内容互相矛盾，改正后才能提交：
{% for line in refuse %}• {{ line }}
{% endfor %}{% endif %}{% for line in warn %}• {{ line }}
{% endfor %}""",
    "filing_field_cleared": "{{ reason }}\n“{{ label }}”原来填写的内容已清除，稍后请重新填写。",
    "filing_disagrees_selfcheck": "{{ reason }}\n如{{ label }}无误，说明资格自检时的回答有误：请发送 /cancel 退出，再发送 /new 重新填报（资格问题按实际回答）。",
    "filing_disagrees_earlier": "{{ reason }}\n如{{ labels }}有误，请发送 /back 返回修改。",
    "filing_submit_choice": "确认无误，提交（开始单位公示）",
    "filing_missing": "还不能提交：缺少必需的附件：{{ names }}。请先上传。",
    "stage_missing": "还不能“{{ move }}”：缺少这一步须提交的附件：{{ names }}。请在这项推荐中选择“补充附件”上传后再办理。",
    "attach_later": "补充附件{% if n %}（尚缺 {{ n }} 项）{% endif %}",
    "filing_late_question": "补充附件：选择要上传的材料（✓ 已上传）；传完后选最后一项。",
    "filing_late_attach_done": "附件已传完",
    "filing_late_done": "附件已保存。{% if later %}报送前还须上传：{{ later | join('；') }}。{% endif %}发送 /mine 打开这项推荐继续办理。",
    "filing_blocked": "还不能提交：\n{% for line in lines %}• {{ line }}\n{% endfor %}",
    "filing_no_lifecycle": "本活动尚未配置评选流程，暂不能提交，请联系管理员。",
    "filing_submitted": """已提交，当前状态：{{ status }}。跟踪码：{{ code }}
{% if start %}公示期：{{ start }} 至 {{ end }}（{{ days }} 个工作日）。公示期满且无异议后，请在 /mine 中继续下一步。
{% endif %}{% if later %}报送前还须上传：{{ later | join('；') }}。届时在 /mine 中打开这项推荐，选择“补充附件”上传。
{% endif %}{% if warnings %}请注意：
{% for w in warnings %}• {{ w }}
{% endfor %}{% endif %}""",
    "filing_finished": "这项推荐已经处理完毕。发送 /new 填报另一位，或 /mine 查看本单位的推荐。",
    "filing_left": "已退出填报，草稿已保留（/mine 可查看）。",
    "notice_status": "您关注的推荐（跟踪码 {{ code }}）状态变为：{{ status }}{% if start %}（{{ start }} 至 {{ end }}）{% endif %}。",
    "queue_refused": "只有绑定了评审办公室身份的人员可以查看待审队列。",
    "queue_none": "目前没有等待您审核的推荐。",
    "queue_intro": "等待您审核的推荐共 {{ n }} 项：",
    "mine_intro": "本单位的推荐共 {{ n }} 项：",
    "pick_nomination": "回复序号查看一项推荐：",
    "nomination_gone": "这项推荐已无法查看（可能已被移动或无权查看）。",
    "nomination_detail": """{{ line }}
状态：{{ status }}　地区：{{ region }}
{% if publicity %}公示期：{{ publicity[0] }} 至 {{ publicity[1] }}
{% endif %}{% if returned %}{{ returned.what }}：{{ returned.by }}于 {{ returned.at }} {{ returned.what }}，理由：{{ returned.reason }}
{% endif %}{% for f in fields %}{{ f }}
{% endfor %}{% if files %}附件：{{ files | join('；') }}
{% endif %}{% if selfcheck %}资格自检：{{ selfcheck.verdict }}
{% for r in selfcheck.reasons %}{{ r }}
{% endfor %}{% endif %}{% if missing %}尚未记录意见：{{ missing | join('、') }}
{% endif %}{% if findings %}规则提示：
{% for f in findings %}• {{ f }}
{% endfor %}{% endif %}请选择操作：""",
    "move_reason": "请说明{{ move }}的理由（会告知{{ told }}）；发送 /cancel 放弃。",
    "reason_too_short": "理由请写成一句话，说明为什么{{ move }}（至少 {{ n }} 个字；表情、标点和数字不算）。",
    "move_confirm": """您将{{ move }}：{{ line }}
理由：{{ reason }}
办理后状态将变为“{{ status }}”，不能恢复，也不能再报送。确定{{ move }}吗？""",
    "move_confirm_yes": "确定{{ move }}",
    "move_confirm_no": "不{{ move }}，返回",
    "move_not_made": "没有{{ move }}，推荐保持原状。",
    "move_stale": "该推荐已由他人办理，当前状态：{{ status }}。您的选择未执行，请按最新情况重新选择。",
    "move_refused_stale": "该推荐已由他人办理，您的操作未执行。",
    "edit_returned": "修改推荐内容（字段或附件）",
    "file_sent": "附件：{{ material }}（{{ filename }}）",
    "out_of_order": "您的这条消息比后面的消息晚到，没有处理，以免打乱顺序。请看最新的问题，需要时再发一次。",
    "move_done": "已办理：{{ move }}，当前状态：{{ status }}{% if start %}（公示 {{ start }} 至 {{ end }}）{% endif %}。",
    "notice_move": "推荐（跟踪码 {{ code }}）{{ move }}，当前状态：{{ status }}{% if start %}（公示 {{ start }} 至 {{ end }}）{% endif %}{% if reason %}。理由：{{ reason }}{% endif %}。",
    "filing_reused_selfcheck": "您已为这一类别做过资格自检：沿用那次的回答，请在下面核对，可修改任意一项。",
    "store_unavailable": "抱歉，数据库暂时无法访问，这条消息还没有记下。请稍后再发一次，之前的回答都还在。",
    "step_failed": "抱歉，处理这条消息时出错了，这一步没有保存，之前的回答都还在。请再发一次；如果仍然出错，请联系管理员。",
    "continue_draft": "继续填报这份草稿",
    "draft_resumed": "继续填报：{{ line }}",
    "nomination_line": "{{ nominee }} · {{ category }} · {{ status }} · 跟踪码 {{ code }}",
    "status": """当前进度：
活动：{{ campaign or '（未选择）' }}
类别：{{ category or '（未选择）' }}
已回答 {{ answered }} 题，还剩约 {{ remaining }} 题。""",
    "unknown_command": "没有这个命令：{{ command }}。",
    "nothing_to_cancel": "现在没有正在填报或填写理由的事项，不需要取消。",
    "restarted": "已重新开始。",
    "back_at_start": "已经是第一步了。",
    "bad_choice": "请从下列选项中选择，回复序号（1–{{ count }}）或选项文字。",
}

_env = SandboxedEnvironment(
    loader=DictLoader(TEMPLATES),
    undefined=StrictUndefined,
    autoescape=False,
    keep_trailing_newline=False,
)


def render(name: str, **context: Any) -> str:
    """Render one named template; unknown variables are errors, not blanks."""
    return _env.get_template(name).render(**context).strip()


def render_text(source: str, **context: Any) -> str:
    """Render a template given as text (a campaign's reminder texts), in the same sandbox."""
    return _env.from_string(source).render(**context).strip()


def text_variables(source: str) -> set[str]:
    """The variables a template text uses (checked when a campaign loads)."""
    return set(meta.find_undeclared_variables(_env.parse(source)))
