"""chainrule: the command line, the strategies and the pytest plugin that tie reference/, oracles/ and reports/ together."""
