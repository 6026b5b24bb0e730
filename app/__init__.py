"""The top floor: the `s2s` command line and the `s2s run` chain, the only code that imports every stage.

Installed as `s2s.app`. Nothing below it (`s2s` itself or a stage) imports it.
"""
