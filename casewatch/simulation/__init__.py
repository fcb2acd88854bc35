"""The synthetic authority: the simulator's event generator and the stack's demo."""
