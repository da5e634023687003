"""The live inspector: every request's path through the pipeline, on the admin listener (``serve --admin-port``).

:mod:`~edgeproxy.inspector.ring` keeps the recent exchanges while a page watches, :mod:`~edgeproxy.inspector.views`
turns one into what the page shows (its HAR entry, the waterfall, what each handler changed, the broken rule at its
field), :mod:`~edgeproxy.inspector.routes` serves the page, its live feed and the HAR downloads. The page itself is
static HTML, CSS and a small script in ``static/``.
"""

from __future__ import annotations

from edgeproxy.inspector.ring import DEFAULT_SIZE, Ring
from edgeproxy.inspector.routes import RING, install

__all__ = ["DEFAULT_SIZE", "RING", "Ring", "install"]
