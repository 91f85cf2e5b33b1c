"""The operator dashboard's pages: ``/`` (the organization at a glance) and ``/nodes/<id>/``.

They live in ``vsmsite`` because they compose every app's reads (the tree and nodes from
``organization``, traces from ``ledger``, directives, signals, budgets and the runtime from
``workers``, trials from ``trials``), and only ``vsmsite`` may import them all. The reads are
the owning apps' selectors; these views only parse the request and render.
"""
