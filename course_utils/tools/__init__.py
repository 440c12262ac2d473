"""The command line, named collections, the notebook runner and the HTML book."""
