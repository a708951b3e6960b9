"""The paper grid on the batched engine vs the single engine (the same as ``sgdlab bench``).

    python benchmarks/bench_batched.py [--epochs N] [--seeds N] [--runs-sample N] [--dtype D] [--threads N]
"""

import sys

from sgdlab.commands.bench import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
