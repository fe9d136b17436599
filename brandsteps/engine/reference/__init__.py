"""The decision rule for one brand in plain Python: the executable spec the vectorised engine (gates.py) must equal.

Nothing here is fast and nothing needs to be: one brand, one stage, early returns. The verdict rules
(verdict_rules.py) and the action rules (action_rules.py) are tuples of (name, check) in the order of
docs/design.md#decision-rule, each check a small function that returns its result when its rule holds and None
otherwise; the first rule that holds decides. Texts are built with the engine's own formatting
(brandsteps.engine.evidence), so reasons can be compared exactly.
"""

from brandsteps.engine.reference.decision import Decision, decide_one
from brandsteps.engine.reference.facts import BrandState

__all__ = ["BrandState", "Decision", "decide_one"]
