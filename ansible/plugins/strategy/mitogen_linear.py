"""Mitogen's linear strategy under a short name (ansible.cfg: strategy = mitogen_linear).

Mitogen keeps one Python interpreter per host over a single SSH connection and runs each
module in it, instead of a new ssh exec, sudo and Python start per task.
"""

from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule

__all__ = ["StrategyModule"]
