"""The lab's branching tree (`samplers.tree`): paths fold into one tree, a different token after an
undo starts a branch, the bound holds, the export has each path's log-probability; the lab section
grows it from a real session (tiny-random) without a model call; the drawing marks the current path."""

from __future__ import annotations

import json
import math

import pytest

from playground import lab, models
from playground.plots.chain import tree_spec
from playground.samplers.tree import MAX_NODES, Tree, observe, tree_dict
from playground.sampling import SamplingSettings
from playground.ui import chain_section


def test_paths_fold_into_one_tree_and_branch_after_an_undo():
    tree = observe(None, [1, 2], [(5, 0.5, "sampled"), (6, 0.25, "sampled")])
    tree = observe(tree, [1, 2], [(5, 0.5, "sampled")])  # undo: the current node moves up
    assert len(tree.nodes) == 2 and tree.current == 0
    tree = observe(tree, [1, 2], [(5, 0.5, "sampled"), (7, 0.125, "forced")])  # another token: a branch
    assert len(tree.nodes) == 3 and tree.children(0) == [1, 2] and tree.current == 2
    data = tree_dict(tree, lambda t: f"t{t}")
    assert data["nodes"][2] == {"id": 2, "parent": 0, "token": 7, "text": "t7", "prob": 0.125,
                                "logprob": pytest.approx(math.log(0.5) + math.log(0.125)), "chosen": "forced"}
    assert observe(tree, [9], []).nodes == ()  # a new prompt, a new tree
    spec = tree_spec(data)
    assert spec["data"][3]["text"][2].startswith("t7") and spec["data"][3]["marker"]["color"][1] != \
        spec["data"][3]["marker"]["color"][2]  # node 1 is off the current path, node 2 on it


def test_the_tree_is_bounded():
    tree = Tree()
    for start in range(0, 3 * MAX_NODES, 50):
        tree = observe(tree, [1], [(t, 0.5, "sampled") for t in range(start, start + 50)])
    assert len(tree.nodes) == MAX_NODES and tree.full


def test_the_section_grows_the_tree_from_the_lab_without_the_model():
    session = lab.open_session("tiny-random", "Once upon a time", False, 1024)
    settings = SamplingSettings(temperature=0.0)
    lab.next_token(session, settings, 0)
    lab.next_token(session, settings, 0)
    loaded = models.load_model("tiny-random")
    tree, plot, data = chain_section.grow_tree(session, None)
    lab.undo(session)
    lab.append_token(session, settings, 42)
    calls = loaded.forward_calls  # the lab's own steps have run: growing the tree calls nothing
    tree, plot, data = chain_section.grow_tree(session, tree)
    assert loaded.forward_calls == calls
    assert len(data["nodes"]) == 3 and data["current"] == 2 and data["nodes"][2]["chosen"] == "forced"
    assert json.loads(plot.plot)["data"][3]["customdata"][2][0] == 2


def test_a_click_on_a_node_brings_the_lab_back_to_it_and_over_to_another_branch():
    """Tiny-random: two branches; returning to the first branch's leaf restores its tokens (and how
    each was chosen) with the same records as when they were generated; the tree's current node follows."""
    from playground.ui import sampling_tab

    session = lab.open_session("tiny-random", "Once upon a time", False, 1024)
    settings = SamplingSettings(temperature=0.0)
    for _ in range(3):
        lab.next_token(session, settings, 0)
    first_branch = [(r.id, r.chosen, r.raw_prob) for r in session.records]
    tree, *_ = chain_section.grow_tree(session, None)
    lab.undo(session)
    lab.undo(session)
    lab.append_token(session, settings, 42)
    tree, *_ = chain_section.grow_tree(session, tree)
    assert len(tree.nodes) == 4 and tree.current == 3
    leaf = 2  # the first branch's last token
    assert tree.steps(leaf) == [(t, c) for t, c, _ in first_branch]
    rules = (10, False, 0.0, 0, 1.0, 0.0, "transformers")
    sampling_tab.return_to_node(session, tree, str(leaf), *rules)
    assert [(r.id, r.chosen) for r in session.records] == [(t, c) for t, c, _ in first_branch]
    assert [r.raw_prob for r in session.records] == pytest.approx([p for *_, p in first_branch], abs=1e-6)
    tree, _, data = chain_section.grow_tree(session, tree)
    assert data["current"] == leaf and len(tree.nodes) == 4  # no new node: the path was there
    sampling_tab.return_to_node(session, tree, "3", *rules)  # over to the other branch
    assert [r.id for r in session.records] == [first_branch[0][0], 42]
    with pytest.raises(Exception, match="tree node"):
        sampling_tab.return_to_node(session, tree, "abc", *rules)
    other = lab.open_session("tiny-random", "Another prompt", False, 1024)
    with pytest.raises(Exception, match="another prompt"):
        sampling_tab.return_to_node(other, tree, "1", *rules)
