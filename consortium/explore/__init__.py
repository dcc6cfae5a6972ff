"""Exploration: generated fault schedules run on the simulator, failures shrunk and
written back as replayable scenario files (`consortium explore`)."""
