"""chainrule: the command line and the pytest plugin over reference/, oracles/ and reports/."""
