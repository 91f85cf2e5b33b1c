"""/genome/ and /genome/diff/: the version history and any two versions compared on the tree.

The browser flow (open a diff from the history) is in tests/browser/test_genome.py; the diff
itself is tests/organization/test_genome_diff.py; the timing at size is bench/pages.py.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client

from organization.genome import fan_out_organization
from organization.models import GenomeVersion
from organization.selectors import champion_version_id
from organization.services import genome_apply_patch, genome_bootstrap_from
from tests import factories
from tests.trials.operators import make_trial, organization
from trials.models import Trial
from trials.services.promotion import trial_promote, trial_rollback

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer_client() -> Client:
    client = Client()
    client.force_login(factories.viewer())
    return client


def history_row(html: str, version_id: str) -> str:
    found = re.search(rf'<tr data-version-id="{re.escape(version_id)}".*?</tr>', html, re.S)
    assert found, f"version {version_id} is not listed"
    return found.group(0)


def drawn_node(html: str, node_id: str) -> str:
    found = re.search(
        rf'<g class="tree-node [^"]*" data-node-id="{re.escape(node_id)}" data-diff="[a-z]+">'
        r".*?</g>(?:</a>)?</g>",
        html,
        re.S,
    )
    assert found, f"{node_id} is not drawn"
    return found.group(0)


def status_patch(node_id: str, status: str) -> dict[str, str]:
    return {"kind": "set_node_status", "node_id": node_id, "status": status}


def test_anonymous_visitors_are_sent_to_log_in() -> None:
    for url in ("/genome/", "/genome/diff/"):
        response = Client().get(url)
        assert response.status_code == 302 and "/login/" in response["Location"], url


def test_a_viewer_sees_who_made_each_version_with_which_patch_and_trial(
    viewer_client: Client,
) -> None:
    first = organization()
    patched = genome_apply_patch(
        patch=status_patch("backend-system", "Probation"), actor="user:alice", reason="slow down"
    )
    trial = make_trial()
    trial_promote(trial=trial, actor="system:trials", reason="catches more failures")
    promoted = GenomeVersion.objects.get(id=champion_version_id())

    html = viewer_client.get("/genome/").content.decode()

    row = history_row(html, patched.id)
    assert "user:alice" in row and "set_node_status" in row and "backend-system" in row
    assert "slow down" in row
    assert f'href="/genome/diff/?from={first.id}&amp;to={patched.id}"' in row
    promoted_row = history_row(html, promoted.id)
    assert f'href="/trials/{trial.id}/"' in promoted_row and "promoted by" in promoted_row
    assert "add_child" in promoted_row and "review-probation-leaf under" in promoted_row
    assert "champion" in promoted_row
    assert "first version" in history_row(html, first.id)
    # Newest first; the trial's candidate is not a champion version, so not listed by default.
    order = re.findall(r'<tr data-version-id="([^"]+)"', html)
    assert order == [promoted.id, patched.id, first.id]
    assert trial.candidate_version_id not in html


def test_a_rollback_of_a_promotion_names_its_trial(viewer_client: Client) -> None:
    organization()
    trial = make_trial()
    trial_promote(trial=trial, actor="system:trials", reason="better")
    trial_rollback(trial=trial, actor="system:trials", reason="regressed", raise_pain=False)

    row = history_row(viewer_client.get("/genome/").content.decode(), champion_version_id() or "")

    assert "rollback" in row and "rolled back by" in row and f'href="/trials/{trial.id}/"' in row


def test_the_candidates_filter_lists_the_trials_candidate_versions_too(
    viewer_client: Client,
) -> None:
    organization()
    trial = make_trial(state=Trial.State.QUEUED)

    html = viewer_client.get("/genome/?candidates=1").content.decode()

    row = history_row(html, trial.candidate_version_id)
    assert "candidate of" in row and f'href="/trials/{trial.id}/"' in row


def test_the_history_is_paginated_and_keeps_the_filter_between_pages(
    viewer_client: Client,
) -> None:
    organization()
    for index in range(30):
        genome_apply_patch(
            patch=status_patch("backend-system", "Probation" if index % 2 else "Active"),
            actor=f"user:{index}",
        )

    first_page = viewer_client.get("/genome/?candidates=1").content.decode()
    second_page = viewer_client.get("/genome/?page=2&candidates=1").content.decode()

    assert len(re.findall(r"<tr data-version-id=", first_page)) == 25
    assert len(re.findall(r"<tr data-version-id=", second_page)) == 6
    assert 'href="?page=2&amp;candidates=1"' in first_page
    assert "user:29" in first_page and "user:0<" in second_page


def test_the_diff_lists_and_marks_added_removed_and_changed_nodes_on_the_tree(
    viewer_client: Client,
) -> None:
    before, _ = genome_bootstrap_from(
        genome=fan_out_organization(30), actor="test", label="fan-out-30"
    )
    after = genome_apply_patch(
        patch={
            "kind": "batch",
            "patches": [
                {"kind": "remove_subtree", "node_id": "n-2"},
                status_patch("n-3", "Probation"),
                {
                    "kind": "add_child",
                    "parent_id": "n-1",
                    "child": {"id": "new-tester", "name": "new tester"},
                },
            ],
        },
        actor="user:alice",
    )

    response = viewer_client.get(f"/genome/diff/?from={before.id}&to={after.id}")

    assert response.status_code == 200
    html = response.content.decode()
    added = re.search(r'id="diff-added-heading".*?</section>', html, re.S)
    removed = re.search(r'id="diff-removed-heading".*?</section>', html, re.S)
    changed = re.search(r'id="diff-changed-heading".*?</section>', html, re.S)
    assert added and "new-tester" in added.group(0)
    assert removed and "n-2<" in removed.group(0) and "n-21<" in removed.group(0)
    assert changed and 'data-node-id="n-3"' in changed.group(0)
    assert "Probation" in changed.group(0) and "<code>status</code>" in changed.group(0)
    summary = re.search(r'<p id="diff-summary">(.*?)</p>', html, re.S)
    assert summary and re.sub(r"<[^>]+>", "", summary.group(1)).startswith(
        "1 node added, 10 removed, 3 changed"
    ), summary
    # Drawn on the tree, each with its mark in words as well as its class and sign.
    assert 'data-diff="added"' in drawn_node(html, "new-tester")
    assert "added in the newer version" in drawn_node(html, "new-tester")
    removed_node = drawn_node(html, "n-21")
    assert 'data-diff="removed"' in removed_node and "diff-removed" in removed_node
    assert "removed: only in the older version" in removed_node
    assert 'data-diff="changed"' in drawn_node(html, "n-3")
    assert 'data-diff="unchanged"' in drawn_node(html, "n-4")
    # A marked node links to its entry in the lists.
    anchor = re.search(r'href="#(added-\d+)"', drawn_node(html, "new-tester"))
    assert anchor and f'id="{anchor.group(1)}" data-node-id="new-tester"' in html


def test_a_missing_version_defaults_to_the_parent_or_the_champion(
    viewer_client: Client,
) -> None:
    first = organization()
    second = genome_apply_patch(patch=status_patch("backend-system", "Shadow"), actor="user:bob")

    html = viewer_client.get(f"/genome/diff/?to={second.id[:8]}").content.decode()
    champion_html = viewer_client.get("/genome/diff/").content.decode()
    against_champion = viewer_client.get(f"/genome/diff/?from={first.id}").content.decode()

    for page in (html, champion_html, against_champion):
        assert f'value="{first.id}"' in page and f'value="{second.id}"' in page
        assert 'data-diff="changed"' in drawn_node(page, "backend-system")


def test_a_version_against_itself_says_there_are_no_differences(viewer_client: Client) -> None:
    first = organization()

    html = viewer_client.get(f"/genome/diff/?from={first.id}&to={first.id}").content.decode()

    assert "the same version: there are no differences" in html
    assert 'data-diff="added"' not in html and 'data-diff="changed"' not in html


def test_the_first_version_has_no_parent_to_compare_with(viewer_client: Client) -> None:
    first = organization()

    html = viewer_client.get(f"/genome/diff/?to={first.id}").content.decode()

    assert "is the first version: it has no parent" in html


def test_an_unknown_version_is_a_404_that_says_which(viewer_client: Client) -> None:
    first = organization()

    for query in (f"from=ghost-version&to={first.id}", "to=nope", f"from={first.id}&to=zzzzzzzz"):
        response = viewer_client.get(f"/genome/diff/?{query}")
        assert response.status_code == 404, query
        assert "No such genome version" in response.content.decode()


def test_the_navigation_links_every_logged_in_user_to_the_genome_history(
    viewer_client: Client,
) -> None:
    organization()

    html = viewer_client.get("/").content.decode()

    assert '<a href="/genome/">Genome</a>' in html
    assert "/admin/organization/genomeversion/" not in html


def test_a_page_of_history_costs_the_same_queries_however_long_the_history(
    viewer_client: Client,
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    organization()
    make_trial(state=Trial.State.QUEUED)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert viewer_client.get("/genome/?candidates=1").status_code == 200
        return len(captured)

    short = queries()
    for index in range(20):
        genome_apply_patch(
            patch=status_patch("backend-system", "Probation" if index % 2 else "Active"),
            actor="user:bench",
        )
    assert queries() == short
