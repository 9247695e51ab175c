"""Message contracts for every Spillway topic.

Each contract is a ``msgspec.Struct`` (fast to decode, typed) and is exported as JSON Schema
into ``schemas/json/`` for consumers outside Python (``spillway schemas export``).
Units live in field names: ``_w`` watts, ``_wh`` watt-hours, ``_mj`` millijoules,
``_usd_per_mwh`` $/MWh, ``_g_per_kwh`` gCO2/kWh, ``_s`` UTC seconds since the Unix epoch,
``_ths`` terahashes per second, ``_hz`` hertz, ``_c`` degrees Celsius.
"""
