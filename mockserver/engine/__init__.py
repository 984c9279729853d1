"""The simulation: clock, jobs and worker lanes, images, quotas, journal. No aiohttp."""
