"""fixture_blocks.py - the block format of the loss fixtures (tests/fixtures/loss/*.txt), written once for the
generators that share it (gen_soft_infonce_fixture.py, gen_loss_exclude_fixture.py): a block is a line
"NAME COUNT" followed by one line of COUNT numbers, %.9g for float32 inputs and %.17g for float64 references."""
import numpy as np


def put(f, name, arr, f32=False):
    a = np.asarray(arr, dtype=np.float64).ravel()
    fmt = "%.9g" if f32 else "%.17g"
    f.write("%s %d\n" % (name, a.size))
    f.write(" ".join(fmt % x for x in a) + "\n")
