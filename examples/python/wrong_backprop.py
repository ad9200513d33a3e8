#!/usr/bin/env python3
"""backprop.py with one classic bug, for chainrule to catch: the mean squared error
differentiated as if it were ½‖ŷ − y‖², so dL/dA = (A − Y)/N lacks the 2 of the square.

    chainrule check --cmd "python examples/python/wrong_backprop.py"      # exit 1, names the tensors
"""

import backprop  # the correct one, beside this file


def mse_dA_without_the_two(a, Y):
    return (a - Y) / len(Y)  # BUG: d/da (a - y)^2 = 2(a - y)


backprop.mse_dA = mse_dA_without_the_two
backprop.NAME = "wrong-backprop (examples/python: the 2 of the squared error dropped)"

if __name__ == "__main__":
    backprop.main()
