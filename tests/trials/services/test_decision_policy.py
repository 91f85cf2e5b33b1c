"""A trial may name a comparison policy for a benchmark; without one, the project's rule decides."""

from __future__ import annotations

import pytest

from trials.models import Trial
from trials.services.candidates import suggestion_queue
from trials.services.evaluation import trial_evaluate
from trials.services.lifecycle import trial_activate

from .test_evaluation import arms

pytestmark = pytest.mark.django_db


@pytest.fixture
def active(champion, make_draft):
    trial = suggestion_queue(draft=make_draft(), actor="test")
    trial_activate(actor="test")
    trial.refresh_from_db()
    return trial


def choose(trial: Trial, rule: str) -> None:
    Trial.objects.filter(pk=trial.pk).update(metadata={"decision_rule": rule})


def test_without_a_policy_ten_lucky_traces_do_not_promote(active):
    arms(active, candidate=(10, 0), champion=(0, 10))
    trial = trial_evaluate(trial_id=active.id)
    assert trial.state == Trial.State.ACTIVE
    assert trial.evaluation["rule"] == "sequential_confidence_v1"


def test_the_reference_rule_promotes_on_ten_lucky_traces_when_the_trial_names_it(active):
    choose(active, "reference_absolute_v1")
    arms(active, candidate=(10, 0), champion=(0, 10))
    trial = trial_evaluate(trial_id=active.id)
    assert trial.state == Trial.State.PROMOTED
    assert trial.evaluation["rule"] == "reference_absolute_v1"


def test_the_naive_test_decides_at_the_minimum_on_a_fixed_sample_z(active):
    choose(active, "naive_fixed_sample_v1")
    arms(active, candidate=(10, 0), champion=(0, 10))
    assert trial_evaluate(trial_id=active.id).state == Trial.State.ACTIVE  # below the minimum
    arms(active, candidate=(0, 10), champion=(10, 0))
    trial = trial_evaluate(trial_id=active.id)
    assert trial.evaluation["rule"] == "naive_fixed_sample_v1"
    assert trial.state == Trial.State.ACTIVE  # 10/20 against 10/20: no difference


def test_the_random_control_decides_as_soon_as_both_arms_have_the_minimum(active):
    choose(active, "random_choice_v1")
    arms(active, candidate=(10, 10), champion=(10, 10))
    trial = trial_evaluate(trial_id=active.id)
    assert trial.state in (Trial.State.PROMOTED, Trial.State.PRUNED)
    assert trial.evaluation["rule"] == "random_choice_v1"


def test_an_unknown_policy_name_leaves_the_rule_in_charge(active):
    choose(active, "no_such_rule")
    arms(active, candidate=(10, 0), champion=(0, 10))
    assert trial_evaluate(trial_id=active.id).evaluation["rule"] == "sequential_confidence_v1"
