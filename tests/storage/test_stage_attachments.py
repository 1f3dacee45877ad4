"""The writer re-checks an attachment to a filed nomination (issue 11): a later stage's material
(the opinions form) is stored while the nomination is in the unit's hands; a filing material,
a nomination an office holds, or another unit's is refused and nothing is stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.review_rig import clerk, place, write

from conversations.effects import StoreAttachment
from conversations.reads import Refusal, RefusalKind
from storage import nominations as noms
from storage.store import Store

PDF = b"%PDF-1.7\n%%EOF"


def apply(store: Store, user: str, effect: StoreAttachment, files: Path) -> None:
    """The writer, on `user`'s own step transaction, given one effect as a step would."""
    write(store, user, [effect], files)


def stored(store: Store, nomination: int) -> list[str]:
    with store.reading() as conn:
        return sorted(a.material_key for a in noms.attachments_of(conn, store.sealer, nomination))


@pytest.mark.parametrize("status", ["unit_publicity", "opinions"])
def test_a_later_stages_material_is_stored_while_in_the_unit(
    store: Store, tmp_path: Path, status: str
) -> None:
    clerk(store)
    nomination = place(store, status=status, materials=False)
    effect = StoreAttachment(nomination, "opinions", "意见表.pdf", "pdf", PDF)
    apply(store, "clerk", effect, tmp_path)
    assert stored(store, nomination) == ["opinions"]


@pytest.mark.parametrize(
    ("status", "material", "user", "kind"),
    [
        ("opinions", "id_card", "clerk", RefusalKind.STALE),  # the filing's: fixed once filed
        ("county_review", "opinions", "clerk", RefusalKind.STALE),  # an office holds it
        ("opinions", "opinions", "other", RefusalKind.NOT_YOURS),  # another unit's clerk
    ],
)
def test_any_other_attachment_after_filing_is_refused(
    store: Store, tmp_path: Path, status: str, material: str, user: str, kind: RefusalKind
) -> None:
    clerk(store)
    clerk(store, "other", "220581")
    nomination = place(store, status=status, materials=False)
    with pytest.raises(Refusal) as info:
        apply(store, user, StoreAttachment(nomination, material, "x.pdf", "pdf", PDF), tmp_path)
    assert info.value.kind is kind
    assert stored(store, nomination) == []
