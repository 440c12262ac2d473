"""The command line, named collections, the notebook runner, the prose check and the HTML book."""
