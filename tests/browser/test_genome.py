"""Open a genome diff in Chromium: from the history to the diff drawn on the tree, and from a
marked node to its change (the in-process tests are tests/vsmsite/test_genome_pages.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from organization.genome import fan_out_organization
from organization.services import genome_apply_patch, genome_bootstrap_from
from tests import factories
from tests.browser.conftest import Server, needs_chromium


@needs_chromium
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_open_a_genome_diff_from_the_history_and_follow_a_marked_node_to_its_change(
    daphne_server: Server, browser_page: Any
) -> None:
    from playwright.sync_api import expect

    first, _ = genome_bootstrap_from(
        genome=fan_out_organization(40), actor="test", label="fan-out-40"
    )
    patched = genome_apply_patch(
        patch={
            "kind": "batch",
            "patches": [
                {"kind": "remove_subtree", "node_id": "n-2"},
                {"kind": "set_node_status", "node_id": "n-3", "status": "Probation"},
                {
                    "kind": "add_child",
                    "parent_id": "n-1",
                    "child": {"id": "fresh", "name": "fresh"},
                },
            ],
        },
        actor="user:alice",
        reason="a fresh leaf under n-1",
    )
    viewer = factories.viewer()
    page, url = browser_page, daphne_server.url

    page.goto(f"{url}/genome/")
    page.fill("#id_username", viewer.username)
    page.fill("#id_password", factories.PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{url}/genome/")

    if os.environ.get("VSM_SCREENSHOTS"):
        page.screenshot(path=str(Path(os.environ["VSM_SCREENSHOTS"]) / "genome-history.png"))
    row = page.locator(f'tr[data-version-id="{patched.id}"]')
    expect(row).to_contain_text("user:alice")
    expect(row).to_contain_text("batch")
    row.get_by_text("full patch").click()  # the folded JSON opens without any script
    expect(row.locator("pre")).to_contain_text('"remove_subtree"')
    row.get_by_role("link", name="diff against parent").click()
    page.wait_for_url(f"**/genome/diff/?from={first.id}&to={patched.id}")

    expect(page.locator("#diff-summary")).to_contain_text("1 node added, 11 removed")
    tree = page.locator("figure.diff-tree svg")
    expect(tree.locator('g[data-node-id="fresh"][data-diff="added"]')).to_be_visible()
    expect(tree.locator('g[data-node-id="n-21"][data-diff="removed"]')).to_be_visible()
    expect(tree.locator('g[data-node-id="n-4"][data-diff="unchanged"]')).to_be_visible()
    if os.environ.get("VSM_SCREENSHOTS"):  # for docs/screenshots/ (a person's eye, not a test)
        shots = Path(os.environ["VSM_SCREENSHOTS"])
        page.screenshot(path=str(shots / "genome-diff.png"), full_page=True)
        page.locator("figure.diff-tree").screenshot(path=str(shots / "genome-diff-tree.png"))

    # A changed node in the picture leads to what changed in it.
    page.get_by_role("link", name="n-3, metasystem, Probation, changed").click()
    change = page.locator('article.node-change[data-node-id="n-3"]')
    expect(change).to_be_in_viewport()
    expect(change).to_contain_text("status")
    expect(change.locator("td.before")).to_contain_text("Active")
    expect(change.locator("td.after")).to_contain_text("Probation")

    # The form compares any two versions: here the other way round.
    page.fill("#diff-from", patched.id)
    page.fill("#diff-to", first.id[:8])
    page.get_by_role("button", name="Compare").click()
    expect(page.locator("#diff-summary")).to_contain_text("11 nodes added, 1 removed")
    expect(page.locator('g[data-node-id="fresh"][data-diff="removed"]')).to_be_visible()
