"""Reading campaign files: the I/O half of the campaign loader (the parsing half is pure)."""

from __future__ import annotations

from pathlib import Path

from conversations.campaign import Campaign, CampaignError, Catalog
from conversations.loader import parse_campaign

NOT_CAMPAIGNS = {"calendar.yaml", "regions.yaml"}  # other data that lives beside the campaigns


def load_campaign_file(path: Path) -> Campaign:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CampaignError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_campaign(text, str(path))


def load_catalog(directory: Path) -> Catalog:
    """Every `*.yaml` campaign in `directory`, sorted by file name."""
    if not directory.is_dir():
        raise CampaignError(f"{directory}: campaigns directory not found")
    files = sorted(p for p in directory.glob("*.yaml") if p.name not in NOT_CAMPAIGNS)
    if not files:
        raise CampaignError(f"{directory}: no campaign files (*.yaml)")
    return Catalog(load_campaign_file(p) for p in files)
