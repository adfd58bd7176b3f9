"""What the control API answers: out-models built from rows, and the list envelope.

Routes turn rows into these models inside their transaction (a row's server-set
``updated_at`` is read back there), so nothing here touches the database.
"""
