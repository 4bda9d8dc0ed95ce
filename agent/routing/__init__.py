"""Routed reservations (``storeId: "any"``): which stores to ask and in what
order (``ranking``, pure), asking them until one grants (``router``), and
cancelling what an unanswered ask may have reserved (``cleanup``).

Nothing is imported here: ``agent.service`` is imported by the router, and a
package that pulled its modules in would make importing any of them load it.
"""
