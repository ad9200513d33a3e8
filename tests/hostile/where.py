"""Writes the id of the process it runs in, on every call, to the file $CHAINRULE_WHERE."""

import os

from tests.hostile.twin import Polite


class Backprop(Polite):
    def loss_and_gradients(self, arch, params, X, Y):
        with open(os.environ["CHAINRULE_WHERE"], "a") as where:
            where.write(f"{os.getpid()}\n")
        return super().loss_and_gradients(arch, params, X, Y)
