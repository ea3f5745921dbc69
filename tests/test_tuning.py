"""Learning rates chosen on the validation split: the rule that maps every level to a tuned one."""

import math

import pandas as pd
import pytest
import torch

from helpers.data import Split
from helpers.data import hold_out
from helpers.tuning import choose, leaders, lr_for, nearest_level


@pytest.mark.parametrize("k, tuned", [(0.5, 25), (50, 25), (60, 25), (75, 90), (92.5, 90), (97.5, 99), (99.8, 99)])
def test_every_level_takes_the_nearest_tuned_level_in_the_log_of_what_is_kept(k, tuned):
    assert nearest_level(k, [25.0, 90.0, 99.0]) == tuned


def test_the_best_validation_accuracy_chooses_and_a_tie_goes_to_the_lower_validation_loss():
    trials = pd.DataFrame({"strategy": ["finetune"] * 4 + ["gradual"] * 2, "k": [25, 25, 99, 99, 25, 25],
                           "lr": [1e-4, 8e-3, 1e-4, 8e-3, 1e-3, 8e-3],
                           "val_accuracy": [0.98, 0.97, 0.55, 0.96, 0.97, 0.97],
                           "val_loss": [0.1, 0.1, 0.9, 0.2, 0.09, 0.08]})
    chosen = choose(trials)
    assert chosen == {"finetune": {25.0: 1e-4, 99.0: 8e-3}, "gradual": {25.0: 8e-3}}
    assert lr_for(chosen, "finetune", 97.5) == 8e-3 and lr_for(chosen, "finetune", 50) == 1e-4


def test_the_longest_budget_goes_to_the_strategy_best_on_validation_at_the_nearest_tuned_level():
    trials = pd.DataFrame({"strategy": ["finetune", "finetune", "gradual", "gradual", "finetune", "gradual"],
                           "k": [90, 90, 90, 90, 99, 99], "lr": [1e-3, 8e-3, 1e-3, 8e-3, 8e-3, 8e-3],
                           "val_accuracy": [0.97, 0.95, 0.96, 0.98, 0.90, 0.90],
                           "val_loss": [0.1, 0.1, 0.1, 0.1, 0.3, 0.3]})
    # 92.5 and 95 are nearest to 90, where gradual scored best; 97.5 and 99.5 to 99, a tie: first tried
    assert leaders(trials, [92.5, 95, 97.5, 99.5]) == {"gradual": [92.5, 95], "finetune": [97.5, 99.5]}
    # a tie in accuracy goes to the lower loss
    assert leaders(trials.assign(val_loss=[0.1, 0.1, 0.1, 0.1, 0.3, 0.2]), [99.5]) == {"gradual": [99.5]}


def test_the_validation_images_are_held_out_and_the_same_every_time():
    train = Split(torch.arange(100, dtype=torch.float32).reshape(100, 1), torch.arange(100) % 10)
    test = Split(torch.zeros(5, 1), torch.zeros(5, dtype=torch.long))
    a, b = hold_out({"train": train, "test": test}, 20), hold_out({"train": train, "test": test}, 20)
    assert len(a["train"]) == 80 and len(a["validation"]) == 20
    assert torch.equal(a["validation"].images, b["validation"].images)
    assert not set(a["validation"].images.flatten().tolist()) & set(a["train"].images.flatten().tolist())
    with pytest.raises(ValueError, match=r"validation size must be in \[1, 99\], got 100"):
        hold_out({"train": train, "test": test}, 100)


def test_a_rate_chosen_at_the_grids_edge_is_tried_beyond_it_until_it_lies_inside():
    from helpers.study import trials_inside_the_grid

    class Validation:  # accuracy peaks at 0.05: above the grid's top
        def trials(self, method, cells, budget, **_):
            return pd.DataFrame([{"strategy": s, "k": k, "lr": lr, "val_accuracy": 1 - abs(math.log(lr / 0.05)),
                                  "val_loss": 0.1} for s, k, lr in cells])

    tried = trials_inside_the_grid(Validation(), "weight", ["finetune"], [90.0], [1e-3, 8e-3, 2e-2], None)
    assert sorted(tried.lr) == [1e-3, 8e-3, 2e-2, 0.05]  # 0.125 would leave the bounds: 0.05 stays an edge
    assert choose(tried) == {"finetune": {90.0: 0.05}}


def test_the_rates_beyond_the_edges_are_tried_together_so_that_the_workers_share_them():
    from helpers.study import trials_inside_the_grid

    calls = []

    class Validation:  # accuracy peaks at 0.02, above the grid, for every strategy and level
        def trials(self, method, cells, budget, **_):
            calls.append(list(cells))
            return pd.DataFrame([{"strategy": s, "k": k, "lr": lr, "val_accuracy": 1 - abs(math.log(lr / 0.02)),
                                  "val_loss": 0.1} for s, k, lr in cells])

    trials_inside_the_grid(Validation(), "weight", ["finetune", "gradual"], [50.0, 90.0], [1e-3, 8e-3], None)
    assert len(calls[0]) == 8 and sorted(calls[1]) == [(s, k, 0.02) for s in ("finetune", "gradual") for k in (50.0, 90.0)]
    assert len(calls) == 3 and len(calls[2]) == 4  # 0.05 beyond 0.02: the last rate inside the bounds
