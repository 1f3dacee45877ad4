"""A stored form value as a person reads it: labels for choices, masks for what is sensitive."""

from __future__ import annotations

from typing import Any

from conversations.forms import FieldType, FormField
from conversations.idnumber import mask_id_number
from conversations.validators import mask_mobile


def display(field: FormField, value: Any, *, full: bool = False) -> str:
    """A stored value as the clerk reads it. ID numbers (220104********0024), mobiles
    (139****5678) and other sensitive fields are masked unless `full` (officials, the printed
    form)."""
    if value is None:
        return "（未填写）" if field.required else "无"
    if field.type is FieldType.ID_NUMBER:
        return str(value) if full else mask_id_number(str(value))
    if field.type is FieldType.MOBILE:
        return str(value) if full else mask_mobile(str(value))
    if field.sensitive and not full:
        return "（已隐藏）"
    if field.type is FieldType.BOOL:
        return "是" if value else "否"
    if field.type is FieldType.ENUM:
        for c in field.choices:
            if c.value == value:
                return c.label
        return str(value)
    if field.type is FieldType.LIST:
        items = list(value)
        if not items:
            return "无"
        return "\n".join(f"{i}. {item}" for i, item in enumerate(items, 1))
    return str(value)


__all__ = ["display"]
