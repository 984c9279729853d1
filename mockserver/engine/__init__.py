"""The simulation: clock, jobs and worker lanes, the Simulator, images, quotas, journal. No HTTP."""
