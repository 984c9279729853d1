"""Where a tenant's state lives: in this process (``memory``), or shared by every process
through Redis (``redis://``). See ``tenant.py`` for the seam and ``ops.py`` for what may
change a tenant's state."""
