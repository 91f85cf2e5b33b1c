"""/ and /nodes/<id>/: what an operator sees of the organization, rendered on the server.

The browser flows (click a node, pause it, see the tree mark it) are in
tests/browser/test_dashboard.py; the timing at size is bench/pages.py.
"""

from __future__ import annotations

import itertools
import json
import re
from datetime import timedelta
from html import unescape as html_unescape

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from ledger import kinds
from ledger.models import TaskTrace
from ledger.services import ledger_append, task_trace_record
from organization.genome import fan_out_organization
from organization.models import LiveTrial, SubtreePause
from organization.selectors import champion_genome, champion_version_id
from organization.services import genome_bootstrap, genome_bootstrap_from
from tests import factories
from tests.support.processes import drain_in_process
from workers.domain.algedonic import AlgedonicSignal, OverridePolicy
from workers.models import AlgedonicSignalRecord, Directive, ResourceEpoch
from workers.services.algedonic import signal_raise
from workers.services.bargaining import current_epoch_key

_tasks = itertools.count()


@pytest.fixture
def nested() -> None:
    genome_bootstrap(template="nested", actor="operator:test")


@pytest.fixture
def operator_client() -> Client:
    client = Client()
    client.force_login(factories.operator())
    return client


def tree_node(html: str, node_id: str) -> str:
    """The SVG group of one drawn node."""
    found = re.search(
        rf'<g class="tree-node [^"]*" data-node-id="{re.escape(node_id)}".*?</g>', html, re.S
    )
    assert found, f"{node_id} is not drawn"
    return found.group(0)


def drawn_ids(html: str) -> list[str]:
    return re.findall(r'<g class="tree-node [^"]*" data-node-id="([^"]+)"', html)


def pause(node_id: str) -> None:
    signal_raise(
        signal=AlgedonicSignal(
            severity=8,
            target_node_id=node_id,
            message="tests are red",
            override_policy=OverridePolicy(pause_subtree=True),
        ),
        raised_by="user:operator",
    )
    drain_in_process()


def trace(node_id: str, ancestors: list[str], *, success: bool, minutes_ago: int = 0) -> TaskTrace:
    started = timezone.now() - timedelta(minutes=minutes_ago)
    return task_trace_record(
        trace=TaskTrace(
            task_id=f"task-{next(_tasks)}",
            genome_id=champion_version_id() or "",
            assigned_node_id=node_id,
            responsible_ancestor_ids=ancestors,
            started_at=started,
            completed_at=started,
            input_tokens=120,
            latency_ms=40,
            outcome_score=1.0 if success else -1.0,
        )
    )


# -- who may look -------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/", "/tree/", "/nodes/backend-system/"])
def test_an_anonymous_visitor_gets_the_login_page(nested: None, url: str) -> None:
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


@pytest.mark.django_db
def test_pausing_from_a_node_page_needs_a_login_and_csrf(nested: None) -> None:
    assert Client().post("/nodes/backend-system/pause/").status_code == 302
    checked = Client(enforce_csrf_checks=True)
    checked.force_login(factories.operator())
    assert checked.post("/nodes/backend-system/pause/").status_code == 403
    assert not AlgedonicSignalRecord.objects.exists()


# -- the overview -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_overview_draws_every_node_linked_to_its_page_metasystems_apart_from_leaves(
    nested: None, operator_client: Client
) -> None:
    html = operator_client.get("/").content.decode()
    assert drawn_ids(html) == ["root-codebase-system", "backend-system", "backend-coder"]
    root, coder = tree_node(html, "root-codebase-system"), tree_node(html, "backend-coder")
    assert 'href="/nodes/root-codebase-system/"' in root
    assert 'href="/nodes/backend-coder/"' in coder
    assert "<rect" in root and "metasystem" in root, "a metasystem is a box"
    assert "<circle" in coder and "System 1 leaf" in coder, "a leaf is a circle"
    assert 'data-paused="false"' in root


@pytest.mark.django_db
def test_a_paused_subtree_is_marked_on_the_tree(nested: None, operator_client: Client) -> None:
    pause("backend-system")
    assert SubtreePause.objects.filter(node_id="backend-system").exists()
    html = operator_client.get("/").content.decode()
    system, coder = tree_node(html, "backend-system"), tree_node(html, "backend-coder")
    assert 'data-paused="true"' in system and "pause-target" in system
    assert "backend-system, metasystem, Active, paused" in system
    assert 'data-paused="true"' in coder and "paused with an ancestor" in coder
    assert 'data-paused="false"' in tree_node(html, "root-codebase-system")
    assert re.search(r'data-count="paused">1<', html), "the side panel counts the pause"


@pytest.mark.django_db
def test_a_controller_running_a_trial_and_its_subtree_are_marked(
    nested: None, operator_client: Client
) -> None:
    version = champion_version_id()
    assert version is not None
    LiveTrial.objects.create(
        controller_node_id="backend-system",
        trial_id="trial-1",
        candidate_version_id=version,
        base_version_id=version,
        mode=LiveTrial.Mode.CANARY,
    )
    html = operator_client.get("/").content.decode()
    assert 'data-trial="here"' in tree_node(html, "backend-system")
    assert "running a trial" in tree_node(html, "backend-system")
    assert 'data-trial="inside"' in tree_node(html, "backend-coder")
    assert 'data-trial="none"' in tree_node(html, "root-codebase-system")


@pytest.mark.django_db
def test_a_big_tree_is_collapsed_below_three_levels_and_expands_on_demand(
    operator_client: Client,
) -> None:
    genome_bootstrap_from(genome=fan_out_organization(200), actor="test", label="fan-out-200")
    html = operator_client.get("/").content.decode()
    drawn = drawn_ids(html)
    assert len(drawn) == 111, "root, 10 children, 100 grandchildren"
    assert "n-11" in drawn and "n-111" not in drawn
    # n-11's children (n-111 … n-120) are hidden behind its "+10".
    collapsed = tree_node(html, "n-11")
    assert "+10" in collapsed and 'href="/?expand=n-11"' in collapsed
    assert 'hx-get="/tree/?expand=n-11"' in collapsed
    assert "200 nodes, 111 drawn" in html

    fragment = operator_client.get("/tree/?expand=n-11").content.decode()
    assert "<html" not in fragment, "the htmx fragment is the tree alone"
    assert "n-111" in drawn_ids(fragment) and len(drawn_ids(fragment)) == 121
    assert 'href="/?"' not in fragment
    opened = tree_node(fragment, "n-11")
    assert "Collapse n-11" in opened and 'href="/"' in opened

    full = operator_client.get("/?expand=n-11").content.decode()
    assert drawn_ids(full) == drawn_ids(fragment)


@pytest.mark.django_db
def test_a_collapsed_node_hiding_a_pause_says_so(operator_client: Client) -> None:
    genome_bootstrap_from(genome=fan_out_organization(200), actor="test", label="fan-out-200")
    pause("n-111")
    html = operator_client.get("/").content.decode()
    assert "n-111" not in drawn_ids(html)
    assert "a paused node inside" in tree_node(html, "n-11")
    assert "hides-paused" in tree_node(html, "n-11")


@pytest.mark.django_db
def test_unknown_or_foreign_expand_ids_are_ignored(nested: None, operator_client: Client) -> None:
    response = operator_client.get("/?expand=nobody&expand=<script>")
    assert response.status_code == 200
    assert drawn_ids(response.content.decode()) == [
        "root-codebase-system",
        "backend-system",
        "backend-coder",
    ]


@pytest.mark.django_db
def test_the_side_panel_shows_directives_alarms_budgets_and_the_runtime(
    nested: None, operator_client: Client
) -> None:
    # The logged-in operator (factories.operator() again would reset its password and log it out).
    operator = User.objects.get(username="operator")
    Directive.objects.create(
        title="Add a health-check endpoint",
        status=Directive.Status.RUNNING,
        root_node_id="root-codebase-system",
        genome_id="g",
        created_by=operator,
    )
    Directive.objects.create(
        title="Fix the flaky test",
        status=Directive.Status.COMPLETED,
        root_node_id="root-codebase-system",
        genome_id="g",
        created_by=operator,
    )
    ResourceEpoch.objects.create(
        epoch_key=current_epoch_key(),
        controller_node_id="backend-system",
        requester_node_id="backend-coder",
        allocation_count=2,
        allocated_tokens=3000,
        used_tokens=1200,
    )
    pause("backend-coder")
    html = operator_client.get("/").content.decode()
    running = re.search(r"<h3>Running.*?</ul>", html, re.S)
    assert running and "Add a health-check endpoint" in running.group(0)
    recent = re.search(r"<h3>Recent</h3>.*?</ul>", html, re.S)
    assert recent and "Fix the flaky test" in recent.group(0)
    assert re.search(r'data-count="pain">1<', html)
    edge = re.search(r'<tr data-edge="backend-system→backend-coder">.*?</tr>', html, re.S)
    assert edge and "3000 / " in edge.group(0) and "1200" in edge.group(0)
    # No worker or beat has left a trace in this database.
    assert re.search(r'data-process="worker" data-alive="false"', html)
    assert re.search(r'data-process="beat" data-alive="false"', html)


@pytest.mark.django_db
def test_a_worker_that_stored_a_result_lately_counts_as_alive(
    nested: None, operator_client: Client
) -> None:
    from django_celery_results.models import TaskResult

    TaskResult.objects.create(task_id="t-1", status="SUCCESS", date_done=timezone.now())
    html = operator_client.get("/").content.decode()
    assert re.search(r'data-process="worker" data-alive="true"', html)


@pytest.mark.django_db
def test_an_organization_not_bootstrapped_yet_says_so(operator_client: Client) -> None:
    html = operator_client.get("/").content.decode()
    assert "There is no organization yet" in html


# -- a node's page ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_node_page_shows_its_place_genes_and_children(
    nested: None, operator_client: Client
) -> None:
    html = operator_client.get("/nodes/backend-system/").content.decode()
    crumbs = re.search(r'<nav class="breadcrumb".*?</nav>', html, re.S)
    assert crumbs is not None
    assert re.findall(r">([a-z-]+)</a>", crumbs.group(0)) == [
        "root-codebase-system",
        "backend-system",
    ]
    children = re.search(r'<section id="node-children".*?</section>', html, re.S)
    assert children and 'href="/nodes/backend-coder/"' in children.group(0)
    assert "System 5 (identity and policy)" in html and "System 3* (audit)" in html


@pytest.mark.django_db
def test_a_leaf_page_shows_its_leaf_spec_and_model(nested: None, operator_client: Client) -> None:
    html = operator_client.get("/nodes/backend-coder/").content.decode()
    leaf = re.search(r'<section aria-label="Leaf operation">.*?</section>', html, re.S)
    assert leaf and re.search(r"<dt>allows code write</dt><dd>yes</dd>", leaf.group(0))
    model = re.search(r'<section aria-label="Model">.*?</section>', html, re.S)
    assert model and "<dt>provider</dt><dd>echo</dd>" in model.group(0)
    assert "None: a System 1 leaf" in html


@pytest.mark.django_db
def test_a_node_page_lists_its_subtree_traces_newest_first_filtered_and_paged(
    nested: None, operator_client: Client
) -> None:
    ancestors = ["backend-system", "root-codebase-system"]
    failed = trace("backend-coder", ancestors, success=False, minutes_ago=1)
    succeeded = trace("backend-coder", ancestors, success=True, minutes_ago=0)
    elsewhere = trace("root-codebase-system", [], success=True)

    html = operator_client.get("/nodes/backend-system/").content.decode()
    shown = re.findall(r'<tr data-trace-id="([^"]+)"', html)
    assert shown == [succeeded.id, failed.id], "the subtree's traces, newest first, no others"
    assert elsewhere.id not in html

    only_failed = operator_client.get("/nodes/backend-system/?outcome=failed").content.decode()
    assert re.findall(r'<tr data-trace-id="([^"]+)"', only_failed) == [failed.id]
    assert '<option value="failed" selected>' in only_failed

    for minutes in range(2, 30):
        trace("backend-coder", ancestors, success=True, minutes_ago=minutes)
    first = operator_client.get("/nodes/backend-system/").content.decode()
    assert len(re.findall(r"<tr data-trace-id=", first)) == 25
    assert 'href="?page=2"' in first
    second = operator_client.get("/nodes/backend-system/?page=2").content.decode()
    assert len(re.findall(r"<tr data-trace-id=", second)) == 5
    assert 'rel="next"' not in second and 'href="?page=1"' in second


def fitness_series(html: str) -> dict[str, list[float]]:
    found = re.search(r'<script id="fitness-data" type="application/json">(.*?)</script>', html)
    assert found, "the page has no fitness series"
    return dict(json.loads(found.group(1)))


@pytest.mark.django_db
def test_a_node_page_charts_direct_and_attributed_fitness_over_time(
    nested: None, operator_client: Client
) -> None:
    ancestors = ["backend-system", "root-codebase-system"]
    # An hour of failures, then an hour of successes: the later windows score higher.
    for minutes in range(120, 60, -5):
        trace("backend-coder", ancestors, success=False, minutes_ago=minutes)
    for minutes in range(60, 0, -5):
        trace("backend-coder", ancestors, success=True, minutes_ago=minutes)

    leaf = operator_client.get("/nodes/backend-coder/").content.decode()
    parent = operator_client.get("/nodes/backend-system/").content.decode()

    series = fitness_series(leaf)
    assert len(series["time"]) >= 2 and series["time"] == sorted(series["time"])
    assert series["direct"][0] < series["direct"][-1], "the successes score above the failures"
    assert 'src="/static/vendor/uplot/uPlot.iife.min.js"' in leaf  # vendored, never a CDN
    # The parent has no traces of its own: its direct fitness is flat, its attributed is not.
    parent_series = fitness_series(parent)
    assert set(parent_series["direct"]) == {0.0}
    assert parent_series["attributed"][0] < parent_series["attributed"][-1]
    # The same figures in a table, for readers without the chart.
    assert parent.count("<tr><td><time") == len(parent_series["time"])


@pytest.mark.django_db
def test_a_node_without_traces_says_it_has_no_fitness_yet(
    nested: None, operator_client: Client
) -> None:
    html = operator_client.get("/nodes/backend-coder/").content.decode()

    assert "No traces yet: fitness comes from" in html
    assert 'id="fitness-data"' not in html


@pytest.mark.django_db
def test_a_paused_node_page_says_so_and_names_the_pause(
    nested: None, operator_client: Client
) -> None:
    pause("backend-system")
    html = operator_client.get("/nodes/backend-coder/").content.decode()
    assert 'data-paused="true"' in html
    banner = re.search(r'<p class="state-banner" id="node-pause">.*?</p>', html, re.S)
    assert banner and 'href="/nodes/backend-system/"' in banner.group(0)


@pytest.mark.django_db
def test_the_pause_button_raises_a_pause_signal_and_returns_to_the_page(
    nested: None, operator_client: Client
) -> None:
    response = operator_client.post("/nodes/backend-system/pause/", follow=True)
    assert response.redirect_chain[-1][0] == "/nodes/backend-system/"
    assert "Pause of backend-system requested" in response.content.decode()
    record = AlgedonicSignalRecord.objects.get()
    assert record.target_node_id == "backend-system"
    assert record.override_policy and record.override_policy["pause_subtree"] is True
    drain_in_process()  # the controller handles it, as a worker would
    html = operator_client.get("/").content.decode()
    assert 'data-paused="true"' in tree_node(html, "backend-system")

    operator_client.post("/nodes/backend-system/resume/")
    drain_in_process()
    assert not SubtreePause.objects.exists()
    assert 'data-paused="false"' in tree_node(
        operator_client.get("/").content.decode(), "backend-system"
    )


@pytest.mark.django_db
def test_an_unknown_node_gets_a_404_page_in_the_layout(
    nested: None, operator_client: Client
) -> None:
    response = operator_client.get("/nodes/nobody-here/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "No such node" in html and "<code>nobody-here</code>" in html
    assert '<nav aria-label="Main">' in html
    assert operator_client.post("/nodes/nobody-here/pause/").status_code == 404
    assert not AlgedonicSignalRecord.objects.exists()


@pytest.mark.django_db
def test_a_bad_page_or_outcome_is_read_leniently(nested: None, operator_client: Client) -> None:
    for query in ("?page=0", "?page=abc", "?page=-3", "?outcome=everything", "?page=99999999"):
        assert operator_client.get(f"/nodes/backend-system/{query}").status_code == 200, query


@pytest.mark.django_db
def test_any_unknown_address_gets_the_layouts_not_found_page(operator_client: Client) -> None:
    response = operator_client.get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "There is nothing at this address." in html
    assert '<nav aria-label="Main">' in html


@pytest.mark.django_db
def test_node_names_and_ids_are_escaped_in_the_tree_and_on_the_page(
    operator_client: Client,
) -> None:
    from organization.genome.model import LeafOperationSpec, OrganizationalGenome, ViableNode
    from organization.genome.operations import add_child

    genome = OrganizationalGenome.from_root(ViableNode.metasystem("root", id="root"))
    name, node_id = "<img src=x onerror=alert(1)>", 'odd"id&more'
    add_child(genome, "root", ViableNode.leaf(name, LeafOperationSpec.coding(), id=node_id))
    genome_bootstrap_from(genome=genome, actor="test", label="odd names")

    html = operator_client.get("/").content.decode()
    assert "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'data-node-id="odd&quot;id&amp;more"' in html
    assert 'href="/nodes/odd%22id&amp;more/"' in html
    page = operator_client.get('/nodes/odd"id&more/')
    assert page.status_code == 200
    assert "<img" not in page.content.decode()


@pytest.mark.django_db
def test_the_side_panel_alone_is_the_fragment_the_live_overview_swaps_in(
    nested: None, operator_client: Client
) -> None:
    AlgedonicSignalRecord.objects.create(
        source="User",
        valence="Pain",
        severity=8,
        target_node_id="backend-coder",
        message="the build is red",
        raised_by="user:operator",
    )

    fragment = operator_client.get("/panel/").content.decode()
    page = operator_client.get("/").content.decode()

    assert fragment.lstrip().startswith('<aside id="overview-side"')
    assert "<html" not in fragment and "the build is red" in fragment
    assert fragment.strip() in page  # the very markup the full page serves
    assert 'data-panel="/panel/"' in page


@pytest.mark.django_db
def test_a_node_page_lists_its_subtrees_latest_events_and_where_to_follow_them(
    nested: None, operator_client: Client
) -> None:
    mine = ledger_append(
        kind=kinds.AUDIT_STARTED,
        node_id="backend-coder",
        responsible_ancestor_ids=["backend-system", "root-codebase-system"],
    )
    above = ledger_append(kind=kinds.AUDIT_STARTED, node_id="root-codebase-system")

    html = operator_client.get("/nodes/backend-system/").content.decode()

    listed = re.findall(r'<tr data-seq="(\d+)">', html)
    assert str(mine.seq) in listed and str(above.seq) not in listed
    assert listed == sorted(listed, key=int, reverse=True)
    assert f'data-since="{above.seq}"' in html  # the live table starts at the head
    assert 'src="/static/dashboard/node-events.js"' in html


@pytest.mark.django_db
def test_a_node_page_lists_the_channels_at_its_ends(nested: None, operator_client: Client) -> None:
    genome = champion_genome()
    assert genome is not None
    expected = [c for c in genome.channels if "backend-system" in (c.from_node_id, c.to_node_id)]

    html = operator_client.get("/nodes/backend-system/").content.decode()

    shown = [html_unescape(id) for id in re.findall(r'<tr data-channel-id="([^"]+)">', html)]
    assert expected and sorted(shown) == sorted(c.id for c in expected)
    assert f"Channels ({len(expected)})" in html
    assert 'href="/nodes/backend-coder/"' in html  # the other end of a channel, linked


@pytest.mark.django_db
def test_a_viewer_sees_a_node_page_without_the_pause_buttons(nested: None) -> None:
    viewer = Client()
    viewer.force_login(factories.viewer())

    html = viewer.get("/nodes/backend-system/").content.decode()

    assert "<h1>backend-system</h1>" in html
    assert "Pause subtree" not in html and "Resume subtree" not in html
