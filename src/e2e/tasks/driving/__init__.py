"""Driving CarRacing from camera frames.

Read top to bottom: config.py (settings and recipe), sim.py (the simulator and its fast
renderer), expert.py (the privileged teacher), record.py (expert recordings), model.py
(PilotNet on stacked frames), task.py (the task: behavior cloning, judged by driving),
closed_loop.py (driving whole tracks), dagger.py (DAgger), cli.py (`e2e drive`,
`e2e data driving`).
"""
