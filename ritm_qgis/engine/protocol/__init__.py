"""The paper's evaluation protocol.

- ``clicker``: the simulated user (next click at the centre of the largest error);
- ``metrics``: accuracy, precision, recall, Dice, IoU per click;
- ``noc``: NoC@t, >=max@t, Avg IoU (Table 1) from IoU arrays; ``parse_thresholds``;
- ``evaluation``: ``evaluate`` (batched simulated clicks over a dataset), ``annotate``, sharding.
To change the click rule, open ``clicker``.
"""
