"""PCM instruction records (Q123499): the model, PCMDUMP's text layout, deployer's YAML form, lint.

Package Command Manager reads `Logon.srv\\Pcmins.box\\<SMSID>.INS`, a binary file of one
record per package. Its binary layout is not published; PCMDUMP prints it as text, and
that text is what deployer reads and writes (`dumptext`), besides its own YAML form
(`yamlform`). `record` holds the typed model, `lint` the checks of Q123499 and Q166765.
"""
