"""Reading campaign files: the I/O half of the campaign loader (the parsing half is pure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conversations.campaign import Campaign, CampaignError, Catalog
from conversations.loader import parse_campaign, parse_yaml

# Other data that lives beside the campaigns.
NOT_CAMPAIGNS = {"calendar.yaml", "regions.yaml", "reminders.yaml"}
REMINDER_DEFAULTS = "reminders.yaml"  # what every campaign's `reminders:` starts from


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CampaignError(f"{path}: cannot read: {exc.strerror}") from None


def load_campaign_file(path: Path, *, reminders: dict[str, Any] | None = None) -> Campaign:
    return parse_campaign(_read(path), str(path), reminders=reminders)


def load_reminder_defaults(directory: Path) -> dict[str, Any] | None:
    """campaigns/reminders.yaml as a mapping, or None when the directory has none."""
    path = directory / REMINDER_DEFAULTS
    if not path.exists():
        return None
    data = parse_yaml(_read(path), str(path))
    if not isinstance(data, dict):
        raise CampaignError(f"{path}: must be a mapping at the top level")
    return data


def load_catalog(directory: Path) -> Catalog:
    """Every `*.yaml` campaign in `directory`, sorted by file name."""
    if not directory.is_dir():
        raise CampaignError(f"{directory}: campaigns directory not found")
    files = sorted(p for p in directory.glob("*.yaml") if p.name not in NOT_CAMPAIGNS)
    if not files:
        raise CampaignError(f"{directory}: no campaign files (*.yaml)")
    defaults = load_reminder_defaults(directory)
    return Catalog(load_campaign_file(p, reminders=defaults) for p in files)
