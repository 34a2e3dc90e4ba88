"""What check_node_completion.py does, for comparison: read the unit list, take this node's share,
and stat one <unit>.done per unit. Exit 0 when the node still has work (requeue), 1 when not.
    python3 seed_checker.py COMPLETED_DIR UNITS_FILE NODE NODES"""

import os
import sys

completed, units_file, node, nodes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with open(units_file) as listing:
    units = [line.strip() for line in listing if line.strip()]
remaining = [u for u in units[node::nodes] if not os.path.exists(os.path.join(completed, u + ".done"))]
sys.exit(0 if remaining else 1)
