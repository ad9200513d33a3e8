"""Plug-ins that end their process, crash it, hang holding the GIL or exhaust its memory, each on
a given call (tests/test_isolation.py). Right until then: the twin's answer."""

import ctypes
import os
import re
import signal

import numpy as np

from tests.hostile.twin import Polite


class _OnCall(Polite):
    """Polite until call ``k`` (counted in its own process), then ``act()``."""

    k = 1

    def __init__(self):
        self.calls = 0

    def act(self):
        raise NotImplementedError

    def loss_and_gradients(self, arch, params, X, Y):
        self.calls += 1
        if self.calls == self.k:
            self.act()
        return super().loss_and_gradients(arch, params, X, Y)


class ExitsZeroAtCall3(_OnCall):
    k = 3

    def act(self):
        os._exit(0)


class ExitsOneAtCall3(_OnCall):
    k = 3

    def act(self):
        os._exit(1)


class Segfaults(_OnCall):
    def act(self):
        ctypes.string_at(0)  # reads address 0: SIGSEGV


class KillsItself(_OnCall):
    def act(self):
        os.kill(os.getpid(), signal.SIGKILL)


class HoldsTheGIL(_OnCall):
    def act(self):
        re.match(r"(a+)+$", "a" * 64 + "b")  # catastrophic backtracking: C code that never releases the GIL


class AllocatesTwoGB(_OnCall):
    def act(self):
        np.ones(2**28)  # 2 GiB of float64
