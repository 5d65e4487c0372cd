"""One module per controller: the files it writes and the files it reads."""
