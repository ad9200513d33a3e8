"""Prints on every call, from Python and at the file-descriptor level (as C code does), and reads
its stdin."""

import os
import sys

from tests.hostile.twin import Polite


class Backprop(Polite):
    def loss_and_gradients(self, arch, params, X, Y):
        print("noise from print()")
        os.write(1, b"noise from fd 1\n")
        sys.stdin.read()  # the protocol's requests are not there to be taken
        return super().loss_and_gradients(arch, params, X, Y)
