"""Driving in CarRacing: the simulator, the privileged expert, closed-loop rollouts, DAgger."""
