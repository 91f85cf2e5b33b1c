"""Writes of the trials app: each one call, one transaction, its ledger events.

* :mod:`.candidates`: a suggestion in, a queued trial with its candidate genome out;
* :mod:`.lifecycle`: activate, freeze, end;
* :mod:`.approvals`: operators approve and reject;
* :mod:`.evaluation`: the two arms' evidence, the decision, and what follows from it;
* :mod:`.promotion`: promote, prune, conclude, roll back;
* :mod:`.watch`: a promotion's watch window;
* :mod:`.schedule`: the periodic tick;
* :mod:`.audits`: System 3* audits and audit reports;
* :mod:`.evolution`: evolution generations (their offspring queued as canary trials).
"""
