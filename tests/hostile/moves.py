"""At import: another working directory; on every call: another sys.path."""

import os
import sys
import tempfile

from tests.hostile.twin import Polite

os.chdir(tempfile.gettempdir())


class Backprop(Polite):
    def loss_and_gradients(self, arch, params, X, Y):
        sys.path[:] = [entry for entry in sys.path if "site-packages" not in entry]
        return super().loss_and_gradients(arch, params, X, Y)
