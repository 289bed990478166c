"""`nbtrain.search`: a Keras Tuner search in the background, each trial an nbtrain `Run`.

Keras Tuner runs `tuner.search` -> `run_trial` -> `HyperModel.fit(hp, model,
...)` -> `model.fit`.  `Search` runs `tuner.search` on a thread of its own and,
while it runs, serves the `model.fit` of each trial's model with a `Run` that
the search thread waits on (a `HyperModel.fit` override still calls
`model.fit` itself, and is served the same way).  Keras Tuner keeps its own
semantics: its oracle, its files, its retries, `get_best_models()`.

The rooms of this package:

- `search`: `Search`, the public facade (controls, `wait`, `trials`), and
  `search()`, which builds one, attaches its display and starts it;
- `searchstate`: `SearchControl`, the search's state and the user's wishes under
  one lock, the gate before a trial trains, and the listeners;
- `trialfit`: `TrialFit`, one trial's `model.fit` served by a `Run` (held
  while the search is stopped, ended early by a skip);
- `hooks`: `TunerHooks`, what the search wraps on the tuner while it runs
  (`on_trial_begin`, `on_trial_end`, `hypermodel.fit`), and undoes after;
- `trials`: `TrialRecord`, one record per trial, and `TrialBook`, the list.

The display is not this package's: `search()` calls
`nbtrain.dashboard.searchboard.attach_search_display(search, display)` when
that module exists (the search's dashboard reads the `Search` through its
public names and `add_listener`).  `keras_tuner` itself is never imported
here at module level: the caller made the tuner.
"""

from nbtrain.tuning.search import Search, search
from nbtrain.tuning.trials import TrialRecord

__all__ = ["Search", "TrialRecord", "search"]
