"""The branching tree of a lab session: every path the text has taken from one prompt.

`observe(tree, prompt_ids, steps)` folds the lab's current text (its generated tokens, each with the
model's probability and how it was chosen: sampled, greedy or forced) into the tree: the path is
walked from the prompt, a token not yet under its parent becomes a new node, and the last one is
the current node. So a token picked after an undo starts a branch, undo moves the current node up,
and nothing is ever recomputed. The tree keeps ids, probabilities and kinds only, at most
`MAX_NODES` nodes (then new tokens are not added and `full` says so); a new prompt starts a new
tree. `tree_dict` is its JSON export (each node's token, edge probability and path log-probability).

`Tree.steps(node)` is the path to a node, which `playground.lab.return_to` brings the lab's text to
(a click on the drawn node). What it leaves out: drawing (`playground.plots.chain.tree_spec`),
the model calls of a return (`playground.lab`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from playground.errors import PlaygroundError

MAX_NODES = 200


@dataclass(frozen=True)
class Node:
    parent: int  # -1: the prompt
    token_id: int
    prob: float  # the model's probability of the token at that point
    chosen: str  # sampled, greedy or forced


@dataclass(frozen=True)
class Tree:
    prompt_ids: tuple[int, ...] = ()
    nodes: tuple[Node, ...] = ()
    current: int = -1
    full: bool = False

    def children(self, parent: int) -> list[int]:
        return [i for i, node in enumerate(self.nodes) if node.parent == parent]

    def path(self, index: int) -> list[int]:
        """Node indices from the prompt to `index`."""
        out = []
        while index >= 0:
            out.append(index)
            index = self.nodes[index].parent
        return out[::-1]

    def steps(self, index: int) -> list[tuple[int, str]]:
        """(token id, how it was chosen) from the prompt to node `index`: what the lab returns to."""
        if not 0 <= index < len(self.nodes):
            raise PlaygroundError(f"The tree has no node {index} (it has {len(self.nodes)}).")
        return [(self.nodes[i].token_id, self.nodes[i].chosen) for i in self.path(index)]

    def logprob(self, index: int) -> float:
        return sum(math.log(max(self.nodes[i].prob, 1e-45)) for i in self.path(index))


def observe(tree: Tree | None, prompt_ids: Sequence[int], steps: Sequence[tuple[int, float, str]]) -> Tree:
    """`tree` with the path `steps` ((token id, model probability, how chosen) after the prompt) in it."""
    prompt = tuple(int(i) for i in prompt_ids)
    if tree is None or tree.prompt_ids != prompt:
        tree = Tree(prompt)
    nodes, full, at = list(tree.nodes), tree.full, -1
    for token_id, prob, chosen in steps:
        child = next((i for i, n in enumerate(nodes) if n.parent == at and n.token_id == int(token_id)), None)
        if child is None:
            if len(nodes) >= MAX_NODES:
                full = True
                break
            nodes.append(Node(at, int(token_id), float(prob), str(chosen)))
            child = len(nodes) - 1
        at = child
    return Tree(prompt, tuple(nodes), at, full)


def tree_dict(tree: Tree, text: Callable[[int], str]) -> dict:
    """The tree as JSON: nodes in creation order with their parent, token, text, edge probability and
    path log-probability; the current node; whether the node bound was reached."""
    return {"prompt_ids": list(tree.prompt_ids), "current": tree.current, "full": tree.full, "max_nodes": MAX_NODES,
            "nodes": [{"id": i, "parent": n.parent, "token": n.token_id, "text": text(n.token_id), "prob": n.prob,
                       "logprob": tree.logprob(i), "chosen": n.chosen} for i, n in enumerate(tree.nodes)]}
